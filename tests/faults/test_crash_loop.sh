#!/usr/bin/env bash
# kill -9 under load: a 1x3 hierarchy (p; c1, c2, c3) with a writer on every
# node putting computers, resources replicating every second, and a broker
# killed with SIGKILL and restarted at random moments (at least 20 times).
# Afterwards the hierarchy must converge: every write `hsync put`
# acknowledged is at its node and at the parent, the children's and the
# parent's digests agree per owner, and no event was applied twice.
#
# The schedule of kills comes from RANDOM with a seed printed at the start:
# HSYNC_CRASH_SEED=N reproduces a run. HSYNC_CRASH_KILLS (default 24) and
# HSYNC_CRASH_SECONDS (default 40) bound the loop.
. "$(dirname "$0")/../replication/lib_repl.sh"

SEED=${HSYNC_CRASH_SEED:-$(($(date +%s) % 32768))}
KILLS=${HSYNC_CRASH_KILLS:-24}
BUDGET=${HSYNC_CRASH_SECONDS:-40}
WRITES_MAX=${HSYNC_CRASH_WRITES:-2000} # per writer: bounds each writer loop
RANDOM=$SEED
echo "crash loop: seed $SEED (HSYNC_CRASH_SEED=$SEED reproduces), $KILLS kills within ${BUDGET}s"

NODES=(p c1 c2 c3)
W=$(hs_tmp)
declare -A WPID=()

# writer NODE: put computers with unique serials until W/stop appears (or
# WRITES_MAX puts); log "NODE GUID" for each put that exited 0.
writer() {
    local n=$1 i g
    for ((i = 1; i <= WRITES_MAX; i++)); do
        [ -e "$W/stop" ] && break
        if g=$("$HSYNC" put -d "$(hr_dir "$n")" --class resource.computer \
            --key "serial=$n-$i" "{\"name\":\"$n-host-$i\",\"i\":$i}" 2>>"$W/$n.err"); then
            echo "$n $g" >>"$W/acked"
        fi
    done
}

all_up() {
    local c
    for c in c1 c2 c3; do
        hr_state_is p "$c" up && hr_state_is "$c" p up || return 1
    done
}

acked_count() { grep -c "^$1 " "$W/acked" 2>/dev/null || echo 0; }

test_crash_loop() {
    local n c
    for n in "${NODES[@]}"; do
        hr_node "$n"
        hr_start "$n"
    done
    for c in c1 c2 c3; do
        hr_link p "$c"
    done
    for n in "${NODES[@]}"; do
        expect_exit 0 hs rule set -d "$(hr_dir "$n")" resources --every 1s
    done
    for n in "${NODES[@]}"; do
        writer "$n" &
        WPID[$n]=$!
    done

    local kills=0 start=$SECONDS victim pause
    while [ "$kills" -lt "$KILLS" ] && [ $((SECONDS - start)) -lt "$BUDGET" ]; do
        # A random moment: 0.05 to 0.99 s after the previous kill. This
        # is fault timing, not synchronisation: nothing waits on it.
        pause=$((RANDOM % 95 + 5))
        sleep "$(printf '0.%02d' "$pause")"
        victim=${NODES[RANDOM % 4]}
        hr_kill9 "$victim"
        # Restart at once without waiting for it to answer: the next kill
        # may well land while it is still opening its store or its links.
        "$HSYNC" serve -d "$(hr_dir "$victim")" 2>>"$(hr_log "$victim")" &
        HR_PID[$victim]=$!
        kills=$((kills + 1))
    done
    echo "crash loop: $kills kills in $((SECONDS - start))s"
    if [ "$kills" -ge 20 ]; then pass; else fail "only $kills kills within ${BUDGET}s"; fi

    touch "$W/stop"
    for n in "${NODES[@]}"; do
        wait "${WPID[$n]}" 2>/dev/null
    done
    for n in "${NODES[@]}"; do
        echo "crash loop: $n acknowledged $(acked_count "$n") puts"
        if [ "$(acked_count "$n")" -gt 10 ]; then pass; else fail "writer $n barely wrote"; fi
    done

    for n in "${NODES[@]}"; do
        wait_for 15 hr_running "$n"
    done
    # Settle: links up, then a sync from every node (children send up, the
    # parent sends down), until the digests agree.
    wait_for 20 all_up
    for n in c1 c2 c3 p; do
        expect_exit 0 hs sync -d "$(hr_dir "$n")" --rule resources --timeout 30 --json
    done
    for c in c1 c2 c3; do
        wait_for 30 hr_same_digest "$c" p resource. "$c"
        assert_eq "$(hr_digest "$c" resource. "$c")" "$(hr_digest p resource. "$c")" \
            "digest of $c's resources at $c and p"
        wait_for 30 hr_same_digest p "$c" resource. p
        assert_eq "$(hr_digest p resource. p)" "$(hr_digest "$c" resource. p)" \
            "digest of p's resources at p and $c"
    done

    # No acknowledged write lost: every acked guid at its node and at p;
    # no resource twice (one guid per serial, serials unique by design).
    for n in "${NODES[@]}"; do
        hs export -d "$(hr_dir "$n")" --class resource. >"$W/$n.export"
    done
    local report
    report=$(python3 - "$W" <<'EOF'
import json, sys, collections
w = sys.argv[1]
acked = collections.defaultdict(set)
for line in open(w + "/acked"):
    n, g = line.split()
    acked[n].add(g)
have, serials = {}, {}
for n in ("p", "c1", "c2", "c3"):
    have[n] = set()
    serials[n] = collections.Counter()
    for line in open("%s/%s.export" % (w, n)):
        o = json.loads(line)
        have[n].add(o["guid"])
        serials[n][o["keys"]["serial"]] += 1
out = []
for n, gs in acked.items():
    lost_here = gs - have[n]
    lost_up = gs - have["p"]
    if lost_here:
        out.append("%d acked puts of %s missing at %s" % (len(lost_here), n, n))
    if lost_up:
        out.append("%d acked puts of %s missing at p" % (len(lost_up), n))
for n, c in serials.items():
    d = [s for s, k in c.items() if k > 1]
    if d:
        out.append("%s holds %d serials twice (e.g. %s)" % (n, len(d), d[0]))
print("; ".join(out) or "ok")
EOF
)
    assert_eq "ok" "$report" "acknowledged writes after the crash loop"

    # No event applied twice: ids are unique on every node.
    for n in "${NODES[@]}"; do
        local dup
        dup=$(hs events -d "$(hr_dir "$n")" --json | python3 -c '
import json, sys, collections
j = json.load(sys.stdin)
evs = j if isinstance(j, list) else j.get("events", [])
c = collections.Counter(e.get("id") for e in evs)
print(sum(1 for k, v in c.items() if v > 1))')
        assert_eq "0" "$dup" "duplicate event ids at $n"
    done
}

test_crash_loop
echo "crash loop: seed $SEED"
hr_done
