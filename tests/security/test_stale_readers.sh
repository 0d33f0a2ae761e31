#!/usr/bin/env bash
# Stale LMDB reader slots (issue 18, item 4). A command cut off while it reads
# the store (`hsync ls | head -1`, `hsync export | head -c 100`, kill -9 of a
# running export) must not leave its reader slot behind: 300 such reads, then
# status, sync and /metrics still answer, `mdb_stat -r` lists no slot of a
# dead process once the next command (or the broker's housekeeping) has run,
# and the store does not grow round after round of updates made while a
# killed reader pinned an old snapshot.
. "$(dirname "$0")/../topology/lib_broker.sh"

hs() { "$HSYNC" "$@"; }
P=$(hb_dir p)
command -v mdb_stat >/dev/null || {
    fail "mdb_stat missing (Debian package lmdb-utils, installed by .ci/setup)"
    hb_done
}

# slots of the reader table whose process is gone (pids listed by mdb_stat -r)
stale_readers() {
    local n=0 pid
    for pid in $(mdb_stat -r "$P/store" | awk 'NR > 2 && $1 ~ /^[0-9]+$/ {print $1}'); do
        kill -0 "$pid" 2>/dev/null || n=$((n + 1))
    done
    echo "$n"
}
no_stale_readers() { [ "$(stale_readers)" -eq 0 ]; }
# housekeeping removed the superseded change-log entries: one entry per object
log_compacted() {
    [ "$(json_get "$(hs status -d "$P" --json)" 'j["log_entries"]')" -le 3010 ]
}
pages_used() { mdb_stat -e "$P/store" | awk '/Number of pages used/ {print $5}'; }

# NDJSON of N computers with fixed guids; ROUND changes every body.
objects() {
    python3 - "$1" "$2" <<'PY'
import json, sys
n, rnd = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(json.dumps({"class": "resource.computer", "guid": "00000000-0000-7000-8000-%012x" % i,
                      "keys": {"serial": "SN%d" % i},
                      "body": {"name": "pc%d" % i, "round": rnd, "pad": "x" * 200}}))
PY
}

# kill_reader: start an export, wait until it is blocked writing into a FIFO
# nobody drains (so it is inside its read transaction), kill -9 it.
FIFO=$HB_T/fifo
mkfifo "$FIFO"
kill_reader() {
    local fifo=$FIFO pid line
    "$HSYNC" export -d "$P" >"$fifo" & # not through hs(): $! must be hsync itself
    pid=$!
    exec 3<"$fifo"
    read -r line <&3 # the export has started writing: its snapshot is open
    hs_killed "$pid"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    exec 3<&-
}

hb_node p
hb_node c
objects 3000 0 >"$HB_T/r0.ndjson"
expect_exit 0 hs import -d "$P" "$HB_T/r0.ndjson"
hb_start p
hb_start c
hb_link p c
wait_for 10 hb_state_is p c up

# ---- a closed pipe is a normal stop, and ends the transaction cleanly ----
out=$(hs ls -d "$P" | head -1)
rc=${PIPESTATUS[0]}
assert_contains "$out" "resource.computer" "ls | head -1 prints the first line"
hs ls -d "$P" 2>"$HB_T/ls.err" | head -1 >/dev/null
assert_eq "0 " "${PIPESTATUS[0]} $(cat "$HB_T/ls.err")" "ls | head -1: exit 0, nothing on stderr"
hs export -d "$P" 2>"$HB_T/ex.err" | head -c 100 >/dev/null
assert_eq "0 " "${PIPESTATUS[0]} $(cat "$HB_T/ex.err")" "export | head -c 100: exit 0, quiet"
assert_eq 0 "$(stale_readers)" "a cut-off ls or export leaves no reader slot"
: "$rc"

# ---- 300 interrupted reads ----
# (the shell's read stands in for head here: the same closed pipe after one
# line or 100 bytes, without two more processes per round)
for i in $(seq 1 100); do
    hs ls -d "$P" | { read -r _; }
    hs export -d "$P" | { read -r -N 100 _; }
    kill_reader
done
expect_exit 0 hs status -d "$P"
expect_exit 0 hs sync -d "$P"
expect_exit 0 hs digest -d "$P"
assert_eq 0 "$(stale_readers)" "after 300 interrupted reads and one more command"
code=$(curl -s -o "$HB_T/metrics" -w '%{http_code}' "http://127.0.0.1:$(($(hb_port p) + 1))/metrics")
assert_eq 200 "$code" "/metrics answers"
assert_contains "$(cat "$HB_T/metrics")" "hsync_up" "/metrics"

# ---- the broker's housekeeping frees a killed reader's slot by itself ----
kill_reader
assert_eq 1 "$(stale_readers)" "a killed export leaves its slot (before housekeeping)"
wait_for 15 no_stale_readers
wait_for 5 hb_log_has p "event=stale-readers"

# ---- the store does not grow while killed readers come and go ----
declare -a used=()
for r in 1 2 3 4; do
    kill_reader # pins the current snapshot until someone frees the slot
    objects 3000 "$r" >"$HB_T/r.ndjson"
    expect_exit 0 hs import -d "$P" "$HB_T/r.ndjson"
    wait_for 20 log_compacted # superseded change-log entries go at housekeeping
    used+=("$(pages_used)")
done
echo "pages used after each round: ${used[*]}" >&2
if [ "${used[3]}" -le $((used[1] + used[1] / 10)) ]; then
    pass "store size bounded across rounds (${used[*]} pages)"
else
    fail "store keeps growing across rounds: ${used[*]} pages"
fi
expect_exit 0 hs sync -d "$P"
hb_done
