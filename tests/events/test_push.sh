#!/usr/bin/env bash
# Urgent replication without the schedule:
#  - replicate-now pushes a policy and what it names (its package) to every
#    child at once and waits for their acknowledgements, while the next
#    scheduled run is a day away;
#  - emergency delivery pushes a policy, its software resource and its
#    package down to every descendant, grandchildren included, and lists
#    every node that did not acknowledge it (a child or a grandchild that
#    is down) as not reached, exit 1 (issue 17, item 8).
. "$(dirname "$0")/lib_events.sh"

has() { "$HSYNC" get -d "$(hr_dir "$1")" "$2" --json >/dev/null 2>&1; }
has_all() {
    local n=$1 g
    shift
    for g in "$@"; do
        has "$n" "$g" || return 1
    done
}

# settle NAME...: the first (complete) runs of every rule have ended, so what
# is written next waits for the daily schedule.
settle() {
    local n r
    for n in "$@"; do
        hr_sync "$n"
        for r in items packages resources; do
            expect_exit 0 "$HSYNC" rule set -d "$(hr_dir "$n")" "$r" --every 1d
        done
    done
}

test_replicate_now() {
    local i n
    hr_node p
    hr_start p
    for i in 1 2 3 4 5 6; do
        hr_node "c$i"
        hr_start "c$i"
        hr_link p "c$i"
    done
    settle p

    local pkg pol
    pkg=$(hr_put p package '{"name":"agent","version":"7.1"}')
    pol=$(hr_put p item.policy '{"name":"install agent","package":"'"$pkg"'","filter":{"os":"linux"}}')
    assert_ne "" "$pol" "policy put on p"
    assert_eq "" "$(has c1 "$pol" && echo yes)" "c1 does not have the policy before the push"

    expect_exit 0 "$HSYNC" replicate-now -d "$(hr_dir p)" "$pol"
    for i in 1 2 3 4 5 6; do
        assert_contains "$(grep "^c$i " <<<"$HS_OUT")" "acknowledged" "replicate-now lists c$i as acknowledged"
    done
    assert_eq "6" "$(grep -c acknowledged <<<"$HS_OUT")" "six acknowledgements"
    # right after the command returns: every child has both objects
    for i in 1 2 3 4 5 6; do
        if has_all "c$i" "$pol" "$pkg"; then pass; else fail "c$i lacks the policy or its package"; fi
    done
    expect_exit 0 "$HSYNC" get -d "$(hr_dir c4)" "$pol" --json
    assert_contains "$HS_OUT" "install agent" "the policy's body at c4"

    # --json: one run per child, all ok
    expect_exit 0 "$HSYNC" replicate-now -d "$(hr_dir p)" "$pol" --json
    assert_json "$HS_OUT" "replicate-now --json"
    assert_eq "6 True" "$(json_get "$HS_OUT" '"%d %s" % (len(j["runs"]), all(r["ok"] for r in j["runs"]))')" "six ok runs"

    # not the schedule that carried it: the items runs are a day away
    expect_exit 0 "$HSYNC" status -d "$(hr_dir p)" --json
    local soon
    soon=$(json_get "$HS_OUT" 'sum(1 for r in j.get("replication", []) if r.get("rule") == "items" and r.get("next_run") and r["next_run"] - '"$(date +%s%3N)"' < 3600000)')
    assert_eq "0" "$soon" "no items run due within the hour at p"

    # a push to an unknown guid fails cleanly
    expect_exit 1 "$HSYNC" replicate-now -d "$(hr_dir p)" 00000000-0000-0000-0000-000000000001
}

test_emergency() {
    local n
    for n in root mid1 leaf mid2 mid3; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link root mid1
    hr_link mid1 leaf
    hr_link root mid2
    hr_link root mid3
    settle root mid1 mid2 mid3

    local pkg sw pol
    pkg=$(hr_put root package '{"name":"hotfix","version":"1.0.1"}')
    sw=$(hr_put root resource.software '{"name":"hotfix","vendor":"acme"}' --key sku=HF-1)
    pol=$(hr_put root item.policy '{"name":"emergency hotfix","package":"'"$pkg"'","software":"'"$sw"'"}')
    assert_eq "" "$(has leaf "$pol" && echo yes)" "leaf does not have the policy before"

    expect_exit 0 "$HSYNC" emergency -d "$(hr_dir root)" "$pol"
    assert_contains "$(grep '^mid1 ' <<<"$HS_OUT")" "acknowledged" "mid1 acknowledged"
    assert_contains "$(grep '^mid2 ' <<<"$HS_OUT")" "acknowledged" "mid2 acknowledged"
    assert_contains "$(grep '^mid1 ' <<<"$HS_OUT")" "passed on to 1 child" "mid1 passed it on to leaf"
    assert_contains "$HS_OUT" "not reached (0):" "every node reached"
    for n in mid1 mid2 mid3; do
        if has_all "$n" "$pol" "$sw" "$pkg"; then pass; else fail "$n lacks one of the three objects"; fi
    done
    # mid1 acknowledges once leaf has: the grandchild has it already
    if has_all leaf "$pol" "$sw" "$pkg"; then pass; else fail "leaf lacks one of the three objects"; fi
    expect_exit 0 "$HSYNC" get -d "$(hr_dir leaf)" "$sw" --json
    assert_contains "$HS_OUT" "acme" "the software resource's body at the grandchild"
    expect_exit 0 "$HSYNC" emergency -d "$(hr_dir root)" "$pol" --json
    assert_eq '["leaf", "mid1", "mid2", "mid3"]' "$(json_get "$HS_OUT" 'sorted(j["reached"])')" "every node below acknowledged"
    assert_eq '[]' "$(json_get "$HS_OUT" 'j["not_reached"]')" "none missing"

    # root's three children, one of them stopped (issue 17, item 8)
    hr_stop mid2
    wait_for 10 hr_state_is root mid2 down
    expect_exit 1 "$HSYNC" emergency -d "$(hr_dir root)" "$pol"
    assert_contains "$HS_OUT" "not reached (1): mid2" "the child that is down is listed as not reached"
    assert_contains "$HS_OUT" "reached (3): " "the three others reached"
    assert_contains "$HS_ERR" "1 node below did not acknowledge" "the error says how many"
    expect_exit 1 "$HSYNC" emergency -d "$(hr_dir root)" "$pol" --json
    assert_eq "false" "$(json_get "$HS_OUT" 'j["all_ok"]')" "all_ok is false"
    assert_eq '["mid2"]' "$(json_get "$HS_OUT" 'j["not_reached"]')" "--json lists it under not_reached"
    assert_eq '["leaf", "mid1", "mid3"]' "$(json_get "$HS_OUT" 'sorted(j["reached"])')" "and the others under reached"

    # a grandchild that is down: its parent says so, hop by hop
    hr_stop leaf
    wait_for 10 hr_state_is mid1 leaf down
    expect_exit 1 "$HSYNC" emergency -d "$(hr_dir root)" "$pol" --json
    assert_eq '["leaf", "mid2"]' "$(json_get "$HS_OUT" 'sorted(j["not_reached"])')" "the grandchild is listed as not reached"
    assert_eq '["mid1", "mid3"]' "$(json_get "$HS_OUT" 'sorted(j["reached"])')" "the others acknowledged"
    assert_contains "$(json_get "$HS_OUT" '[r["why"] for r in j["runs"] if r["peer"] == "mid1"][0]')" "passed on to 0 children" \
        "mid1 had no child up to pass it on to"

    # every child down: still an answer naming them, not an error about the rules
    hr_stop mid1
    hr_stop mid3
    wait_for 10 hr_state_is root mid1 down
    wait_for 10 hr_state_is root mid3 down
    expect_exit 1 "$HSYNC" emergency -d "$(hr_dir root)" "$pol" --json
    assert_eq '["leaf", "mid1", "mid2", "mid3"]' "$(json_get "$HS_OUT" 'sorted(j["not_reached"])')" "all four not reached"
}

test_replicate_now
test_emergency
hr_done
