#!/usr/bin/env python3
"""Randomized model checker for hsync over real brokers.

From a seed, generate a random history of operations on a hierarchy of real
`hsync serve` brokers (root r with children a and b, a with child a1, plus a
standalone destination s outside the hierarchy), run it, quiesce (sync every
node until a whole round moves nothing), and check what every node holds
against an oracle. The oracle is written from README.md and SPEC.md only (the
documented rules of "What flows where", ownership and duplicates, HEP,
standalone replication), never from the product code:

  scope    a node holds exactly the objects its scope gives it:
           item.*, security.*, package: on the node that manages them (where
             they were put) and every node below it;
           resource.* / dataclass.*: on the owner, every node below it, and
             (unless imported) every ancestor of it; a resource put on another
             node (a claim, an agent move) or a second resource with the same
             key (a merge) changes the owner as README "Ownership and
             duplicates" says: the most recent registration wins, the guid
             registered first survives;
           the standalone destination: for each standalone rule, what the
             rule's classes (and --target/--where) select on its source.
  content  every copy of an object (class, owner, keys, imported, resource,
           body) is what the oracle computes, and the same everywhere it is
           held, except properties a node edited under HEP.
  lost     no acknowledged write (exit 0) disappears unless a merge, move or
           delete explains it, and merges and moves are events with a reason
           on the root.
  exits    a command that exits 0 may not be refused by the other side (a
           sync that exits 0 while a broker logged "refused N" for a run),
           a locked HEP edit must be refused, a put changing a guid's class
           must be refused (README: a guid's class never changes).
  names    a second node with a name used in the hierarchy cannot join
           (README "Unique node names"): exit non-zero, says where, links
           unchanged.
  emergency  with a child stopped: exit 1, it and its subtree not_reached,
           the others reached.
  verify   after quiescence, `hsync verify` from r: exit 0, all in sync, or
           exit 1 naming each node a HEP edit left with another value than
           its parent's.
  restore  what a restored node manages itself (items) is as its copy had it;
           what it owns in resources comes back from its parent.

Usage:
  sim.py --seed N [--ops FAMILY,...] [--steps K]     one history
  sim.py --seeds 1-10 [--ops ...]                    several
  sim.py --soak N                                    N random seeds
  sim.py --replay FILE                               re-run a history written by a failing seed

A failing seed writes its history as a shell script of hsync commands (each
operation also as a '#op JSON' line that --replay reads) and prints the first
divergence: node, guid, class, expected against held, and why.
"""

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

FAMILIES = ["put", "rm", "import", "dup", "claim", "classchg", "hep", "move",
            "standalone", "target", "kill", "restore", "events", "complete", "names",
            "emergency", "verify"]
HIER = ["r", "a", "b", "a1"]
DEST = "s"
NODES = HIER + [DEST]
INIT_PARENT = {"r": None, "a": "r", "b": "r", "a1": "a"}
SKIP_CLASSES = ("system.", "event.", "assoc.")
# A command waits only while there is something to wait for (SPEC): on a
# handful of objects nothing takes this long.
SLOW = float(os.environ.get("HSYNC_SIM_SLOW", "15"))


def fam(cls):
    if cls.startswith(("item.", "security.")) or cls == "package":
        return "down"
    if cls.startswith("resource."):
        return "res"
    if cls.startswith("dataclass."):
        return "row"
    return "other"


def site_of(serial):
    return "north" if hashlib.sha256(serial.encode()).digest()[0] % 2 else "south"


class Finding(Exception):
    pass


# --------------------------------------------------------------------------
# The oracle: objects as the documented rules say they end up.

class Obj:
    def __init__(self, guid, cls, owner, body, keys=None, imported=False, resource=None, op=0):
        self.guid, self.cls, self.owner, self.body = guid, cls, owner, body
        self.keys = keys or {}
        self.imported, self.resource = imported, resource
        self.deleted = False
        self.edits = {}  # node -> {prop: value} (HEP edits made there)
        self.why = ["op %d: put on %s" % (op, owner)]


class Model:
    def __init__(self):
        self.parent = dict(INIT_PARENT)
        self.objs = {}
        self.merged_into = {}  # losing guid -> surviving guid
        self.merges = []  # (key, survivor, loser, op)
        self.moves = []  # (guid, from, to, op)
        self.rules = []  # standalone rules: {name, src, classes, target, where}
        self.alerts = []  # (node, text, op)
        self.unsettled = set()  # merged guids whose owner may not hold them until a quiesce

    def children(self, n):
        return [c for c, p in self.parent.items() if p == n]

    def anc(self, n):
        out, p = [], self.parent.get(n)
        while p is not None:
            out.append(p)
            p = self.parent.get(p)
        return out

    def desc(self, n):
        out, todo = [], self.children(n)
        while todo:
            c = todo.pop()
            out.append(c)
            todo.extend(self.children(c))
        return out

    def resolve(self, g):
        for _ in range(100):
            if g not in self.merged_into:
                return g
            g = self.merged_into[g]
        return g

    def live(self, pred=lambda o: True):
        return [o for o in self.objs.values()
                if not o.deleted and o.guid not in self.unsettled and pred(o)]

    def holders(self, o):
        """Hierarchy nodes whose scope gives them o, with the reason."""
        f = fam(o.cls)
        if f == "down":
            return set([o.owner] + self.desc(o.owner)), \
                "%s is managed on %s and flows down to every node below it" % (o.cls, o.owner)
        if f in ("res", "row"):
            s = set([o.owner] + self.desc(o.owner))
            why = "%s owned by %s: held by the owner and every node below it" % (o.cls, o.owner)
            if not o.imported:
                s |= set(self.anc(o.owner))
                why += ", and (managed, not imported) by every ancestor"
            else:
                why += " (imported: never sent up)"
            return s, why
        return set(), "class not checked"

    def by_key(self, name, value):
        for o in self.objs.values():
            if o.deleted or fam(o.cls) != "res":
                continue
            if o.keys.get(name) == value:
                return o
        return None

    def put(self, op, node, cls, guid, body, keys=None, imported=False, resource=None, edit=None):
        """A successful put (or import line) on node."""
        i = op["i"]
        o = self.objs.get(guid)
        if o is not None and not o.deleted:
            if o.cls != cls:
                o.why.append("op %d: class changed %s -> %s on %s" % (i, o.cls, cls, node))
                o.cls, o.keys, o.resource = cls, keys or {}, resource
            if fam(cls) == "res" and o.owner != node:
                self.moves.append((guid, o.owner, node, i))
                o.why.append("op %d: claimed by %s from %s (most recent registration wins)"
                             % (i, node, o.owner))
            elif fam(cls) == "down" and o.owner != node:
                # a HEP edit below the managing node: the properties it names
                o.edits.setdefault(node, {}).update(edit or {})
                o.why.append("op %d: HEP edit on %s of %s" % (i, node, sorted(o.edits[node])))
                return guid
            else:
                o.why.append("op %d: updated on %s" % (i, node))
            o.owner, o.body = node, body
            if keys:
                o.keys = keys
            return guid
        if fam(cls) == "res" and keys:
            for k, v in keys.items():
                e = self.by_key(k, v)
                if e is not None and e.guid != guid:
                    self.merged_into[guid] = e.guid
                    self.merges.append(("%s=%s" % (k, v), e.guid, guid, i))
                    e.why.append("op %d: %s put on %s with the same key %s=%s: merged, %s "
                                 "survives (registered first), content and owner from %s "
                                 "(changed last)" % (i, guid, node, k, v, e.guid, node))
                    if e.owner != node:
                        pass  # the merge event says who owns it now
                    e.owner, e.body, e.imported = node, body, imported
                    # the new owner holds the survivor only once the merge reached it
                    self.unsettled.add(e.guid)
                    e.keys = dict(e.keys, **keys)
                    return e.guid
        o = Obj(guid, cls, node, body, keys, imported, resource, i)
        self.objs[guid] = o
        return guid

    def rm(self, op, node, guid):
        o = self.objs[guid]
        o.deleted = True
        o.why.append("op %d: removed on %s" % (op["i"], node))

    def expected(self):
        """{node: {guid: (obj, why)}} for every node, standalone destination included."""
        out = {n: {} for n in NODES}
        self.unsettled.clear()
        for o in self.live():
            if o.cls.startswith(SKIP_CLASSES):
                continue
            hs, why = self.holders(o)
            for n in hs:
                if n in out:
                    out[n][o.guid] = (o, why)
        for rule in self.rules:
            src = rule["src"]
            members = set()
            if rule.get("target"):
                for o in self.live(lambda o: o.cls == rule["target"]):
                    if src in self.holders(o)[0] and all(
                            o.keys.get(k) == v or o.body.get(k) == v
                            for k, v in rule["where"].items()):
                        members.add(o.guid)
            for o in self.live():
                if not any(o.cls.startswith(c) for c in rule["classes"]):
                    continue
                if src not in self.holders(o)[0]:
                    continue
                if rule.get("target"):
                    if fam(o.cls) == "row":
                        if self.resolve(o.resource) not in members:
                            continue
                    elif o.guid not in members:
                        continue
                out[DEST][o.guid] = (o, "standalone rule %s from %s carries %s%s" % (
                    rule["name"], src, ",".join(rule["classes"]),
                    " (target %s where %s)" % (rule["target"], rule["where"])
                    if rule.get("target") else ""))
        return out

    def expect_body(self, o, node):
        """(body, props compared leniently) of o as node must hold it."""
        body = dict(o.body)
        lenient = set()
        if node in o.edits:
            body.update(o.edits[node])
        for a in self.anc(node) if node != DEST else []:
            if a in o.edits:
                lenient |= set(o.edits[a])
        if node == DEST:
            for e in o.edits.values():
                lenient |= set(e)
        return body, lenient


# --------------------------------------------------------------------------
# Real brokers.

def free_base(n):
    rnd = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rnd.randrange(5000, 9900, 2)
        ok = True
        for p in range(base, base + 2 * n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise SystemExit("sim.py: no free port block")


class Cluster:
    def __init__(self, hsync, root, script):
        self.h, self.root, self.script = hsync, root, script
        self.base = free_base(len(NODES))
        self.procs = {}
        self.logpos = {}
        self.cmds = 0
        self.slow = []  # commands that waited longer than SLOW seconds
        self.known = set()
        self.tolerated = []  # slow commands a known divergence explains
        self.cur = "setup"  # the operation being run (for messages)

    def d(self, n):
        return os.path.join(self.root, n)

    def log(self, n):
        return os.path.join(self.root, n + ".log")

    def emit(self, line):
        self.script.append(line)

    def shell(self, argv):
        s = " ".join(shlex.quote(a) for a in argv)
        return s.replace(shlex.quote(self.h), "$H").replace(self.root + "/", "$D/")

    def run(self, argv, stdin=None, timeout=120, emit=True):
        if emit:
            line = self.shell([self.h] + argv)
            if stdin is not None:
                line += " <<'EOF'\n" + stdin + "EOF"
            self.emit(line)
        self.cmds += 1
        t0 = time.time()
        try:
            p = subprocess.run([self.h] + argv, input=stdin, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            self.slow.append("%s: %s: no answer in %ss" % (self.cur, self.shell(argv), timeout))
            return 124, "", "timed out after %ss" % timeout
        dt = time.time() - t0
        if dt > SLOW and "join-stall" in self.known and argv[0] == "sync" and self.join_dropped():
            self.tolerated.append("%s: %s took %.1fs" % (self.cur, self.shell(argv)[:200], dt))
        elif dt > SLOW:
            what = (p.stderr.strip() or p.stdout.strip())[:300]
            try:  # a sync: name its slowest runs
                runs = sorted(json.loads(p.stdout).get("runs", []), key=lambda r: -r.get("ms", 0))
                what = "slowest runs: " + "; ".join(
                    "%s %s %s %sms%s" % (r.get("peer"), r.get("rule"), r.get("direction"),
                                         r.get("ms"), "" if r.get("ok") else " " + str(r.get("error")))
                    for r in runs[:3])
            except (ValueError, AttributeError):
                pass
            self.slow.append("%s: %s took %.1fs (exit %d): %s" % (
                self.cur, self.shell(argv)[:200], dt, p.returncode, what))
        return p.returncode, p.stdout, p.stderr

    def join_dropped(self):
        """A parent dropped a frame of a child it had not linked yet (known: join-stall)."""
        for n in NODES:
            try:
                with open(self.log(n), errors="replace") as f:
                    if "dropped a replication frame from a peer that is not linked" in f.read():
                        return True
            except OSError:
                pass
        return False

    def init_all(self):
        for i, n in enumerate(NODES):
            rc, _, err = self.run(["init", "-d", self.d(n), "--name", n, "--listen",
                                   "tcp://127.0.0.1:%d" % (self.base + 2 * i)], emit=False)
            if rc != 0:
                raise SystemExit("sim.py: init %s: %s" % (n, err))
        for n in NODES:
            self.start(n, emit=False)
        for c, p in INIT_PARENT.items():
            if p:
                self.link(p, c, emit=False)

    def running(self, n):
        rc, out, _ = self.run(["hierarchy", "show", "-d", self.d(n), "--json"], emit=False)
        try:
            return rc == 0 and json.loads(out).get("broker") == "running"
        except ValueError:
            return False

    def wait(self, what, pred, secs=20):
        end = time.time() + secs
        delay = 0.05
        while time.time() < end:
            if pred():
                return True
            time.sleep(delay)  # polling a condition with a deadline
            delay = min(delay * 1.5, 0.5)
        raise Finding("timeout: %s not within %ss" % (what, secs))

    def start(self, n, emit=True):
        if emit:
            self.emit("hs_start %s" % n)
        f = open(self.log(n), "a")
        self.procs[n] = subprocess.Popen([self.h, "serve", "-d", self.d(n)], stdout=f, stderr=f,
                                         stdin=subprocess.DEVNULL)
        f.close()
        self.wait("broker %s answering" % n, lambda: self.running(n))

    def stop(self, n, emit=True):
        if emit:
            self.emit("hs_stop %s" % n)
        p = self.procs.pop(n)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def kill9(self, n):
        self.emit("hs_kill9 %s" % n)
        p = self.procs.pop(n)
        p.kill()
        p.wait()

    def stop_all(self):
        for n in list(self.procs):
            self.stop(n, emit=False)

    def links(self, n):
        rc, out, _ = self.run(["hierarchy", "show", "-d", self.d(n), "--json"], emit=False)
        if rc != 0:
            return None
        try:
            return json.loads(out).get("links", [])
        except ValueError:
            return None

    def links_up(self, n):
        ls = self.links(n)
        return ls is not None and all(l.get("state") == "up" for l in ls)

    def link(self, p, c, emit=True):
        if emit:
            self.emit("tok=$($H invite -d $D/%s)" % c)
        rc, tok, err = self.run(["invite", "-d", self.d(c)], emit=False)
        if rc != 0:
            raise Finding("invite on %s exited %d: %s" % (c, rc, err.strip()))
        if emit:
            self.emit('$H hierarchy add-child -d $D/%s "$tok"' % p)
        rc, _, err = self.run(["hierarchy", "add-child", "-d", self.d(p), tok.strip()], emit=False)
        if rc != 0:
            raise Finding("hierarchy add-child of %s on %s exited %d: %s" % (c, p, rc, err.strip()))
        self.wait("link %s-%s up" % (p, c), lambda: self.links_up(p) and self.links_up(c))

    def new_refusals(self):
        """Log lines with 'refused N' (N > 0) written since the last call."""
        out = []
        for n in NODES:
            path = self.log(n)
            try:
                with open(path, errors="replace") as f:
                    f.seek(self.logpos.get(n, 0))
                    data = f.read()
                    self.logpos[n] = f.tell()
            except OSError:
                continue
            for line in data.splitlines():
                if "refused " in line and " refused 0" not in line and "event=received" in line:
                    out.append("%s: %s" % (n, line.strip()))
        return out


# --------------------------------------------------------------------------
# The simulation: generate, execute, check.

class Sim:
    def __init__(self, hsync, root, families, seed, steps, verbose=False, known=()):
        self.families = families
        self.known = set(known)
        self.rng = random.Random(seed)
        self.seed, self.steps, self.verbose = seed, steps, verbose
        self.script = []
        self.c = Cluster(hsync, root, self.script)
        self.c.known = self.known
        self.m = Model()
        self.ops = []
        self.ops_so_far = []
        self.extra = 0  # nodes started for a names op
        self.findings = []  # (kind, text)
        self.snaps = {}  # node -> (path, op index)
        self.snap_model = {}  # node -> {guid: (body, deleted)} of what it manages, at the copy
        self.serial = 0
        self.events_raised = []
        self.tmp = root

    # ---- helpers
    def guid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def finding(self, kind, text):
        self.findings.append((kind, text))

    def new_serial(self, pre="SN"):
        self.serial += 1
        return "%s-%d-%d" % (pre, self.seed, self.serial)

    def res_body(self, serial, tag):
        return {"name": "pc-%s-%s" % (serial, tag), "site": site_of(serial), "v": self.rng.randrange(1000)}

    # ---- generation
    def gen(self, i):
        r, m = self.rng, self.m
        choices = ["sync", "put", "put"]
        if "rm" in self.families and m.live(lambda o: fam(o.cls) in ("down", "row", "res")):
            choices.append("rm")
        for f in ("import", "dup", "claim", "classchg", "hep", "move", "kill", "events", "names"):
            if f in self.families:
                choices.append(f)
        if (("standalone" in self.families and len([x for x in m.rules if not x.get("target")]) < 2)
                or ("target" in self.families and not [x for x in m.rules if x.get("target")])):
            choices.append("standalone")
        if "restore" in self.families:
            choices.append("restore")
        if "emergency" in self.families and not any(o["op"] == "emergency" for o in self.ops_so_far):
            choices.append("emergency")  # at most once a history: a stopped child costs 10 s
        k = r.choice(choices)
        node = r.choice(HIER)
        op = {"i": i, "op": k}
        if k == "sync":
            op.update(node=node, complete="complete" in self.families and r.random() < 0.3)
        elif k == "put":
            what = r.choice(["item", "item", "res", "res", "upd", "upd", "row", "sec", "pkg"])
            own = m.live(lambda o: o.owner == node and fam(o.cls) in ("down", "res") and not o.edits)
            if what == "upd" and own:
                o = r.choice(own)
                if fam(o.cls) == "res":
                    s = o.keys.get("serial", "x")
                    op.update(node=node, cls=o.cls, guid=o.guid, keys=o.keys,
                              body=self.res_body(s, "u%d" % i), imported=o.imported)
                else:
                    b = dict(o.body)
                    b["n"] = r.randrange(10 ** 6)
                    op.update(node=node, cls=o.cls, guid=o.guid, body=b)
            elif what == "row":
                rs = m.live(lambda o: o.owner == node and fam(o.cls) == "res" and not o.imported)
                if not rs:
                    return self.gen(i)
                op.update(node=node, cls="dataclass.hardware", guid=self.guid(),
                          resource=r.choice(rs).guid, body={"ram": r.randrange(1, 64)})
            elif what in ("res", "upd"):
                s = self.new_serial()
                op.update(node=node, cls="resource.computer", guid=self.guid(),
                          keys={"serial": s}, body=self.res_body(s, "p%d" % i),
                          imported=r.random() < 0.15 and "import" in self.families)
            elif what == "sec":
                op.update(node=node, cls="security.role", guid=self.guid(),
                          body={"name": "role%d" % i, "n": r.randrange(100)})
            elif what == "pkg":
                op.update(node=node, cls="package", guid=self.guid(),
                          body={"name": "pkg%d" % i, "version": "1.%d" % r.randrange(9),
                                "codebase": "http://%s/pkgs/p%d.msi" % (node, i)})
            else:
                op.update(node=node, cls="item.policy", guid=self.guid(),
                          body={"name": "policy%d" % i, "enabled": r.random() < 0.5,
                                "n": r.randrange(10 ** 6)})
        elif k == "rm":
            # only the owner (or managing node) removes; resources with rows are kept
            with_rows = set(m.resolve(o.resource) for o in m.live(lambda o: fam(o.cls) == "row"))
            cand = m.live(lambda o: fam(o.cls) in ("down", "row", "res") and not o.edits
                          and o.guid not in with_rows)
            if not cand:
                return self.gen(i)
            o = r.choice(cand)
            op.update(node=o.owner, guid=o.guid)
        elif k == "import":
            lines = []
            for j in range(r.randrange(2, 5)):
                if r.random() < 0.5:
                    s = self.new_serial("IM")
                    lines.append({"class": "resource.computer", "guid": self.guid(),
                                  "keys": {"serial": s}, "imported": r.random() < 0.5,
                                  "body": self.res_body(s, "i%d" % i)})
                else:
                    lines.append({"class": "item.policy", "guid": self.guid(),
                                  "body": {"name": "imp%d-%d" % (i, j), "enabled": True,
                                           "n": r.randrange(1000)}})
            op.update(node=node, lines=lines)
        elif k == "dup":
            cand = m.live(lambda o: fam(o.cls) == "res" and not o.imported and "serial" in o.keys)
            cand = [o for o in cand if any(n != o.owner for n in HIER)]
            if not cand:
                return self.gen(i)
            o = r.choice(cand)
            node = r.choice([n for n in HIER if n != o.owner])
            s = o.keys["serial"]
            op.update(node=node, cls="resource.computer", guid=self.guid(), keys={"serial": s},
                      body=self.res_body(s, "d%d" % i))
        elif k == "claim":
            cand = m.live(lambda o: fam(o.cls) == "res" and not o.imported)
            if not cand:
                return self.gen(i)
            o = r.choice(cand)
            node = r.choice([n for n in HIER if n != o.owner])
            s = o.keys.get("serial", "x")
            op.update(node=node, cls=o.cls, guid=o.guid, keys=o.keys, body=self.res_body(s, "c%d" % i))
        elif k == "classchg":
            with_rows = set(m.resolve(o.resource) for o in m.live(lambda o: fam(o.cls) == "row"))
            cand = m.live(lambda o: o.cls in ("item.policy", "resource.computer") and not o.edits
                          and not o.imported and o.guid not in with_rows)
            if not cand:
                return self.gen(i)
            o = r.choice(cand)
            if o.cls == "item.policy":
                s = self.new_serial("CC")
                op.update(node=o.owner, guid=o.guid, cls="resource.computer", keys={"serial": s},
                          body=self.res_body(s, "cc%d" % i))
            else:
                op.update(node=o.owner, guid=o.guid, cls="item.policy", keys=None,
                          body={"name": "was-res-%d" % i, "enabled": True, "n": 1})
        elif k == "hep":
            cand = m.live(lambda o: o.cls == "item.policy" and m.desc(o.owner))
            if not cand:
                return self.gen(i)
            o = r.choice(cand)
            op.update(node=o.owner, guid=o.guid, child=r.choice(m.desc(o.owner)))
        elif k == "move":
            newp = "b" if m.parent["a1"] == "a" else "a"
            op.update(node="a1", to=newp)
        elif k == "standalone":
            have = set(x["name"] for x in m.rules)
            left = [x for x in ("inv", "pol") if x not in have and "standalone" in self.families]
            if "north" not in have and "target" in self.families:
                left.append("north")
            name = r.choice(left)
            src = r.choice(HIER)
            if name == "inv":
                op.update(node=src, name=name, classes=["resource.", "dataclass."])
            elif name == "north":
                op.update(node=src, name=name, classes=["resource.", "dataclass."],
                          target="resource.computer", where={"site": "north"})
            else:
                op.update(node=src, name=name, classes=["item."])
        elif k == "kill":
            op.update(node=r.choice(NODES))
        elif k == "restore":
            cand = [n for n in ("a", "b", "a1") if n in self.snaps and self.snaps[n][1] < i - 2]
            if cand and r.random() < 0.6:
                op.update(op="restore", node=r.choice(cand))
            else:
                op.update(op="snapshot", node=r.choice(["a", "b", "a1"]))
        elif k == "events":
            op.update(node=node, text="sim-%d-%d" % (self.seed, i))
        elif k == "names":
            # a second node named like one in the hierarchy joins under any node
            op.update(node=node, name=r.choice(HIER))
        elif k == "emergency":
            op.update(node="r", stopped=r.choice(["a", "b", "a1"]), guid=self.guid(),
                      body={"name": "urgent%d" % i, "enabled": True, "n": r.randrange(1000)})
        return op

    # ---- execution
    def put_argv(self, op):
        argv = ["put", "-d", self.c.d(op["node"]), "--class", op["cls"], "--guid", op["guid"]]
        for kk, v in sorted((op.get("keys") or {}).items()):
            argv += ["--key", "%s=%s" % (kk, v)]
        if op.get("imported"):
            argv.append("--imported")
        if op.get("resource"):
            argv += ["--resource", self.m.resolve(op["resource"])]
        argv.append(json.dumps(op["body"], sort_keys=True))
        return argv

    def execute(self, op):
        c, m, k = self.c, self.m, op["op"]
        c.cur = "op %s" % op["i"]
        self.script.append("#op " + json.dumps(op, sort_keys=True))
        if self.verbose:
            print("op", json.dumps(op, sort_keys=True), file=sys.stderr)
        if k == "sync":
            argv = ["sync", "-d", c.d(op["node"]), "--json", "--timeout", "20"]
            if op.get("complete"):
                argv.append("--complete")
            rc, out, err = c.run(argv)
            self.check_sync(op, rc, out, err)
        elif k == "put":
            before = m.objs.get(op["guid"])
            rc, out, err = c.run(self.put_argv(op))
            if rc != 0:
                # a refused put is no write; only some are expected
                if before is not None and fam(before.cls) == "res" and before.owner != op["node"]:
                    pass  # a claim may be refused; no write happened
                self.finding("exit", "op %d: put on %s exited %d: %s" % (op["i"], op["node"], rc,
                                                                        err.strip()))
                return
            m.put(op, op["node"], op["cls"], op["guid"], op["body"], op.get("keys"),
                  op.get("imported", False), op.get("resource"))
        elif k in ("dup", "claim"):
            rc, out, err = c.run(self.put_argv(op))
            if rc != 0:
                self.finding("exit", "op %d: %s put on %s exited %d: %s" % (
                    op["i"], k, op["node"], rc, err.strip()))
                return
            g = m.put(op, op["node"], op["cls"], op["guid"], op["body"], op.get("keys"))
            printed = out.strip().split()[-1] if out.strip() else ""
            if printed not in (g, op["guid"]):
                self.finding("content", "op %d: put printed guid %s, expected %s or %s" % (
                    op["i"], printed, g, op["guid"]))
        elif k == "rm":
            rc, out, err = c.run(["rm", "-d", c.d(op["node"]), op["guid"]])
            if rc != 0:
                self.finding("exit", "op %d: rm of %s on its owner %s exited %d: %s" % (
                    op["i"], op["guid"], op["node"], rc, err.strip()))
                return
            m.rm(op, op["node"], op["guid"])
        elif k == "import":
            text = "".join(json.dumps(l, sort_keys=True) + "\n" for l in op["lines"])
            rc, out, err = c.run(["import", "-d", c.d(op["node"]), "-"], stdin=text)
            if rc != 0:
                self.finding("exit", "op %d: import on %s exited %d: %s" % (
                    op["i"], op["node"], rc, err.strip()))
                return
            for l in op["lines"]:
                m.put(op, op["node"], l["class"], l["guid"], l["body"], l.get("keys"),
                      l.get("imported", False), l.get("resource"))
        elif k == "classchg":
            o = m.objs[op["guid"]]
            rc, out, err = c.run(self.put_argv(op))
            if rc != 0:
                if not err.strip():
                    self.finding("exit", "op %d: class change refused without a message" % op["i"])
                elif "class cannot change" not in err:
                    self.finding("exit", "op %d: class change refused without saying a guid's "
                                         "class cannot change: %s" % (op["i"], err.strip()))
                o.why.append("op %d: class change to %s refused on %s: %s" % (
                    op["i"], op["cls"], op["node"], err.strip()))
                return
            # README "What flows where": a guid's class never changes; a put of a
            # held (or deleted) guid under another class is refused
            self.finding("exit", "op %d: put of %s (a %s) as a %s on %s exited 0: a guid's class "
                                 "never changes, the put must be refused" % (
                                     op["i"], op["guid"], o.cls, op["cls"], op["node"]))
            m.put(op, op["node"], op["cls"], op["guid"], op["body"], op.get("keys"))
        elif k == "hep":
            self.quiesce("before hep op %d" % op["i"])
            o = m.objs[op["guid"]]
            rc, out, err = c.run(["hep", "set", "-d", c.d(op["node"]), op["guid"], "enabled",
                                  "editable"])
            if rc != 0:
                self.finding("exit", "op %d: hep set on %s exited %d: %s" % (
                    op["i"], op["node"], rc, err.strip()))
                return
            self.quiesce("after hep set op %d" % op["i"])
            ch = op["child"]
            cur, _ = m.expect_body(o, ch)
            # editable: enabled flips, everything else as held
            eb = dict(cur)
            eb["enabled"] = not bool(cur.get("enabled"))
            rc, out, err = c.run(["put", "-d", c.d(ch), "--class", o.cls, "--guid", o.guid,
                                  json.dumps(eb, sort_keys=True)])
            if rc != 0:
                self.finding("exit", "op %d: edit of editable property 'enabled' of %s on %s "
                                     "refused (exit %d): %s" % (op["i"], o.guid, ch, rc, err.strip()))
            else:
                m.put(op, ch, o.cls, o.guid, eb, edit={"enabled": eb["enabled"]})
            # locked: name changes; must be refused
            lb = dict(eb)
            lb["name"] = str(cur.get("name")) + "-edited"
            rc, out, err = c.run(["put", "-d", c.d(ch), "--class", o.cls, "--guid", o.guid,
                                  json.dumps(lb, sort_keys=True)])
            if rc == 0:
                self.finding("exit", "op %d: edit of locked property 'name' of %s on %s "
                                     "exited 0 (must be refused)" % (op["i"], o.guid, ch))
            elif "locked" not in err:
                self.finding("exit", "op %d: locked edit refused without saying so: %s" % (
                    op["i"], err.strip()))
        elif k == "move":
            rc, out, err = c.run(["hierarchy", "leave", "-d", c.d(op["node"])])
            if rc != 0:
                self.finding("exit", "op %d: hierarchy leave on %s exited %d: %s" % (
                    op["i"], op["node"], rc, err.strip()))
                return
            old = m.parent[op["node"]]
            m.parent[op["node"]] = None
            c.wait("%s no longer linked to %s" % (op["node"], old),
                   lambda: not any(l.get("name") == old for l in (c.links(op["node"]) or [])))
            c.link(op["to"], op["node"])
            m.parent[op["node"]] = op["to"]
            self.snaps.clear()  # a folder copy from before a move is another topology
        elif k == "standalone":
            c.emit("tok=$($H invite -d $D/%s)" % DEST)
            rc, tok, err = c.run(["invite", "-d", c.d(DEST)], emit=False)
            argv = ["standalone", "add", "-d", c.d(op["node"]), "--name", op["name"], "--to",
                    tok.strip()]
            for cl in op["classes"]:
                argv += ["--class", cl]
            if op.get("target"):
                argv += ["--target", op["target"]]
                for kk, v in sorted(op["where"].items()):
                    argv += ["--where", "%s=%s" % (kk, v)]
            c.emit(c.shell([c.h] + argv).replace(shlex.quote(tok.strip()), '"$tok"'))
            rc, out, err = c.run(argv, emit=False)
            if rc != 0:
                self.finding("exit", "op %d: standalone add %s on %s exited %d: %s" % (
                    op["i"], op["name"], op["node"], rc, err.strip()))
                return
            m.rules.append({"name": op["name"], "src": op["node"], "classes": op["classes"],
                            "target": op.get("target"), "where": op.get("where") or {}})
            self.snaps.pop(op["node"], None)
        elif k == "kill":
            c.kill9(op["node"])
            c.start(op["node"])
        elif k == "snapshot":
            n = op["node"]
            c.stop(n)
            path = os.path.join(self.tmp, "snap-%s-%d" % (n, op["i"]))
            c.emit("cp -a $D/%s $D/snap-%s-%d" % (n, n, op["i"]))
            shutil.copytree(c.d(n), path, symlinks=True)
            c.start(n)
            self.snaps[n] = (path, op["i"])
            # what n manages itself (items, security, packages) as the copy has it
            self.snap_model[n] = {o.guid: (dict(o.body), o.deleted) for o in m.objs.values()
                                  if fam(o.cls) == "down" and o.owner == n}
        elif k == "restore":
            n = op["node"]
            if n not in self.snaps:
                return
            path, si = self.snaps.pop(n)
            was = self.snap_model.pop(n, {})
            # everything written on n since the copy reached its parent first:
            # the parent holds the only other copy, which must come back.
            self.quiesce("before restore op %d" % op["i"])
            c.stop(n)
            c.emit("rm -rf $D/%s && cp -a $D/snap-%s-%d $D/%s" % (n, n, si, n))
            shutil.rmtree(c.d(n))
            shutil.copytree(path, c.d(n), symlinks=True)
            for f in ("ctl.sock",):
                try:
                    os.unlink(os.path.join(c.d(n), f))
                except OSError:
                    pass
            c.start(n)
            # the node recovers before its first run up (README "Non-authoritative
            # restore"): until then what it wrote since the copy is not there yet
            rc, out, err = c.run(["sync", "-d", c.d(n), "--json", "--timeout", "20"])
            self.check_sync(op, rc, out, err)
            # README "Non-authoritative restore": the parent sends back only what is
            # owned in the node's branch and carried up (resources, data-class rows).
            # What n manages itself (items flow down only) no other node manages: the
            # restored node's copy is the manager's again, and what it wrote since
            # the copy is gone (below it too).
            for o in m.objs.values():
                if fam(o.cls) != "down" or o.owner != n:
                    continue
                if o.guid not in was:
                    if not o.deleted:
                        o.deleted = True
                        o.why.append("op %d: lost: %s restored from a copy older than it (items "
                                     "are managed there only)" % (op["i"], n))
                else:
                    body, deleted = was[o.guid]
                    if o.body != body or o.deleted != deleted:
                        o.body, o.deleted = body, deleted
                        o.why.append("op %d: back as the copy of op %d had it: %s restored "
                                     "(items are managed there only)" % (op["i"], si, n))
        elif k == "events":
            rc, out, err = c.run(["event", "raise", "-d", c.d(op["node"]), "alert",
                                  json.dumps({"text": op["text"]})])
            if rc != 0:
                self.finding("exit", "op %d: event raise on %s exited %d: %s" % (
                    op["i"], op["node"], rc, err.strip()))
                return
            m.alerts.append((op["node"], op["text"], op["i"]))
        elif k == "quiesce":
            self.quiesce("op %d" % op["i"])
        elif k == "names":
            self.op_names(op)
        elif k == "emergency":
            self.op_emergency(op)

    def op_names(self, op):
        """README "Unique node names": a join of a second node with a name used anywhere in
        the hierarchy is refused with where it is used; nothing changes."""
        c, m, name, p = self.c, self.m, op["name"], op["node"]
        self.extra += 1
        x = "x%d" % self.extra
        port = free_base(1)
        c.emit("$H init -d $D/%s --name %s --listen tcp://127.0.0.1:%d" % (x, name, port + 1))
        rc, _, err = c.run(["init", "-d", c.d(x), "--name", name, "--listen",
                            "tcp://127.0.0.1:%d" % (port + 1)], emit=False)
        if rc != 0:
            raise Finding("init of a second node named %s exited %d: %s" % (name, rc, err.strip()))
        c.start(x)
        before = sorted(l.get("name") for l in (c.links(p) or []))
        c.emit("tok=$($H invite -d $D/%s)" % x)
        rc, tok, err = c.run(["invite", "-d", c.d(x)], emit=False)
        c.emit('$H hierarchy add-child -d $D/%s "$tok"' % p)
        rc, out, err = c.run(["hierarchy", "add-child", "-d", c.d(p), tok.strip()], emit=False)
        where = m.parent.get(name)
        if rc == 0:  # the hierarchy is not the oracle's any more: stop here
            raise Finding("op %d: a second node named '%s' joined under %s (exit 0); "
                                  "'%s' is already %s: node names are unique across the "
                                  "hierarchy, the join must be refused" % (
                                      op["i"], name, p, name,
                                      "the root" if where is None else "under '%s'" % where))
        elif not ("already used" in err and (where is None or "'%s'" % where in err)
                  or "already a child of this node" in err and where == p
                  or "ancestor of this node" in err and name in m.anc(p) + [p]
                  or ("names-self" in self.known and name == p
                      and "cannot be its own child" in err)):
            # where the name is used: "already used ... under 'P'", or said by the
            # node that sees it itself (its own child, or one of its ancestors)
            self.finding("names", "op %d: join of a second '%s' under %s refused (exit %d) without "
                                  "saying where the name is used (%s): %s" % (
                                      op["i"], name, p, rc,
                                      "the root" if where is None else "under '%s'" % where,
                                      err.strip()[:300]))
        after = sorted(l.get("name") for l in (c.links(p) or []))
        if rc != 0 and after != before:
            self.finding("names", "op %d: a refused join of a second '%s' changed the links of "
                                  "%s: %s, was %s" % (op["i"], name, p, after, before))
        c.stop(x)

    def op_emergency(self, op):
        """README/--help: emergency with a child down exits 1 and lists it, and its subtree,
        as not reached; the others as reached."""
        c, m, x = self.c, self.m, op["stopped"]
        rc, out, err = c.run(["put", "-d", c.d("r"), "--class", "item.policy", "--guid", op["guid"],
                              json.dumps(op["body"], sort_keys=True)])
        if rc != 0:
            self.finding("exit", "op %d: put on r exited %d: %s" % (op["i"], rc, err.strip()))
            return
        m.put(op, "r", "item.policy", op["guid"], op["body"])
        for n in HIER:  # every other node reachable: only x is down
            c.wait("links of %s up (emergency op %d)" % (n, op["i"]), lambda n=n: c.links_up(n), 30)
        c.stop(x)
        rc, out, err = c.run(["emergency", "-d", c.d("r"), op["guid"], "--json"])
        down = set([x] + m.desc(x))
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        flat = lambda v: set((e.get("node") or e.get("name")) if isinstance(e, dict) else e
                             for e in (v or []))
        nr, re_ = flat(j.get("not_reached")), flat(j.get("reached"))
        if rc != 1:
            self.finding("emergency", "op %d: emergency on r with %s stopped exited %d (must be 1): "
                                      "%s" % (op["i"], x, rc, (err.strip() or out.strip())[:300]))
        if not down <= nr:
            self.finding("emergency", "op %d: emergency with %s stopped: not_reached %s, must list "
                                      "%s: %s" % (op["i"], x, sorted(nr), sorted(down), out[:300]))
        up = set(HIER) - down - {"r"}
        if not up <= re_:
            self.finding("emergency", "op %d: emergency with %s stopped: reached %s, must list %s: %s" % (
                op["i"], x, sorted(re_), sorted(up), out.strip()[:400]))
        c.start(x)

    def check_verify(self):
        """`hsync verify` from the root after quiescence: exit 0 and every line in sync when
        the oracle agrees; exit 1 and the node named when a HEP edit made its copy differ
        (--help: edited editable properties count as differing)."""
        c, m = self.c, self.m
        rc, out, err = c.run(["verify", "-d", c.d("r")])
        def eff(o, n, k):  # the value of k at n: its own edit, an ancestor's, or the manager's
            for a in [n] + m.anc(n):
                if k in o.edits.get(a, {}):
                    return o.edits[a][k]
            return o.body.get(k)
        edited = set()  # nodes whose copy an edit made differ from their parent's
        for o in m.live():
            for n, ed in o.edits.items():
                if n in HIER and m.parent.get(n) and any(
                        eff(o, n, k) != eff(o, m.parent[n], k) for k in ed):
                    edited.add(n)
        lines = [l for l in out.splitlines() if l.strip()]
        if not edited:
            if rc != 0 or "DIFFERS" in out or "NOT REACHED" in out:
                self.finding("verify", "verify from r after quiescence (the oracle finds every node "
                                       "as it should be) exited %d: %s" % (
                                           rc, " | ".join(lines)[:600] or err.strip()))
            return
        if rc != 1:
            self.finding("verify", "verify from r exited %d, while HEP edits on %s make copies "
                                   "differ (must be 1): %s" % (rc, sorted(edited), " | ".join(lines)[:400]))
        for n in sorted(edited):
            if not any(l.split()[:1] == [n] and "DIFFERS" in l for l in lines):
                self.finding("verify", "verify from r does not name %s as differing after a HEP "
                                       "edit there: %s" % (n, " | ".join(lines)[:600]))

    def check_sync(self, op, rc, out, err):
        try:
            j = json.loads(out)
        except ValueError:
            j = None
        ref = self.c.new_refusals()
        if "branch-down" in self.known:
            ref = [l for l in ref if "rule resources " not in l]
        if rc == 0 and ref:
            self.finding("exit", "op %s: sync on %s exited 0 (all_ok %s) while a receiver refused "
                                 "objects: %s" % (op.get("i"), op.get("node"),
                                                  j and j.get("all_ok"), ref[0]))
        if rc == 0 and j is not None and not j.get("all_ok", True):
            self.finding("exit", "op %s: sync on %s exited 0 but all_ok is false" % (
                op.get("i"), op.get("node")))
        if rc != 0 and j is not None and j.get("all_ok") is True:
            self.finding("exit", "op %s: sync exited %d but all_ok is true" % (op.get("i"), rc))
        return j

    def quiesce(self, why, rounds=8, secs=120):
        c, m = self.c, self.m
        c.emit("hs_quiesce  # %s" % why)
        c.cur = "quiesce %s" % why
        end = time.time() + secs
        for n in NODES:
            c.wait("links of %s up (%s)" % (n, why), lambda n=n: c.links_up(n), 30)
        order = []
        todo = ["r"]
        while todo:
            n = todo.pop(0)
            order.append(n)
            todo.extend(sorted(m.children(n)))
        seq = list(reversed(order)) + order[1:]
        for rnd in range(rounds):
            work, bad = 0, []
            for n in seq:
                rc, out, err = c.run(["sync", "-d", c.d(n), "--json", "--timeout", "20"], emit=False)
                j = self.check_sync({"i": "quiesce", "node": n}, rc, out, err)
                if rc != 0:
                    bad.append("%s: exit %d %s" % (n, rc, (err.strip() or out.strip())[:300]))
                for run in (j or {}).get("runs", []):
                    # what changed a store (an always-complete rule sends every time)
                    work += run.get("applied", 0) + run.get("deleted", 0)
            if work == 0 and not bad and rnd > 0:
                m.unsettled.clear()
                return rnd
            if time.time() > end:
                break
        self.finding("quiesce", "no quiescence %s after %d rounds: last round moved %d objects, "
                                "failed syncs: %s" % (why, rounds, work, bad[:2]))
        return -1

    # ---- checks
    def held(self):
        out = {}
        for n in NODES:
            rc, text, err = self.c.run(["export", "-d", self.c.d(n)], emit=False)
            objs = {}
            for line in text.splitlines():
                if not line.strip():
                    continue
                o = json.loads(line)
                if o["class"].startswith(SKIP_CLASSES):
                    continue
                objs[o["guid"]] = o
            out[n] = objs
        return out

    def check(self):
        m = self.m
        exp = m.expected()
        held = self.held()
        self.checked = sum(len(v) for v in exp.values())
        div = []
        for n in NODES:
            h, e = held[n], exp[n]
            for g, (o, why) in sorted(e.items()):
                if g not in h:
                    div.append((n, g, o.cls, "hold it: %s" % self.brief(o, n), "nothing", why, o))
                    continue
                got = h[g]
                want_body, lenient = m.expect_body(o, n)
                diffs = []
                if got["class"] != o.cls:
                    diffs.append("class %s" % got["class"])
                if got.get("owner") != o.owner:
                    diffs.append("owner %s" % got.get("owner"))
                if fam(o.cls) == "res" and (got.get("keys") or {}) != o.keys:
                    diffs.append("keys %s" % got.get("keys"))
                if bool(got.get("imported")) != bool(o.imported) and fam(o.cls) == "res":
                    diffs.append("imported %s" % got.get("imported"))
                if fam(o.cls) == "row" and got.get("resource") != m.resolve(o.resource):
                    diffs.append("resource %s" % got.get("resource"))
                gb = {k: v for k, v in got["body"].items() if k not in lenient}
                wb = {k: v for k, v in want_body.items() if k not in lenient}
                if gb != wb:
                    diffs.append("body %s" % json.dumps(got["body"], sort_keys=True))
                if diffs:
                    div.append((n, g, o.cls, self.brief(o, n), "; ".join(diffs),
                                why + "; content from the last write (" + o.why[-1] + ")", o))
            for g, got in sorted(h.items()):
                if g in e:
                    continue
                o = m.objs.get(g)
                if (o is not None and "branch-down" in self.known and not o.deleted
                        and fam(o.cls) in ("res", "row") and not o.imported and n in HIER
                        and any(n in m.desc(x) for x in m.anc(o.owner)[1:])
                        and got.get("owner") == o.owner and got["body"] == o.body):
                    continue  # known: a grandchild's resources go down the other branches
                if g in m.merged_into:
                    why = "merged into %s (%s)" % (m.resolve(g), "; ".join(m.objs.get(
                        m.resolve(g), o).why[-2:]))
                elif o is None:
                    why = "no operation ever wrote %s" % g
                elif o.deleted:
                    why = "deleted: " + o.why[-1]
                else:
                    why = m.holders(o)[1] + "; %s is not among %s" % (
                        n, sorted(m.holders(o)[0]) + ([DEST + " (standalone rules)"] if m.rules else []))
                div.append((n, g, got["class"], "not hold it",
                            "%s owner %s body %s" % (got["class"], got.get("owner"),
                                                     json.dumps(got["body"], sort_keys=True)), why, o))
        for (n, g, cls, want, got, why, o) in div:
            self.finding("divergence", "node %s, guid %s, class %s: expected %s; held %s; because %s%s"
                         % (n, g, cls, want, got, why,
                            "\n      history of %s: %s" % (g, " | ".join(o.why)) if o else ""))
        # copies of one object differ between nodes (independent of the model)
        seen = {}
        for n in NODES:
            for g, got in held[n].items():
                o = m.objs.get(g)
                lenient = set()
                if o is not None:
                    for ed in o.edits.values():
                        lenient |= set(ed)
                key = json.dumps([got["class"], got.get("owner"), got.get("keys"),
                                  {k: v for k, v in got["body"].items() if k not in lenient}],
                                 sort_keys=True)
                seen.setdefault(g, {}).setdefault(key, []).append(n)
        for g, ks in sorted(seen.items()):
            if len(ks) > 1:
                self.finding("copies", "guid %s has %d different copies: %s" % (
                    g, len(ks), " / ".join("%s: %s" % (",".join(v), k[:160]) for k, v in ks.items())))
        # documented outcomes are events with their reason, on the root
        rc, text, _ = self.c.run(["events", "-d", self.c.d("r"), "--json", "--limit", "1000"],
                                 emit=False)
        try:
            evs = json.loads(text)
        except ValueError:
            evs = []
        if not isinstance(evs, list):
            evs = []

        def pl(e):
            return e.get("payload") or {}

        def everywhere(ev, what):
            for n in HIER:
                if n == "r":
                    continue
                rc, t, _ = self.c.run(["events", "-d", self.c.d(n), "--json", "--limit", "1000"],
                                      emit=False)
                try:
                    ids = set(x.get("id") for x in json.loads(t))
                except (ValueError, AttributeError):
                    ids = set()
                if ev.get("id") not in ids:
                    self.finding("events", "%s: event %s is on r but not on %s (merges and moves "
                                           "go to every server)" % (what, ev.get("id"), n))

        for key, surv, loser, i in m.merges:
            evm = [e for e in evs if e.get("kind") == "merge" and pl(e).get("key") == key]
            what = "merge of %s (op %d: %s into %s)" % (key, i, loser, surv)
            if not evm:
                self.finding("events", "%s has no merge event on r" % what)
                continue
            if not any(pl(e).get("reason") for e in evm):
                self.finding("events", "%s: the merge event on r gives no reason" % what)
            if not any(pl(e).get("new") == surv for e in evm):
                self.finding("events", "%s: no merge event on r names the survivor %s: %s" % (
                    what, surv, [pl(e).get("new") for e in evm]))
            everywhere(evm[0], what)
        for g, frm, to, i in m.moves:
            if frm in m.anc(to) or to in m.anc(frm):
                continue  # taken over along one branch: not two claims meeting
            evm = [e for e in evs if e.get("kind") == "moved" and pl(e).get("guid") == g]
            what = "move of %s from %s to %s (op %d)" % (g, frm, to, i)
            if not evm:
                self.finding("events", "%s has no moved event on r" % what)
                continue
            if not any(pl(e).get("reason") for e in evm):
                self.finding("events", "%s: the moved event on r gives no reason" % what)
            everywhere(evm[0], what)
        # after quiescence every event is acknowledged by every peer it was queued for
        for n in HIER:
            rc, t, _ = self.c.run(["events", "-d", self.c.d(n), "--json", "--limit", "1000"],
                                  emit=False)
            try:
                nev = json.loads(t)
            except ValueError:
                nev = []
            peers = set(l.get("name") for l in (self.c.links(n) or []))
            for e in nev if isinstance(nev, list) else []:
                for dl in e.get("delivery") or []:
                    if dl.get("state") != "acknowledged":
                        self.finding("events", "%s: %s event %s (%s) is %s for %s%s after quiescence" % (
                            n, e.get("kind"), e.get("id"), json.dumps(pl(e), sort_keys=True)[:120],
                            dl.get("state"), dl.get("peer"),
                            "" if dl.get("peer") in peers else
                            ", which is no longer linked: it will never be delivered"))
        blob = [json.dumps(e, sort_keys=True) for e in evs]
        for node, t, i in m.alerts:
            if not any(t in b for b in blob):
                self.finding("events", "alert %s raised on %s (op %d) never reached r" % (t, node, i))

    def brief(self, o, n):
        b, _ = self.m.expect_body(o, n)
        return "%s owner %s body %s" % (o.cls, o.owner, json.dumps(b, sort_keys=True))

    # ---- driver
    def run(self, ops=None):
        c = self.c
        c.init_all()
        c.new_refusals()
        if ops is None:
            ops = []
            for i in range(1, self.steps + 1):
                op = self.gen(i)
                ops.append(op)
                self.ops_so_far = ops
                self.execute(op)
        else:
            for op in ops:
                self.execute(op)
        self.ops = ops
        self.script.append('#op {"final": true, "i": %d, "op": "quiesce"}' % (len(ops) + 1))
        self.quiesce("final")
        self.check()
        if "verify" in self.families and not [f for f in self.findings if f[0] == "divergence"]:
            self.check_verify()
        for t in self.c.slow:
            self.finding("wait", t)

    def write_script(self, path):
        hdr = """#!/usr/bin/env bash
# hsync model-checker history (seed %s, ops %s).
# Re-run with its checks:  python3 tests/sim/sim.py --replay %s
# Or by hand (H=hsync binary, D=empty folder): the lines below are the commands
# the checker ran; '#op' lines are the operations as the checker read them.
set -u
H=${HSYNC:-build/hsync}; D=${D:-$(mktemp -d)}; B=${PORT_BASE:-7400}
declare -A P=()
hs_start() { "$H" serve -d "$D/$1" 2>>"$D/$1.log" & P[$1]=$!
    for _ in $(seq 100); do "$H" hierarchy show -d "$D/$1" --json 2>/dev/null | grep -q '"running"' && return; sleep 0.1; done; }
hs_stop() { kill -TERM "${P[$1]}"; wait "${P[$1]}" 2>/dev/null; }
hs_kill9() { kill -KILL "${P[$1]}"; wait "${P[$1]}" 2>/dev/null; }
hs_quiesce() { for _ in 1 2 3 4; do for n in %s; do "$H" sync -d "$D/$n" >/dev/null; done; done; }
trap 'for p in "${P[@]}"; do kill "$p" 2>/dev/null; done' EXIT
i=0; for n in %s; do "$H" init -d "$D/$n" --name $n --listen tcp://127.0.0.1:$((B + 2 * i)) >/dev/null; i=$((i + 1)); done
for n in %s; do hs_start $n; done
""" % (self.seed, ",".join(self.families), path, " ".join(["a1", "a", "b", "r", "a", "b", "a1"]),
       " ".join(NODES), " ".join(NODES))
        links = "".join('$H hierarchy add-child -d $D/%s "$($H invite -d $D/%s)"\n' % (p, ch)
                        for ch, p in INIT_PARENT.items() if p)
        with open(path, "w") as f:
            f.write(hdr + links + "\n".join(self.script) + "\n")
            f.write("# what each node holds now (compare with the divergences sim.py printed)\n"
                    "for n in %s; do echo \"== $n\"; \"$H\" ls -d \"$D/$n\" | grep -v ' system\\.'; done\n"
                    % " ".join(NODES))
        os.chmod(path, 0o755)


def read_replay(path):
    ops, seed, fams = [], 0, list(FAMILIES)
    with open(path) as f:
        for line in f:
            if line.startswith("#op "):
                op = json.loads(line[4:])
                if not op.get("final"):
                    ops.append(op)
            elif line.startswith("# hsync model-checker history (seed "):
                rest = line.split("seed ", 1)[1]
                seed = int(rest.split(",")[0])
                fams = rest.split("ops ", 1)[1].rstrip(").\n").split(",")
    # the final quiesce (and the checks) the driver adds again
    return seed, fams, ops


def one(args, seed, families, ops=None):
    hsync = args.hsync
    base = os.environ.get("HSYNC_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    root = tempfile.mkdtemp(prefix="sim-%d-" % seed, dir=base)
    sim = Sim(hsync, root, families, seed, args.steps, args.verbose, args.known.split(","))
    t0 = time.time()
    err = None
    try:
        sim.run(ops)
    except Finding as e:
        err = str(e)
        sim.finding("harness", err)
    finally:
        sim.c.stop_all()
    for n in NODES:  # ASan/UBSan/LSan builds: a broker's report is a finding
        try:
            with open(sim.c.log(n), errors="replace") as f:
                bad = [l for l in f if "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l
                       or "runtime error:" in l]
        except OSError:
            bad = []
        if bad:
            sim.finding("sanitizer", "broker %s: %s (log %s)" % (n, bad[0].strip(), sim.c.log(n)))
    dt = time.time() - t0
    fails = [f for f in sim.findings]
    status = "FAIL" if fails else "ok"
    print("seed %d ops=%s steps=%d: %s, %d copies checked, %d commands, %.1fs" % (
        seed, ",".join(families), len(sim.ops) or args.steps, status, getattr(sim, "checked", 0),
        sim.c.cmds, dt), flush=True)
    if fails:
        out = args.out or os.path.join(os.environ.get("HSYNC_SIM_OUT", base), "sim-seed-%d-%s.sh" % (
            seed, "all" if len(families) == len(FAMILIES) else "-".join(families)))
        sim.write_script(out)
        kinds = {}
        for k, t in fails:
            kinds[k] = kinds.get(k, 0) + 1
        print("  findings: %s" % ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
        print("  first: [%s] %s" % fails[0])
        for k, t in fails[1:args.show]:
            print("  also:  [%s] %s" % (k, t))
        print("  history: %s (replay: python3 %s --replay %s)" % (out, sys.argv[0], out), flush=True)
    if not args.keep and not fails:
        shutil.rmtree(root, ignore_errors=True)
    elif fails:
        print("  node folders and broker logs: %s" % root)
    return not fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seeds", help="A-B: every seed in the range")
    ap.add_argument("--soak", type=int, help="N seeds from the clock")
    ap.add_argument("--replay")
    ap.add_argument("--ops", default=",".join(FAMILIES),
                    help="op families (comma-separated; put and sync always run): " + ",".join(FAMILIES))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--hsync", default=os.environ.get("HSYNC", "hsync"))
    ap.add_argument("--out", help="where a failing seed's history goes")
    ap.add_argument("--show", type=int, default=6, help="findings printed per failing seed")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--known", default="",
                    help="known divergences to tolerate until fixed (comma-separated): branch-down "
                         "(a grandchild's resources are sent down the root's other branches, and "
                         "back down their own, where the receiver refuses them); join-stall (a "
                         "child's first run right after a join is dropped by the parent, which "
                         "had not taken the link yet, and waits 20 s: a sync then is slow); names-self "
                         "(a second node named like the parent joining under it is refused with 'a "
                         "node cannot be its own child', not where the name is used)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    fams = [f for f in args.ops.split(",") if f]
    for f in fams:
        if f not in FAMILIES:
            ap.error("unknown op family %s (known: %s)" % (f, ",".join(FAMILIES)))
    if args.replay:
        seed, rfams, ops = read_replay(args.replay)
        args.out = args.out or args.replay + ".again.sh"
        sys.exit(0 if one(args, seed, rfams, ops) else 1)
    seeds = []
    if args.seed is not None:
        seeds.append(args.seed)
    if args.seeds:
        a, _, b = args.seeds.partition("-")
        seeds += list(range(int(a), int(b or a) + 1))
    if args.soak:
        s0 = int(time.time())
        seeds += [s0 + k for k in range(args.soak)]
    if not seeds:
        ap.error("give --seed, --seeds, --soak or --replay")
    bad = [s for s in seeds if not one(args, s, fams)]
    print("%d seeds, %d failed%s" % (len(seeds), len(bad), (": " + " ".join(map(str, bad))) if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
