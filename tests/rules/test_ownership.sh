#!/usr/bin/env bash
# Ownership and duplicates across a hierarchy: an agent that moves to
# another child changes the resource's owner (the most recent registration
# wins, decided on the parent, announced to everyone); an older claim is
# refused and the claimant told; the same computer registered on two
# children under two guids is merged on the parent: one guid survives, its
# data-class rows follow, every server makes the same merge; `hsync events`
# says why.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node a
    hr_start a
    hr_node b
    hr_start b
    hr_link p a
    hr_link p b
    hr_sync p
}

owner() { json_get "$("$HSYNC" get -d "$(hr_dir "$1")" "$2" --json)" 'j["owner"]'; }
owner_is() { [ "$(owner "$1" "$2" 2>/dev/null)" == "$3" ]; }
# events_with NODE KIND TEXT: NODE lists an event of KIND whose payload mentions TEXT.
events_with() {
    local out
    out=$("$HSYNC" events -d "$(hr_dir "$1")" --json) || return 1
    [ "$(json_get "$out" 'any(e["kind"] == "'"$2"'" and "'"$3"'" in json.dumps(e["payload"]) for e in j)')" == "true" ]
}
delivered() { # NODE KIND: every raised event of KIND acknowledged by every peer
    local out
    out=$("$HSYNC" events -d "$(hr_dir "$1")" --json) || return 1
    [ "$(json_get "$out" 'all(d["state"] == "acknowledged" for e in j if e["kind"] == "'"$2"'" and e["direction"] == "raised" for d in e["delivery"])')" == "true" ]
}
is_deleted() { hr_is_deleted "$@"; }

test_agent_moved() {
    G=$(hr_put a resource.computer '{"name":"laptop-7","site":"north"}' --key serial=MOVE-1)
    local dr
    dr=$(hr_put a dataclass.hardware '{"cpu":"x86"}' --resource "$G")
    hr_sync a --rule resources
    assert_eq "a" "$(owner p "$G")" "p learns a owns it"
    # the agent re-registers at b under its own guid
    expect_exit 0 hs put -d "$(hr_dir b)" --class resource.computer --guid "$G" --key serial=MOVE-1 \
        '{"name":"laptop-7","site":"south"}'
    hr_sync b --rule resources
    assert_eq "b" "$(owner p "$G")" "the most recent registration wins: b owns it on p"
    assert_eq "south" "$(json_get "$("$HSYNC" get -d "$(hr_dir p)" "$G" --json)" 'j["body"]["site"]')" "b's copy kept"
    assert_eq "true" "$(json_get "$("$HSYNC" events -d "$(hr_dir p)" --json)" 'any(e["kind"] == "moved" and e["payload"]["guid"] == "'"$G"'" and e["payload"]["from"] == "a" and e["payload"]["to"] == "b" for e in j)')" \
        "p raised a moved event a -> b"
    # b's resources are out of a's scope (a sibling's): a drops its copy
    wait_for 10 hr_is_deleted a "$G"
    # its data-class rows go with it (issue 17): a keeps no row of a resource it dropped
    wait_for 10 hr_is_deleted a "$dr"
    wait_for 10 events_with a moved "most recent registration wins"
    wait_for 10 delivered p moved
    expect_exit 0 hs events -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "claimed by b" "events explain the decision"
    # a no longer sends it up; b does, and p and b agree on b's resources
    hr_sync a --rule resources
    assert_eq "b" "$(owner p "$G")" "a's next run does not take it back"
    assert_eq "$(hr_digest p resource. b)" "$(hr_digest b resource. b)" "b's resources: digests equal"
}

test_older_claim_refused() {
    local old
    old=$(printf '{"class":"resource.computer","guid":"%s","keys":{"serial":"MOVE-1"},"mtime":"2020-01-01T00:00:00Z","body":{"name":"laptop-7","site":"stale"}}\n' "$G")
    printf '%s\n' "$old" >"$HR_T/stale.ndjson"
    hr_import a "$HR_T/stale.ndjson"
    assert_eq "a" "$(owner a "$G")" "a claims it again with an old copy"
    hr_sync a --rule resources
    assert_eq "b" "$(owner p "$G")" "the older claim is refused: b keeps it"
    assert_eq "south" "$(json_get "$("$HSYNC" get -d "$(hr_dir p)" "$G" --json)" 'j["body"]["site"]')" "p keeps b's copy"
    wait_for 10 hr_is_deleted a "$G"
    wait_for 10 events_with a moved "so b keeps it"
}

test_duplicates_merged() {
    local ga gb rb n
    ga=$(hr_put a resource.computer '{"name":"dup-pc","ram":8}' --key serial=DUP-1)
    gb=$(hr_put b resource.computer '{"name":"dup-pc","ram":16}' --key serial=DUP-1)
    rb=$(hr_put b dataclass.hardware '{"cpu":"x86"}' --resource "$gb")
    hr_sync a --rule resources
    hr_sync b --rule resources
    # ga was registered first (its recorded registration time is earlier):
    # it survives, with b's (newer) content and owner
    expect_exit 0 hs get -d "$(hr_dir p)" "$ga" --json
    assert_eq "16" "$(json_get "$HS_OUT" 'j["body"]["ram"]')" "survivor has the newest content"
    assert_eq "b" "$(json_get "$HS_OUT" 'j["owner"]')" "owned by the newest registration"
    assert_deleted p "$gb" "the other guid is gone on p"
    assert_eq "$ga" "$(json_get "$("$HSYNC" get -d "$(hr_dir p)" "$rb" --json)" 'j["resource"]')" "p: the row follows the survivor"
    assert_eq "true" "$(json_get "$("$HSYNC" events -d "$(hr_dir p)" --json)" 'any(e["kind"] == "merge" and e["payload"]["old"] == "'"$gb"'" and e["payload"]["new"] == "'"$ga"'" and e["payload"]["key"] == "serial=DUP-1" for e in j)')" \
        "p raised the merge event with both guids and the key"
    # every server makes the same merge
    wait_for 10 is_deleted b "$gb"
    wait_for 10 owner_is b "$ga" b
    assert_eq "$ga" "$(json_get "$("$HSYNC" get -d "$(hr_dir b)" "$rb" --json)" 'j["resource"]')" "b: the row follows the survivor"
    wait_for 10 hr_is_deleted a "$ga" # b's now: out of a's scope
    wait_for 10 delivered p merge
    expect_exit 0 hs events -d "$(hr_dir a)"
    assert_contains "$HS_OUT" "survives (registered first, " "a's events say why two computers became one"
    # and the branches converge
    hr_sync b --rule resources
    hr_sync a --rule resources
    assert_eq "$(hr_digest p resource. b)" "$(hr_digest b resource. b)" "b's resources: digests equal"
    assert_eq "$(hr_digest p dataclass. b)" "$(hr_digest b dataclass. b)" "b's rows: digests equal"
    assert_eq "$(hr_digest p resource. a)" "$(hr_digest a resource. a)" "a's resources: digests equal"
    n=$("$HSYNC" export -d "$(hr_dir p)" --class resource.computer | grep -c '"DUP-1"')
    assert_eq "1" "$n" "one computer with that serial on p"
}

# A claim deleted by its new owner before any run took the claim up: the
# delete is the most recent registration and wins everywhere, whichever of
# the delete and the old owner's copy reaches the parent first.
test_claim_deleted_before_sync() {
    local g order
    for order in delete-first copy-first; do
        g=$(hr_put a resource.computer '{"name":"gone-pc","site":"north"}' --key "serial=GONE-$order")
        if [ "$order" == "copy-first" ]; then hr_sync a --rule resources; fi
        expect_exit 0 hs put -d "$(hr_dir b)" --class resource.computer --guid "$g" \
            --key "serial=GONE-$order" '{"name":"gone-pc","site":"south"}'
        expect_exit 0 hs rm -d "$(hr_dir b)" "$g"
        hr_sync b --rule resources
        hr_sync a --rule resources
        assert_deleted p "$g" "$order: the new owner's delete wins on p"
        wait_for 10 hr_is_deleted a "$g" # the old owner drops its copy
        hr_sync a --rule resources
        assert_deleted p "$g" "$order: the old owner's next run does not bring it back"
        wait_for 10 events_with a moved "claimed and deleted by b"
    done
}

setup
test_agent_moved
test_older_claim_refused
test_duplicates_merged
test_claim_deleted_before_sync
hr_done
