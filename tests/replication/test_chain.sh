#!/usr/bin/env bash
# A three-level chain a > b > c converges both ways: resources entered at the
# grandchild reach the root through its parent, items from the root reach
# every level, and nothing is sent back where it came from.
. "$(dirname "$0")/lib_repl.sh"

setup() {
    local n
    for n in a b c; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link a b
    hr_link b c
    hr_sync a
    hr_sync b
}

test_up_the_chain() {
    local i
    for i in $(seq 1 25); do
        hr_put c resource.computer '{"host":"c-'"$i"'"}' --key "serial=C-$i" >/dev/null
    done
    hr_put b resource.computer '{"host":"b-1"}' --key serial=B-1 >/dev/null

    hr_sync c
    assert_eq "25" "$(hr_run sent b resources up sent)" "c sends its 25 up to b"
    assert_eq "25" "$(hr_count b resource. c)" "c's resources at b"
    assert_eq "0" "$(hr_count a resource. c)" "not yet at a"

    hr_sync b
    assert_eq "26" "$(hr_run sent a resources up sent)" "b sends its subtree's 26 up to a"
    assert_eq "$(hr_digest c resource. c)" "$(hr_digest a resource. c)" "c's resources: a equals c"
    assert_eq "$(hr_digest b resource. b)" "$(hr_digest a resource. b)" "b's resources: a equals b"
    assert_eq "26" "$(hr_count a resource.)" "resources at a"
    # b's own resource goes down to c (a parent sends down what it owns), c's
    # own are not echoed back
    assert_eq "$(hr_digest b resource. b)" "$(hr_digest c resource. b)" "b's resource at c"
    assert_eq "26" "$(hr_count c resource.)" "c holds its own and b's"
    assert_eq "0" "$(hr_run sent c resources down sent)" "nothing of c's is sent back down"
}

test_down_the_chain() {
    local i
    for i in $(seq 1 30); do
        hr_put a item.policy '{"root":'"$i"'}' >/dev/null
    done
    hr_put a resource.computer '{"host":"a-1"}' --key serial=A-1 >/dev/null
    hr_sync a
    assert_eq "30" "$(hr_run sent b items down sent)" "a sends 30 items to b"
    assert_eq "30" "$(hr_count b item.)" "items at b"
    assert_eq "0" "$(hr_count c item.)" "not yet at c"

    hr_sync b
    assert_eq "30" "$(hr_run sent c items down sent)" "b passes the 30 on to c"
    assert_eq "1" "$(hr_run sent c resources down sent)" "b passes a's resource on to c"
    assert_eq "none" "$(hr_run sent a items up)" "items never go up (no run)"
    local n
    for n in b c; do
        assert_eq "$(hr_digest a item.)" "$(hr_digest "$n" item.)" "items: $n equals a"
        assert_eq "$(hr_digest a item. a)" "$(hr_digest "$n" item. a)" "a's items at $n"
        assert_eq "$(hr_digest a resource. a)" "$(hr_digest "$n" resource. a)" "a's resources at $n"
    done
    assert_eq "30" "$(hr_count c item. a)" "c's items come from a"
}

test_change_and_delete_travel() {
    local g
    g=$(hs export -d "$(hr_dir a)" --class item.policy | head -n1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["guid"])')
    expect_exit 0 hs put -d "$(hr_dir a)" --class item.policy --guid "$g" '{"root":"changed"}'
    local g2
    g2=$(hs export -d "$(hr_dir a)" --class item.policy | sed -n 2p |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["guid"])')
    expect_exit 0 hs rm -d "$(hr_dir a)" "$g2"
    hr_sync a
    assert_eq "differential" "$(hr_run mode b items down sent)" "mode a>b"
    assert_eq "2" "$(hr_run sent b items down sent)" "a>b sends the change and the delete"
    hr_sync b
    assert_eq "2" "$(hr_run sent c items down sent)" "b>c passes both on"
    assert_eq "1" "$(hr_run deleted c items down sent)" "the delete arrives as a delete"
    assert_eq "$(hr_digest a item.)" "$(hr_digest c item.)" "items: c equals a"
    assert_deleted c "$g2" "deleted item at c"
    expect_exit 0 hs get -d "$(hr_dir c)" "$g" --json
    assert_contains "$HS_OUT" "changed" "the change reached c"

    # and a resource change at c reaches a
    local r
    r=$(hs export -d "$(hr_dir c)" --class resource.computer | head -n1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["guid"])')
    expect_exit 0 hs put -d "$(hr_dir c)" --class resource.computer --guid "$r" --key serial=C-1 '{"host":"c-1","ram":1}'
    hr_sync c
    hr_sync b
    assert_eq "$(hr_digest c resource. c)" "$(hr_digest a resource. c)" "c's resources at a after a change"
    assert_eq "25" "$(hr_count a resource. c)" "no duplicate at a"
}

setup
test_up_the_chain
test_down_the_chain
test_change_and_delete_travel
hr_done
