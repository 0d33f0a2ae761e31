#!/usr/bin/env bash
# Differential and complete runs: a 1% change moves only that 1%, deletes
# travel as deletes, an unchanged item is not re-sent, a complete run
# removes stale objects at the destination and keeps its local ones, and a
# dry run reports without sending; a complete run up carries a delete made
# just before it.
. "$(dirname "$0")/lib_repl.sh"

N=5000
CHANGED=50

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_link p c
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" "$N"
    hr_import p "$f"
    assert_eq "$N" "$(hr_count p item.policy)" "items loaded on p"
}

test_first_run_then_differential() {
    # The link's first runs are complete (no watermark yet); a sync after
    # them brings the child level with the parent.
    hr_sync p --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$N" "$(hr_count c item.policy)" "items at c"

    hr_sync p --rule items
    assert_eq "differential" "$(hr_run mode c items down sent)" "mode of a sync with a watermark"
    assert_eq "0" "$(hr_run sent c items down sent)" "nothing changed, nothing sent"

    # Change 1%.
    local guids g i=0
    guids=$(hs export -d "$(hr_dir p)" --class item.policy |
        python3 -c 'import json,sys; [print(json.loads(l)["guid"]) for l in sys.stdin]' | shuf -n "$CHANGED" --random-source=<(yes))
    assert_eq "$CHANGED" "$(echo "$guids" | wc -l)" "guids picked"
    for g in $guids; do
        i=$((i + 1))
        hs put -d "$(hr_dir p)" --class item.policy --guid "$g" '{"changed":'"$i"'}' >/dev/null ||
            fail "put --guid $g"
    done
    assert_eq "$N" "$(hr_count p item.policy)" "updates do not add objects"
    assert_ne "$(hr_digest p item.)" "$(hr_digest c item.)" "digests differ before the sync"

    hr_sync p --rule items
    assert_eq "1" "$(json_get "$HS_OUT" 'len(j["runs"])')" "one run"
    assert_eq "differential" "$(hr_run mode c items down sent)" "mode"
    assert_eq "$CHANGED" "$(hr_run sent c items down sent)" "sent = the changed 1%"
    assert_eq "$CHANGED" "$(hr_run applied c items down sent)" "applied = the changed 1%"
    assert_eq "0" "$(hr_run deleted c items down sent)" "deleted"
    assert_contains "$(hr_run why c items down sent)" "watermark" "why of a differential run"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal after the change"
    g=$(echo "$guids" | head -n1)
    expect_exit 0 hs get -d "$(hr_dir c)" "$g" --json
    assert_contains "$HS_OUT" '"changed"' "the child has the new body"

    hr_sync p --rule items
    assert_eq "0" "$(hr_run sent c items down sent)" "a second sync sends nothing"
    assert_eq "0" "$(hr_run applied c items down sent)" "a second sync applies nothing"

    # Same content again: items differ by content hash, so nothing moves.
    hs put -d "$(hr_dir p)" --class item.policy --guid "$g" '{"changed":1}' >/dev/null
    hr_sync p --rule items
    assert_eq "0" "$(hr_run applied c items down sent)" "an unchanged item is not re-applied"
    assert_eq "0" "$(hr_run sent c items down sent)" "an unchanged item is not re-sent"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests still equal"
}

test_deletes_in_differential() {
    local guids g
    guids=$(hs export -d "$(hr_dir p)" --class item.policy |
        python3 -c 'import json,sys; [print(json.loads(l)["guid"]) for l in sys.stdin]' | tail -n 7)
    for g in $guids; do
        hs rm -d "$(hr_dir p)" "$g" >/dev/null || fail "rm $g"
    done
    assert_eq "$((N - 7))" "$(hr_count p item.policy)" "items on p after rm"
    hr_sync p --rule items
    assert_eq "differential" "$(hr_run mode c items down sent)" "mode"
    assert_eq "7" "$(hr_run deleted c items down sent)" "deletes applied as deletes"
    assert_eq "0" "$(hr_run applied c items down sent)" "nothing else applied"
    assert_eq "$((N - 7))" "$(hr_count c item.policy)" "items at c after the deletes"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal after the deletes"
    for g in $guids; do
        assert_deleted c "$g" "deleted at c"
    done
}

test_complete_removes_stale_keeps_local() {
    # A stale item at the child that claims to come from p (p never had it),
    # written while the child's broker runs, and a child-local item.
    local f stale_guid local_guid
    f=$(hs_tmp)/stale.ndjson
    echo '{"class":"item.policy","origin":"p","owner":"p","body":{"stale":true}}' >"$f"
    hr_import c "$f"
    stale_guid=$(hs export -d "$(hr_dir c)" --class item.policy |
        python3 -c 'import json,sys; [print(o["guid"]) for o in map(json.loads, sys.stdin) if o["body"].get("stale")]')
    assert_ne "" "$stale_guid" "the stale item is at c"
    local_guid=$(hr_put c item.policy '{"local":"child policy"}')
    assert_eq "$((N - 7 + 2))" "$(hr_count c item.policy)" "c before the complete run"
    assert_ne "$(hr_digest p item. p)" "$(hr_digest c item. p)" "p's items differ at c"

    # A differential run does not notice: nothing changed on p.
    hr_sync p --rule items
    assert_eq "0" "$(hr_run deleted c items down sent)" "differential deletes nothing"

    hr_sync p --rule items --complete
    assert_eq "complete" "$(hr_run mode c items down sent)" "mode"
    assert_contains "$(hr_run why c items down sent)" "complete" "why of the complete run"
    assert_eq "$((N - 7))" "$(hr_run sent c items down sent)" "complete sends the whole scope"
    assert_eq "1" "$(hr_run deleted c items down sent)" "the stale item removed"
    assert_eq "0" "$(hr_run applied c items down sent)" "nothing re-applied (same content)"
    assert_deleted c "$stale_guid" "stale item at c"
    expect_exit 0 hs get -d "$(hr_dir c)" "$local_guid" --json
    assert_contains "$HS_OUT" "child policy" "the child's local item is kept"
    assert_eq "$(hr_digest p item. p)" "$(hr_digest c item. p)" "p's items equal at c"
    assert_eq "$((N - 7 + 1))" "$(hr_count c item.policy)" "c after the complete run"
    assert_eq "1" "$(hr_count c item. c)" "c's own items"

    # The child's local item never goes up.
    assert_eq "0" "$(hr_count p item. c)" "c's item at p"
}

test_dry_run() {
    local before i
    for i in $(seq 1 12); do
        hr_put p item.task '{"dry":'"$i"'}' >/dev/null
    done
    before=$(hr_digest c item.)
    expect_exit 0 hs sync -d "$(hr_dir p)" --rule items --dry-run --json
    assert_json "$HS_OUT" "dry run output"
    assert_eq "12" "$(hr_run sent c items down)" "would send"
    assert_eq "differential" "$(hr_run mode c items down)" "dry run mode"
    assert_eq "true" "$(json_get "$HS_OUT" '[r for r in j["runs"] if r["rule"] == "items"][0].get("estimated_bytes", 0) > 0')" \
        "estimated bytes"
    assert_eq "$before" "$(hr_digest c item.)" "dry run changes nothing at c"
    expect_exit 0 hs sync -d "$(hr_dir p)" --rule items --dry-run
    assert_contains "$HS_OUT" "WOULD" "the table says what would be sent"
    # The real run sends exactly that.
    hr_sync p --rule items
    assert_eq "12" "$(hr_run sent c items down sent)" "the real run sends what the dry run said"
    assert_eq "$(hr_digest p item. p)" "$(hr_digest c item. p)" "equal after the real run"
}

test_complete_up_carries_delete() {
    # The model checker's history (tests/sim/known/complete_delete.sh): c
    # removes a resource and runs `sync --complete`. The complete run's
    # watermark passes the delete's log entry, so only the complete run's
    # range removal can carry it; the last thing the run examined (an
    # imported resource sorting after the removed one) is not sent, and the
    # END's range must still cover the removed key, or p keeps it forever.
    local gone=88dcf943-84d4-4d1f-87ca-7883ff5a52f1 imp=cc21ce88-d006-4cc5-8278-c2614e1bcb38
    hr_put c resource.computer '{"name":"imp"}' --guid "$imp" --key serial=IM-1 --imported >/dev/null
    hr_put c resource.computer '{"name":"pc1"}' --guid "$gone" --key serial=SN-1 >/dev/null
    hr_sync c --rule resources
    expect_exit 0 hs get -d "$(hr_dir p)" "$gone"
    expect_exit 0 hs rm -d "$(hr_dir c)" "$gone"
    hr_sync c --rule resources --complete
    assert_eq "complete" "$(hr_run mode p resources up sent)" "the run up was complete"
    assert_deleted p "$gone" "the resource removed at c before the complete run is removed at p"
    hr_sync c --rule resources
    assert_deleted p "$gone" "and stays removed after the next run"
    assert_eq "0" "$(hr_count p resource. c)" "none of c's resources left at p (an imported one stays at c)"
}

setup
test_complete_up_carries_delete
test_first_run_then_differential
test_deletes_in_differential
test_complete_removes_stale_keeps_local
test_dry_run
hr_done
