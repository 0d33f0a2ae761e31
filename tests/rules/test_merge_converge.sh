#!/usr/bin/env bash
# After a duplicate merge or an ownership move, every node holds exactly
# what the hierarchy's scope gives it, identical everywhere it is held: the
# survivor (the guid registered first, by recorded registration time, not
# by guid order) with the newest copy's content on the nodes of its owner's
# side, and nothing at all on a node whose scope no longer reaches the
# owner (it dropped its stale copy). On a 1x2 tree (p: n1, n2) and on a
# 3-level tree (P: C1, C2; C1: G), with duplicates registered in different
# branches and at different levels.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    local n
    for n in p n1 n2 P C1 C2 G; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p n1
    hr_link p n2
    hr_link P C1
    hr_link P C2
    hr_link C1 G
    hr_sync p
    hr_sync P
}

get_json() { "$HSYNC" get -d "$(hr_dir "$1")" "$2" --json 2>/dev/null; }
field() { json_get "$(get_json "$1" "$2" || echo '{}')" "j.get('deleted') and 'deleted' or j$3" 2>/dev/null; }
live() { ! hr_is_deleted "$1" "$2"; }
gone() { hr_is_deleted "$1" "$2"; }
# serials NODE KEY: live resources of NODE with resource key serial=KEY
serials() {
    "$HSYNC" export -d "$(hr_dir "$1")" --class resource. |
        "$HS_PY" -S -c 'import json,sys; print(sum(1 for l in sys.stdin if json.loads(l).get("keys",{}).get("serial") == sys.argv[1]))' "$2"
}
serials_are() { [ "$(serials "$1" "$2")" == "$3" ]; }

# converged OWNER NODE...: the resources and rows of OWNER have one digest on
# every NODE listed (the nodes that hold them).
converged() {
    local owner=$1 first=$2 n
    shift 2
    for n in "$@"; do
        hr_same_digest "$first" "$n" resource. "$owner" || return 1
        hr_same_digest "$first" "$n" dataclass. "$owner" || return 1
    done
}
# holds_none OWNER NODE...: no resource of OWNER on any NODE listed.
holds_none() {
    local owner=$1 n
    shift
    for n in "$@"; do
        hr_count_is 0 "$n" resource. "$owner" || return 1
    done
}

# Item 1 of issue 17 on 1x2. n1 registers first, under a guid larger in byte
# order than n2's (guids from agents are random v4: their order says nothing).
test_duplicate_1x2() {
    local ga=f1000000-0000-4000-8000-00000000000a gb=01000000-0000-4000-8000-00000000000b rb
    expect_exit 0 hs put -d "$(hr_dir n1)" --class resource.computer --guid "$ga" --key serial=DUP-1 '{"name":"pcA"}'
    expect_exit 0 hs put -d "$(hr_dir n2)" --class resource.computer --guid "$gb" --key serial=DUP-1 '{"name":"pcB"}'
    rb=$(hr_put n2 dataclass.hardware '{"cpu":"arm"}' --resource "$gb")
    hr_sync n1 --rule resources
    hr_sync n2 --rule resources
    # p: ga was registered first and survives, with n2's (newer) content
    assert_eq "pcB" "$(field p "$ga" '["body"]["name"]')" "p: survivor has the newest content"
    assert_eq "n2" "$(field p "$ga" '["owner"]')" "p: owned by the newest copy's node"
    assert_deleted p "$gb" "p: the later registration is merged away"
    expect_exit 0 hs events -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "registered first" "events say which was registered first"
    # n2 makes the same merge; n1's scope no longer reaches the resource
    wait_for 10 gone n2 "$gb"
    wait_for 10 live n2 "$ga"
    wait_for 10 gone n1 "$ga"
    assert_eq "$ga" "$(field n2 "$rb" '["resource"]')" "n2: the row follows the survivor"
    hr_sync n1
    hr_sync n2
    hr_sync p --complete
    assert_eq "pcB" "$(field n2 "$ga" '["body"]["name"]')" "n2 holds the survivor's content"
    assert_eq "1" "$(serials p DUP-1)" "p: one computer DUP-1"
    assert_eq "1" "$(serials n2 DUP-1)" "n2: one computer DUP-1"
    assert_eq "0" "$(serials n1 DUP-1)" "n1: none (n2's resources are out of its scope)"
    wait_for 10 converged n2 p n2
    holds_none n2 n1 && pass || fail "n1 still holds n2's resources"
    wait_for 10 hr_log_more n1 "event=dropped" 0
}

# Item 2 of issue 17 on 1x2: an agent moves from n1 to n2; n1 keeps nothing.
test_moved_1x2() {
    local g=f2000000-0000-4000-8000-000000000001
    expect_exit 0 hs put -d "$(hr_dir n1)" --class resource.computer --guid "$g" --key serial=MOVE-2 '{"site":"north"}'
    hr_sync n1 --rule resources
    expect_exit 0 hs put -d "$(hr_dir n2)" --class resource.computer --guid "$g" --key serial=MOVE-2 '{"site":"south"}'
    hr_sync n2 --rule resources
    assert_eq "n2" "$(field p "$g" '["owner"]')" "p: the most recent registration owns it"
    wait_for 10 gone n1 "$g"
    hr_sync n1
    hr_sync p --complete
    assert_eq "0" "$(serials n1 MOVE-2)" "n1 dropped the moved resource"
    wait_for 10 converged n2 p n2
    holds_none n2 n1 && pass || fail "n1 still holds n2's resources"
    # an older claim from n1 is refused: n1 again holds nothing
    printf '{"class":"resource.computer","guid":"%s","keys":{"serial":"MOVE-2"},"mtime":"2020-01-01T00:00:00Z","body":{"site":"stale"}}\n' "$g" >"$HR_T/stale.ndjson"
    hr_import n1 "$HR_T/stale.ndjson"
    hr_sync n1 --rule resources
    assert_eq "south" "$(field p "$g" '["body"]["site"]')" "p keeps n2's copy"
    wait_for 10 gone n1 "$g"
    wait_for 10 converged n2 p n2
}

# 3-level tree. Duplicates in different branches (G under C1, and C2): G
# registers first, C2's copy is newer: the survivor is G's guid, owned by
# C2; C1 and G keep nothing of it.
test_duplicate_branches() {
    local gg=f3000000-0000-4000-8000-00000000000a gc=03000000-0000-4000-8000-00000000000b
    expect_exit 0 hs put -d "$(hr_dir G)" --class resource.computer --guid "$gg" --key serial=DUP-3 '{"name":"on-g"}'
    expect_exit 0 hs put -d "$(hr_dir C2)" --class resource.computer --guid "$gc" --key serial=DUP-3 '{"name":"on-c2"}'
    hr_sync G --rule resources
    hr_sync C1 --rule resources
    hr_sync C2 --rule resources
    assert_eq "on-c2" "$(field P "$gg" '["body"]["name"]')" "P: G's guid survives with C2's content"
    assert_eq "C2" "$(field P "$gg" '["owner"]')" "P: C2 owns it"
    wait_for 10 live C2 "$gg"
    wait_for 10 gone C2 "$gc"
    wait_for 10 gone C1 "$gg"
    wait_for 10 gone G "$gg"
    hr_sync G
    hr_sync C1
    hr_sync C2
    hr_sync P --complete
    hr_sync C1 --complete
    wait_for 10 converged C2 P C2
    holds_none C2 C1 G && pass || fail "C1 or G still hold C2's resources"
    assert_eq "1" "$(serials P DUP-3)" "P: one computer DUP-3"
    assert_eq "0" "$(serials G DUP-3)" "G: none"
}

# 3-level tree, different levels of one branch: C1 registers first, G later
# with newer content: decided on C1; the survivor is C1's guid with G's
# content, owned by G, the same on G, C1 and P; C2 never holds it.
test_duplicate_levels() {
    local gc1=f4000000-0000-4000-8000-00000000000a gg=04000000-0000-4000-8000-00000000000b
    expect_exit 0 hs put -d "$(hr_dir C1)" --class resource.computer --guid "$gc1" --key serial=DUP-4 '{"name":"on-c1"}'
    expect_exit 0 hs put -d "$(hr_dir G)" --class resource.computer --guid "$gg" --key serial=DUP-4 '{"name":"on-g"}'
    hr_sync G --rule resources
    assert_eq "on-g" "$(field C1 "$gc1" '["body"]["name"]')" "C1: its guid survives with G's content"
    wait_for 10 gone G "$gg"
    wait_for 10 live G "$gc1"
    hr_sync C1
    hr_sync G
    hr_sync P
    wait_for 10 converged G G C1 P
    assert_eq "G" "$(field P "$gc1" '["owner"]')" "P: G owns the survivor"
    assert_eq "1" "$(serials P DUP-4)" "P: one computer DUP-4"
    assert_eq "1" "$(serials G DUP-4)" "G: one computer DUP-4"
    assert_eq "0" "$(serials C2 DUP-4)" "C2: none (another branch's)"
    # and an agent of G's moves to C2: G and C1 drop it, P and C2 agree
    expect_exit 0 hs put -d "$(hr_dir C2)" --class resource.computer --guid "$gc1" --key serial=DUP-4 '{"name":"moved-to-c2"}'
    hr_sync C2 --rule resources
    assert_eq "C2" "$(field P "$gc1" '["owner"]')" "P: C2 owns it after the move"
    wait_for 10 gone C1 "$gc1"
    wait_for 10 gone G "$gc1"
    hr_sync G
    hr_sync C1
    hr_sync P --complete
    wait_for 10 converged C2 P C2
    holds_none C2 C1 G && pass || fail "C1 or G still hold C2's resources"
    wait_for 10 converged G G C1 P
}

setup
test_duplicate_1x2
test_moved_1x2
test_duplicate_branches
test_duplicate_levels
hr_done
