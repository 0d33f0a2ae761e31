#!/usr/bin/env bash
# A standalone run declares at its start the owners of what it carries; the
# destination takes only objects of those owners. An object of an owner new
# to the source that arrives while a differential run streams (here: the
# parent's first item, sent down mid-run) must wait for the next run, not
# go out undeclared and be refused (the checker's 'standalone' family,
# issue 17: "the destination of an item. rule refuses one object").
. "$(dirname "$0")/../replication/lib_repl.sh"

N=${HSYNC_OWNERS_N:-60000}

# started: the destination holds some of src's items (the run streams the
# rest; were it already over, the parent's item would simply go with the
# next run and the test would prove less, not fail)
started() {
    local n
    n=$(hr_count dst item. src) || return 1
    [ "$n" -gt 0 ]
}

# refusals: receive log lines of dst that report refused objects
refusals() { hr_log_count dst 'refused [1-9]'; }

test_new_owner_mid_run() {
    local f g pid rc out
    for n in p src dst; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p src
    expect_exit 0 hs standalone add -d "$(hr_dir src)" --name it --to "$(hs invite -d "$(hr_dir dst)")" \
        --class item. --every 1h
    hr_sync src --rule it
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" "$N" OWN
    hr_import src "$f"
    # a differential run of N items to dst, and meanwhile p's first item
    out=$(hs_tmp)/sync.json
    "$HSYNC" sync -d "$(hr_dir src)" --rule it --json --timeout 120 >"$out" 2>&1 &
    pid=$!
    wait_for 60 started
    g=$(hr_put p item.policy '{"name":"from the parent"}')
    hr_sync p --rule items
    expect_exit 0 hs get -d "$(hr_dir src)" "$g"
    rc=0
    wait "$pid" || rc=$?
    assert_eq "0" "$rc" "the standalone sync exits 0 ($(tail -c 600 "$out"))"
    assert_eq "0" "$(refusals)" "nothing refused at dst ($(grep -m1 'refused [1-9]' "$(hr_log dst)"))"
    assert_eq "$N" "$(hr_count dst item. src)" "src's items all at dst"
    # the parent's item goes with the next run, declared
    hr_sync src --rule it
    expect_exit 0 hs get -d "$(hr_dir dst)" "$g"
    assert_eq "0" "$(refusals)" "nothing refused by the next run"
    assert_eq "$(hr_digest src item.)" "$(hr_digest dst item.)" "dst equal to src for items"
}

test_new_owner_mid_run
hr_done
