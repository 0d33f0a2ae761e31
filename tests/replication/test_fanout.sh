#!/usr/bin/env bash
# 1x6 over loopback: items put on the parent reach all six children, server
# jobs never leave the parent, resources put on each child reach the parent
# and never the siblings; status shows every (peer, rule) pair.
. "$(dirname "$0")/lib_repl.sh"

KIDS="c1 c2 c3 c4 c5 c6"

setup() {
    hr_node p
    hr_start p
    local c
    for c in $KIDS; do
        hr_node "$c"
        hr_start "$c"
        hr_link p "$c"
    done
}

test_items_reach_all_children() {
    local i
    for i in $(seq 1 20); do
        hr_put p item.policy '{"n":'"$i"',"name":"policy '"$i"'"}' >/dev/null
    done
    hr_put p item.task '{"run":"inventory"}' >/dev/null
    local job
    job=$(hr_put p item.server_job '{"purge":"old events"}')
    assert_eq "22" "$(hr_count p item.)" "items on the parent"

    hr_sync p
    local c
    for c in $KIDS; do
        assert_eq "true" "$(hr_run ok "$c" items down sent)" "items run to $c ok"
        assert_eq "21" "$(hr_run sent "$c" items down sent)" "items sent to $c (server job excluded)"
        assert_eq "21" "$(hr_run applied "$c" items down sent)" "items applied at $c"
    done
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "all runs ok"

    # The parent keeps its server job; the children hold the rest, identical.
    assert_eq "1" "$(hr_count p item.server_job)" "server job on the parent"
    local want
    want=$(hs digest -d "$(hr_dir p)" --class item.policy)
    for c in $KIDS; do
        assert_eq "$want" "$(hs digest -d "$(hr_dir "$c")" --class item.policy)" "item.policy digest at $c"
        assert_eq "$(hr_digest p item.task)" "$(hr_digest "$c" item.task)" "item.task digest at $c"
        assert_eq "0" "$(hr_count "$c" item.server_job)" "server job at $c"
        assert_eq "21" "$(hr_count "$c" item.)" "items at $c"
        expect_exit 1 hs get -d "$(hr_dir "$c")" "$job"
        # what came down is the parent's, not the child's
        assert_eq "21" "$(hr_count "$c" item. p)" "items owned by p at $c"
    done
}

test_resources_go_up_not_sideways() {
    local c i
    for c in $KIDS; do
        for i in 1 2 3; do
            hr_put "$c" resource.computer '{"host":"'"$c-$i"'"}' --key "serial=$c-S$i" >/dev/null
        done
    done
    # Up runs are started from the parent: its sync asks each child for its
    # resources.
    hr_sync p
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "all runs ok"
    for c in $KIDS; do
        assert_eq "3" "$(hr_run applied "$c" resources up received)" "resources from $c applied at p"
        assert_eq "3" "$(hr_count p resource. "$c")" "resources owned by $c at p"
        assert_eq "$(hr_digest "$c" resource. "$c")" "$(hr_digest p resource. "$c")" \
            "digest of $c's resources, $c vs p"
    done
    assert_eq "18" "$(hr_count p resource.)" "resources at p"

    # A further sync (down runs included) never hands a child its siblings' data.
    hr_sync p
    local o
    for c in $KIDS; do
        assert_eq "3" "$(hr_count "$c" resource.)" "resources at $c (only its own)"
        for o in $KIDS; do
            [ "$o" == "$c" ] && continue
            assert_eq "0" "$(hr_count "$c" resource. "$o")" "resources of $o at $c"
        done
        assert_eq "0" "$(hr_run sent "$c" resources down sent)" "resources sent down to $c"
    done

    # A resource owned by the parent goes down to everyone.
    hr_put p resource.computer '{"host":"p-1"}' --key serial=P-S1 >/dev/null
    hr_sync p
    for c in $KIDS; do
        assert_eq "1" "$(hr_run sent "$c" resources down sent)" "parent resource sent to $c"
        assert_eq "$(hr_digest p resource. p)" "$(hr_digest "$c" resource. p)" "p's resources at $c"
        assert_eq "4" "$(hr_count "$c" resource.)" "resources at $c"
    done
}

test_sync_one_peer_one_rule() {
    hr_put p item.policy '{"only":"c3"}' >/dev/null
    hr_sync p --peer c3 --rule items
    assert_eq "1" "$(json_get "$HS_OUT" 'len(j["runs"])')" "one run for --peer c3 --rule items"
    assert_eq "1" "$(hr_run sent c3 items down sent)" "sent to c3"
    assert_eq "22" "$(hr_count c3 item.)" "c3 has it"
    assert_eq "21" "$(hr_count c2 item.)" "c2 does not yet"
    expect_exit 1 hs sync -d "$(hr_dir p)" --peer nobody
    assert_contains "$HS_ERR" "hsync: sync: "
    assert_contains "$HS_ERR" "nobody"
    expect_exit 1 hs sync -d "$(hr_dir p)" --rule nosuchrule
    assert_contains "$HS_ERR" "hsync: sync: "
    assert_contains "$HS_ERR" "nosuchrule"
}

# hsync status --json: replication[] has one entry per (peer, rule) this node
# sends on, with backlog, last_run and next_run.
status_pairs() {
    json_get "$1" '" ".join(sorted("%s/%s" % (r["peer"], r["rule"]) for r in j.get("replication", []) if r.get("role", "sends") == "sends"))'
}

test_status_shows_pairs() {
    hr_sync p
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    local st=$HS_OUT want="" c r
    assert_json "$st" "status --json"
    for c in $KIDS; do
        for r in associations events items packages resources security system; do
            want="$want $c/$r"
        done
    done
    want=$(echo "$want" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
    assert_eq "$want" "$(status_pairs "$st")" "status replication[] pairs"
    local q='[r for r in j.get("replication", []) if r["peer"] == "c4" and r["rule"] == "items" and r.get("role", "sends") == "sends"]'
    assert_eq "true" "$(json_get "$st" 'len('"$q"') == 1 and all(k in '"$q"'[0] for k in ("backlog", "last_run", "next_run"))')" \
        "c4/items has backlog, last_run, next_run"
    assert_eq "0" "$(json_get "$st" "($q + [{}])[0].get('backlog')")" "c4/items backlog after a sync"
    assert_eq "true" "$(json_get "$st" "($q + [{}])[0].get('last_run', {}).get('ok')")" "c4/items last run ok"
    assert_eq "true" "$(json_get "$st" "isinstance(($q + [{}])[0].get('next_run'), int)")" "c4/items next_run"

    # The broker's view (hierarchy show --json) has it too.
    st=$(hr_show p)
    assert_eq "$want" "$(status_pairs "$st")" "hierarchy show replication[] pairs"
}

setup
test_items_reach_all_children
test_resources_go_up_not_sideways
test_sync_one_peer_one_rule
test_status_shows_pairs
hr_done
