#!/usr/bin/env bash
# Route hijack while an invite is outstanding (issue 18, item 1). A hostile
# client with a fresh random CURVE key connects to a child that has an unused
# invite (ZAP lets it in to present the invite), sets its ZeroMQ routing id
# to the parent's public key (which is public: every invite of the parent
# carries it) and listens. Nothing meant for the parent may reach it: no
# heartbeat, no batch. The real parent link stays up, replication goes on
# (digests equal), and the real parent, killed with SIGKILL and restarted,
# gets its link back at once.
. "$(dirname "$0")/../replication/lib_repl.sh"

# Debian's python3 has python3-zmq; the python3 on PATH may not.
HOSTILE() { /usr/bin/python3 "$HSYNC_TESTS/security/hostile_zmq.py" "$@"; }
T=$(hs_tmp)

# attacker_says TEXT: the hostile client wrote TEXT to its report.
attacker_says() { grep -q -- "$1" "$T/attacker.out" 2>/dev/null; }
attacker_done() { attacker_says "^frames "; }

test_setup() {
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" 2000 before
    hr_import p "$f"
}

test_hijack_gets_nothing() {
    # The parent's key, as anyone can learn it: from an invite of the parent
    # (this one expires in a second, unused).
    local pkey tok
    pkey=$(HOSTILE token-key "$(hs invite -d "$(hr_dir p)" --ttl 1)" | cut -d' ' -f1)
    assert_eq 40 "${#pkey}" "the parent's public key from its invite"
    tok=$(hs invite -d "$(hr_dir c)") # outstanding, never used
    HOSTILE hijack "$tok" "$pkey" "$T/stop" "$T/attacker.out" 120 &
    local apid=$!
    wait_for 10 attacker_says "handshake ok"
    attacker_says "handshake ok" && pass || fail "the hostile client was not admitted"

    # Meanwhile the parent link lives: heartbeats both ways, and a complete
    # run of 2,000 items reaches the child in batches.
    hr_sync p --peer c --rule items --complete
    assert_eq "2000" "$(hr_run sent c items down)" "items sent to c with the attacker listening"
    wait_for 20 hr_same_digest p c item.
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "item digests p and c"
    assert_eq "up" "$(hr_state c p)" "c's link to p"
    assert_eq "up" "$(hr_state p c)" "p's link to c"

    # The real parent crashes and comes back: its link is up again quickly
    # (a new connection; the hostile one still holds the old routing id).
    hr_kill9 p
    local f
    f=$(hs_tmp)/more.ndjson
    hr_gen_items "$f" 300 after
    local t0
    t0=$(date +%s%N)
    hr_start p
    wait_for 10 hr_state_is p c up
    wait_for 10 hr_state_is c p up
    echo "route hijack: p's link up on both sides $((($(date +%s%N) - t0) / 1000000)) ms after its restart"
    hr_import p "$f"
    hr_sync p --peer c --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "item digests after p's restart"
    assert_eq "2300" "$(hr_count c item.)" "items at c after p's restart"

    : >"$T/stop"
    wait_for 10 attacker_done
    wait "$apid"
    echo "route hijack: the hostile client got: $(grep '^frames' "$T/attacker.out")"
    assert_eq "frames 0 bytes 0" "$(grep '^frames' "$T/attacker.out")" \
        "frames that reached the hostile client"
    # The child refused it everything but the invite, and never took it for p.
    assert_eq "parent:p" "$(json_get "$(hr_show c)" '",".join(l["role"] + ":" + l["name"] for l in j["links"])')" \
        "c's links"
    assert_eq "0" "$(hr_log_count c 'level=error')" "errors in c's log"
}

# Issue 18 (bis), items 1-2: a connection admitted only to present an invite
# sends 20,000 malformed frames, 5,000 two-part messages and 5,000 replayed
# JOINs. Each cause is logged once per 10 s with a count, not once a frame,
# and the parent link stays up.
test_invite_conn_spam() {
    local tok lines0
    tok=$(hs invite -d "$(hr_dir c)") # outstanding, never used
    lines0=$(wc -l <"$(hr_log c)")
    HOSTILE spam "$tok" short 20000 "$T/short.out"
    HOSTILE spam "$tok" multi 5000 "$T/multi.out"
    HOSTILE spam "$tok" join 5000 "$T/join.out"
    wait_for 10 eval '[ -s "$T/join.out" ]'
    echo "invite spam: short: $(cat "$T/short.out"); multi: $(cat "$T/multi.out");" \
        "join: $(cat "$T/join.out"); c wrote $(($(wc -l <"$(hr_log c)") - lines0)) log lines"
    assert_contains "$(cat "$T/short.out")" "sent 20000 "
    assert_contains "$(cat "$T/join.out")" "sent 5000 "
    local bad joins
    bad=$(hr_log_count c 'event=bad-frame')
    joins=$(hr_log_count c 'event=join-refused')
    [ "$bad" -le 6 ] && pass || fail "$bad bad-frame lines in c's log for 25,000 bad frames"
    [ "$joins" -le 3 ] && pass || fail "$joins join-refused lines in c's log for 5,000 JOINs"
    [ $(($(wc -l <"$(hr_log c)") - lines0)) -lt 40 ] && pass ||
        fail "c wrote $(($(wc -l <"$(hr_log c)") - lines0)) log lines for the spam"
    assert_eq "up" "$(hr_state c p)" "c's link to p after the spam"
}

# Item 3: the parent name in a JOIN is the attacker's choice. It is refused
# by the decoder unless it is a node name, and nothing reaches the log raw:
# no forged field, no extra line, no terminal escape.
test_join_names_cannot_forge() {
    local tok
    tok=$(hs invite -d "$(hr_dir c)")
    HOSTILE spam "$tok" name 0 "$T/names.out" \
        "$(printf 'evil\n2026-12-03T00:00:00.000Z level=error peer=parent event=FORGED msg="x"')" \
        'x"y peer=parent event=child-added' "$(printf '\033[31mRED\033[0m')" \
        "$(head -c 300 /dev/zero | tr '\0' A)"
    echo "join names: $(cat "$T/names.out")"
    assert_contains "$(cat "$T/names.out")" "sent 4 answers 0"
    assert_eq "0" "$(hr_log_count c 'event=FORGED')" "forged events in c's log"
    assert_eq "0" "$(hr_log_count c 'peer=parent event=child-added')" "forged fields in c's log"
    assert_eq "0" "$(grep -c $'\033' "$(hr_log c)")" "raw ESC bytes in c's log"
    assert_eq "0" "$(grep -vc '^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T' "$(hr_log c)")" \
        "lines of c's log that do not start with a time"
    assert_eq "parent:p" "$(json_get "$(hr_show c)" '",".join(l["role"] + ":" + l["name"] for l in j["links"])')" \
        "c's links after the hostile names"
}

test_setup
test_hijack_gets_nothing
test_invite_conn_spam
test_join_names_cannot_forge
hr_done
