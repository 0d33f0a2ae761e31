# tests/events/lib_events.sh - helpers for the hierarchy-event suites. Source
# it instead of ../replication/lib_repl.sh (it sources that):
#
#   . "$(dirname "$0")/lib_events.sh"
#   id=$(he_raise p key '{"n":1}')      # hsync event raise; prints the id
#   he_count c1 "$id"                   # how often c1 lists the event (0/1/..)
#   he_field c1 "$id" direction         # a field of c1's listing of it
#   he_dl c1 "$id" p state              # a field of its delivery to peer p
#   wait_for 10 he_dl_is c1 "$id" p state acknowledged
#   he_received_lines c1                # "event-received" lines in c1's log

. "$(dirname "${BASH_SOURCE[0]}")/../replication/lib_repl.sh"

# he_events NAME: `hsync events --json` of the node (up to 1000).
he_events() { "$HSYNC" events -d "$(hr_dir "$1")" --json --limit 1000; }

# he_raise NAME KIND JSON: raise an event, print its id.
he_raise() { "$HSYNC" event raise -d "$(hr_dir "$1")" "$2" "$3"; }

# he_count NAME ID: how many entries of NAME's listing have that id.
he_count() {
    json_get "$(he_events "$1")" 'sum(1 for e in j if e["id"] == "'"$2"'")' 2>/dev/null || echo "?"
}
he_count_is() { [ "$(he_count "$2" "$3")" == "$1" ]; }

# he_field NAME ID FIELD: a top-level field of event ID in NAME's listing
# ("none" if NAME does not list it).
he_field() {
    json_get "$(he_events "$1")" '([e.get("'"$3"'") for e in j if e["id"] == "'"$2"'"] + ["none"])[0]' 2>/dev/null || echo "none"
}

# he_dl NAME ID PEER FIELD: FIELD (state, attempts, at) of the delivery of
# event ID from NAME to PEER ("none" if there is no such delivery).
he_dl() {
    json_get "$(he_events "$1")" '([d.get("'"$4"'") for e in j if e["id"] == "'"$2"'" for d in e["delivery"] if d["peer"] == "'"$3"'"] + ["none"])[0]' 2>/dev/null || echo "none"
}
he_dl_is() { [ "$(he_dl "$1" "$2" "$3" "$4")" == "$5" ]; }

# he_peers NAME ID: the delivery peers of event ID at NAME, sorted, space
# separated.
he_peers() {
    json_get "$(he_events "$1")" '" ".join(sorted(d["peer"] for e in j if e["id"] == "'"$2"'" for d in e["delivery"]))' 2>/dev/null || echo "?"
}

# he_received_lines NAME: number of "event-received" lines in NAME's log
# (one per event applied for the first time; duplicates are not logged).
he_received_lines() { grep -c 'event=event-received' "$(hr_log "$1")" 2>/dev/null || true; }

# he_link_down NAME PEER: NAME's link to PEER is not up.
he_link_down() { ! hr_state_is "$1" "$2" up; }

# he_all_acked NAME ID: every delivery of event ID at NAME is acknowledged
# (and there is at least one).
he_all_acked() {
    [ "$(json_get "$(he_events "$1")" 'all(d["state"] == "acknowledged" for e in j if e["id"] == "'"$2"'" for d in e["delivery"]) and any(e["id"] == "'"$2"'" and e["delivery"] for e in j)' 2>/dev/null)" == "true" ]
}
