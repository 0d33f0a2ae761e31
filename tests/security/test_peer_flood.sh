#!/usr/bin/env bash
# The ZeroMQ peer port (--listen, the CURVE ROUTER) under a connection flood
# (issue 18). The child's broker runs with 1,024 descriptors (soft and
# hard); a client keeps 1,500 idle TCP connections open to its peer port
# (never sending a ZMTP greeting, reopening what the broker closes) for
# 20 s. Before the accept gate, each held a descriptor until libzmq's 30 s
# handshake timeout: the broker ran out of descriptors and libzmq aborted it
# on the next ctl connection. Meanwhile the child stays up, `hsync status`
# answers, the parent (which dials the child's peer port) is restarted and
# links again through the flood, a sync to the child converges, the log
# stays short; after the flood /metrics answers and counts what the gate
# closed.
. "$(dirname "$0")/../replication/lib_repl.sh"

T=$(hs_tmp)
FLOOD_CONNS=1500
FLOOD_S=20

http_port() { echo $(($(hr_port "$1") + 1)); }
flood_says() { grep -q -- "$1" "$T/flood.out" 2>/dev/null; }
nfds() { find "/proc/$1/fd" -mindepth 1 2>/dev/null | wc -l; }

# metrics NAME: GET /metrics of NAME (python3 urllib, 5 s timeout).
metrics() {
    python3 - "http://127.0.0.1:$(http_port "$1")/metrics" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write("%d\n%s" % (r.status, r.read().decode()))
PY
}

test_setup() {
    printf '#!/usr/bin/env bash\nulimit -Sn 1024 && ulimit -Hn 1024 || exit 1\nexec "$@"\n' \
        >"$T/nofile1024"
    chmod +x "$T/nofile1024"
    HR_WRAP[c]="$T/nofile1024"
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
    assert_eq "1024" "$(awk '/Max open files/ {print $4}' "/proc/${HR_PID[c]}/limits")" \
        "c's descriptor limit"
    echo "peer flood: c has $(nfds "${HR_PID[c]}") descriptors open before the flood"
}

test_flood() {
    local lines0 f most=0 n
    lines0=$(wc -l <"$(hr_log c)")
    python3 "$HSYNC_TESTS/security/http_flood.py" 127.0.0.1 "$(hr_port c)" "$FLOOD_CONNS" 0 \
        "$T/stop" "$T/flood.out" $((FLOOD_S + 60)) &
    local fpid=$! fstart=$SECONDS
    wait_for 20 flood_says "^open "
    n=$(nfds "${HR_PID[c]}")
    echo "peer flood: $(grep '^open' "$T/flood.out") connections open at once;" \
        "c has $n descriptors open"

    # The broker answers the CLI and replicates throughout.
    hr_running c && pass || fail "c stopped answering under the flood"
    local t0=$EPOCHREALTIME
    expect_exit 0 hs status -d "$(hr_dir c)" --json
    assert_json "$HS_OUT" "status --json under the flood"
    echo "peer flood: status answered in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s"
    # The parent restarts and dials the child's flooded port again.
    t0=$EPOCHREALTIME
    hr_stop p
    hr_start p
    wait_for 15 hr_state_is p c up
    wait_for 15 hr_state_is c p up
    flood_says "^total " && fail "the flood ended before the link was up again"
    echo "peer flood: p restarted and linked to c again in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s"
    t0=$EPOCHREALTIME
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" 500 flood
    hr_import p "$f"
    hr_sync p --peer c --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "item digests during the flood"
    assert_eq "500" "$(hr_count c item.)" "items at c"
    echo "peer flood: 500 items imported and synced in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s"

    # Until FLOOD_S have passed since the flood began: the CLI keeps answering.
    local i
    for ((i = 0; i < 4 * FLOOD_S && (i == 0 || SECONDS - fstart < FLOOD_S); i++)); do
        n=$(nfds "${HR_PID[c]}")
        [ "$n" -gt "$most" ] && most=$n
        expect_exit 0 hs status -d "$(hr_dir c)"
        hs_pause 0.5
    done
    flood_says "^total " && fail "the flood ended early"
    : >"$T/stop"
    wait_for 20 flood_says "^total "
    wait "$fpid"
    echo "peer flood: $(grep '^total' "$T/flood.out"); c had at most $most descriptors open"
    local lines
    lines=$(($(wc -l <"$(hr_log c)") - lines0))
    echo "peer flood: ${lines} log lines during the flood"
    [ "$lines" -lt 50 ] && pass || fail "c wrote $lines log lines during the flood"
    grep "event=peer-" "$(hr_log c)" | tail -n 5

    # After the flood: the broker is alive and /metrics answers.
    hr_running c && pass || fail "c is not running after the flood"
    expect_exit 0 hs status -d "$(hr_dir c)" --json
    local m closed
    m=$(metrics c)
    assert_eq "200" "$(head -n 1 <<<"$m")" "/metrics after the flood"
    closed=$(awk '/^hsync_peer_connections_closed_total\{reason="full"\}/ {print $2}' <<<"$m")
    echo "peer flood: /metrics: $(grep '^hsync_peer_' <<<"$m" | tr '\n' ' ')"
    [ "${closed%.*}" -gt 0 ] 2>/dev/null && pass || fail "no peer connection was closed for room"
    # every connection the flood held is gone again
    wait_for 20 eval '[ "$(awk "/^hsync_peer_connections_pending / {print \$2}" <<<"$(metrics c)")" = 0 ]'
    assert_eq "0" "$(hr_log_count c 'level=error')" "errors in c's log"
    # and replication still works afterwards
    f=$(hs_tmp)/items2.ndjson
    hr_gen_items "$f" 50 after
    hr_import p "$f"
    hr_sync p --peer c --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "item digests after the flood"
}

test_setup
test_flood
hr_done
