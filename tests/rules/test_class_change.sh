#!/usr/bin/env bash
# A guid's class never changes: `put` or `import` of a guid this node holds
# (or deleted) under another class is refused with a sentence that says what
# to do. And a run whose receiver refused objects is never ok: `sync` exits
# 1 naming the object and why, history records the failure, and `trace`
# shows the object refused by that peer, not acknowledged.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_link p c
    hr_sync p
}

cls() { json_get "$("$HSYNC" get -d "$(hr_dir "$1")" "$2" --json)" 'j["class"]'; }

test_put_refuses_class_change() {
    local g
    g=$(hr_put p item.policy '{"name":"Patch Tuesday"}')
    hr_sync p --rule items
    assert_eq "item.policy" "$(cls c "$g")" "c holds the policy"
    expect_exit 1 hs put -d "$(hr_dir p)" --class resource.computer --guid "$g" --key serial=CC-1 '{"name":"pc"}'
    assert_contains "$HS_ERR" "$g is an item.policy; a guid's class cannot change" "put says why"
    assert_contains "$HS_ERR" "new guid" "put says what to do"
    printf '{"class":"resource.computer","guid":"%s","keys":{"serial":"CC-1"},"body":{"name":"pc"}}\n' "$g" >"$HR_T/cc.ndjson"
    expect_exit 1 hs import -d "$(hr_dir p)" "$HR_T/cc.ndjson"
    assert_contains "$HS_ERR" "a guid's class cannot change" "import says why"
    assert_eq "item.policy" "$(cls p "$g")" "p still holds the policy"
    # deleted: still refused (a copy elsewhere may not have the delete yet)
    expect_exit 0 hs rm -d "$(hr_dir p)" "$g"
    expect_exit 1 hs put -d "$(hr_dir p)" --class resource.computer --guid "$g" '{"name":"pc"}'
    assert_contains "$HS_ERR" "was an item.policy (deleted)" "a deleted guid keeps its class"
    hr_sync p --rule items
    wait_for 10 hr_is_deleted c "$g"
}

test_refused_run_fails() {
    local g=c5000000-0000-4000-8000-000000000001 g2=c5000000-0000-4000-8000-000000000002 out g1
    # the same guids made on two nodes under two classes: c's computers, p's
    # policies (both before one run: a failed run is retried on its own)
    for g1 in "$g" "$g2"; do
        expect_exit 0 hs put -d "$(hr_dir c)" --class resource.computer --guid "$g1" --key "serial=$g1" '{"name":"pc"}'
        expect_exit 0 hs put -d "$(hr_dir p)" --class item.policy --guid "$g1" '{"name":"clash"}'
    done
    expect_exit 1 hs sync -d "$(hr_dir p)" --rule items --json
    out=$HS_OUT
    assert_eq "false" "$(hr_run ok c items down sent "$out")" "the items run to c failed"
    assert_contains "$(hr_run error c items down sent "$out")" "c refused 2 objects: c5000000-0000-4000-8000-00000000000" "sync names the objects"
    assert_contains "$(hr_run error c items down sent "$out")" "a guid's class cannot change" "and why"
    for g1 in "$g" "$g2"; do
        expect_exit 0 hs trace -d "$(hr_dir p)" "$g1" --json
        assert_eq "refused" "$(json_get "$HS_OUT" '[r["state"] for r in j["peers"] if r["peer"] == "c" and r["rule"] == "items"][0]')" \
            "trace: refused by c, not acknowledged"
        assert_contains "$(json_get "$HS_OUT" '[r["why"] for r in j["peers"] if r["peer"] == "c" and r["rule"] == "items"][0]')" \
            "resource.computer here" "trace says why"
        assert_eq "resource.computer" "$(cls c "$g1")" "c keeps its computer"
    done
    expect_exit 0 hs history -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "c refused 2 objects" "history records the refusal"
    expect_exit 0 hs trace -d "$(hr_dir p)" "$g"
    assert_contains "$HS_OUT" "refused" "trace's table says refused"
    wait_for 10 hr_log_more c "objects refused" 0
}

test_refusal_keeps_failing() {
    # issue 17: the next runs re-send what c refused (unchanged since) and fail
    # again: never "ok" and "no problems" while c still refuses it
    local i
    for i in 1 2; do
        expect_exit 1 hs sync -d "$(hr_dir p)" --rule items --json
        assert_eq "false" "$(hr_run ok c items down sent "$HS_OUT")" "run $i after the refusal fails too"
        assert_contains "$(hr_run error c items down sent "$HS_OUT")" "c refused 2 objects" "and says why"
    done
    assert_contains "$(hr_run error c items down sent "$HS_OUT")" "arrived as an item.policy" "grammar: an item"
    expect_exit 0 hs status -d "$(hr_dir p)"
    assert_not_contains "$HS_OUT" "no problems" "status on p counts the refusal"
    expect_exit 0 hs history -d "$(hr_dir c)" --json
    assert_eq "false" "$(json_get "$HS_OUT" '[h["ok"] for h in j if h["role"] == "received" and h["peer"] == "p" and h["rule"] == "items"][0]')" \
        "c's own record of the run it refused objects in is not ok"
    # no repair reconciles a guid held under two classes: verify says what to do
    expect_exit 1 hs verify -d "$(hr_dir p)" --repair
    assert_contains "$HS_ERR" "cannot be reconciled" "verify --repair does not claim it can"
    assert_contains "$HS_ERR" "new guid" "and says what to do instead"
}

setup
test_put_refuses_class_change
test_refused_run_fails
test_refusal_keeps_failing
hr_done
