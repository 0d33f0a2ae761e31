#!/usr/bin/env bash
# Node names are unique across a hierarchy (issue 17, item 6). A join
# anywhere is checked against the whole tree (the joining node and every
# node below it, asked up to the root, which alone knows every name) and
# refused with an error that says where the name is used; a parent that
# refuses a child's runs says so in its status.
. "$(dirname "$0")/lib_broker.sh"

hs() { "$HSYNC" "$@"; }

# add_child_refused PARENT CHILD-FOLDER: add-child fails, error in HS_ERR.
add_child_refused() {
    local tok
    tok=$(hb_invite "$2")
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir "$1")" "$tok"
}
no_links() { hb_links_are "$1" ""; }

test_duplicate_names_refused() {
    # r -> a -> c1, r -> b
    local n
    for n in r a b c1; do
        hb_node "$n"
        hb_start "$n"
    done
    hb_link r a
    hb_link r b
    hb_link a c1
    # c1's first runs, right after the join (a asked the root about c1's
    # name first): its link comes up with a's first heartbeat, sent once a
    # took the link, so a takes them at once (it used to drop them as from
    # a peer not linked, and c1's sync waited 20 s for the run to start)
    local t0=$SECONDS
    expect_exit 0 "$HSYNC" sync -d "$(hb_dir c1)" --timeout 15
    assert_eq "true" "$([ $((SECONDS - t0)) -lt 10 ] && echo true || echo false)" \
        "c1's first sync after the join answered at once ($((SECONDS - t0)) s)"
    assert_eq "0" "$(hb_log_count a "not linked")" "a dropped no frame of c1"
    wait_for 10 hb_subtree_is r a c1
    wait_for 10 hb_path_is b r

    # A second node named c1 joins under b: only the root knows that c1 is
    # under a.
    hb_node c1x c1
    hb_start c1x
    add_child_refused b c1x
    assert_contains "$HS_ERR" "the name 'c1' is already used in this hierarchy"
    assert_contains "$HS_ERR" "under 'a'" "the error says where the name is used"
    assert_eq "child:a child:b" "$(hb_links r)" "r is unchanged"
    assert_eq "parent:r" "$(hb_links b)" "b has no new child"
    wait_for 10 no_links c1x # it had recorded b as its parent: gone again
    hb_log_has b "event=join-refused"

    # The same at the root itself, and for a direct child's name.
    add_child_refused r c1x
    assert_contains "$HS_ERR" "the name 'c1' is already used in this hierarchy"
    hb_node bx b
    hb_start bx
    add_child_refused a bx
    assert_contains "$HS_ERR" "'b' is the child of node 'r'"
    # An ancestor's name below: refused on the joining node's side too.
    hb_node rx r
    hb_start rx
    add_child_refused c1 rx
    assert_contains "$HS_ERR" "the name 'r' is already used"
    # Another node named like the parent itself (its own keys): the name is
    # in use, and where, not "cannot be its own child".
    hb_node ax2 a
    hb_start ax2
    add_child_refused a ax2
    assert_contains "$HS_ERR" "the name 'a' is already used in this hierarchy"
    assert_contains "$HS_ERR" "under 'r'" "the error says where the name is used"
    assert_eq "child:c1 parent:r" "$(hb_links a)" "a has no new child"

    # Two trees joined: s -> (a node named a). s itself is a new name, the
    # name below it is taken: refused, with the name that collides.
    hb_node s
    hb_node ax a
    hb_start s
    hb_start ax
    hb_link s ax
    wait_for 10 hb_state_is s a up
    add_child_refused b s
    assert_contains "$HS_ERR" "the name 'a' is already used in this hierarchy"
    assert_contains "$HS_ERR" "'a' is the child of node 'r'"
    wait_for 10 hb_links_are s "child:a"

    # A unique name joins anywhere, and its subtree with it.
    hb_node u
    hb_start u
    hb_link c1 u
    wait_for 10 hb_state_is c1 u up
    wait_for 10 hb_subtree_is r a "c1,u"
    assert_eq "child:a child:b" "$(hb_links r)"
}

# A parent that refuses a child's runs says so in status and history. A node
# restored from a backup taken before its child moved away reports that
# child below it again, while the child's new parent does too: the root
# refuses both branches' runs up (it cannot tell which is right) and says so.
test_refused_runs_are_a_problem() {
    local n backup
    for n in p k1 k2 g; do
        hb_node "$n"
        hb_start "$n"
    done
    hb_link p k1
    hb_link p k2
    hb_link k1 g
    wait_for 10 hb_subtree_is p k1 g
    backup=$(hs_tmp)/k1.backup
    hb_stop k1
    cp -a "$(hb_dir k1)" "$backup" || fail "cp -a the backup"
    hb_start k1
    wait_for 10 hb_state_is p k1 up
    expect_exit 0 hs hierarchy leave -d "$(hb_dir g)"
    wait_for 10 hb_subtree_is p k1 ""
    hb_link k2 g
    wait_for 10 hb_subtree_is p k2 g
    expect_exit 0 hs sync -d "$(hb_dir k2)" --rule resources
    expect_exit 0 hs status -d "$(hb_dir p)"
    assert_contains "$HS_OUT" "no problems"

    # k1 comes back from the backup, with g below it.
    hb_stop k1
    rm -rf "$(hb_dir k1)" && cp -a "$backup" "$(hb_dir k1)" || fail "restore k1"
    hb_start k1
    wait_for 10 hb_subtree_is p k1 g
    expect_exit 1 hs sync -d "$(hb_dir k2)" --rule resources
    assert_contains "$HS_OUT" "claims node 'g'" "the child hears why"
    expect_exit 0 hs status -d "$(hb_dir p)"
    assert_not_contains "$HS_OUT" "no problems" "status on the parent reports the refusal"
    assert_contains "$HS_OUT" "problem"
    assert_contains "$HS_OUT" "claims node 'g'"
    expect_exit 0 hs history -d "$(hb_dir p)"
    assert_contains "$HS_OUT" "claims node 'g'" "and history"
}

test_duplicate_names_refused
test_refused_runs_are_a_problem
hb_done
