#!/usr/bin/env bash
# Two standalone sources feed one destination (issue 17, item 5): ca feeds
# every resource it has to dst; its parent pa feeds only the members of a
# resource target (site=north), which include ca's north computers. A
# complete run of either rule removes at dst only what that rule delivered
# and its source no longer carries: never the other rule's data.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    local n
    for n in pa ca dst; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link pa ca
}

invite() { "$HSYNC" invite -d "$(hr_dir "$1")"; }

# received RULE FIELD: the sum of FIELD over the runs of RULE dst received
# (its broker may start a rule's first run at its next tick, before a sync)
received() {
    json_get "$("$HSYNC" history -d "$(hr_dir dst)" --json --limit 2000)" \
        'sum(h["'"$2"'"] for h in j if h["rule"] == "'"$1"'" and h["role"] == "received")'
}
complete_runs() {
    json_get "$("$HSYNC" history -d "$(hr_dir dst)" --json --limit 2000)" \
        'sum(1 for h in j if h["rule"] == "'"$1"'" and h["role"] == "received" and h["mode"] == "complete" and h["ok"])'
}

test_two_sources_one_destination() {
    local i north_ca south_ca north_pa
    for i in 1 2 3; do
        north_ca=$(hr_put ca resource.computer '{"name":"n'"$i"'","site":"north"}' --key serial=N$i)
    done
    for i in $(seq 1 10); do
        south_ca=$(hr_put ca resource.computer '{"name":"s'"$i"'","site":"south"}' --key serial=S$i)
    done
    north_pa=$(hr_put pa resource.computer '{"name":"pn","site":"north"}' --key serial=PN1)
    # pa holds ca's 13 computers too (resources flow up)
    hr_sync ca --rule resources
    assert_eq "13" "$(hr_count pa resource. ca)" "pa holds ca's resources"

    expect_exit 0 hs standalone add -d "$(hr_dir ca)" --name all --to "$(invite dst)" \
        --class resource. --every 1h
    hr_sync ca --rule all
    assert_eq "13" "$(hr_count dst resource. ca)" "ca's rule delivered its 13 computers"

    expect_exit 0 hs standalone add -d "$(hr_dir pa)" --name north --to "$(invite dst)" \
        --class resource. --target resource.computer --where site=north --every 1h
    hr_sync pa --rule north
    assert_eq "true" "$(json_get "$(complete_runs north)" 'j >= 1')" "the targeted rule's first run was complete"
    assert_eq "0" "$(received north deleted)" "it deleted nothing of the other rule's data"
    assert_eq "13" "$(hr_count dst resource. ca)" "ca's 13 computers are all still at dst"
    hr_sync pa --rule north --complete
    assert_eq "complete" "$(hr_run mode dst north standalone)" "the targeted rule ran complete again"
    assert_eq "0" "$(received north deleted)" "again nothing deleted"
    assert_eq "13" "$(hr_count dst resource. ca)" "ca's 13 computers are all still at dst"
    assert_eq "1" "$(hr_count dst resource. pa)" "pa's north computer arrived"
    assert_eq "$(hr_digest ca resource. ca)" "$(hr_digest dst resource. ca)" "dst equal to ca for ca's resources"

    # the other way round: ca's complete run leaves pa's delivery alone
    hr_sync ca --rule all --complete
    assert_eq "0" "$(received all deleted)" "ca's complete runs deleted nothing"
    assert_eq "1" "$(hr_count dst resource. pa)" "pa's north computer is still at dst"

    # what a rule's own source removed is removed by its complete run
    expect_exit 0 hs rm -d "$(hr_dir ca)" "$south_ca"
    hr_sync ca --rule all --complete
    assert_deleted dst "$south_ca" "ca's removed computer is removed at dst"
    assert_eq "1" "$(received all deleted)" "ca's complete run deleted exactly that one"
    expect_exit 0 hs rm -d "$(hr_dir pa)" "$north_pa"
    hr_sync pa --rule north --complete
    assert_deleted dst "$north_pa" "pa's removed computer is removed at dst"
    assert_eq "1" "$(received north deleted)" "pa's complete run deleted exactly that one"
    assert_eq "12" "$(hr_count dst resource. ca)" "the rest of ca's delivery stays"
    assert_eq "$(hr_digest ca resource. ca)" "$(hr_digest dst resource. ca)" "dst still equal to ca"
    expect_exit 0 hs get -d "$(hr_dir dst)" "$north_ca"

    # a reconcile of the targeted rule removes nothing of the other's either
    hr_sync pa --rule north --reconcile
    assert_eq "reconcile" "$(hr_run mode dst north standalone)" "the targeted rule reconciled"
    assert_eq "12" "$(hr_count dst resource. ca)" "ca's delivery still all there"
    assert_eq "$(hr_digest ca resource. ca)" "$(hr_digest dst resource. ca)" "dst still equal to ca"
}

# A copy the source drops because a merge gave the resource to another
# branch is dropped at the destination too (its delete names the new owner,
# not one of the source's): the destination must not keep the old copy.
test_merge_drop_reaches_destination() {
    local g
    hr_node cb
    hr_start cb
    hr_link pa cb
    g=$(hr_put ca resource.computer '{"name":"m1","site":"south"}' --key serial=M1)
    hr_sync ca --rule all
    expect_exit 0 hs get -d "$(hr_dir dst)" "$g"
    hr_sync ca --rule resources
    # the same computer registered later on cb: merged on pa, ca's guid
    # survives with cb's content and owner, ca drops its copy
    hr_put cb resource.computer '{"name":"m1","site":"west"}' --key serial=M1 >/dev/null
    hr_sync cb --rule resources
    wait_for 10 hr_is_deleted ca "$g"
    hr_sync ca --rule all
    assert_deleted dst "$g" "the dropped copy is removed at the destination"
    assert_eq "0" "$(hr_log_count dst 'refused [1-9]')" "dst refused nothing"
}

setup
test_two_sources_one_destination
test_merge_drop_reaches_destination
hr_done
