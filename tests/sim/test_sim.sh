#!/usr/bin/env bash
# tests/sim/test_sim.sh - the randomized model checker (tests/sim/sim.py) over
# real brokers: three groups of op families (below), each on seed 1..HSYNC_SIM_SEEDS
# (default 1; 0 under the sanitizers) and one seed from the date (printed),
# each a random history of HSYNC_SIM_STEPS (default 18; 12 under them)
# operations on r > (a > a1, b) plus a standalone destination s, quiesced and
# checked against the oracle. A failing seed prints its first divergence and
# the path of a replayable history (python3 tests/sim/sim.py --replay FILE).
#
#   bash tests/sim/test_sim.sh              # what CI runs (ctest sim/test_sim)
#   bash tests/sim/test_sim.sh --soak 50    # 50 more seeds from the clock
#
# Op families run here: every one the current code passes, in three groups
# (a group is one random history over its families; the families still
# failing are kept out of the groups they fail in):
#   1  put,rm,import,events,kill,hep,classchg,names,emergency,verify
#   2  put,rm,import,dup,classchg,complete,kill
#   3  put,rm,import,standalone,target,complete
# each on seed 1 and the date's seed (under the sanitizers: the date's only,
# 12 operations; plain: 18).
# Families fixed since the checker was written (each passes alone: claim seeds
# 1-3, move 2 4 5 6, restore 1-5, 15 operations) but not yet in CI because
# their COMBINATIONS still diverge (issue 17 stays open for these); minimal or
# whole replayable histories in tests/sim/known/:
#   move+upstream  a1 moved under b misses r's resource: b's first complete run
#              to a1 came before b had it, the removal left a tombstone dated at
#              the removal, which outranks the copy b sends later
#              (OPS=put,rm,import,dup,claim,move,standalone,target N=7):
#              known/move_misses_upstream.sh
#   move after kill  a1 leaves a while a is down; the root still places a1
#              under a, so the join under b is refused as a used name until a
#              is back (OPS=put,rm,import,kill,restore,move N=4):
#              known/move_name_after_leave.sh
#   claim+restore+move  r holds a resource under owner a that the oracle
#              gives to r (OPS=put,rm,import,claim,restore,move N=1, 18 steps),
#              and a sync waits 19 s after a move (same ops, the date 20261203)
# Histories that diverged before and pass now (kept as regression replays):
# known/move_keeps_parent.sh, restore_middle.sh, restore_middle_child.sh,
# restore_recover_late.sh, standalone_second_rule.sh.
# join-stall (a child's first run after a join, or a move, dropped by a
# parent that had not taken the link yet, 20 s lost) no longer happens:
# the child's link comes up with the parent's first heartbeat, sent once
# the parent has accepted it (topology/test_names.sh checks the first sync).
# branch-down (a grandchild's resources sent down the other branches) no
# longer diverges on this tree; the option stays in sim.py for older trees.

. "$(dirname "$0")/../lib.sh"

GROUPS_=(put,rm,import,events,kill,hep,classchg,names,emergency,verify
    put,rm,import,dup,classchg,complete,kill
    put,rm,import,standalone,target,complete)
[ -n "${HSYNC_SIM_OPS:-}" ] && GROUPS_=("$HSYNC_SIM_OPS")
KNOWN=${HSYNC_SIM_KNOWN-}
# under the sanitizers every process costs more: fewer seeds and operations
if [ -n "${ASAN_OPTIONS:-}${HSYNC_VALGRIND:-}" ]; then
    SEEDS=${HSYNC_SIM_SEEDS:-0}
    STEPS=${HSYNC_SIM_STEPS:-12}
else
    SEEDS=${HSYNC_SIM_SEEDS:-1}
    STEPS=${HSYNC_SIM_STEPS:-18}
fi
day=$(date -u +%Y%m%d)
echo "sim: ${#GROUPS_[@]} groups, seeds 1-$SEEDS (none if 0) and $day (from the date), $STEPS operations each"

export HSYNC_TEST_TMP=$HS_ROOT
# the histories of failing seeds are written where they outlive the scratch folder
mkdir -p "${HSYNC_SIM_OUT:=${TMPDIR:-/tmp}/hsync-sim}"
export HSYNC_SIM_OUT
bad=0
for ops in "${GROUPS_[@]}"; do
    args=(--hsync "$HSYNC" --ops "$ops" --known "$KNOWN" --steps "$STEPS")
    if [ "${1:-}" == "--soak" ]; then
        args+=(--soak "${2:?--soak N}" --steps "${HSYNC_SIM_STEPS:-40}")
    elif [ "$SEEDS" -gt 0 ]; then
        args+=(--seeds "1-$SEEDS" --seed "$day")
    else
        args+=(--seed "$day")
    fi
    "$HS_PY" "$(dirname "$0")/sim.py" "${args[@]}" || bad=1
done
if [ $bad -eq 0 ]; then
    pass
else
    fail "model checker: a seed diverged (its history and first divergence above)"
    HSYNC_KEEP=1 # keep the node folders and broker logs
fi
hs_done
