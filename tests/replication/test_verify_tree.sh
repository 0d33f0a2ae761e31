#!/usr/bin/env bash
# hsync verify on a 3-level tree (p; c1, c2 below it; g1 below c1): all in
# sync -> exit 0; an item corrupted behind the engine's back at g1 (no
# change-log entry: no run sees it) -> verify names g1, the rule and the
# direction, exit 1; --repair reconciles it and says so; verify again exit
# 0; a stopped node -> not reached with exit 1, within the deadline, both
# when its parent knows the link is down and when it only stops answering.
. "$(dirname "$0")/lib_repl.sh"

: "${HSYNC_CORRUPT:?HSYNC_CORRUPT must name the hsync_corrupt tool}"

verify_ok() { "$HSYNC" verify -d "$(hr_dir p)" >/dev/null 2>&1; }
node_field() { # JSON NODE EXPR-over-n
    json_get "$1" '[n for n in j["nodes"] if n["node"] == "'"$2"'"][0]'"$3"
}

setup() {
    local n
    for n in p c1 c2 g1; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p c1
    hr_link p c2
    hr_link c1 g1
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" 200
    hr_import p "$f"
    hr_put c1 resource.computer '{"name":"c1-pc"}' --key serial=C1 >/dev/null
    hr_put c2 resource.computer '{"name":"c2-pc"}' --key serial=C2 >/dev/null
    hr_put g1 resource.computer '{"name":"g1-pc"}' --key serial=G1 >/dev/null
    # up first, then down, so every node has what its scope gives it
    for n in g1 c1 c2 p c1; do
        hr_sync "$n"
    done
    wait_for 30 hr_same_digest p g1 item.
}

test_in_sync() {
    wait_for 30 verify_ok
    expect_exit 0 hs verify -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "3 nodes below, 3 in sync, 0 differ, 0 not reached" "summary line"
    assert_contains "$HS_OUT" "$(printf '%-14s %-14s %-12s %s' g1 c1 items 'in sync')" "g1 is asked through c1"
    expect_exit 0 hs verify -d "$(hr_dir p)" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_in_sync"]')" "--json: all in sync"
    assert_eq '["c1", "c2", "g1"]' "$(json_get "$HS_OUT" 'sorted(n["node"] for n in j["nodes"])')" "every node below answered"
    assert_eq "c1" "$(node_field "$HS_OUT" g1 '["parent"]')" "g1's parent is c1"
    assert_eq "true" "$(node_field "$HS_OUT" g1 '["reached"]')" "g1 reached"
    assert_eq "true" "$(json_get "$HS_OUT" 'any(r["rule"] == "resources" and r["direction"] == "up" for n in j["nodes"] for r in n["rules"])')" \
        "up scopes are compared too"
    # from the middle of the tree: only what is below c1
    expect_exit 0 hs verify -d "$(hr_dir c1)" --json
    assert_eq '["g1"]' "$(json_get "$HS_OUT" '[n["node"] for n in j["nodes"]]')" "from c1: g1 only"
}

test_differs_and_repair() {
    local g
    g=$(hs export -d "$(hr_dir g1)" --class item.policy | head -1 | json_get "$(cat)" 'j["guid"]')
    expect_exit 0 "$HSYNC_CORRUPT" -d "$(hr_dir g1)" "$g"
    expect_exit 1 hs verify -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "3 nodes below, 2 in sync, 1 differs, 0 not reached" "one node differs"
    assert_contains "$(grep '^g1 .* items ' <<<"$HS_OUT")" "down DIFFERS: owner p (200 objects at c1, 200 at g1)" \
        "names the node, rule, direction and owner"
    assert_contains "$HS_ERR" "hsync verify --repair" "says how to repair"
    expect_exit 1 hs verify -d "$(hr_dir p)" --json
    assert_eq '[["g1", "items", "down", ["p"]]]' "$(json_get "$HS_OUT" '[[d["node"], d["rule"], d["direction"], d["owners"]] for d in j["differ"]]')" \
        "--json: the differing scope"
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    assert_eq "differs" "$(json_get "$HS_OUT" '[n["verdict"] for n in j["verify"]["nodes"] if n["node"] == "g1"][0]')" \
        "status --json shows the last verdict per node"
    assert_eq "in sync" "$(json_get "$HS_OUT" '[n["verdict"] for n in j["verify"]["nodes"] if n["node"] == "c1"][0]')" \
        "and the nodes in sync"

    expect_exit 0 hs verify -d "$(hr_dir p)" --repair
    assert_contains "$(grep '^g1 .* items ' <<<"$HS_OUT" | head -1)" "reconciled: 1 object applied" "says what it repaired"
    assert_contains "$HS_OUT" "after repair (1 round):" "verifies again"
    expect_exit 0 hs get -d "$(hr_dir g1)" "$g" --json
    assert_not_contains "$HS_OUT" '"corrupt"' "the object is repaired at g1"
    expect_exit 0 hs verify -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "3 in sync" "in sync again"

    # up: c1's copy of g1's computer, which c1 also passes up to p
    local pc
    pc=$(hs export -d "$(hr_dir g1)" --class resource.computer | grep G1 | json_get "$(cat)" 'j["guid"]')
    expect_exit 0 "$HSYNC_CORRUPT" -d "$(hr_dir c1)" "$pc"
    expect_exit 1 hs verify -d "$(hr_dir p)" --json
    assert_eq '[["c1", "resources", "up", ["g1"]], ["g1", "resources", "up", ["g1"]]]' \
        "$(json_get "$HS_OUT" 'sorted([d["node"], d["rule"], d["direction"], d["owners"]] for d in j["differ"])')" \
        "both links that carry it up differ, for owner g1"
    expect_exit 0 hs verify -d "$(hr_dir p)" --repair --json
    assert_eq "true" "$(json_get "$HS_OUT" 'j["after_repair"]["all_in_sync"]')" "in sync after the repair rounds"
    expect_exit 0 hs get -d "$(hr_dir c1)" "$pc" --json
    assert_not_contains "$HS_OUT" '"corrupt"' "c1's copy repaired from g1"
    expect_exit 0 hs get -d "$(hr_dir p)" "$pc" --json
    assert_not_contains "$HS_OUT" '"corrupt"' "p's copy is g1's too"
}

test_not_reached() {
    hr_stop c2
    wait_for 10 hr_state_is p c2 down
    expect_exit 1 hs verify -d "$(hr_dir p)" --json
    assert_eq '["c2"]' "$(json_get "$HS_OUT" 'j["not_reached"]')" "a child that is down is not reached"
    assert_eq "the link to it is down" "$(node_field "$HS_OUT" c2 '["why"]')" "and why"
    assert_eq "in sync" "$(node_field "$HS_OUT" g1 '["verdict"]')" "the others still answer"
    # a grandchild that stops answering while its parent still counts it up:
    # the deadline, not a hang
    hr_kill9 g1
    local start=$SECONDS
    expect_exit 1 hs verify -d "$(hr_dir p)" --timeout 4
    assert_contains "$(grep '^g1 ' <<<"$HS_OUT")" "NOT REACHED" "the stopped grandchild is not reached"
    assert_contains "$(grep '^c2 ' <<<"$HS_OUT")" "NOT REACHED" "nor the stopped child"
    assert_contains "$(grep '^c1 ' <<<"$HS_OUT" | head -1)" "in sync" "c1 answers for itself"
    if [ $((SECONDS - start)) -le 6 ]; then pass; else fail "verify took $((SECONDS - start)) s with --timeout 4"; fi
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    assert_eq "not reached" "$(json_get "$HS_OUT" '[n["verdict"] for n in j["verify"]["nodes"] if n["node"] == "g1"][0]')" \
        "status shows g1 not reached"
    hr_stop p
    hr_start p
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    assert_eq "not reached" "$(json_get "$HS_OUT" '[n["verdict"] for n in j["verify"]["nodes"] if n["node"] == "g1"][0]')" \
        "the last verdict is kept over a restart of the broker"
    expect_exit 2 hs verify -d "$(hr_dir p)" --timeout 0
    expect_exit 2 hs verify -d "$(hr_dir p)" extra
}

setup
test_in_sync
test_differs_and_repair
test_not_reached
hr_done
