# tests/lib.sh - helpers for the command-line and integration suites.
#
# Source it from tests/<module>/test_<thing>.sh:
#
#   . "$(dirname "$0")/../lib.sh"
#   dir=$(hs_tmp)
#   expect_exit 0 "$HSYNC" init -d "$dir/n1" --name n1
#   assert_contains "$HS_OUT" "initialised node n1"
#   hs_done                      # prints "N passed, M failed"; exit 1 on failure
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   HSYNC           the hsync binary
#   HSYNC_TEST_TMP  where scratch folders go (removed when the script exits)
#   HSYNC_TESTS     the tests/ folder
#
# Assertions count passes and failures and go on, so one run shows every
# failure. Synchronise with wait_for (poll a condition up to a deadline),
# never with a fixed sleep.

set -u

: "${HSYNC:?HSYNC must name the hsync binary}"
: "${HSYNC_TEST_TMP:=${TMPDIR:-/tmp}/hsync-tests}"
: "${HSYNC_TESTS:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
export HSYNC HSYNC_TEST_TMP HSYNC_TESTS
unset HSYNC_DIR

HS_PASS=0
HS_FAIL=0
# The interpreter itself, not a version-manager shim (a shim costs ~100 ms a
# call, and the suites call it thousands of times).
HS_PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)
case "$HS_PY" in /*) PATH="$(dirname "$HS_PY"):$PATH" ;; esac

HS_OUT=""
HS_ERR=""
HS_RC=0

mkdir -p "$HSYNC_TEST_TMP"
HS_ROOT=$(mktemp -d "$HSYNC_TEST_TMP/$(basename "$0" .sh).XXXXXX")

# HSYNC_VALGRIND=1: every hsync process of the suite, commands and brokers,
# runs under valgrind's memcheck (tests/valgrind.supp holds the suppressions,
# each with its reason). Each process logs to $HS_ROOT/valgrind/; hs_done fails
# the suite on any memcheck error or definite leak in them. Deadlines given to
# wait_for (and suites that scale their own waits by HS_TIME_SCALE) stretch by
# HSYNC_TIME_SCALE (default 8 under valgrind).
HS_TIME_SCALE=${HSYNC_TIME_SCALE:-1}
if [ -n "${HSYNC_VALGRIND:-}" ]; then
    HS_VG_LOGS=$HS_ROOT/valgrind
    mkdir -p "$HS_VG_LOGS"
    printf '#!/bin/sh\nexec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 --suppressions="%s" --log-file="%s/vg.%%p.log" "%s" "$@"\n' \
        "$HSYNC_TESTS/valgrind.supp" "$HS_VG_LOGS" "$HSYNC" >"$HS_ROOT/hsync-vg"
    chmod +x "$HS_ROOT/hsync-vg"
    HSYNC=$HS_ROOT/hsync-vg
    HS_TIME_SCALE=${HSYNC_TIME_SCALE:-8}
    # valgrind cannot reserve the default 64 GiB map; start smaller (it grows).
    export HSYNC_MAP_SIZE=${HSYNC_MAP_SIZE:-$((256 << 20))}
fi

# Under AddressSanitizer (ASAN_OPTIONS set, as .ci/run does for the sanitizer
# build), LeakSanitizer's check at exit costs each process about 55 ms, and a
# suite runs hundreds of commands, most of them only to drive and observe its
# brokers. Every broker (`hsync serve`) is checked; of the commands, the first
# three runs of each subcommand in a suite (the first twenty in the
# command-line suites, tests/cli/, whose subject they are) and the unit suites.
# HSYNC_LSAN_ALL=1 checks every process.
if [ -n "${ASAN_OPTIONS:-}" ] && [ -z "${HSYNC_LSAN_ALL:-}" ] && [ -z "${HSYNC_VALGRIND:-}" ]; then
    HS_LSAN_SEEN=$HS_ROOT/lsan-seen
    mkdir -p "$HS_LSAN_SEEN"
    case "$0" in */cli/*) HS_LSAN_FIRST=20 ;; *) HS_LSAN_FIRST=3 ;; esac
    cat >"$HS_ROOT/hsync-lsan" <<EOF
#!/bin/sh
case "\$1" in serve) exec "$HSYNC" "\$@" ;; */* | "") c=other ;; *) c=\$1 ;; esac
i=1
while [ \$i -le $HS_LSAN_FIRST ]; do
    if [ ! -e "$HS_LSAN_SEEN/\$c.\$i" ]; then
        : >"$HS_LSAN_SEEN/\$c.\$i"
        exec "$HSYNC" "\$@"
    fi
    i=\$((i + 1))
done
ASAN_OPTIONS="\$ASAN_OPTIONS:detect_leaks=0" exec "$HSYNC" "\$@"
EOF
    chmod +x "$HS_ROOT/hsync-lsan"
    HSYNC=$HS_ROOT/hsync-lsan
fi

# hs_killed PID: PID is about to be killed on purpose (SIGKILL): its
# memcheck log will have no summary, and that is expected.
hs_killed() {
    [ -n "${HSYNC_VALGRIND:-}" ] && echo "$1" >>"$HS_VG_LOGS/killed"
    return 0
}

# hs_valgrind_check: fail on any memcheck error or definite leak logged by
# the processes of this suite, and on any process that ended without its
# summary (leaks are counted at exit) unless it was killed on purpose
# (hs_killed). Nothing to do unless HSYNC_VALGRIND is set.
hs_valgrind_check() {
    [ -n "${HSYNC_VALGRIND:-}" ] || return 0
    local f pid bad=0 n=0 killed=0 unfinished=0
    for f in "$HS_VG_LOGS"/vg.*.log; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        if grep -qE 'ERROR SUMMARY: [1-9]|^==[0-9]+== (Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)' "$f"; then
            bad=$((bad + 1))
            if [ "$bad" -le 3 ]; then
                echo "---- valgrind: $f" >&2
                head -n 60 "$f" >&2
            fi
        elif ! grep -q 'ERROR SUMMARY:' "$f"; then
            pid=${f##*/vg.}
            pid=${pid%.log}
            if grep -qx "$pid" "$HS_VG_LOGS/killed" 2>/dev/null; then
                killed=$((killed + 1))
            else
                unfinished=$((unfinished + 1))
                echo "---- valgrind: $f ended without a summary (killed, or still running)" >&2
            fi
        fi
    done
    echo "valgrind: $n hsync processes checked, $bad with errors, $killed killed on purpose, $unfinished unfinished"
    if [ "$bad" -eq 0 ]; then pass; else fail "memcheck errors in $bad of $n hsync processes"; fi
    if [ "$unfinished" -eq 0 ]; then pass; else
        fail "$unfinished hsync processes ended without a memcheck summary"; fi
}

hs_cleanup() {
    local pids
    pids=$(jobs -pr)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    [ -n "${HSYNC_KEEP:-}" ] || rm -rf "$HS_ROOT" # HSYNC_KEEP=1 keeps it for a post-mortem
}
trap hs_cleanup EXIT

# hs_tmp: print the path of a new, empty scratch folder (removed on exit).
hs_tmp() {
    mktemp -d "$HS_ROOT/t.XXXXXX"
}

# pass [MESSAGE] / fail MESSAGE: record one result.
pass() {
    HS_PASS=$((HS_PASS + 1))
}

fail() {
    HS_FAIL=$((HS_FAIL + 1))
    echo "FAIL: $*" >&2
    local i=$((${#FUNCNAME[@]} - 2)) # the script's call into this file
    echo "  at ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}" >&2
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [ "$1" == "$2" ]; then
        pass
    else
        fail "${3:-values differ}: expected '$1', got '$2'"
    fi
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    if [ "$1" != "$2" ]; then
        pass
    else
        fail "${3:-values are equal}: did not expect '$1'"
    fi
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    if [[ "$1" == *"$2"* ]]; then
        pass
    else
        fail "${3:-missing text}: '$2' not in '$1'"
    fi
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ "$1" != *"$2"* ]]; then
        pass
    else
        fail "${3:-unexpected text}: '$2' found in '$1'"
    fi
}

# expect_exit CODE CMD ARGS...: run CMD, check its exit status. Leaves stdout
# in HS_OUT, stderr in HS_ERR and the status in HS_RC for further checks.
# Stdin is passed through (use: expect_exit 0 cmd ... < file).
expect_exit() {
    local want=$1
    shift
    local out err
    out=$(mktemp "$HS_ROOT/out.XXXXXX")
    err=$(mktemp "$HS_ROOT/err.XXXXXX")
    "$@" >"$out" 2>"$err"
    HS_RC=$?
    HS_OUT=$(cat "$out")
    HS_ERR=$(cat "$err")
    rm -f "$out" "$err"
    if [ "$HS_RC" -eq "$want" ]; then
        pass
    else
        fail "exit $HS_RC (expected $want): $*${HS_ERR:+
  stderr: $HS_ERR}"
    fi
}

# assert_json TEXT [WHAT]: TEXT is valid JSON (python3 -m json.tool).
assert_json() {
    if printf '%s' "$1" | "$HS_PY" -S -m json.tool >/dev/null 2>&1; then
        pass
    else
        fail "${2:-output} is not valid JSON: $1"
    fi
}

# json_get TEXT EXPR: evaluate a Python expression over the parsed JSON `j`,
# e.g. json_get "$out" 'j["count"]'. Prints the result.
json_get() {
    printf '%s' "$1" | "$HS_PY" -S -c 'import json,sys; j=json.load(sys.stdin); v='"$2"'; print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)'
}

# hs_pause SECONDS: sleep without starting a process (/usr/bin/sleep is one
# fork and exec per poll): a read with a timeout on a pipe nothing writes to.
exec {HS_PAUSE_FD}<> <(:)
hs_pause() { read -r -t "$1" -u "$HS_PAUSE_FD" || true; }

# wait_for DEADLINE_SECONDS CMD ARGS...: poll CMD until it succeeds or the
# deadline passes (bounded loop). Tries every 0.1 s for the first 2 s, then
# every 0.25 s, and every 0.5 s after 10 s: a long wait does not keep a core
# busy starting the processes of its tries (two suites run at once, and the
# brokers being waited for need the CPU). Records a pass or a failure;
# returns 0 or 1.
wait_for() {
    local deadline=$(($1 * HS_TIME_SCALE))
    shift
    local start=$SECONDS
    local end=$((start + deadline))
    while :; do
        if "$@" >/dev/null 2>&1; then
            pass
            return 0
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            fail "condition not met within ${deadline}s: $*"
            return 1
        fi
        if [ $((SECONDS - start)) -ge 10 ]; then
            hs_pause 0.5
        elif [ $((SECONDS - start)) -ge 2 ]; then
            hs_pause 0.25
        else
            hs_pause 0.1
        fi
    done
}

# hs_done: the summary line; exit 1 if anything failed.
hs_done() {
    hs_valgrind_check
    echo "$HS_PASS passed, $HS_FAIL failed"
    [ "$HS_FAIL" -eq 0 ] || exit 1
    exit 0
}
