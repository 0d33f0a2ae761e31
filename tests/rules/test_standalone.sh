#!/usr/bin/env bash
# Standalone replication: an agent-facing server (ns1) feeds resource
# inventory one way to a reporting server (rep) outside its hierarchy;
# differential and complete runs; the destination offline, then catching
# up; nothing flows back; scope checks at creation (role without
# privileges, packages between equal versions, hierarchy members); a
# resource target; a chain ns1 -> rep -> arc.
. "$(dirname "$0")/../replication/lib_repl.sh"

N=10000

setup() {
    local n
    for n in ns1 c1 g1 rep arc tgt; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link ns1 c1
    hr_link c1 g1
    hr_gen_resources "$HR_T/inv.ndjson" "$N" INV
    hr_import ns1 "$HR_T/inv.ndjson"
}

invite() { "$HSYNC" invite -d "$(hr_dir "$1")"; }

test_reporting_server() {
    expect_exit 0 hs standalone add -d "$(hr_dir ns1)" --name inv --to "$(invite rep)" \
        --class resource. --class dataclass. --every 1h
    assert_contains "$HS_OUT" "standalone rule 'inv' feeds rep" "add says what it did"
    expect_exit 0 hs standalone ls -d "$(hr_dir ns1)"
    assert_contains "$HS_OUT" "inv" "ls lists it"
    # the broker may start the first run at its next tick, before this sync
    hr_sync ns1 --rule inv
    wait_for 30 hr_same_digest ns1 rep resource.
    expect_exit 0 hs history -d "$(hr_dir ns1)" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'any(h["peer"] == "rep" and h["rule"] == "inv" and h["mode"] == "complete" and h["sent"] == '"$N"' and h["ok"] for h in j)')" \
        "the first run was complete and sent every resource"
    assert_eq "$(hr_digest ns1 resource.)" "$(hr_digest rep resource.)" "digests equal after complete"

    # differential: only what changed
    local g i
    for i in 1 2 3; do
        g=$(hr_put ns1 resource.computer '{"name":"new-'"$i"'"}' --key serial=NEW-$i)
    done
    hr_put ns1 dataclass.hardware '{"cpu":"arm"}' --resource "$g" >/dev/null
    hr_sync ns1 --rule inv
    assert_eq "differential" "$(hr_run mode rep inv standalone)" "then differential"
    assert_eq "4" "$(hr_run sent rep inv standalone)" "sent just the 4 changes"
    assert_eq "$(hr_digest ns1 resource.)" "$(hr_digest rep resource.)" "resources equal after differential"
    assert_eq "$(hr_digest ns1 dataclass.)" "$(hr_digest rep dataclass.)" "rows equal after differential"
    expect_exit 0 hs trace -d "$(hr_dir ns1)" "$g" --json
    assert_eq "acknowledged" "$(json_get "$HS_OUT" '[p["state"] for p in j["peers"] if p["peer"] == "rep" and p["rule"] == "inv"][0]')" \
        "trace follows the object to the destination"

    # a complete run removes what the source no longer has
    expect_exit 0 hs rm -d "$(hr_dir ns1)" "$g"
    hr_sync ns1 --rule inv --complete
    assert_eq "complete" "$(hr_run mode rep inv standalone)" "asked complete"
    assert_deleted rep "$g" "removed at the destination"
    assert_eq "$(hr_digest ns1 resource.)" "$(hr_digest rep resource.)" "digests equal after removal"

    # one way: nothing comes back from the destination
    local own
    own=$(hr_put rep resource.computer '{"name":"rep-own"}' --key serial=REP-1)
    expect_exit 0 hs sync -d "$(hr_dir rep)" --json
    hr_sync ns1 --rule inv --complete
    expect_exit 1 hs get -d "$(hr_dir ns1)" "$own"
    assert_eq "rep-own" "$(json_get "$("$HSYNC" get -d "$(hr_dir rep)" "$own" --json)" 'j["body"]["name"]')" \
        "the destination keeps its own object through a complete run"
    expect_exit 0 hs status -d "$(hr_dir ns1)" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'any(r["peer"] == "rep" and r["rule"] == "inv" for r in j["replication"])')" \
        "status lists the standalone rule"
}

backlog() {
    json_get "$("$HSYNC" status -d "$(hr_dir ns1)" --json)" '[r.get("backlog", 0) for r in j["replication"] if r["peer"] == "rep" and r["rule"] == "inv"][0]'
}

test_destination_offline_catches_up() {
    hr_stop rep
    local i
    for i in $(seq 1 50); do
        hr_put ns1 resource.computer '{"name":"late-'"$i"'"}' --key serial=LATE-$i >/dev/null
    done
    "$HSYNC" sync -d "$(hr_dir ns1)" --rule inv --json >"$HR_T/off.json" 2>/dev/null
    # ("link down", or "the link went down" if the broker has not noticed yet)
    assert_eq "false" "$(json_get "$(cat "$HR_T/off.json")" 'j["all_ok"]')" "the run cannot go while rep is away"
    assert_eq "50" "$(backlog)" "status shows the backlog"
    expect_exit 0 hs rule set -d "$(hr_dir ns1)" inv --every 2s
    hr_start rep
    wait_for 60 hr_same_digest ns1 rep resource. ns1
    assert_eq "0" "$(backlog)" "backlog drained"
    expect_exit 0 hs rule set -d "$(hr_dir ns1)" inv --every 1h
}

test_scope_checks() {
    local tok
    tok=$(invite tgt)
    expect_exit 1 hs standalone add -d "$(hr_dir ns1)" --name roles --to "$tok" --class security.role
    assert_contains "$HS_ERR" "carries security roles but not their privileges" "role without privileges refused"
    assert_contains "$HS_ERR" "--class security.privilege" "says how to fix it"
    expect_exit 1 hs standalone add -d "$(hr_dir ns1)" --name pk --to "$tok" --class package
    assert_contains "$HS_ERR" "packages is not supported between two nodes of the same version" "packages refused"
    assert_contains "$HS_ERR" "unlinked 'tgt' again" "nothing left half-done"
    expect_exit 0 hs hierarchy show -d "$(hr_dir ns1)" --json
    assert_eq "false" "$(json_get "$HS_OUT" 'any(l["name"] == "tgt" for l in j["links"])')" "no link left to tgt"
    tok=$(invite tgt) # the refused one was used up
    expect_exit 0 hs standalone add -d "$(hr_dir ns1)" --name roles --to "$tok" \
        --class security.role --class security.privilege
    expect_exit 0 hs standalone add -d "$(hr_dir ns1)" --name roles-only --to "$tok" --class security.role --force
    expect_exit 1 hs standalone add -d "$(hr_dir ns1)" --name roles --to "$tok" --class item.
    assert_contains "$HS_ERR" "a rule named 'roles' exists already" "names are unique"
    # hierarchy members: a child is refused, a grandchild warned about
    expect_exit 1 hs standalone add -d "$(hr_dir ns1)" --name h1 --to "$(invite c1)" --class item.
    assert_contains "$HS_ERR" "'c1' is a child of this node: hierarchy rules already replicate" "child refused"
    wait_for 10 grandchild_known
    expect_exit 0 hs standalone add -d "$(hr_dir ns1)" --name h2 --to "$(invite g1)" --class item.
    assert_contains "$HS_ERR" "warning: 'g1' is below this node in its hierarchy" "grandchild warned"
    assert_contains "$HS_ERR" "prefer hierarchy rules" "warning says what to use"
    expect_exit 0 hs standalone rm -d "$(hr_dir ns1)" h2
    assert_contains "$HS_OUT" "unlinked destination 'g1'" "rm unlinks a destination no rule uses"
    wait_for 10 not_linked ns1 g1
    wait_for 10 not_linked g1 ns1
    # tgt is still used by 'roles-only' after 'roles' goes: it stays linked
    expect_exit 0 hs standalone rm -d "$(hr_dir ns1)" roles --json
    assert_eq "[]" "$(json_get "$HS_OUT" 'j["unlinked"]')" "a destination another rule uses stays"
    expect_exit 1 hs standalone unlink -d "$(hr_dir ns1)" tgt
    assert_contains "$HS_ERR" "a standalone rule still sends to 'tgt'" "unlink refuses a used destination"
    expect_exit 1 hs standalone unlink -d "$(hr_dir ns1)" nosuch
    assert_contains "$HS_ERR" "'nosuch' is not a destination of this node" "unlink of an unknown name fails"
    expect_exit 1 hs standalone rm -d "$(hr_dir ns1)" items
    assert_contains "$HS_ERR" "'items' is a hierarchy rule" "hierarchy rules are not removed here"
}
not_linked() {
    [ "$(json_get "$(hs hierarchy show -d "$(hr_dir "$1")" --json)" 'any(l["name"] == "'"$2"'" for l in j["links"])')" == "false" ]
}
grandchild_known() { hs hierarchy show -d "$(hr_dir ns1)" --json | grep -q '"g1"'; }

test_target() {
    local i
    for i in 1 2 3; do
        hr_put ns1 resource.computer '{"name":"n'"$i"'","site":"north"}' --key serial=T-N$i >/dev/null
    done
    for i in 1 2; do
        hr_put ns1 resource.computer '{"name":"s'"$i"'","site":"south"}' --key serial=T-S$i >/dev/null
    done
    expect_exit 0 hs standalone add -d "$(hr_dir ns1)" --name north --to "$(invite tgt)" \
        --class resource. --target resource.computer --where site=north
    hr_sync ns1 --rule north
    assert_eq "3" "$(hr_count tgt resource.)" "only the target's members went"
}

test_chain() {
    hr_sync ns1 --rule inv
    expect_exit 0 hs standalone add -d "$(hr_dir rep)" --name fwd --to "$(invite arc)" --class resource.
    hr_sync rep --rule fwd
    assert_eq "$(hr_digest rep resource.)" "$(hr_digest arc resource.)" "rep and arc equal"
    assert_eq "$(hr_digest ns1 resource. ns1)" "$(hr_digest arc resource. ns1)" "ns1's resources reached arc through rep"
}

test_fed_data_survives_the_hierarchy() {
    # rep feeds c1 (a child of ns1): only rep's own resource can arrive (ns1's
    # are c1's hierarchy's), and ns1's complete runs down leave it alone
    local before own
    own=$(json_get "$("$HSYNC" export -d "$(hr_dir rep)" --class resource.computer | grep REP-1)" 'j["guid"]')
    before=$(hr_digest c1 resource. ns1)
    expect_exit 0 hs standalone add -d "$(hr_dir rep)" --name feedc1 --to "$(invite c1)" --class resource.
    hr_sync rep --rule feedc1
    assert_eq "rep-own" "$(json_get "$("$HSYNC" get -d "$(hr_dir c1)" "$own" --json)" 'j["body"]["name"]')" \
        "the source's own resource arrived"
    assert_eq "$before" "$(hr_digest c1 resource. ns1)" "the hierarchy's resources at c1 untouched by the feed"
    # complete and reconcile runs too: c1 names the owners it takes none of
    # (its hierarchy's) when the run opens, and rep leaves them out instead
    # of sending 10,000 objects that would be refused and fail the run
    hr_sync rep --rule feedc1 --complete
    assert_eq "1" "$(hr_run sent c1 feedc1 standalone)" "a complete run sends only rep's own resource, none of the hierarchy's"
    hr_sync rep --rule feedc1 --reconcile
    assert_eq "0" "$(hr_run sent c1 feedc1 standalone)" "a reconcile finds nothing to send"
    hr_sync ns1 --rule resources --complete
    assert_eq "rep-own" "$(json_get "$("$HSYNC" get -d "$(hr_dir c1)" "$own" --json)" 'j["body"]["name"]')" \
        "a complete run from the parent does not remove what a source fed"
    assert_eq "$(hr_digest ns1 resource. ns1)" "$(hr_digest c1 resource. ns1)" "c1 still equal to its parent"
}

setup
test_reporting_server
test_destination_offline_catches_up
test_scope_checks
test_target
test_chain
test_fed_data_survives_the_hierarchy
hr_done
