"""A connection flood against an HTTP port, for tests/security/test_http_flood.sh.

  http_flood.py HOST PORT CONNS SLOW STOPFILE OUT [MAX_S]

Keeps about CONNS idle TCP connections open to HOST:PORT (reopening those
the server closes, at most 1,500 new ones a second), plus SLOW clients that
send a request one byte a second, until STOPFILE exists or MAX_S seconds
(default 90) have passed. Writes to OUT, as it goes, "open N" once CONNS
connections were open at one time (or "open N" with the most it reached
after 10 s), one "slow-closed SECONDS" per slow client the server closed,
and at the end "total T closed C slow-open S" (connections made, closed
by the server, slow clients still open).
"""
import errno
import os
import resource
import selectors
import socket
import sys
import time

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n\r\n"


def main(argv):
    host, port, conns, nslow, stopfile, out = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5], argv[6]
    max_s = float(argv[7]) if len(argv) > 7 else 90
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = min(conns, hard - 64)
    sel = selectors.DefaultSelector()
    report = open(out, "a", buffering=1)
    start = time.monotonic()
    total = closed = 0
    idle = set()
    slow = {}  # sock -> [connected at, bytes sent, next send at]
    said_open = False
    budget_t, budget = start, 0

    def connect():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return None
        return s

    for _ in range(nslow):
        s = connect()
        if s:
            slow[s] = [time.monotonic(), 0, time.monotonic()]
            sel.register(s, selectors.EVENT_READ, "slow")
    while time.monotonic() - start < max_s and not os.path.exists(stopfile):
        now = time.monotonic()
        if now - budget_t >= 1:
            budget_t, budget = now, 0
        while len(idle) < conns and budget < 1500:
            s = connect()
            budget += 1
            if not s:
                break
            total += 1
            idle.add(s)
            sel.register(s, selectors.EVENT_READ, "idle")
        if not said_open and (len(idle) >= conns or now - start > 10):
            report.write("open %d\n" % len(idle))
            said_open = True
        for s, st in list(slow.items()):
            if now >= st[2] and st[1] < len(REQUEST):
                try:
                    s.send(REQUEST[st[1]:st[1] + 1])
                    st[1] += 1
                except OSError:
                    pass
                st[2] = now + 1
        for key, _ in sel.select(0.05):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                continue
            sel.unregister(s)
            if key.data == "slow":
                report.write("slow-closed %.1f\n" % (time.monotonic() - slow[s][0]))
                del slow[s]
            else:
                idle.discard(s)
                closed += 1
            s.close()
    report.write("total %d closed %d slow-open %d\n" % (total, closed, len(slow)))
    for s in list(idle) + list(slow):
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
