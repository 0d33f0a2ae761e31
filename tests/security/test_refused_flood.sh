#!/usr/bin/env bash
# Refused handshakes (issue 18, item 5): 4,000 CURVE handshakes with fresh
# random keys to a node that trusts none of them and has no invite
# outstanding. Each is refused by ZAP and counted (status --json
# security.handshakes_refused, /metrics hsync_handshakes_refused_total);
# the log gets a line per 10 s with a count, not a line per attempt; and the
# node goes on replicating with its child meanwhile.
. "$(dirname "$0")/../replication/lib_repl.sh"

T=$(hs_tmp)
ATTEMPTS=4000
HOSTILE() { /usr/bin/python3 "$HSYNC_TESTS/security/hostile_zmq.py" "$@"; }
http_port() { echo $(($(hr_port "$1") + 1)); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
refused_of() { json_get "$(hr_show "$1")" 'j["security"]["handshakes_refused"]'; }

test_setup() {
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
}

test_refused_flood() {
    local key lines0 ticks0 t0 t1
    key=$(HOSTILE token-key "$(hs invite -d "$(hr_dir c)" --ttl 1)" | cut -d' ' -f1)
    # the invite above expires at once: c admits no unknown key after it
    wait_for 5 eval '[ "$(date +%s)" -gt '"$(($(date +%s) + 1))"' ]'
    lines0=$(wc -l <"$(hr_log c)")
    ticks0=$(cpu_ticks "${HR_PID[c]}")
    t0=$(date +%s%N)
    HOSTILE refused "tcp://127.0.0.1:$(hr_port c)" "$key" "$ATTEMPTS" "$T/refused.out" &
    local hpid=$!
    # replication goes on meanwhile
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" 300 during
    hr_import p "$f"
    hr_sync p --peer c --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "item digests during the refusals"
    wait_for 120 eval '[ -s "$T/refused.out" ]'
    wait "$hpid"
    t1=$(date +%s%N)
    local lines ticks hz
    lines=$(($(wc -l <"$(hr_log c)") - lines0))
    ticks=$(($(cpu_ticks "${HR_PID[c]}") - ticks0))
    hz=$(getconf CLK_TCK)
    echo "refused flood: client saw: $(cat "$T/refused.out"); in $(((t1 - t0) / 1000000)) ms;" \
        "c used $((ticks * 1000000 / hz / ATTEMPTS)) us of CPU per attempt; $lines log lines," \
        "$(grep -c 'event=refused' "$(hr_log c)") of them event=refused"
    local seen
    seen=$(awk '{print $2}' "$T/refused.out")
    assert_eq "refused $ATTEMPTS failed 0" "$(cat "$T/refused.out")" "handshakes refused by c"
    [ "$(grep -c 'event=refused' "$(hr_log c)")" -le 10 ] && pass ||
        fail "$(grep -c 'event=refused' "$(hr_log c)") refused lines in c's log"
    [ "$lines" -lt 30 ] && pass || fail "c wrote $lines log lines for $ATTEMPTS refusals"
    # the count of what was held back comes with the interval's end (10 s)
    wait_for 20 grep -qF "more like " "$(hr_log c)"
    assert_contains "$(cat "$(hr_log c)")" "more like "
    assert_eq "$seen" "$(refused_of c)" "security.handshakes_refused in c's status"
    expect_exit 0 hs status -d "$(hr_dir c)" --json
    assert_eq "$seen" "$(json_get "$HS_OUT" 'j["security"]["handshakes_refused"]')" \
        "hsync status --json security.handshakes_refused"
    local m
    m=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$(http_port c)/metrics")
    assert_contains "$m" "hsync_handshakes_refused_total $seen"
    assert_eq "up" "$(hr_state c p)" "c's link to p"
}

test_setup
test_refused_flood
hr_done
