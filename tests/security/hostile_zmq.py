"""Hostile ZeroMQ clients for the security suites (Debian's python3-zmq: run
with /usr/bin/python3). Every mode is bounded in time and in connections.

  hostile_zmq.py token-key TOKEN
      print the CURVE key and the endpoint an hsync invite names ("KEY ENDPOINT")

  hostile_zmq.py hijack TOKEN ROUTING_ID STOPFILE OUT [MAX_S]
      a fresh random CURVE key connects to the node TOKEN names (admitted
      while the invite is outstanding), presents ROUTING_ID (the parent's
      public key) as its routing id, and listens without sending until
      STOPFILE exists (or MAX_S seconds, default 120). Writes to OUT, as it
      goes: "handshake ok" once the server accepted the handshake, and at
      the end "frames N bytes B" for what reached it.

  hostile_zmq.py refused ENDPOINT SERVER_KEY N OUT
      N handshakes with fresh random keys (never trusted), at most 64 at a
      time, each given up to 5 s; writes "refused R failed F" to OUT (R seen
      refused by the server's ZAP handler, F neither refused nor accepted).

  hostile_zmq.py spam TOKEN KIND N OUT [NAME]
      a fresh random CURVE key connects to the node TOKEN names (admitted
      while the invite is outstanding) and sends N messages of KIND, at most
      20 s: "short" (a 2-byte frame), "multi" (a 2-part message), "join" (a
      JOIN carrying the invite under a key that is not the connection's, as
      a replayed capture is) or "name" (one such JOIN per NAME given, with a
      hostile parent name). Writes "sent S answers A" to OUT.
"""
import base64
import os
import sys
import time

import zmq
import zmq.utils.monitor


def _mp_str(b, i):
    """A msgpack string at b[i]: (text, next index). fixstr, str8, str16."""
    t = b[i]
    if 0xA0 <= t <= 0xBF:
        n, i = t & 0x1F, i + 1
    elif t == 0xD9:
        n, i = b[i + 1], i + 2
    elif t == 0xDA:
        n, i = int.from_bytes(b[i + 1:i + 3], "big"), i + 3
    else:
        raise ValueError("not a msgpack string")
    return b[i:i + n].decode(), i + n


def token_fields(token):
    """(node, endpoint, key) of an hsync1. invite (topology/token.h)."""
    body = token.split(".", 1)[1]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if (raw[0] & 0xF0) != 0x90:
        raise ValueError("not an hsync invite")
    node, i = _mp_str(raw, 1)
    endpoint, i = _mp_str(raw, i)
    key, i = _mp_str(raw, i)
    return node, endpoint, key


def _write(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def hijack(token, rid, stopfile, out, max_s):
    _, endpoint, server_key = token_fields(token)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    pub, sec = zmq.curve_keypair()
    s.curve_serverkey = server_key.encode()
    s.curve_publickey = pub
    s.curve_secretkey = sec
    s.setsockopt(zmq.ROUTING_ID, rid.encode())
    s.linger = 0
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    s.connect(endpoint)
    frames = nbytes = 0
    told = False
    deadline = time.monotonic() + max_s
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        for sock, _ in poller.poll(100):
            if sock is mon:
                mon.recv_multipart()
                if not told:
                    _write(out, "handshake ok")
                    told = True
            else:
                parts = s.recv_multipart()
                frames += 1
                nbytes += sum(len(p) for p in parts)
    _write(out, "frames %d bytes %d" % (frames, nbytes))
    s.disable_monitor()
    mon.close(0)
    s.close(0)
    ctx.term()


def refused(endpoint, server_key, n, out):
    ctx = zmq.Context()
    want = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    nref = nfail = done = 0
    while done < n:
        batch = []
        for _ in range(min(64, n - done)):
            s = ctx.socket(zmq.DEALER)
            pub, sec = zmq.curve_keypair()
            s.curve_serverkey = server_key.encode()
            s.curve_publickey = pub
            s.curve_secretkey = sec
            s.linger = 0
            s.reconnect_ivl = -1  # one attempt each
            mon = s.get_monitor_socket(want)
            s.connect(endpoint)
            batch.append((s, mon))
        deadline = time.monotonic() + 5
        pending = {id(m): (s, m) for s, m in batch}
        poller = zmq.Poller()
        for _, m in batch:
            poller.register(m, zmq.POLLIN)
        while pending and time.monotonic() < deadline:
            for m, _ in poller.poll(100):
                ev = zmq.utils.monitor.parse_monitor_message(m.recv_multipart())
                if id(m) not in pending:
                    continue
                if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    nref += 1
                else:
                    nfail += 1
                poller.unregister(m)
                del pending[id(m)]
        nfail += len(pending)
        for s, m in batch:
            s.disable_monitor()
            m.close(0)
            s.close(0)
        done += len(batch)
    _write(out, "refused %d failed %d" % (nref, nfail))
    ctx.term()


def _mp_pack_str(b):
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    if len(b) < 256:
        return bytes([0xD9, len(b)]) + b
    return bytes([0xDA]) + len(b).to_bytes(2, "big") + b


def _join(name, key, token):
    """A JOIN link frame (topology/wire.h): [1, 2, name, key, token, false, "", []]."""
    return (bytes([0x98, 0x01, 0x02]) + _mp_pack_str(name) + _mp_pack_str(key) +
            _mp_pack_str(token) + bytes([0xC2]) + _mp_pack_str(b"") + bytes([0x90]))


def spam(token, kind, n, out, names):
    _, endpoint, server_key = token_fields(token)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    pub, sec = zmq.curve_keypair()
    other, _ = zmq.curve_keypair()
    s.curve_serverkey = server_key.encode()
    s.curve_publickey = pub
    s.curve_secretkey = sec
    s.linger = 2000
    s.sndhwm = 0
    s.connect(endpoint)
    t0 = time.monotonic()
    sent = answers = 0
    frames = [_join(nm.encode(), other, token.encode()) for nm in names] if kind == "name" else []
    for i in range(len(frames) if kind == "name" else n):
        if time.monotonic() - t0 > 20:
            break
        if kind == "multi":
            s.send_multipart([b"a", b"b"])
        elif kind == "join":
            s.send(_join(b"parent", other, token.encode()))
        elif kind == "name":
            s.send(frames[i])
        else:
            s.send(b"ZZ")
        sent += 1
        while s.poll(0):
            s.recv_multipart()
            answers += 1
    end = time.monotonic() + 2
    while time.monotonic() < end:
        if s.poll(100):
            s.recv_multipart()
            answers += 1
    _write(out, "sent %d answers %d" % (sent, answers))
    s.close()
    ctx.term()


def main(argv):
    if len(argv) >= 2 and argv[1] == "token-key":
        node, endpoint, key = token_fields(argv[2])
        print(key, endpoint)
    elif len(argv) >= 6 and argv[1] == "hijack":
        hijack(argv[2], argv[3], argv[4], argv[5], float(argv[6]) if len(argv) > 6 else 120)
    elif len(argv) == 6 and argv[1] == "refused":
        refused(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) >= 6 and argv[1] == "spam":
        spam(argv[2], argv[3], int(argv[4]), argv[5], argv[6:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
