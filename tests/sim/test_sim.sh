#!/usr/bin/env bash
# tests/sim/test_sim.sh - the randomized model checker (tests/sim/sim.py) over
# real brokers: fixed seeds 1..HSYNC_SIM_SEEDS (default 4; 1 under
# the sanitizers) and one seed from the
# date (printed), each a random history of HSYNC_SIM_STEPS (default 20; 15 under them)
# operations on r > (a > a1, b) plus a standalone destination s, quiesced and
# checked against the oracle. A failing seed prints its first divergence and
# the path of a replayable history (python3 tests/sim/sim.py --replay FILE).
#
#   bash tests/sim/test_sim.sh              # what CI runs (ctest sim/test_sim)
#   bash tests/sim/test_sim.sh --soak 50    # 50 more seeds from the clock
#
# Op families enabled here are the ones the current code passes. The others
# diverge today (issue 17); enable each once its fix is merged. Each line:
# family (what diverges) and a reproducer, run as
#   python3 tests/sim/sim.py --hsync build/hsync --known branch-down --ops OPS --seed N
#   dup        item 1, and beyond it: the merge survivor is the lower guid, not
#              the one registered first (SPEC: v4 guids carry no order)
#              OPS=put,rm,import,dup N=2, N=3
#   claim      item 2: the losing branch keeps a stale copy, also after the new
#              owner removes it                     OPS=put,rm,import,claim N=1, 2, 3
#   classchg   item 4: the receiver refuses the new class, sync exits 0, the old
#              class stays below                    OPS=put,classchg N=1, N=3
#   move       item 3, and the moved node keeps its former parent's items,
#              packages and resources               OPS=put,rm,import,move N=2, 3;
#                                                   OPS=put,events,move N=1
#   target     item 5: a --target rule's runs remove another rule's objects at
#              the destination                      OPS=put,import,standalone,target N=8
#   restore    item 7: a restored child's newer objects are lost everywhere
#                                                   OPS=put,rm,import,restore N=2
#   standalone beyond the list: the destination refuses objects of a feed
#              ("wrong direction or invalid") and sync exits 0
#                                                   OPS=put,rm,import,standalone N=3;
#                                                   OPS=put,import,standalone,target N=4, 7
#   move       also beyond the list: right after a move, 'sync' on the root
#              waits its whole --timeout and exits 1 while the root refused the
#              new parent's runs at once ("the sender claims node 'a1', which is
#              elsewhere in the hierarchy")  OPS=put,events,move,kill N=2, 3;
#              tests/sim/known/move_sync_wait.sh
#   complete   beyond the list: 'sync --complete' on a child after an rm there
#              loses the delete; the ancestors keep the object forever
#              OPS=put,rm,import,complete N=5, 6; minimal: --replay
#              tests/sim/known/complete_delete.sh (4 commands)
# Minimal histories of the divergences beyond the list: tests/sim/known/*.sh
# (run with --replay FILE; complete_delete.sh and merge_guid_order.sh with
# --known branch-down).
# --known branch-down tolerates one more divergence beyond the list (so that
# the other families can run): a grandchild's resources are sent down the
# root's other branches, and back down their own branch, whose node refuses
# them while the sync exits 0. Drop it (HSYNC_SIM_KNOWN=) once fixed.

. "$(dirname "$0")/../lib.sh"

OPS=${HSYNC_SIM_OPS:-put,rm,import,events,kill,hep}
KNOWN=${HSYNC_SIM_KNOWN:-branch-down}
# under the sanitizers every process costs more: fewer seeds, same operations
# (3 seeds of 20 operations took 170 s under ASan on the 2-core machine)
if [ -n "${ASAN_OPTIONS:-}${HSYNC_VALGRIND:-}" ]; then
    SEEDS=${HSYNC_SIM_SEEDS:-1}
    STEPS=${HSYNC_SIM_STEPS:-15}
else
    SEEDS=${HSYNC_SIM_SEEDS:-4}
    STEPS=${HSYNC_SIM_STEPS:-20}
fi
day=$(date -u +%Y%m%d)
echo "sim: ops $OPS, seeds 1-$SEEDS and $day (from the date), $STEPS operations each"

export HSYNC_TEST_TMP=$HS_ROOT
args=(--hsync "$HSYNC" --ops "$OPS" --known "$KNOWN" --steps "$STEPS")
if [ "${1:-}" == "--soak" ]; then
    args+=(--soak "${2:?--soak N}" --steps "${HSYNC_SIM_STEPS:-40}")
else
    args+=(--seeds "1-$SEEDS" --seed "$day")
fi
# the histories of failing seeds are written where they outlive the scratch folder
mkdir -p "${HSYNC_SIM_OUT:=${TMPDIR:-/tmp}/hsync-sim}"
export HSYNC_SIM_OUT
if "$HS_PY" "$(dirname "$0")/sim.py" "${args[@]}"; then
    pass
else
    fail "model checker: a seed diverged (its history and first divergence above)"
    HSYNC_KEEP=1 # keep the node folders and broker logs
fi
hs_done
