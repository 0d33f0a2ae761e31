#!/usr/bin/env bash
# tests/sim/test_sim.sh - the randomized model checker (tests/sim/sim.py) over
# real brokers: fixed seeds 1..HSYNC_SIM_SEEDS (default 5, 2 under
# the sanitizers) and one seed from the
# date (printed), each a random history of HSYNC_SIM_STEPS (default 20)
# operations on r > (a > a1, b) plus a standalone destination s, quiesced and
# checked against the oracle. A failing seed prints its first divergence and
# the path of a replayable history (python3 tests/sim/sim.py --replay FILE).
#
#   bash tests/sim/test_sim.sh              # what CI runs (ctest sim/test_sim)
#   bash tests/sim/test_sim.sh --soak 50    # 50 more seeds from the clock
#
# Op families enabled here are the ones the current code passes. The others
# diverge today (issue 17); enable each once its fix is merged. Seeds that
# show them (--ops FAMILY --seed N, with --known branch-down):
#   dup        (item 1, and: the merge survivor is the lower guid, not the one
#              registered first; SPEC says v4 guids carry no order) seeds 1, 2
#   claim      (item 2: the losing branch keeps a stale copy)       seeds 1, 2
#   move       (item 3, and the moved node keeps its former parent's items and
#              resources; alerts queued to the old parent are stranded) --ops
#              put,rm,import,events,kill,standalone,hep,move seeds 1, 2, 7
#   classchg   (item 4: refused by the receiver, sync exits 0)      seeds 1, 2
#   target     (item 5: a --target rule's complete run deletes another rule's
#              objects at the destination) --ops put,import,standalone,target,kill seed 7
#   restore    (item 7: a restored node's newer objects deleted)    seeds 1, 2
#   complete   (beyond the list: `sync --complete` on a child after an rm there
#              loses the delete: the parent keeps the object forever) --ops
#              put,rm,import,complete (tests/sim/known/complete_delete.sh)
#   standalone (beyond the list: the destination of an item. rule sometimes
#              refuses one object, sync exits 0) --ops
#              put,rm,import,events,kill,standalone,hep seed 4
# --known branch-down tolerates one more divergence beyond the list: a
# grandchild's resources are sent down the root's other branches (and back
# down their own branch, which refuses them); drop it once fixed.

. "$(dirname "$0")/../lib.sh"

OPS=${HSYNC_SIM_OPS:-put,rm,import,events,kill,hep}
KNOWN=${HSYNC_SIM_KNOWN:-branch-down}
# under the sanitizers every process costs more: fewer seeds, same operations
if [ -n "${ASAN_OPTIONS:-}${HSYNC_VALGRIND:-}" ]; then SEEDS=${HSYNC_SIM_SEEDS:-2}; else SEEDS=${HSYNC_SIM_SEEDS:-5}; fi
STEPS=${HSYNC_SIM_STEPS:-20}
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
