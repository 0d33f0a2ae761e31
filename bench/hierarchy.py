#!/usr/bin/env python3
"""The 1x6x35k reference run: real brokers on loopback, figures as JSON.

    python3 bench/hierarchy.py [--scale 1.0] [--out bench-result.json] [--keep]

Sets up a parent and six children (separate `hsync serve` processes, each
with its own LMDB store, linked by invites over CURVE), generates the
reference data deterministically (per child 35,000 computers x (1 computer +
4 data-class rows of about 300 bytes) = 175,000 records; scaled by --scale),
and measures:
  fan_in      complete replication of every child into the parent, until the
              parent's digest per owner equals each child's
  fan_out     complete replication of the parent's own records down to all six
  diff_1pct   a differential run after changing 1% of the records on every
              child, and the same at 10x smaller data (cost follows the change);
              before it, the routine differential a schedule would have run
              since the fan-out (diff_after_fan_out: nothing to send, but each
              child's log holds the fan-out's records, walked once)
  memory      peak resident set of each broker (VmHWM from /proc; LMDB's map
              is file-backed and counted only for the pages touched)
  wire        replication bytes per record (from the runs' byte counts)
  events      urgent events parent -> all six children, p50/p99/max over
              1,000 events at scale 1.0 (bench/events.py, its own hierarchy)
  bounds      what the figures cannot exceed on this machine: fan-in, the
              parent's CPU per record on its one apply thread plus the time
              its durable commits take to write the records' bytes at the
              disk's measured bandwidth; fan-out, the brokers' CPU on two
              cores; and the costs alone: the store API (build/bench/
              bench_store), raw LMDB puts, durable commit, disk bandwidth,
              the in-place rewrite of one child's share of the 1% change
              spread over the whole store, loopback ZeroMQ with CURVE
              (build/bench/bench_bounds)
Prints a human summary and writes every figure, the machine and the git
revision to --out. Asserts nothing: figures only.
"""
import argparse, json, os, shutil, subprocess, sys, threading, time, uuid, random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H = os.path.join(ROOT, "build", "hsync")
DCS = ["hardware", "software", "network", "disk"]


def sh(*args, check=True, inp=None):
    r = subprocess.run([H, *args], capture_output=True, text=True, input=inp)
    if check and r.returncode != 0:
        sys.exit(f"bench: hsync {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def digest(d, cls, owner=None):
    a = ["digest", "-d", d, "--class", cls]
    if owner:
        a += ["--owner", owner]
    return sh(*a).strip()


def gen(path, node_id, computers, owner_tag, variant=0):
    """Deterministic reference data: computers and their data-class rows."""
    rnd = random.Random(node_id * 7919 + variant)
    pad = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(260))
    n = 0
    with open(path, "w") as f:
        for i in range(computers):
            g = uuid.UUID(int=(node_id << 100) | (i << 8))
            f.write(json.dumps({"class": "resource.computer", "guid": str(g),
                                "keys": {"serial": f"SN-{owner_tag}-{i:06d}"},
                                "body": {"name": f"pc-{owner_tag}-{i}", "os": "Windows 11",
                                         "v": variant}}) + "\n")
            n += 1
            for k, dc in enumerate(DCS):
                g2 = uuid.UUID(int=(node_id << 100) | (i << 8) | (k + 1))
                f.write(json.dumps({"class": f"dataclass.{dc}", "guid": str(g2),
                                    "resource": str(g),
                                    "body": {"row": i, "v": variant, "data": pad}}) + "\n")
                n += 1
    return n


def gen_changes(path, node_id, computers, owner_tag, share):
    """Rewrite `share` of one data class's rows (spread over all computers)."""
    step = max(1, int(1 / share))
    n = 0
    with open(path, "w") as f:
        for i in range(0, computers, step):
            for k, dc in enumerate(DCS):
                g = uuid.UUID(int=(node_id << 100) | (i << 8))
                g2 = uuid.UUID(int=(node_id << 100) | (i << 8) | (k + 1))
                f.write(json.dumps({"class": f"dataclass.{dc}", "guid": str(g2),
                                    "resource": str(g),
                                    "body": {"row": i, "v": 1, "data": "changed"}}) + "\n")
                n += 1
                if n >= int(computers * 5 * share):
                    return n
    return n


def wait(cond, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    sys.exit(f"bench: timed out waiting for {what}")


def peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None


class RssSampler(threading.Thread):
    """Peak anonymous resident memory (RssAnon: heap, stacks; not LMDB's
    file-backed map) of each broker, sampled every 100 ms."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs, self.peak, self.done = procs, {n: 0 for n in procs}, False

    def run(self):
        while not self.done:
            for n, p in self.procs.items():
                try:
                    with open(f"/proc/{p.pid}/status") as f:
                        for line in f:
                            if line.startswith("RssAnon:"):
                                self.peak[n] = max(self.peak[n], int(line.split()[1]))
                except OSError:
                    pass
            time.sleep(0.1)

    def stop(self):
        self.done = True
        self.join()


def runs_end(d, role, peers, t0, seconds=3600):
    """Wall-clock end of the last of the resources runs in role (received at
    the parent: every batch committed; sent by the parent: DONE from the
    child, so every batch committed there) with each of peers that started
    after t0, read from d's history. Polls one history command every 0.5 s:
    polling digests of seven nodes every 50 ms took most of a core of the
    two, from the brokers being measured."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        out = json.loads(sh("history", "-d", d, "--json", "--limit", "1000"))
        ends = {}
        for r in out:
            if (r["rule"] == "resources" and r["role"] == role and r["ok"]
                    and r["when"] - r["ms"] >= t0 * 1000 - 1000):
                ends[r["peer"]] = max(ends.get(r["peer"], 0), r["when"])
        if all(p in ends for p in peers):
            return max(ends.values()) / 1000.0
        time.sleep(0.5)
    sys.exit(f"bench: timed out waiting for {role} runs on {d}")


def cpu_seconds(procs):
    """CPU time (user + system, every thread) each broker has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for n, p in procs.items():
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[n] = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            out[n] = 0.0
    return out


def cpu_figures(before, after, records):
    """CPU seconds of the parent and of the children over a phase, and the
    rate two idle cores would allow at that cost: the parent's main work is
    one thread, the rest shares the other core (an estimate that the other
    load on the machine does not change; wall-clock figures do)."""
    d = {n: round(after[n] - before[n], 3) for n in before}
    parent = d["parent"]
    total = sum(d.values())
    bound = max(parent, total / 2)
    return {"cpu_seconds": d, "cpu_parent_s": round(parent, 3),
            "cpu_all_s": round(total, 3),
            "cpu_bound_records_per_s": round(records / bound) if bound else None}


def history_bytes(d, role):
    out = json.loads(sh("history", "-d", d, "--json", "--limit", "1000"))
    return sum(r["bytes"] for r in out if r["role"] == role and r["ok"])


def idle(d):
    st = json.loads(sh("status", "-d", d, "--json"))
    return not any(p.get("running") for p in st.get("replication", []))


def sync_up_all(h):
    """Every child runs `hsync sync --rule resources --direction up` at once:
    seconds from starting the six commands to their exit, and their runs."""
    t0 = time.time()
    procs = [subprocess.Popen([H, "sync", "-d", h.d(n), "--rule", "resources", "--direction",
                               "up", "--json"], stdout=subprocess.PIPE, text=True)
             for n in h.nodes[1:]]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    return time.time() - t0, [r for o in outs for r in o["runs"]]


def run_sync(d, *extra):
    out = sh("sync", "-d", d, "--json", *extra)
    return json.loads(out)


class Hierarchy:
    def __init__(self, base, port, computers):
        self.base, self.port, self.computers = base, port, computers
        self.procs = {}
        self.nodes = ["parent"] + [f"child{i}" for i in range(1, 7)]

    def d(self, n):
        return os.path.join(self.base, n)

    def start(self, n):
        log = open(os.path.join(self.base, n + ".log"), "w")
        p = subprocess.Popen([H, "serve", "-d", self.d(n)], stderr=log)
        self.procs[n] = p
        wait(lambda: os.path.exists(os.path.join(self.d(n), "ctl.sock")), 10, f"{n} to start")

    def stop(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.wait(timeout=30)

    def setup(self):
        shutil.rmtree(self.base, ignore_errors=True)
        os.makedirs(self.base)
        for i, n in enumerate(self.nodes):
            sh("init", "-d", self.d(n), "--name", n, "--listen",
               f"tcp://127.0.0.1:{self.port + 10 * i}")
            # nothing moves until the benchmark says so
            for rule in ["items", "security", "resources", "packages"]:
                sh("rule", "disable", "-d", self.d(n), rule)
        for n in self.nodes:
            self.start(n)
        for n in self.nodes[1:]:
            tok = sh("invite", "-d", self.d(n)).strip()
            sh("hierarchy", "add-child", "-d", self.d("parent"), tok)


def bench(scale, base, port, keep):
    computers = max(10, int(35000 * scale))
    h = Hierarchy(base, port, computers)
    h.setup()
    res = {"scale": scale, "computers_per_child": computers}
    try:
        # data on each child, and the parent's own for fan-out
        t0 = time.time()
        per_child = 0
        for i, n in enumerate(h.nodes[1:], 1):
            f = os.path.join(base, f"{n}.ndjson")
            per_child = gen(f, i, computers, n)
            sh("import", "-d", h.d(n), f)
        fpar = os.path.join(base, "parent.ndjson")
        parent_records = gen(fpar, 99, computers * 6, "parent")
        sh("import", "-d", h.d("parent"), fpar)
        res["records_per_child"] = per_child
        res["parent_own_records"] = parent_records
        res["load_seconds"] = round(time.time() - t0, 2)

        # 1. fan-in: enabling the children's rule starts each child's first
        # (complete) run up; done when the parent's digest per owner equals
        # each child's.
        sampler = RssSampler(h.procs)
        sampler.start()
        c0 = cpu_seconds(h.procs)
        t0 = time.time()
        for n in h.nodes[1:]:
            sh("rule", "enable", "-d", h.d(n), "resources")
        fan_in_s = runs_end(h.d("parent"), "received", h.nodes[1:], t0) - t0
        c1 = cpu_seconds(h.procs)
        want = {n: digest(h.d(n), "", n) for n in h.nodes[1:]}
        wait(lambda: all(digest(h.d("parent"), "", n) == want[n] for n in h.nodes[1:]), 3600,
             "fan-in")
        total = per_child * 6
        wire = history_bytes(h.d("parent"), "received")
        res["fan_in"] = {"records": total, "seconds": round(fan_in_s, 3),
                         "records_per_s": round(total / fan_in_s), "digests_equal": True,
                         "wire_bytes_per_record": round(wire / total, 1) if total else None,
                         **cpu_figures(c0, c1, total)}

        # 2. fan-out: enabling the parent's rule starts its complete runs down
        c0 = cpu_seconds(h.procs)
        t0 = time.time()
        sh("rule", "enable", "-d", h.d("parent"), "resources")
        fan_out_s = runs_end(h.d("parent"), "sent", h.nodes[1:], t0) - t0
        c1 = cpu_seconds(h.procs)
        want = digest(h.d("parent"), "", "parent")
        wait(lambda: all(digest(h.d(n), "", "parent") == want for n in h.nodes[1:]), 3600,
             "fan-out")
        deliveries = parent_records * 6
        res["fan_out"] = {"records": parent_records, "deliveries": deliveries,
                          "seconds": round(fan_out_s, 3),
                          "deliveries_per_s": round(deliveries / fan_out_s), "digests_equal": True,
                          **cpu_figures(c0, c1, deliveries)}
        wait(lambda: all(idle(h.d(n)) for n in h.nodes), 600, "runs to end")

        # 3. 1% differential, changes spread over all children: each child
        # runs `hsync sync --direction up` at once; done when all have ended.
        # First the routine run a schedule would have made since the fan-out
        # (no change to send): each child's log now holds the 1,050,000
        # records the fan-out brought, and the first differential up walks
        # them once (reported as diff_after_fan_out); the measured run then
        # starts where a running hierarchy would.
        first_s, runs = sync_up_all(h)
        res["diff_after_fan_out"] = {
            "sent": sum(r.get("sent", 0) for r in runs), "seconds": round(first_s, 3),
            "run_seconds": round(max((r.get("ms", 0) for r in runs), default=0) / 1000.0, 3)}
        changed = 0
        for i, n in enumerate(h.nodes[1:], 1):
            f = os.path.join(base, f"{n}.changes.ndjson")
            changed += gen_changes(f, i, computers, n, 0.01)
            sh("import", "-d", h.d(n), f)
        diff_s, runs = sync_up_all(h)
        moved = sum(r.get("sent", 0) for r in runs)
        modes = sorted({r.get("mode") for r in runs})
        ok = all(digest(h.d("parent"), "", n) == digest(h.d(n), "", n) for n in h.nodes[1:])
        # seconds: from starting the six `hsync sync` commands to their exit;
        # run_seconds: the longest run itself (OPEN to DONE at the child)
        run_s = max((r.get("ms", 0) for r in runs), default=0) / 1000.0
        res["diff_1pct"] = {"changed": changed, "sent": moved, "modes": modes,
                            "seconds": round(diff_s, 3), "run_seconds": round(run_s, 3),
                            "digests_equal": ok}
        # 4. reconcile: 100 of child1's records differ at the parent (removed
        # there behind the log's back is not possible from the CLI, so they are
        # deleted at the parent); child1 reconciles its whole scope
        gone = json.loads(sh("ls", "-d", h.d("parent"), "--class", "resource.computer", "--owner",
                             "child1", "--json"))[:100]
        for o in gone:
            sh("rm", "-d", h.d("parent"), o["guid"])
        t0 = time.time()
        r = subprocess.run([H, "sync", "-d", h.d("child1"), "--json", "--rule", "resources",
                            "--direction", "up", "--reconcile"], capture_output=True, text=True)
        rec_s = time.time() - t0
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {"runs": []}
        sent_runs = [x for x in out.get("runs", []) if x.get("role") == "sent"]
        # a failed reconcile is a figure too: keep the others
        run = sent_runs[0] if sent_runs else {"sent": None, "applied": None, "bytes": None,
                                               "why": r.stderr.strip()}
        ok = digest(h.d("parent"), "", "child1") == digest(h.d("child1"), "", "child1")
        res["reconcile"] = {"records_in_scope": per_child, "records_at_parent": total,
                            "differing": len(gone), "sent": run["sent"],
                            "applied": run["applied"], "bytes": run["bytes"],
                            "seconds": round(rec_s, 3), "why": run["why"], "digests_equal": ok}
        sampler.stop()
        res["memory_peak_anon_kb"] = sampler.peak

        # 5. memory and disk
        res["memory_peak_rss_kb"] = {n: peak_rss_kb(p.pid) for n, p in h.procs.items()}
        res["store_bytes"] = {n: os.path.getsize(os.path.join(h.d(n), "store", "data.mdb"))
                              for n in h.nodes}
    finally:
        if not keep:
            h.stop()
    return res


def events_phase(a):
    """4. urgent events parent -> all six children (bench/events.py, on a
    hierarchy of its own: its durable figure reads the children's logs)."""
    n = max(100, int(1000 * a.scale))
    out = a.out + ".events.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "events.py"), "--events", str(n),
                    "--dir", a.dir + "-events", "--port", str(a.port + 400), "--hsync", H,
                    "--out", out], check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        ev = json.load(f)
    os.remove(out)
    return ev


def json_line(args):
    """The last line of a bench program's output that is a JSON object."""
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def bounds_phase(res):
    """What bounds the figures, measured alone on the same machine: the store
    taking the fan-in's records in one process with no network
    (build/bench/bench_store, durable transactions of one batch), and the raw
    LMDB and link costs (build/bench/bench_bounds), with the in-place rewrite
    of one child's share of the 1% change spread over the parent's store."""
    b = os.path.join(ROOT, "build", "bench")
    total = res["fan_in"]["records"]
    spread = max(1, res["diff_1pct"]["changed"] // 6)
    st = json_line([os.path.join(b, "bench_store"), "--records", str(total), "--batch", "2048"])
    bo = json_line([os.path.join(b, "bench_bounds"), "--records", str(total), "--spread",
                    str(spread)])
    fi, fo = res["fan_in"], res["fan_out"]
    # fan-in: the parent applies every record on one thread, and its durable
    # commits write what the records take on disk; neither overlaps the other
    per_rec = st["store_bytes"] / max(1, st["records"])
    io_s = total * per_rec / (bo["disk_mb_per_s"] * 1e6)
    fan_in_bound = total / (fi["cpu_parent_s"] + io_s)
    return {"store_alone": st, "raw": bo, "disk_bytes_per_record": round(per_rec),
            "fan_in_parent_cpu_us_per_record": round(fi["cpu_parent_s"] / total * 1e6, 2),
            "fan_in_parent_io_seconds": round(io_s, 2),
            "fan_in_bound_records_per_s": round(fan_in_bound),
            "fan_out_bound_deliveries_per_s": fo["cpu_bound_records_per_s"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--dir", default="/tmp/hsync-bench")
    ap.add_argument("--port", type=int, default=29600)
    ap.add_argument("--out", default="bench-result.json")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(H):
        sys.exit("bench: build first (bash .ci/build build)")
    res = bench(a.scale, a.dir, a.port, a.keep)
    if a.scale >= 0.5:  # the same differential at 10x smaller data
        small = bench(a.scale / 10, a.dir + "-small", a.port + 200, False)
        res["diff_1pct_small_data"] = small["diff_1pct"]
    res["events"] = events_phase(a)
    res["bounds"] = bounds_phase(res)
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    res["machine"] = {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1)}
    res["git"] = rev
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    fi, fo, df = res["fan_in"], res["fan_out"], res["diff_1pct"]
    print(f"fan-in   {fi['records']:>9} records  {fi['seconds']:8.2f} s  "
          f"{fi['records_per_s']:>8} records/s   digests equal: {fi['digests_equal']}")
    print(f"fan-out  {fo['deliveries']:>9} delivered {fo['seconds']:7.2f} s  "
          f"{fo['deliveries_per_s']:>8} deliveries/s digests equal: {fo['digests_equal']}")
    print(f"         cpu: fan-in parent {fi['cpu_parent_s']} s, all {fi['cpu_all_s']} s "
          f"(2 idle cores: {fi['cpu_bound_records_per_s']} records/s); fan-out parent "
          f"{fo['cpu_parent_s']} s, all {fo['cpu_all_s']} s "
          f"(2 idle cores: {fo['cpu_bound_records_per_s']} deliveries/s)")
    print(f"diff 1%  {df['changed']:>9} changed   {df['seconds']:8.3f} s  modes {df['modes']}"
          f"  (longest run {df['run_seconds']:.3f} s)")
    da = res["diff_after_fan_out"]
    print(f"         (before it, the first differential up after the fan-out, nothing to send: "
          f"{da['seconds']:.3f} s, longest run {da['run_seconds']:.3f} s: each child walks the "
          f"fan-out's records in its log once)")
    if "diff_1pct_small_data" in res:
        ds = res["diff_1pct_small_data"]
        print(f"diff 1% at 1/10 data {ds['changed']:>6} changed {ds['seconds']:8.3f} s"
              f"  (longest run {ds['run_seconds']:.3f} s)")
    rc = res["reconcile"]
    print(f"reconcile {rc['differing']} differing of {rc['records_at_parent']}: sent {rc['sent']}, "
          f"{rc['bytes']} bytes, {rc['seconds']} s")
    print(f"wire     {fi['wire_bytes_per_record']} bytes/record")
    ev = res["events"]
    du = ev.get("durable_ms") or {}
    print(f"events   {ev['events']} urgent events parent -> 6 children: applied p50 "
          f"{ev['applied_ms']['p50']} ms p99 {ev['applied_ms']['p99']} ms max "
          f"{ev['applied_ms']['max']} ms; durable p50 {du.get('p50')} ms p99 {du.get('p99')} ms; "
          f"exactly once: {ev['exactly_once_on_every_child']}")
    print(f"memory   peak anonymous RSS kB {res['memory_peak_anon_kb']}")
    sb = res["store_bytes"]
    print(f"store    on disk (data.mdb): parent {sb['parent'] / 1e6:.0f} MB, children "
          f"{min(v for n, v in sb.items() if n != 'parent') / 1e6:.0f}-"
          f"{max(v for n, v in sb.items() if n != 'parent') / 1e6:.0f} MB")
    bd = res["bounds"]
    st, bo = bd["store_alone"], bd["raw"]
    print(f"bounds   fan-in: the parent applies every record on one thread, "
          f"{bd['fan_in_parent_cpu_us_per_record']} us of CPU each, and its durable commits "
          f"write {bd['disk_bytes_per_record']} bytes a record at {bo['disk_mb_per_s']} MB/s "
          f"({bd['fan_in_parent_io_seconds']} s): at most {bd['fan_in_bound_records_per_s']} "
          f"records/s here, measured {fi['records_per_s']}")
    print(f"         fan-out: the brokers' CPU ({fo['cpu_all_s']} s) on 2 cores: at most "
          f"{bd['fan_out_bound_deliveries_per_s']} deliveries/s here, measured "
          f"{fo['deliveries_per_s']}")
    print(f"         alone: the store API {st['puts_per_s']} puts/s (bench_store, records made "
          f"as it goes); raw LMDB key-ordered puts {bo['raw_put_per_s']}/s, the store's four "
          f"tables {bo['raw_layout_per_s']}/s; durable commit {bo['commit_ms']} ms; "
          f"{bo['rand_update_records']} records rewritten at random places of "
          f"{fi['records']}: {bo['rand_update_ms']} ms a commit; loopback CURVE "
          f"{bo['zmq_curve_records_per_s']} records/s")
    print(f"figures: {a.out}")


if __name__ == "__main__":
    main()
