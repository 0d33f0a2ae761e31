#!/usr/bin/env bash
# Agent trust summaries: requests decided on the children (and a grandchild)
# are summed up in one system.trust object per node that replicates up to
# the root; the parent shows every summary below it in status, cannot
# approve or reject a child's agents, and requests never leave their node.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    local n
    for n in p c1 c2 g1; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p c1
    hr_link p c2
    hr_link c1 g1
}

# agent NODE ARGS...: hsync agent ... -d NODE; stdout only.
agent() { "$HSYNC" agent "${@:2}" -d "$(hr_dir "$1")"; }

# trust_row NODE OF: "pending/approved/rejected/trusted" of OF's summary in
# NODE's status --json ("none" if NODE shows no row for OF).
trust_row() {
    json_get "$(hs status -d "$(hr_dir "$1")" --json)" \
        '([ "%d/%d/%d/%d" % (r["pending"], r["approved"], r["rejected"], r["trusted"]) for r in j["agent_trust"] if r["node"] == "'"$2"'"] + ["none"])[0]'
}
trust_row_is() { [ "$(trust_row "$1" "$2")" == "$3" ]; }

# pending_ids NODE OF: the ids of OF's pending agents as NODE shows them.
pending_ids() {
    json_get "$(hs status -d "$(hr_dir "$1")" --json)" \
        '" ".join(a["id"] for r in j["agent_trust"] if r["node"] == "'"$2"'" for a in r["pending_agents"])'
}

# trust_events_from NODE ORIGIN: trust events from ORIGIN that NODE has.
trust_events_from() {
    json_get "$(hs events -d "$(hr_dir "$1")" --json)" \
        'len([e for e in j if e["kind"] == "trust" and e["origin"] == "'"$2"'"])'
}
has_trust_event_from() { [ "$(trust_events_from "$1" "$2")" -ge 1 ]; }

C1A1="" C1A2="" C1A3="" G1A1=""

test_requests_and_decisions() {
    C1A1=$(agent c1 request laptop-a1)
    C1A2=$(agent c1 request laptop-a2)
    C1A3=$(agent c1 request laptop-a3)
    expect_exit 0 hs agent approve -d "$(hr_dir c1)" "$C1A1"
    assert_contains "$HS_OUT" "approved"
    expect_exit 0 hs agent reject -d "$(hr_dir c1)" "$C1A2"
    assert_contains "$HS_OUT" "rejected"
    local a b
    a=$(agent c2 request desk-1)
    b=$(agent c2 request desk-2)
    expect_exit 0 hs agent approve -d "$(hr_dir c2)" "$a"
    expect_exit 0 hs agent approve -d "$(hr_dir c2)" "$b"
    G1A1=$(agent g1 request kiosk-1)

    expect_exit 0 hs agent ls -d "$(hr_dir c1)" --json
    assert_eq "approved rejected pending" \
        "$(json_get "$HS_OUT" '" ".join(r["state"] for r in j)')" "c1's requests in order"
    assert_eq "1/1/1/1" "$(trust_row c1 c1)" "c1's own summary"
    assert_eq "$C1A3" "$(pending_ids c1 c1)" "c1's pending agents"
    assert_eq "0/2/0/2" "$(trust_row c2 c2)" "c2's own summary"
    assert_eq "0/0/0/0" "$(trust_row p p)" "p shows itself with no agents"
}

test_trust_events_go_up_at_once() {
    # Hop by hop, without any sync: g1 -> c1 -> p.
    wait_for 15 has_trust_event_from p c1
    wait_for 15 has_trust_event_from p c2
    wait_for 15 has_trust_event_from p g1
    assert_eq "0" "$(trust_events_from c2 c1)" "a sibling gets no trust event"
}

test_summaries_reach_the_root() {
    hr_sync g1
    hr_sync c1
    hr_sync c2
    assert_eq "1/1/1/1" "$(trust_row p c1)" "c1's summary at p"
    assert_eq "$C1A3" "$(pending_ids p c1)" "c1's pending agents at p"
    assert_eq "0/2/0/2" "$(trust_row p c2)" "c2's summary at p"
    assert_eq "" "$(pending_ids p c2)" "c2 has no pending agents"
    assert_eq "1/0/0/0" "$(trust_row p g1)" "the grandchild's summary at p"
    assert_eq "$G1A1" "$(pending_ids p g1)" "g1's pending agent at p"
    assert_eq "1/0/0/0" "$(trust_row c1 g1)" "g1's summary at c1"
    assert_eq "p c1 c2 g1" "$(json_get "$(hs status -d "$(hr_dir p)" --json)" '" ".join(r["node"] for r in j["agent_trust"])')" \
        "p's rows: itself first, then the nodes below by name"
    assert_eq "none" "$(trust_row c2 c1)" "c2 never sees its sibling's summary"
    assert_eq "none" "$(trust_row g1 c1)" "summaries never go down"

    local n
    for n in c1 c2; do
        assert_eq "$(hr_digest "$n" system.trust "$n")" "$(hr_digest p system.trust "$n")" \
            "digest of $n's summary, $n vs p"
    done
    assert_eq "$(hr_digest g1 system.trust g1)" "$(hr_digest c1 system.trust g1)" "g1's summary, g1 vs c1"
    assert_eq "$(hr_digest g1 system.trust g1)" "$(hr_digest p system.trust g1)" "g1's summary, g1 vs p"
    assert_eq "3" "$(hr_count p system.trust)" "p holds three summaries (none of its own yet)"
    assert_eq "0" "$(hr_count p system.agent)" "requests never leave their node"

    expect_exit 0 hs status -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "agent trust" "status has the agent trust section"
}

test_parent_cannot_decide_for_a_child() {
    expect_exit 1 hs agent approve -d "$(hr_dir p)" "$C1A3"
    assert_eq "hsync: agent approve: agent request $C1A3 belongs to c1; a parent cannot approve or reject a child's agents: do it on c1" \
        "$HS_ERR" "refused on p"
    expect_exit 1 hs agent reject -d "$(hr_dir p)" "$G1A1"
    assert_eq "hsync: agent reject: agent request $G1A1 belongs to g1; a parent cannot approve or reject a child's agents: do it on g1" \
        "$HS_ERR" "refused for the grandchild on p"
    expect_exit 1 hs agent approve -d "$(hr_dir c1)" "$G1A1"
    assert_contains "$HS_ERR" "belongs to g1" "refused on c1 too"
    expect_exit 1 hs agent approve -d "$(hr_dir p)" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b
    assert_contains "$HS_ERR" "hsync: agent approve: no agent request 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" "unknown id"
    expect_exit 1 hs agent approve -d "$(hr_dir p)" not-a-guid
    assert_contains "$HS_ERR" "not a guid"
    expect_exit 2 hs agent approve -d "$(hr_dir p)"
    # nothing changed anywhere
    assert_eq "1/1/1/1" "$(trust_row c1 c1)" "c1 unchanged by the refusals"
    assert_eq "1/0/0/0" "$(trust_row g1 g1)" "g1 unchanged by the refusals"
}

test_decision_on_child_updates_parent() {
    expect_exit 0 hs agent approve -d "$(hr_dir c1)" "$C1A3"
    assert_eq "0/2/1/2" "$(trust_row c1 c1)" "c1 after approving its last pending agent"
    hr_sync c1
    assert_eq "0/2/1/2" "$(trust_row p c1)" "p follows"
    assert_eq "" "$(pending_ids p c1)" "no pending agents of c1 at p"
    assert_eq "$(hr_digest c1 system.trust c1)" "$(hr_digest p system.trust c1)" "digests equal after the change"

    # The parent's own requests stay on the parent; its summary does not go down.
    agent p request console-1 >/dev/null
    hr_sync p
    assert_eq "1/0/0/0" "$(trust_row p p)" "p's own summary"
    assert_eq "0" "$(hr_count c1 system.trust p)" "p's summary does not go down"
    assert_eq "0" "$(hr_count c1 system.agent p)" "p's requests do not go down"
}

test_status_without_broker() {
    hr_stop p
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    assert_eq "p c1 c2 g1" "$(json_get "$HS_OUT" '" ".join(r["node"] for r in j["agent_trust"])')" \
        "status lists the summaries with the broker stopped"
    assert_eq "0/2/1/2" "$(trust_row p c1)" "c1's row with the broker stopped"
}

setup
test_requests_and_decisions
test_trust_events_go_up_at_once
test_summaries_reach_the_root
test_parent_cannot_decide_for_a_child
test_decision_on_child_updates_parent
test_status_without_broker
hr_done
