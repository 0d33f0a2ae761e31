#!/usr/bin/env bash
# Several hsync processes write to one node folder at once: LMDB serialises
# them, nothing is lost, every change gets its own sequence number and the
# incremental digest still equals a full scan.
. "$(dirname "$0")/../lib.sh"

T=$(hs_tmp)
N="$T/n"
WRITERS=8
EACH=80
hs() { "$HSYNC" "$@"; }

expect_exit 0 hs init -d "$N" --name n

writer() {
    local w=$1 i
    for ((i = 0; i < EACH; i++)); do
        "$HSYNC" put -d "$N" --class item.policy \
            --guid "$(printf '00000000-0000-7000-8%03x-%012x' "$w" "$i")" \
            "{\"writer\":$w,\"i\":$i}" >/dev/null || return 1
    done
}

pids=()
for ((w = 0; w < WRITERS; w++)); do
    writer "$w" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" && pass || fail "writer $p failed"
done

total=$((WRITERS * EACH))
expect_exit 0 hs ls -d "$N"
assert_eq "$total" "$(printf '%s\n' "$HS_OUT" | wc -l)" "objects listed"
expect_exit 0 hs status -d "$N" --json
assert_eq "$total" "$(json_get "$HS_OUT" 'j["objects"]')" "objects counted"
assert_eq "$total" "$(json_get "$HS_OUT" 'j["log_head"]')" "change-log head"
d=$(hs digest -d "$N")
assert_contains "$d" "$total "
assert_eq "$d" "$(hs digest -d "$N" --scan)" "digest == digest --scan"
# Every writer's objects are all there.
expect_exit 0 hs export -d "$N"
assert_eq "$(printf '%s\n' $(seq 0 $((WRITERS - 1))) | sed "s/$/ $EACH/")" \
    "$(printf '%s\n' "$HS_OUT" | python3 -c 'import json,sys,collections; c=collections.Counter(json.loads(l)["body"]["writer"] for l in sys.stdin); print("\n".join("%d %d" % kv for kv in sorted(c.items())))')" \
    "objects per writer"

hs_done
