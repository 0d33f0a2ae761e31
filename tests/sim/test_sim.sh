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
# Families and combinations still failing (issue 17/18), each with a minimal
# replayable history in tests/sim/known/ (python3 tests/sim/sim.py --replay
# FILE --hsync build/hsync):
#   move       a1 moved under b and back keeps b's items and imported
#              resources, out of its scope         OPS=put,rm,import,move N=2;
#              known/move_keeps_parent.sh (4 ops)
#   restore    restoring the middle node a from an old copy: a1, below it,
#              never gets what r wrote after the copy (a does)
#              OPS=put,rm,import,standalone,target,restore,complete N=1;
#              known/restore_middle_child.sh (3 ops); with a HEP edit on a1,
#              lost too: known/restore_middle.sh (5 ops); and a restored
#              leaf's own resource is still missing for `rm` after the
#              restart and a sync that logged "recovered 1" (it is back
#              later): OPS=put,rm,import,restore N=5;
#              known/restore_recover_late.sh (4 ops)
#   target (flaky)  a second standalone rule to the same destination once
#              missed policies its source held before it was added (seed 4
#              of OPS=put,import,standalone,target, once; its replay passed):
#              known/standalone_second_rule.sh
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
