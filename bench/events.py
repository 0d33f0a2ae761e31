#!/usr/bin/env python3
"""Hierarchy-event latency: parent to all six children, real brokers on loopback.

    python3 bench/events.py [--events 1000] [--pace-ms 0] [--out bench-events.json]
                            [--hsync build/hsync] [--dir /tmp/hsync-bench-events]

Sets up a parent and six children (separate `hsync serve` processes, linked by
invites over CURVE, scheduled replication disabled: bench/hierarchy.py's
Hierarchy), then raises N `key` events on the parent one at a time with
`hsync event raise` (each a separate process that commits the event and its
six outbox entries in one transaction and pokes the broker; the next is raised
when the previous command has returned, plus --pace-ms). A `key` event travels
down to every child.

For every event:
  applied    max over the 6 children of (child's `at` - event's `created`).
             `created` is stamped on the parent inside the committing
             transaction (so this includes the parent's own commit, two
             fdatasyncs); `at` is stamped on the child inside the transaction
             that applies and records it, before that commit.
  durable    max over the 6 children of (time of the child's
             "event-received" log line - `created`). The line is written after
             the child's commit returned, so this is applied + the child's
             commit: the event is durable on all six children.
Prints p50/p99/max of both (ms; the clocks are the same machine's, ms
resolution), the raise rate, and writes every figure to --out. Asserts
nothing but that every child got every event exactly once.
"""
import argparse, datetime, json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hierarchy  # noqa: E402  (bench/hierarchy.py: Hierarchy, sh, wait)


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return None
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(xs):
    return {"p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "max": max(xs),
            "mean": round(sum(xs) / len(xs), 2), "n": len(xs)}


def links_up(h):
    out = json.loads(hierarchy.sh("hierarchy", "show", "-d", h.d("parent"), "--json"))
    return sum(1 for l in out.get("links", []) if l.get("state") == "up") == 6


def events(d, limit):
    return json.loads(hierarchy.sh("events", "-d", d, "--json", "--limit", str(limit)))


def log_received_ms(path):
    """Times (ms since the epoch) of the event-received lines, in order."""
    out = []
    with open(path) as f:
        for line in f:
            if "event=event-received" not in line:
                continue
            ts = line.split(" ", 1)[0]  # 2026-11-23T20:30:37.084Z
            dt = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc)
            out.append(round(dt.timestamp() * 1000))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--pace-ms", type=float, default=0.0,
                    help="pause between raises (default: back to back)")
    ap.add_argument("--dir", default="/tmp/hsync-bench-events")
    ap.add_argument("--port", type=int, default=29800)
    ap.add_argument("--hsync", default=os.path.join(hierarchy.ROOT, "build", "hsync"))
    ap.add_argument("--out", default="bench-events.json")
    ap.add_argument("--keep", action="store_true", help="leave the brokers running")
    a = ap.parse_args()
    if not os.path.exists(a.hsync):
        sys.exit(f"bench: no hsync at {a.hsync} (bash .ci/build build)")
    hierarchy.H = os.path.abspath(a.hsync)

    h = hierarchy.Hierarchy(a.dir, a.port, 0)
    h.setup()
    res = {"events": a.events, "pace_ms": a.pace_ms, "children": 6}
    try:
        hierarchy.wait(lambda: links_up(h), 30, "six links up")
        kids = h.nodes[1:]
        # warm-up: one event end to end (CURVE sessions, first commits)
        wid = hierarchy.sh("event", "raise", "-d", h.d("parent"), "key", '{"warmup":1}').strip()
        hierarchy.wait(lambda: all(any(e["id"] == wid for e in events(h.d(c), 5)) for c in kids),
                       30, "the warm-up event")

        ids = []
        t0 = time.time()
        for i in range(a.events):
            out = hierarchy.sh("event", "raise", "-d", h.d("parent"), "key",
                               json.dumps({"cert": f"c-{i:05d}", "serial": i}))
            ids.append(out.strip())
            if a.pace_ms:
                time.sleep(a.pace_ms / 1000.0)
        raise_s = time.time() - t0
        want = set(ids)

        def all_there():
            for c in kids:
                got = {e["id"] for e in events(h.d(c), a.events + 50)}
                if not want <= got:
                    return False
            return True

        hierarchy.wait(all_there, 120, "every child to list every event")
        all_s = time.time() - t0

        created = {e["id"]: e["created"] for e in events(h.d("parent"), a.events + 50)
                   if e["id"] in want}
        applied = {i: 0 for i in ids}
        durable = {i: 0 for i in ids}
        per_child_p50 = {}
        once = True
        for c in kids:
            lst = events(h.d(c), a.events + 50)  # newest first
            mine = [e for e in lst if e["id"] in want]
            once = once and len(mine) == len({e["id"] for e in mine}) == len(want)
            for e in mine:
                applied[e["id"]] = max(applied[e["id"]], e["at"] - created[e["id"]])
            per_child_p50[c] = pct([e["at"] - created[e["id"]] for e in mine], 50)
            # the child received nothing but the warm-up and these, in seq
            # order; its k-th event-received log line is its k-th event
            inorder = [e["id"] for e in reversed(lst)]
            logged = log_received_ms(os.path.join(a.dir, c + ".log"))
            if len(logged) == len(inorder):
                for eid, ms in zip(inorder, logged):
                    if eid in want:
                        durable[eid] = max(durable[eid], ms - created[eid])
            else:
                durable = None
        lat = list(applied.values())
        res["raise_seconds"] = round(raise_s, 3)
        res["raise_rate_per_s"] = round(a.events / raise_s, 1)
        res["all_delivered_seconds"] = round(all_s, 3)
        res["exactly_once_on_every_child"] = once
        res["applied_ms"] = summary(lat)
        res["durable_ms"] = summary(list(durable.values())) if durable else None
        res["per_child_applied_p50_ms"] = per_child_p50
    finally:
        if not a.keep:
            h.stop()
    rev = subprocess.run(["git", "-C", hierarchy.ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    res["machine"] = {"cores": os.cpu_count()}
    res["git"] = rev
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    ap_, du = res["applied_ms"], res["durable_ms"]
    print(f"events   {a.events} key events parent -> 6 children, raised one at a time "
          f"at {res['raise_rate_per_s']}/s ({res['raise_seconds']} s; all delivered after "
          f"{res['all_delivered_seconds']} s); exactly once: {res['exactly_once_on_every_child']}")
    print(f"applied  p50 {ap_['p50']} ms  p99 {ap_['p99']} ms  max {ap_['max']} ms  "
          f"(created on parent -> applied on the last of 6 children)")
    if du:
        print(f"durable  p50 {du['p50']} ms  p99 {du['p99']} ms  max {du['max']} ms  "
              f"(-> committed on the last of 6 children)")
    print(f"figures: {a.out}")


if __name__ == "__main__":
    main()
