#!/usr/bin/env bash
# The hierarchy with real brokers: one parent and six children linked by
# invites, the child limit and its override, second parent and self-links
# refused, leaving, links surviving kill -9 and restarts, and a plain answer
# when no broker runs.
. "$(dirname "$0")/lib_broker.sh"

hs() { "$HSYNC" "$@"; }

test_no_broker_says_so() {
    hb_node lone
    hb_node other
    local tok
    tok=$(hb_invite lone)
    assert_contains "$tok" "hsync1." "invite works without a broker"
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir other)" "$tok"
    assert_contains "$HS_ERR" "hsync: hierarchy: no broker is running for $(hb_dir other)"
    assert_contains "$HS_ERR" "hsync serve -d"
    expect_exit 1 hs hierarchy remove-child -d "$(hb_dir other)" lone
    assert_contains "$HS_ERR" "no broker is running"
    expect_exit 1 hs hierarchy leave -d "$(hb_dir other)"
    assert_contains "$HS_ERR" "no broker is running"
    expect_exit 0 hs hierarchy show -d "$(hb_dir other)" --json
    assert_eq "not running" "$(json_get "$HS_OUT" 'j["broker"]')"
    assert_eq "0" "$(json_get "$HS_OUT" 'len(j["links"])')"
}

test_six_children_all_up() {
    hb_node p
    hb_start p
    local i
    for i in 1 2 3 4 5 6; do
        hb_node "c$i"
        hb_start "c$i"
        hb_link p "c$i"
        assert_contains "$HS_OUT" "added child 'c$i' at tcp://127.0.0.1:$(hb_port "c$i")"
    done
    wait_for 10 hb_all_up p 6
    assert_eq "child:c1 child:c2 child:c3 child:c4 child:c5 child:c6" "$(hb_links p)"
    for i in 1 2 3 4 5 6; do
        wait_for 10 hb_state_is "c$i" p up
        assert_eq "parent:p" "$(hb_links "c$i")" "c$i links"
        wait_for 5 hb_path_is "c$i" p
    done
    # A child never learns its siblings.
    assert_not_contains "$(hb_show c1)" '"c2"' "c1 knows c2"
    expect_exit 0 hs hierarchy show -d "$(hb_dir p)"
    assert_contains "$HS_OUT" "node:      p ("
    assert_contains "$HS_OUT" "child    c6"
}

test_seventh_child_refused() {
    hb_node c7
    hb_start c7
    local tok
    tok=$(hb_invite c7)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir p)" "$tok"
    assert_eq "hsync: hierarchy: this node already has 6 children, the recommended maximum; pass --allow-more-children to override" "$HS_ERR"
    assert_eq "child:c1 child:c2 child:c3 child:c4 child:c5 child:c6" "$(hb_links p)" "p after refusal"
    assert_eq "" "$(hb_links c7)" "c7 after refusal"
    # The refused token was never presented: it still works, with the override.
    expect_exit 0 hs hierarchy add-child -d "$(hb_dir p)" --allow-more-children "$tok"
    assert_contains "$HS_OUT" "added child 'c7'"
    wait_for 10 hb_all_up p 7
    wait_for 10 hb_state_is c7 p up
    assert_contains "$(cat "$(hb_log p)")" "adding child 7, above the recommended maximum of 6"
}

test_second_parent_refused() {
    hb_node q
    hb_start q
    local tok
    tok=$(hb_invite c1)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir q)" "$tok"
    assert_eq "hsync: hierarchy: 'c1' refused the link: this node already has a parent ('p'); run 'hsync hierarchy leave' on it first" "$HS_ERR"
    assert_eq "" "$(hb_links q)" "q after refusal"
    assert_eq "parent:p" "$(hb_links c1)" "c1 after refusal"
    wait_for 5 hb_state_is c1 p up
}

test_self_as_child_refused() {
    local tok
    tok=$(hb_invite p)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir p)" "$tok"
    assert_eq "hsync: hierarchy: a node cannot be its own child" "$HS_ERR"
    tok=$(hb_invite q)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir q)" --allow-more-children "$tok"
    assert_eq "hsync: hierarchy: a node cannot be its own child" "$HS_ERR"
    assert_eq "" "$(hb_links q)"
}

test_leave_removes_both_sides() {
    expect_exit 0 hs hierarchy leave -d "$(hb_dir c7)"
    assert_eq "left parent 'p'; its key is no longer trusted" "$HS_OUT"
    assert_eq "" "$(hb_links c7)" "c7 after leave"
    wait_for 10 hb_all_up p 6
    assert_eq "child:c1 child:c2 child:c3 child:c4 child:c5 child:c6" "$(hb_links p)"
    wait_for 5 hb_log_has p "the child removed the link; its key is revoked"
    expect_exit 1 hs hierarchy leave -d "$(hb_dir c7)"
    assert_eq "hsync: hierarchy: this node has no parent" "$HS_ERR"
    # The parent has forgotten it.
    expect_exit 1 hs hierarchy remove-child -d "$(hb_dir p)" c7
    assert_contains "$HS_ERR" "'c7' is not a child of this node"
}

test_links_survive_kill9_and_restart() {
    hb_kill9 c1
    wait_for 10 hb_state_is p c1 down
    wait_for 5 hb_state_is p c2 up # siblings stay up
    # Offline, the dead child still has its link on disk.
    expect_exit 0 hs hierarchy show -d "$(hb_dir c1)" --json
    assert_eq "not running" "$(json_get "$HS_OUT" 'j["broker"]')"
    assert_eq "parent:p:unknown" "$(json_get "$HS_OUT" '",".join(l["role"]+":"+l["name"]+":"+l["state"] for l in j["links"])')"
    hb_start c1
    wait_for 10 hb_state_is p c1 up
    wait_for 10 hb_state_is c1 p up
    wait_for 5 hb_path_is c1 p

    # The parent too: a clean stop, then every link comes back.
    hb_stop p
    wait_for 10 hb_state_is c3 p down
    hb_start p
    wait_for 15 hb_all_up p 6
    local i
    for i in 1 2 3 4 5 6; do
        wait_for 10 hb_state_is "c$i" p up
    done
    assert_eq "0" "$(hb_log_count p "level=error")" "errors in the parent's log"
}

test_no_broker_says_so
test_six_children_all_up
test_seventh_child_refused
test_second_parent_refused
test_self_as_child_refused
test_leave_removes_both_sides
test_links_survive_kill9_and_restart
hb_done
