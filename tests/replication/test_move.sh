#!/usr/bin/env bash
# A node moved to another parent (issue 17, item 3): g under c1 leaves and
# joins c2. c1 (and every ancestor that no longer has g in its subtree)
# drops what it held only because of g's branch; p, which still has g below
# it through c2, keeps g's current objects, and g's later edits reach p via
# c2. Tree: p -> c1 -> g, p -> c2.
. "$(dirname "$0")/lib_repl.sh"

# hr_leave NAME: hsync hierarchy leave on NAME.
hr_leave() { expect_exit 0 "$HSYNC" hierarchy leave -d "$(hr_dir "$1")"; }
# subtree_has NAME CHILD NODE: NAME's view of CHILD's subtree names NODE.
subtree_has() {
    json_get "$(hr_show "$1")" '"yes" if any(r["name"] == "'"$3"'" for l in j["links"] if l["name"] == "'"$2"'" for r in l.get("subtree", [])) else exit(1)'
}
subtree_lacks() { ! subtree_has "$@"; }

test_moved_node() {
    local n
    for n in p c1 c2 g; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p c1
    hr_link p c2
    hr_link c1 g
    wait_for 10 subtree_has p c1 g

    local r1 r2 r3
    r1=$(hr_put g resource.computer '{"name":"pc1"}' --key serial=MV-1)
    r2=$(hr_put g resource.computer '{"name":"pc2"}' --key serial=MV-2)
    r3=$(hr_put g resource.computer '{"name":"pc3"}' --key serial=MV-3)
    hr_put g dataclass.inventory '{"ram":8}' --resource "$r1" >/dev/null
    hr_sync g --rule resources
    hr_sync c1 --rule resources
    assert_eq "4" "$(hr_count p "" g)" "p holds g's 3 resources and 1 row"
    assert_eq "4" "$(hr_count c1 "" g)" "c1 holds them too"

    # g moves: leaves c1, edits one resource, removes another, joins c2.
    hr_leave g
    wait_for 10 hr_count_is 0 c1 "" g
    hr_put g resource.computer '{"name":"pc1-edited"}' --guid "$r1" --key serial=MV-1 >/dev/null
    expect_exit 0 "$HSYNC" rm -d "$(hr_dir g)" "$r3"
    hr_link c2 g
    wait_for 10 subtree_has p c2 g
    hr_sync g --rule resources
    hr_sync c2 --rule resources
    assert_eq "0" "$(hr_count c1 "" g)" "c1 holds none of g's objects"
    wait_for 10 hr_same_digest g c2 "" g
    wait_for 10 hr_same_digest g p "" g
    assert_eq "3" "$(hr_count p "" g)" "p holds g's current objects (2 resources, 1 row)"
    assert_eq "$(hr_digest g resource. g)" "$(hr_digest p resource. g)" "digest --owner g equal on g and p"
    assert_eq "$(hr_digest g resource. g)" "$(hr_digest c2 resource. g)" "digest --owner g equal on g and c2"

    # Later edits reach p through c2; c1 stays clean.
    hr_put g resource.computer '{"name":"pc2-later"}' --guid "$r2" --key serial=MV-2 >/dev/null
    hr_sync g --rule resources
    hr_sync c2 --rule resources
    assert_eq "$(hr_digest g "" g)" "$(hr_digest p "" g)" "g's later edit reaches p via c2"
    hr_sync p --rule resources
    hr_sync c1 --rule resources
    assert_eq "0" "$(hr_count c1 "" g)" "c1 still holds none of g's objects"
    assert_contains "$(grep 'event=branch-dropped' "$(hr_log c1)")" "g" "c1 logs the drop"

    # g moves back under c1, which had replicated with it before: what g
    # held only because of c2 (c2's own policy and computer) goes, as the
    # first runs after a link is made again are complete ones.
    hr_put c2 item.policy '{"name":"c2-policy"}' >/dev/null
    hr_put c2 resource.computer '{"name":"c2-pc"}' --key serial=C2-1 >/dev/null
    hr_sync c2 --rule items
    hr_sync c2 --rule resources
    assert_eq "1" "$(hr_count g item. c2)" "g holds c2's policy while under c2"
    assert_eq "1" "$(hr_count g resource. c2)" "and c2's computer"
    hr_leave g
    hr_link c1 g
    wait_for 10 subtree_has p c1 g
    hr_sync c1
    assert_eq "0" "$(hr_count g item. c2)" "g no longer holds c2's policy"
    assert_eq "0" "$(hr_count g resource. c2)" "nor c2's computer"
    hr_sync g --rule resources
    hr_sync c1 --rule resources
    wait_for 10 hr_same_digest g p "" g
    assert_eq "0" "$(hr_count c2 "" g)" "c2 dropped g's objects"
    assert_eq "$(hr_digest g "" g)" "$(hr_digest c1 "" g)" "c1 holds g's current objects again"
}

# The parent removes the child (remove-child): the same drop, and p, which
# has g nowhere else below it, drops g's objects too.
test_removed_child() {
    local n
    for n in q d e; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link q d
    hr_link d e
    wait_for 10 subtree_has q d e
    hr_put e resource.computer '{"name":"e1"}' --key serial=RM-1 >/dev/null
    hr_sync e --rule resources
    hr_sync d --rule resources
    assert_eq "1" "$(hr_count q resource. e)" "q holds e's resource"
    expect_exit 0 "$HSYNC" hierarchy remove-child -d "$(hr_dir d)" e
    wait_for 10 hr_count_is 0 d resource. e
    wait_for 10 hr_count_is 0 q resource. e
    assert_eq "1" "$(hr_count e resource. e)" "e keeps its own resource"
}

test_moved_node
test_removed_child
hr_done
