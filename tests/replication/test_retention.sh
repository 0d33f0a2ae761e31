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

# hr_log_entries NAME: change-log entries NAME's store holds (superseded ones too).
hr_log_entries() { json_get "$(hs status -d "$(hr_dir "$1")" --json)" 'j["log_entries"]'; }
hr_log_entries_is() { [ "$(hr_log_entries "$1")" == "$2" ]; }

# hr_rewrite_items NAME TAG: every item.policy of NAME rewritten (body tag TAG).
hr_rewrite_items() {
    local u
    u=$(hs_tmp)/rewrite.ndjson
    hs export -d "$(hr_dir "$1")" --class item.policy |
        python3 -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l); o["body"]["tag"] = sys.argv[1]; print(json.dumps(o))' "$2" >"$u"
    hr_import "$1" "$u"
}

# An update leaves the object's previous change-log entry in place (removing
# it on the write path rewrote a random log page per changed record): runs
# never see it (a differential run sends each changed object once, as it is
# now), and the broker removes it in its housekeeping, also on a node with no
# peer to acknowledge (and so trim) anything.
test_superseded_entries_compacted() {
    local p=p3 c=c3 s=s3 f n
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" 200 "$p"
    hr_node "$p"
    hr_node "$c"
    hr_start "$p"
    hr_start "$c"
    hr_link "$p" "$c"
    hr_import "$p" "$f"
    hr_sync "$p" --rule items
    wait_for 20 hr_same_digest "$p" "$c" item.
    hr_rewrite_items "$p" v2
    hr_rewrite_items "$p" v3
    hr_sync "$p" --rule items
    assert_eq "differential" "$(hr_run mode "$c" items down sent)" "mode of the sync after the rewrites"
    assert_eq "200" "$(hr_run sent "$c" items down sent)" "each rewritten item sent once"
    assert_eq "$(hr_digest "$p" item.)" "$(hr_digest "$c" item.)" "digests equal after the rewrites"

    hr_node "$s"
    hr_start "$s"
    hr_import "$s" "$f"
    hr_rewrite_items "$s" v2
    hr_rewrite_items "$s" v3
    n=$(hr_log_entries "$s")
    if [ "$n" -ge 200 ] && [ "$n" -le 600 ]; then pass; else fail "log entries at $s: $n"; fi
    # housekeeping (every ~5 s) removes the 400 superseded entries
    wait_for 30 hr_log_entries_is "$s" 200
    expect_exit 0 hs status -d "$(hr_dir "$s")"
    assert_contains "$HS_OUT" "(200 change-log entries kept)" "status shows the log's entries"
}

test_offline_past_the_floor
test_deleted_stays_deleted
test_superseded_entries_compacted
hr_done
