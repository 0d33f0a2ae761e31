# tests/topology/lib_broker.sh - real brokers on 127.0.0.1 for the topology
# suites. Source it instead of ../lib.sh (it sources that):
#
#   . "$(dirname "$0")/lib_broker.sh"
#   hb_node p; hb_start p            # init node "p" on a free port, run it
#   hb_node c; hb_start c
#   hb_link p c                      # invite on c, add-child on p
#   wait_for 10 hb_state_is p c up
#
# Every broker started here is stopped when the script exits (SIGTERM, then
# SIGKILL if it does not stop within a few seconds). Ports come from a block
# derived from the script's pid and name, below the kernel's ephemeral range,
# checked to be free, so suites can run in parallel. Each node uses two ports
# (listen, and http = listen + 1).
#
# Environment: HSYNC_PROBE, the raw ZeroMQ client (tests/tools/hsync_probe.c).

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

: "${HSYNC_PROBE:?HSYNC_PROBE must name the hsync_probe tool}"
export HSYNC_PROBE

HB_T=$(hs_tmp)
HB_BLOCK=40 # ports per suite: 20 nodes
declare -A HB_PID=() HB_IDX=()
HB_NEXT=0

# A port block nobody listens on: [HB_BASE, HB_BASE + HB_BLOCK).
hb_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

hb_pick_base() {
    local salt slot try p busy
    salt=$(printf '%s' "$(basename "$0")" | cksum | cut -d' ' -f1)
    slot=$((($$ + salt) % 300))
    for try in $(seq 0 29); do
        HB_BASE=$((20000 + ((slot + try * 7) % 300) * HB_BLOCK))
        busy=0
        for p in $(seq "$HB_BASE" $((HB_BASE + HB_BLOCK - 1))); do
            if hb_port_busy "$p"; then
                busy=1
                break
            fi
        done
        [ "$busy" -eq 0 ] && return 0
    done
    echo "lib_broker.sh: no free port block found" >&2
    exit 1
}
hb_pick_base

hb_cleanup() {
    local n pid f
    for n in "${!HB_PID[@]}"; do
        kill -TERM "${HB_PID[$n]}" 2>/dev/null
    done
    for n in "${!HB_PID[@]}"; do
        pid=${HB_PID[$n]}
        for _ in $(seq 1 100); do # bounded: 5 s
            kill -0 "$pid" 2>/dev/null || break
            hs_pause 0.05
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$HS_FAIL" -gt 0 ]; then # the brokers' side of the story
        for f in "$HB_T"/*.log; do
            [ -f "$f" ] || continue
            echo "---- ${f##*/} (last 40 lines)" >&2
            tail -n 40 "$f" >&2
        done
    fi
    hs_cleanup
}
trap hb_cleanup EXIT

# hb_dir NAME / hb_log NAME / hb_port NAME: where node NAME lives.
hb_dir() { echo "$HB_T/$1"; }
hb_log() { echo "$HB_T/$1.log"; }
hb_port() { echo $((HB_BASE + 2 * HB_IDX[$1])); }

# hb_node NAME [NODE-NAME]: hsync init a node on the next free port pair, in
# folder NAME, named NODE-NAME (default NAME).
hb_node() {
    if [ "$HB_NEXT" -ge $((HB_BLOCK / 2)) ]; then
        fail "lib_broker.sh: more than $((HB_BLOCK / 2)) nodes"
        return 1
    fi
    HB_IDX[$1]=$HB_NEXT
    HB_NEXT=$((HB_NEXT + 1))
    expect_exit 0 "$HSYNC" init -d "$(hb_dir "$1")" --name "${2:-$1}" \
        --listen "tcp://127.0.0.1:$(hb_port "$1")"
}

# hb_running NAME: true when the node's broker answers on its control socket.
hb_running() {
    [ "$(json_get "$("$HSYNC" hierarchy show -d "$(hb_dir "$1")" --json 2>/dev/null)" \
        'j.get("broker")' 2>/dev/null)" == "running" ]
}

# hb_start NAME: run the node's broker in the background (log appended to
# hb_log NAME) and wait until it answers.
hb_start() {
    "$HSYNC" serve -d "$(hb_dir "$1")" 2>>"$(hb_log "$1")" &
    HB_PID[$1]=$!
    wait_for 10 hb_running "$1"
}

hb_gone() { ! kill -0 "${HB_PID[$1]}" 2>/dev/null; }

# hb_stop NAME: SIGTERM, and wait (bounded) until it has exited.
hb_stop() {
    kill -TERM "${HB_PID[$1]}" 2>/dev/null
    wait_for 10 hb_gone "$1"
    hb_gone "$1" || kill -KILL "${HB_PID[$1]}" 2>/dev/null # never hang the suite
    wait "${HB_PID[$1]}" 2>/dev/null
    unset "HB_PID[$1]"
}

# hb_kill9 NAME: SIGKILL, no chance to clean up.
hb_kill9() {
    hs_killed "${HB_PID[$1]}"
    kill -KILL "${HB_PID[$1]}" 2>/dev/null
    wait "${HB_PID[$1]}" 2>/dev/null
    unset "HB_PID[$1]"
}

# hb_show NAME: `hierarchy show --json` of the node.
hb_show() { "$HSYNC" hierarchy show -d "$(hb_dir "$1")" --json; }

# hb_q NAME EXPR: a Python expression over NAME's hierarchy show (`j`),
# with `links` = {peer name: link}.
hb_q() {
    json_get "$(hb_show "$1")" '(lambda links: '"$2"')({l["name"]: l for l in j["links"]})'
}

# hb_state NAME PEER: the state of NAME's link to PEER ("" if none).
hb_state() { hb_q "$1" 'links.get("'"$2"'", {}).get("state", "")'; }
hb_state_is() { [ "$(hb_state "$1" "$2")" == "$3" ]; }

# hb_links NAME: "role:peer" of every link, sorted, space-separated.
hb_links() { hb_q "$1" '" ".join(sorted(l["role"] + ":" + n for n, l in links.items()))'; }
hb_links_are() { [ "$(hb_links "$1")" == "$2" ]; }

# hb_path NAME: the parent path NAME was told ("a>b"), "" without parent.
hb_path() {
    hb_q "$1" '">".join(r["name"] for l in links.values() if l["role"] == "parent" for r in l["path"])'
}
hb_path_is() { [ "$(hb_path "$1")" == "$2" ]; }

# hb_subtree NAME PEER: what child PEER told NAME about its subtree ("x,y").
hb_subtree() {
    hb_q "$1" '",".join(r["name"] for r in links.get("'"$2"'", {}).get("subtree", []))'
}
hb_subtree_is() { [ "$(hb_subtree "$1" "$2")" == "$3" ]; }

# hb_all_up NAME N: NAME has exactly N links and every one is up.
hb_all_up() {
    [ "$(hb_q "$1" 'str(len(links)) + ":" + ",".join(sorted(set(l["state"] for l in links.values())))')" == "$2:up" ]
}

# hb_invite NAME [ARGS...]: a fresh invite token of NAME.
hb_invite() { "$HSYNC" invite -d "$(hb_dir "$1")" "${@:2}"; }

# hb_link PARENT CHILD [ARGS...]: invite on CHILD, add-child on PARENT.
hb_link() {
    local tok
    tok=$(hb_invite "$2")
    expect_exit 0 "$HSYNC" hierarchy add-child -d "$(hb_dir "$1")" "${@:3}" "$tok"
}

# hb_log_count NAME TEXT: lines of NAME's log that contain TEXT.
hb_log_count() { grep -cF -- "$2" "$(hb_log "$1")" 2>/dev/null || true; }
# hb_log_count_ge NODE TEXT N: at least N lines of NODE's log contain TEXT
# (a predicate for wait_for: counted again at every try).
hb_log_count_ge() { [ "$(hb_log_count "$1" "$2")" -ge "$3" ]; }
hb_log_has() { grep -qF -- "$2" "$(hb_log "$1")" 2>/dev/null; }

# hb_refused NAME: handshakes NAME's broker refused since it started (ZAP);
# hb_refused_ge NAME N: at least N (a predicate for wait_for).
hb_refused() { hb_q "$1" 'j["security"]["handshakes_refused"]'; }
hb_refused_ge() { [ "$(hb_refused "$1")" -ge "$2" ]; }

# hb_probe ARGS...: run hsync_probe (see tests/tools/hsync_probe.c), output in
# HS_OUT; the exit status (0 reply, 3 none) is checked against the first arg.
hb_probe() { expect_exit "$1" "$HSYNC_PROBE" "${@:2}"; }

# hb_done: stop every broker cleanly (leak reports are written at exit),
# fail if a sanitizer reported anything in a broker's log, then hs_done
# (summary line, exit status).
hb_done() {
    local f n
    for n in "${!HB_PID[@]}"; do
        hb_stop "$n"
    done
    for f in "$HB_T"/*.log; do
        [ -f "$f" ] || continue
        if grep -qE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$f"; then
            fail "sanitizer report in ${f##*/}"
            grep -E -A30 "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$f" |
                head -n 60 >&2
        else
            pass
        fi
    done
    hs_done
}
