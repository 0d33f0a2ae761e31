#!/usr/bin/env bash
# Change-log retention and tombstone lifetime: a child that was offline while
# the parent's tombstones expired (and the log floor rose past its watermark)
# is reconciled, moving only the differing objects, and the deleted objects
# never come back, whichever side syncs.
. "$(dirname "$0")/lib_repl.sh"

N=1000
GONE=10

# hr_expired_since NAME LINE: total "N expired tombstones" in NAME's
# event=log-trimmed lines after line LINE of its log.
hr_expired_since() {
    tail -n +"$(($2 + 1))" "$(hr_log "$1")" | grep 'event=log-trimmed' |
        sed -n 's/.* \([0-9][0-9]*\) expired tombstones.*/\1/p' | awk '{s += $1} END {print s + 0}'
}
# expired_at_least NAME LINE N
expired_at_least() { [ "$(hr_expired_since "$1" "$2")" -ge "$3" ]; }

# setup P C: P (tombstone lifetime 2 s) with N items, synced to its child C.
setup() {
    local p=$1 c=$2 f
    hr_node "$p"
    hr_node "$c"
    HSYNC_TOMBSTONE_LIFETIME=2s hr_start "$p"
    hr_start "$c"
    hr_link "$p" "$c"
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" "$N" "$p"
    hr_import "$p" "$f"
    hr_sync "$p" --rule items
    wait_for 20 hr_same_digest "$p" "$c" item.
    assert_eq "$N" "$(hr_count "$c" item.policy)" "items at $c"
}

# away P C: stop C, delete GONE items and add one on P, wait until P's
# tombstones expired, restart C. Leaves the deleted guids in GONE_GUIDS and
# the new one in NEW_GUID.
away() {
    local p=$1 c=$2 g mark
    hr_stop "$c"
    GONE_GUIDS=$(hs export -d "$(hr_dir "$p")" --class item.policy |
        python3 -c 'import json,sys; [print(json.loads(l)["guid"]) for l in sys.stdin]' |
        shuf -n "$GONE" --random-source=<(yes))
    assert_eq "$GONE" "$(echo "$GONE_GUIDS" | wc -l)" "guids picked"
    mark=$(wc -l <"$(hr_log "$p")")
    for g in $GONE_GUIDS; do
        hs rm -d "$(hr_dir "$p")" "$g" >/dev/null || fail "rm $g at $p"
    done
    NEW_GUID=$(hr_put "$p" item.policy '{"new":true}')
    assert_eq "$((N - GONE + 1))" "$(hr_count "$p" item.policy)" "items at $p after the changes"
    # Lifetime 2 s, housekeeping every ~5 s: the tombstones are purged and
    # the log floor rises past the child's watermark.
    wait_for 20 expired_at_least "$p" "$mark" "$GONE"
    for g in $GONE_GUIDS; do
        expect_exit 1 hs get -d "$(hr_dir "$p")" "$g" --json # purged: not even a tombstone
    done
    hr_start "$c"
    wait_for 15 hr_state_is "$p" "$c" up
    wait_for 15 hr_state_is "$c" "$p" up
}

# reconciled P C: the sync after the absence is a reconcile below the floor
# that moves only the difference.
reconciled() {
    local p=$1 c=$2 sent g
    hr_sync "$p" --rule items
    echo "after the absence: $(hr_run mode "$c" items down sent) ($(hr_run why "$c" items down sent)):" \
        "sent $(hr_run sent "$c" items down sent) deleted $(hr_run deleted "$c" items down sent)"
    assert_eq "true" "$(hr_run ok "$c" items down sent)" "the run after the absence is ok"
    assert_eq "reconcile" "$(hr_run mode "$c" items down sent)" "mode after the absence"
    assert_contains "$(hr_run why "$c" items down sent)" "floor" "why of the reconcile"
    assert_eq "$GONE" "$(hr_run deleted "$c" items down sent)" "the reconcile deletes the $GONE"
    sent=$(hr_run sent "$c" items down sent)
    if [ "$sent" != none ] && [ "$sent" -ge 1 ] && [ "$sent" -lt 20 ]; then
        pass
    else
        fail "the reconcile sent $sent objects (expected the new one plus a few bucket neighbours, < 20, not $N)"
    fi
    assert_eq "$(hr_digest "$p" item.)" "$(hr_digest "$c" item.)" "digests equal after the reconcile"
    assert_eq "$((N - GONE + 1))" "$(hr_count "$c" item.policy)" "items at $c after the reconcile"
    for g in $GONE_GUIDS; do
        assert_deleted "$c" "$g" "deleted at $c by the reconcile"
    done
    expect_exit 0 hs get -d "$(hr_dir "$c")" "$NEW_GUID" --json
    assert_contains "$HS_OUT" '"new"' "the new item reached $c"

    hr_sync "$p" --rule items
    assert_eq "differential" "$(hr_run mode "$c" items down sent)" "the next sync is differential"
    assert_eq "0" "$(hr_run sent "$c" items down sent)" "and sends nothing"
}

test_offline_past_the_floor() {
    setup p1 c1
    away p1 c1
    reconciled p1 c1
}

# A deleted object does not come back after a long absence: not by the
# parent's runs, not by the child's (it syncs everything from its side too).
test_deleted_stays_deleted() {
    setup p2 c2
    away p2 c2
    reconciled p2 c2
    hr_sync c2
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "every run of the child's sync ok"
    hr_sync p2
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "every run of the parent's sync ok"
    local g
    for g in $GONE_GUIDS; do
        assert_deleted p2 "$g" "still deleted at p2"
        assert_deleted c2 "$g" "still deleted at c2"
    done
    assert_eq "$((N - GONE + 1))" "$(hr_count p2 item.policy)" "items at p2"
    assert_eq "$(hr_digest p2 item.)" "$(hr_digest c2 item.)" "digests still equal"
    assert_eq "$(hr_digest p2 '')" "$(hr_digest c2 '')" "all data equal"
}

test_offline_past_the_floor
test_deleted_stays_deleted
hr_done
