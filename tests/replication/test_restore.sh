#!/usr/bin/env bash
# A child restored from a copy of its own folder taken earlier takes a new
# store epoch at start, and the parent's next run toward it is a reconcile
# (not a differential run after a watermark the restored store never saw):
# the child converges, with no silent gap. A complete run interrupted and
# then resumed toward a child that was restored meanwhile starts over rather
# than skip what the old store had acknowledged.
. "$(dirname "$0")/lib_repl.sh"

N=100
MORE=30

new_epoch_logged() { grep -q 'event=new-epoch' "$(hr_log "$1")"; }

test_restored_child_converges() {
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" "$N" first
    hr_import p "$f"
    hr_sync p --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$N" "$(hr_count c item.policy)" "items at c"

    # The backup: a copy of the stopped child's folder.
    local backup old_digest
    backup=$(hs_tmp)/c.backup
    hr_stop c
    cp -a "$(hr_dir c)" "$backup" || fail "cp -a the backup"
    old_digest=$(hr_digest c item.)
    hr_start c
    wait_for 15 hr_state_is p c up
    wait_for 15 hr_state_is c p up # the new session, not p's view of the old one

    # Life goes on: MORE items reach the child.
    f=$(hs_tmp)/more.ndjson
    hr_gen_items "$f" "$MORE" second
    hr_import p "$f"
    hr_sync p --rule items
    assert_eq "$MORE" "$(hr_run applied c items down sent)" "the new items reach c"
    assert_eq "$((N + MORE))" "$(hr_count c item.policy)" "items at c before the restore"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal before the restore"

    # Restore the child from the backup.
    hr_stop c
    rm -rf "$(hr_dir c)" || fail "rm -rf the child's folder"
    cp -a "$backup" "$(hr_dir c)" || fail "cp -a the backup back"
    assert_eq "$N" "$(hr_count c item.policy)" "the restored child has the old items only"
    assert_eq "$old_digest" "$(hr_digest c item.)" "the restored child has the old digest"
    : >"$(hr_log c)"
    hr_start c
    wait_for 10 new_epoch_logged c
    local line
    line=$(grep -m1 'event=new-epoch' "$(hr_log c)")
    assert_eq "warn" "$(sed -n 's/.*level=\([a-z]*\).*/\1/p' <<<"$line")" "a restore is logged as a warning"
    assert_not_contains "$line" "new store" "the new epoch is not that of a new store"
    wait_for 15 hr_state_is p c up
    wait_for 15 hr_state_is c p up

    hr_sync p --rule items
    assert_eq "true" "$(hr_run ok c items down sent)" "the run after the restore is ok"
    assert_eq "reconcile" "$(hr_run mode c items down sent)" "mode after the restore"
    assert_contains "$(hr_run why c items down sent)" "epoch" "why of the reconcile"
    # Every object of a differing bucket is sent: the missing ones, and now
    # and then a neighbour that shares a bucket with one (skipped there).
    local sent
    sent=$(hr_run sent c items down sent)
    if [ "$sent" != none ] && [ "$sent" -ge "$MORE" ] && [ "$sent" -le $((MORE + 10)) ]; then
        pass
    else
        fail "the reconcile sent $sent objects (expected the $MORE missing ones and a few bucket neighbours)"
    fi
    assert_eq "$MORE" "$(hr_run applied c items down sent)" "the missing items are applied"
    assert_eq "0" "$(hr_run deleted c items down sent)" "nothing deleted"
    assert_eq "$((N + MORE))" "$(hr_count c item.policy)" "items at c after the restore"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal after the restore"

    # Back to normal: differential, nothing to send; and a change flows.
    hr_sync p --rule items
    assert_eq "differential" "$(hr_run mode c items down sent)" "the next sync is differential"
    assert_eq "0" "$(hr_run sent c items down sent)" "and sends nothing"
    local g
    g=$(hr_put p item.policy '{"after":"restore"}')
    hr_sync p --rule items
    assert_eq "differential" "$(hr_run mode c items down sent)" "a later change: differential"
    assert_eq "1" "$(hr_run applied c items down sent)" "a later change reaches c"
    expect_exit 0 hs get -d "$(hr_dir c)" "$g" --json
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal at the end"

    # The sync of the child itself (its own rules toward p) also runs.
    hr_sync c
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "the child's own sync ok"
}

some_at() { local n; n=$(hr_count "$1" resource. "$2") && [ "$n" -ge "${3:-1}" ]; }

test_restored_during_interrupted_complete_run() {
    local n=${HSYNC_RESTORE_N:-100000} f backup sync_pid at_stop
    hr_node p2
    hr_node c2
    hr_start p2
    hr_start c2
    hr_link p2 c2
    hr_sync p2 --rule resources
    backup=$(hs_tmp)/c2.backup
    hr_stop c2
    cp -a "$(hr_dir c2)" "$backup" || fail "cp -a the backup"
    hr_start c2
    wait_for 15 hr_state_is p2 c2 up
    wait_for 15 hr_state_is c2 p2 up

    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$n" RS
    hr_import p2 "$f"
    "$HSYNC" sync -d "$(hr_dir p2)" --rule resources --complete --timeout 60 --json \
        >"$HR_T/sync-rs.json" 2>&1 &
    sync_pid=$!
    # three batches in: p2 has processed the first acknowledgement (the
    # resume cursor exists) by the time the third is committed at c2
    wait_for 30 some_at c2 p2 6144
    hr_stop c2
    at_stop=$(hr_count c2 resource. p2)
    wait "$sync_pid" 2>/dev/null
    echo "restore: c2 had $at_stop of $n when stopped mid-run"
    if [ "$at_stop" -gt 0 ] && [ "$at_stop" -lt "$n" ]; then pass; else
        fail "stopped c2 too late or too early: $at_stop of $n"; fi

    # The child comes back from the backup taken before the run.
    rm -rf "$(hr_dir c2)" && cp -a "$backup" "$(hr_dir c2)" || fail "restore c2"
    assert_eq "0" "$(hr_count c2 resource. p2)" "the restored child has none of the run"
    hr_start c2
    wait_for 15 hr_state_is p2 c2 up
    wait_for 15 hr_state_is c2 p2 up
    hr_sync p2 --rule resources --timeout 60
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "the resumed run is ok"
    wait_for 20 grep -q "event=resume-invalid" "$(hr_log p2)"
    echo "restore: $(grep -m1 -o 'event=resume-invalid msg=.*' "$(hr_log p2)")"
    wait_for 20 hr_same_digest p2 c2 resource. p2
    assert_eq "$n" "$(hr_count c2 resource. p2)" "everything at the restored child"
}

# Non-authoritative restore: the child writes A, a copy of its folder is
# taken, it writes B (synced to the parent), then it is restored from the
# copy. Before its first reconcile up it takes back from the parent what it
# owns and lost: B is back on the child and still on the parent.
got_b() { "$HSYNC" get -d "$(hr_dir "$1")" "$2" --json >/dev/null 2>&1; }

test_restored_child_recovers_own_data() {
    hr_node p3
    hr_node c3
    hr_start p3
    hr_start c3
    hr_link p3 c3
    local a b backup
    a=$(hr_put c3 resource.computer '{"name":"A"}' --key serial=RA-1)
    hr_sync c3 --rule resources
    assert_eq "1" "$(hr_count p3 resource. c3)" "A reaches p3"

    backup=$(hs_tmp)/c3.backup
    hr_stop c3
    cp -a "$(hr_dir c3)" "$backup" || fail "cp -a the backup"
    hr_start c3
    wait_for 15 hr_state_is p3 c3 up
    wait_for 15 hr_state_is c3 p3 up

    b=$(hr_put c3 resource.computer '{"name":"B"}' --key serial=RB-1)
    hr_put c3 resource.computer '{"name":"A2"}' --guid "$a" --key serial=RA-1 >/dev/null
    hr_sync c3 --rule resources
    assert_eq "2" "$(hr_count p3 resource. c3)" "A and B at p3 before the restore"
    expect_exit 0 "$HSYNC" get -d "$(hr_dir p3)" "$b" --json
    local before
    before=$(hr_digest c3 resource. c3)
    assert_eq "$before" "$(hr_digest p3 resource. c3)" "digests equal before the restore"

    hr_stop c3
    rm -rf "$(hr_dir c3)" || fail "rm -rf c3"
    cp -a "$backup" "$(hr_dir c3)" || fail "restore c3"
    assert_eq "1" "$(hr_count c3 resource. c3)" "the restored child has A only"
    : >"$(hr_log c3)"
    hr_start c3
    wait_for 10 new_epoch_logged c3
    wait_for 15 hr_state_is p3 c3 up
    wait_for 15 hr_state_is c3 p3 up

    hr_sync c3 --rule resources
    assert_eq "true" "$(hr_run ok p3 resources up sent)" "the child's run up is ok"
    wait_for 10 got_b c3 "$b"
    expect_exit 0 "$HSYNC" get -d "$(hr_dir p3)" "$b" --json
    assert_eq "2" "$(hr_count p3 resource. c3)" "A and B still at p3"
    assert_eq "$before" "$(hr_digest c3 resource. c3)" "the child holds its newer data again"
    assert_eq "$(hr_digest p3 resource. c3)" "$(hr_digest c3 resource. c3)" "digests equal"
    expect_exit 0 "$HSYNC" history -d "$(hr_dir c3)"
    assert_contains "$HS_OUT" "recovered 2" "history says how many objects came back"
    assert_contains "$(grep 'event=recovered' "$(hr_log c3)")" "recovered 2 objects" "the log too"

    # Back to normal: a later change of the child reaches the parent.
    hr_put c3 resource.computer '{"name":"C"}' --key serial=RC-1 >/dev/null
    hr_sync c3 --rule resources
    assert_eq "3" "$(hr_count p3 resource. c3)" "a later change reaches p3"
    assert_eq "$(hr_digest p3 resource. c3)" "$(hr_digest c3 resource. c3)" "digests equal at the end"
}

# `hsync sync` right after the restored child's broker starts (its link to
# the parent still connecting) waits for the link and the recovery: it exits
# 0 and what the child wrote after the copy is there for `rm` at once (it
# used to answer "link down" at once, and `rm` said "no object").
sync_answered() {
    "$HSYNC" sync -d "$(hr_dir "$1")" --timeout 30 >"$HR_T/$1.sync" 2>&1
    echo $? >"$HR_T/$1.sync.rc"
    ! grep -q "no broker is running" "$HR_T/$1.sync"
}

test_restored_child_sync_at_start() {
    hr_node p4
    hr_node c4
    hr_start p4
    hr_start c4
    hr_link p4 c4
    local b backup
    backup=$(hs_tmp)/c4.backup
    hr_stop c4
    cp -a "$(hr_dir c4)" "$backup" || fail "cp -a the backup"
    hr_start c4
    wait_for 15 hr_state_is c4 p4 up
    b=$(hr_put c4 resource.computer '{"name":"B"}' --key serial=RS-1)
    hr_sync c4 --rule resources
    expect_exit 0 "$HSYNC" get -d "$(hr_dir p4)" "$b" --json

    hr_stop c4
    rm -rf "$(hr_dir c4)" && cp -a "$backup" "$(hr_dir c4)" || fail "restore c4"
    # the first sync the broker answers: started the moment its control
    # socket is there, before the link to p4 can be up
    "$HSYNC" serve -d "$(hr_dir c4)" 2>>"$(hr_log c4)" &
    HR_PID[c4]=$!
    wait_for 10 sync_answered c4
    assert_eq "0" "$(cat "$HR_T/c4.sync.rc")" "sync right after the start exits 0: $(cat "$HR_T/c4.sync")"
    expect_exit 0 "$HSYNC" rm -d "$(hr_dir c4)" "$b"
    hr_sync c4 --rule resources
    assert_eq "0" "$(hr_count p4 resource. c4)" "the delete reaches p4"
}

# A middle node m (r - m - l) restored from a copy older than r's data:
# m's reconcile down to l waits until r's run toward m has arrived, so l
# keeps r's objects (it used to lose them to m's older store, and the
# tombstones that left on l then refused them when m sent them again).
test_restored_middle_keeps_child() {
    hr_node r5
    hr_node m5
    hr_node l5
    hr_start r5
    hr_start m5
    hr_start l5
    hr_link r5 m5
    hr_link m5 l5
    local backup i
    backup=$(hs_tmp)/m5.backup
    hr_stop m5
    cp -a "$(hr_dir m5)" "$backup" || fail "cp -a the backup"
    hr_start m5
    wait_for 15 hr_state_is r5 m5 up
    wait_for 15 hr_state_is l5 m5 up
    for i in 1 2 3; do
        hr_put r5 resource.computer '{"name":"R'"$i"'"}' --key serial=RM-$i >/dev/null
    done
    hr_sync m5 --rule resources
    hr_sync l5 --rule resources
    assert_eq "3" "$(hr_count l5 resource. r5)" "l5 holds r5's resources before the restore"

    # r5 away while m5 comes back: m5's runs toward l5 would go first
    hr_stop r5
    hr_stop m5
    rm -rf "$(hr_dir m5)" && cp -a "$backup" "$(hr_dir m5)" || fail "restore m5"
    hr_start m5
    wait_for 15 hr_state_is l5 m5 up
    hr_start r5
    hr_sync m5 --rule resources
    wait_for 15 hr_count_is 3 m5 resource. r5
    hr_sync m5 --rule resources
    hr_sync l5 --rule resources
    assert_eq "3" "$(hr_count l5 resource. r5)" "l5 still holds r5's resources"
    assert_eq "$(hr_digest r5 resource. r5)" "$(hr_digest l5 resource. r5)" "digests equal r5/l5"
}

# A restored node does not bring back what it deleted after the copy was
# taken (3 levels: a under b under r). The recovery from b carries b's
# delete, and the restored a takes it over its older live copy; no run (nor
# verify --repair) brings the object back on b or r.

test_restored_child_keeps_its_delete() {
    hr_node r6
    hr_node b6
    hr_node a6
    hr_start r6
    hr_start b6
    hr_start a6
    hr_link r6 b6
    hr_link b6 a6
    local g backup
    g=$(hr_put a6 resource.computer '{"name":"pc9","os":"Windows 11"}' --key serial=SN-9)
    hr_sync a6 --rule resources
    hr_sync b6 --rule resources
    expect_exit 0 "$HSYNC" get -d "$(hr_dir r6)" "$g" --json

    backup=$(hs_tmp)/a6.backup
    hr_stop a6
    cp -a "$(hr_dir a6)" "$backup" || fail "cp -a the backup"
    hr_start a6
    wait_for 15 hr_state_is b6 a6 up
    wait_for 15 hr_state_is a6 b6 up

    expect_exit 0 "$HSYNC" rm -d "$(hr_dir a6)" "$g"
    hr_sync a6 --rule resources
    hr_sync b6 --rule resources
    assert_deleted b6 "$g" "the delete reaches b6"
    assert_deleted r6 "$g" "the delete reaches r6"

    hr_kill9 a6
    rm -rf "$(hr_dir a6)" && cp -a "$backup" "$(hr_dir a6)" || fail "restore a6"
    expect_exit 0 "$HSYNC" get -d "$(hr_dir a6)" "$g" --json
    assert_eq "false" "$(json_get "$HS_OUT" 'j.get("deleted")')" "the restored a6 holds the old copy"
    : >"$(hr_log a6)"
    hr_start a6
    wait_for 10 new_epoch_logged a6
    wait_for 15 hr_state_is b6 a6 up
    wait_for 15 hr_state_is a6 b6 up

    hr_sync a6 --rule resources
    wait_for 10 hr_is_deleted a6 "$g"
    assert_deleted a6 "$g" "the restored a6 takes back its own delete"
    hr_sync a6 --rule resources
    hr_sync b6 --rule resources
    assert_deleted b6 "$g" "the delete stays at b6"
    assert_deleted r6 "$g" "the delete stays at r6"
    expect_exit 0 "$HSYNC" verify -d "$(hr_dir r6)"
    expect_exit 0 "$HSYNC" verify -d "$(hr_dir r6)" --repair
    for n in a6 b6 r6; do assert_deleted "$n" "$g" "after verify --repair at $n"; done
    assert_eq "$(hr_digest r6 resource. a6)" "$(hr_digest a6 resource. a6)" "digests equal"
}

test_restored_child_converges
test_restored_during_interrupted_complete_run
test_restored_child_recovers_own_data
test_restored_child_sync_at_start
test_restored_middle_keeps_child
test_restored_child_keeps_its_delete
hr_done
