# tests/replication/lib_repl.sh - real brokers on 127.0.0.1 for the
# replication suites. Source it instead of ../lib.sh (it sources that):
#
#   . "$(dirname "$0")/lib_repl.sh"
#   hr_node p; hr_start p            # init node "p" on a free port, run it
#   hr_node c; hr_start c
#   hr_link p c                      # invite on c, add-child on p, wait until up
#   hr_sync p --rule items           # hsync sync --json; the output in HS_OUT
#   hr_run sent c items down         # a field of one run of that output
#   hr_digest c item.                # "<count> <hex>"
#
# Every broker started here is stopped when the script exits (SIGTERM, then
# SIGKILL after a bounded wait). Ports come from a block in [10000, 20000)
# derived from the script's name and pid and checked to be free (the topology
# suites use [20000, 32000)), so suites can run in parallel. Each node uses
# two ports (listen, and http = listen + 1).

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HR_T=$(hs_tmp)
HR_BLOCK=40 # ports per suite: 20 nodes
# HR_HOST[NAME]: the address NAME listens on (default 127.0.0.1); HR_WRAP[NAME]:
# a command its broker runs under (nsenter into a network namespace, say).
declare -A HR_PID=() HR_IDX=() HR_HOST=() HR_WRAP=()
HR_NEXT=0

hr_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

hr_pick_base() {
    local salt slot try p busy
    salt=$(printf '%s' "$(basename "$0")" | cksum | cut -d' ' -f1)
    slot=$((($$ + salt) % 250))
    for try in $(seq 0 29); do
        HR_BASE=$((10000 + ((slot + try * 7) % 250) * HR_BLOCK))
        busy=0
        for p in $(seq "$HR_BASE" $((HR_BASE + HR_BLOCK - 1))); do
            if hr_port_busy "$p"; then
                busy=1
                break
            fi
        done
        [ "$busy" -eq 0 ] && return 0
    done
    echo "lib_repl.sh: no free port block found" >&2
    exit 1
}
hr_pick_base

hr_cleanup() {
    local n pid
    for n in "${!HR_PID[@]}"; do
        kill -TERM "${HR_PID[$n]}" 2>/dev/null
    done
    for n in "${!HR_PID[@]}"; do
        pid=${HR_PID[$n]}
        for _ in $(seq 1 100); do # bounded: 5 s
            kill -0 "$pid" 2>/dev/null || break
            hs_pause 0.05
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$HS_FAIL" -ne 0 ]; then # keep the broker logs of a failed run visible
        for n in "${!HR_IDX[@]}"; do
            [ -s "$(hr_log "$n")" ] || continue
            echo "---- tail of broker log $n" >&2
            tail -n 15 "$(hr_log "$n")" >&2
        done
    fi
    hs_cleanup
}
trap hr_cleanup EXIT

hs() { "$HSYNC" "$@"; }

# hr_dir NAME / hr_log NAME / hr_port NAME: where node NAME lives.
hr_dir() { echo "$HR_T/$1"; }
hr_log() { echo "$HR_T/$1.log"; }
hr_port() { echo $((HR_BASE + 2 * HR_IDX[$1])); }

# hr_node NAME: hsync init a node on the next free port pair.
hr_node() {
    if [ "$HR_NEXT" -ge $((HR_BLOCK / 2)) ]; then
        fail "lib_repl.sh: more than $((HR_BLOCK / 2)) nodes"
        return 1
    fi
    HR_IDX[$1]=$HR_NEXT
    HR_NEXT=$((HR_NEXT + 1))
    expect_exit 0 "$HSYNC" init -d "$(hr_dir "$1")" --name "$1" \
        --listen "tcp://${HR_HOST[$1]:-127.0.0.1}:$(hr_port "$1")"
}

# hr_show NAME: `hierarchy show --json` of the node (the broker's view).
hr_show() { "$HSYNC" hierarchy show -d "$(hr_dir "$1")" --json; }

# hr_running NAME: the node's broker answers on its control socket.
hr_running() {
    [ "$(json_get "$(hr_show "$1" 2>/dev/null)" 'j.get("broker")' 2>/dev/null)" == "running" ]
}

# hr_start NAME: run the node's broker in the background (log appended to
# hr_log NAME) and wait until it answers.
hr_start() {
    ${HR_WRAP[$1]:-} "$HSYNC" serve -d "$(hr_dir "$1")" 2>>"$(hr_log "$1")" &
    HR_PID[$1]=$!
    wait_for 10 hr_running "$1"
}

hr_gone() { ! kill -0 "${HR_PID[$1]}" 2>/dev/null; }

# hr_stop NAME: SIGTERM, and wait (bounded) until it has exited.
hr_stop() {
    kill -TERM "${HR_PID[$1]}" 2>/dev/null
    wait_for 10 hr_gone "$1"
    hr_gone "$1" || kill -KILL "${HR_PID[$1]}" 2>/dev/null # never hang the suite
    wait "${HR_PID[$1]}" 2>/dev/null
    unset "HR_PID[$1]"
}

# hr_kill9 NAME: SIGKILL, no chance to clean up.
hr_kill9() {
    hs_killed "${HR_PID[$1]}"
    kill -KILL "${HR_PID[$1]}" 2>/dev/null
    wait "${HR_PID[$1]}" 2>/dev/null
    unset "HR_PID[$1]"
}

# hr_state NAME PEER: the state of NAME's link to PEER ("" if none).
hr_state() {
    json_get "$(hr_show "$1")" '([l.get("state", "") for l in j["links"] if l["name"] == "'"$2"'"] + [""])[0]'
}
hr_state_is() { [ "$(hr_state "$1" "$2")" == "$3" ]; }

# hr_link PARENT CHILD: invite on CHILD, add-child on PARENT, wait until the
# link is up on both sides.
hr_link() {
    local tok
    tok=$("$HSYNC" invite -d "$(hr_dir "$2")")
    expect_exit 0 "$HSYNC" hierarchy add-child -d "$(hr_dir "$1")" "$tok"
    wait_for 10 hr_state_is "$1" "$2" up
    wait_for 10 hr_state_is "$2" "$1" up
}

# hr_put NAME CLASS JSON [ARGS...]: hsync put; prints the guid.
hr_put() { "$HSYNC" put -d "$(hr_dir "$1")" --class "$2" "${@:4}" "$3"; }

# hr_digest NAME PREFIX [OWNER]: "<count> <hex>" of NAME's objects.
hr_digest() {
    if [ -n "${3:-}" ]; then
        "$HSYNC" digest -d "$(hr_dir "$1")" --class "$2" --owner "$3"
    else
        "$HSYNC" digest -d "$(hr_dir "$1")" --class "$2"
    fi
}
# hr_count NAME PREFIX [OWNER]: just the count.
hr_count() { hr_digest "$@" | cut -d' ' -f1; }
hr_count_is() { [ "$(hr_count "$2" "$3" "${4:-}")" == "$1" ]; }
# hr_same_digest A B PREFIX [OWNER]: equal digests on A and B.
hr_same_digest() { [ "$(hr_digest "$1" "$3" "${4:-}")" == "$(hr_digest "$2" "$3" "${4:-}")" ]; }

# hr_sync NAME [ARGS...]: hsync sync --json, expecting success; output in
# HS_OUT (checked to be JSON).
hr_sync() {
    expect_exit 0 "$HSYNC" sync -d "$(hr_dir "$1")" --json "${@:2}"
    assert_json "$HS_OUT" "sync --json of $1"
}

# hr_run FIELD PEER RULE DIRECTION [ROLE] [JSON]: FIELD of the run of the
# last sync output (or JSON) for that peer, rule and direction (and role,
# "sent" or "received"); "none" if there is no such run.
hr_run() {
    local role=${5:-} out=${6:-$HS_OUT}
    json_get "$out" '([r.get("'"$1"'") for r in j["runs"] if r["peer"] == "'"$2"'" and r["rule"] == "'"$3"'" and r["direction"] == "'"$4"'" and ("'"$role"'" == "" or r.get("role") == "'"$role"'")] + ["none"])[0]' 2>/dev/null || echo "none"
}

# hr_import NAME FILE [ARGS...]: hsync import, expecting success.
hr_import() { expect_exit 0 "$HSYNC" import -d "$(hr_dir "$1")" "${@:3}" "$2"; }

# hr_gen_items FILE N [TAG]: N item.policy lines with distinct bodies.
hr_gen_items() {
    python3 - "$1" "$2" "${3:-v1}" <<'EOF'
import json, sys
path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"class": "item.policy", "body": {"n": i, "tag": tag, "pad": "x" * 40}}) + "\n")
EOF
}

# hr_gen_resources FILE N PREFIX [ORIGIN]: N resource.computer lines keyed
# by serial PREFIX-i (with origin ORIGIN if given).
hr_gen_resources() {
    python3 - "$1" "$2" "$3" "${4:-}" <<'EOF'
import json, sys
path, n, pre, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(path, "w") as f:
    for i in range(n):
        o = {"class": "resource.computer", "keys": {"serial": "%s-%d" % (pre, i)},
             "body": {"name": "%s-host-%d" % (pre, i), "ram": 4096 + i % 7}}
        if origin:
            o["origin"] = origin
        f.write(json.dumps(o) + "\n")
EOF
}

# hr_log_count NODE PATTERN: lines of NODE's broker log matching PATTERN.
# hr_log_more NODE PATTERN N: more than N of them (a predicate for wait_for:
# counted again at every try).
hr_log_count() { grep -c -- "$2" "$(hr_log "$1")" 2>/dev/null || true; }
hr_log_more() { [ "$(hr_log_count "$1" "$2")" -gt "$3" ]; }

# hr_rss_anon_kb PID: anonymous resident memory of a process (LMDB's
# file-backed map excluded).
hr_rss_anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# hr_store_bytes NODE: bytes of NODE's LMDB file (it grows as batches
# commit); hr_store_grown NODE BYTES: it is larger than BYTES.
hr_store_bytes() { stat -c %s "$(hr_dir "$1")/store/data.mdb"; }
hr_store_grown() { [ "$(hr_store_bytes "$1")" -gt "$2" ]; }

# hr_prefix_check P_EXPORT C_EXPORT OWNER: of OWNER's objects (hsync export
# lines), C holds exactly the first K of P's in guid order, each identical,
# as whole batches of a complete run leave them; prints K, or a reason.
hr_prefix_check() {
    python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
def load(path):
    out = {}
    for line in open(path):
        o = json.loads(line)
        if o["owner"] == sys.argv[3]:
            out[o["guid"]] = (o["keys"], o["body"], o["owner"])
    return out
p, c = load(sys.argv[1]), load(sys.argv[2])
order = sorted(p)
k = len(c)
if sorted(c) != order[:k]:
    print("not a prefix of the parent's scope")
elif any(c[g] != p[g] for g in c):
    print("objects differ from the parent's")
else:
    print(k)
EOF
}

# hr_is_deleted NAME GUID: NAME has no live object GUID (none, or a
# tombstone).
hr_is_deleted() {
    local out
    out=$("$HSYNC" get -d "$(hr_dir "$1")" "$2" --json 2>/dev/null) || return 0
    [ "$(json_get "$out" 'j.get("deleted")')" == "true" ]
}
# assert_deleted NAME GUID [WHAT]
assert_deleted() {
    if hr_is_deleted "$1" "$2"; then pass; else fail "${3:-deleted}: $2 is still live at $1"; fi
}

# hr_done: stop every broker cleanly, fail on any sanitizer report in their
# logs (ASan/UBSan/LSan builds), then hs_done.
hr_done() {
    local n
    for n in "${!HR_PID[@]}"; do
        hr_stop "$n"
    done
    for n in "${!HR_IDX[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$(hr_log "$n")" 2>/dev/null; then
            fail "sanitizer report in the log of $n:
$(grep -E -m3 -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$(hr_log "$n")")"
        else
            pass
        fi
    done
    hs_done
}
