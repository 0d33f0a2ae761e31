#!/usr/bin/env bash
# Link health from consecutive failed runs: ok -> degraded -> failed while
# every run fails, and back to ok once the cause is fixed and a run succeeds.
# The runs fail for real: the child's store cannot grow (HSYNC_MAP_SIZE =
# HSYNC_MAP_MAX, small) and the parent has more item data than fits, so the
# child aborts each run with a store-full error while the link stays up.
. "$(dirname "$0")/lib_repl.sh"

MAP=$((2 << 20)) # the child's whole map: 2 MiB
BIG=40           # items of ~100 KB each: ~4 MB

# hr_health NAME PEER: health of NAME's link to PEER ("" if none).
hr_health() {
    json_get "$(hr_show "$1")" '([l.get("health", "") for l in j["links"] if l["name"] == "'"$2"'"] + [""])[0]'
}
hr_health_is() { [ "$(hr_health "$1" "$2")" == "$3" ]; }
hr_failures() {
    json_get "$(hr_show "$1")" '([l.get("failures", -1) for l in j["links"] if l["name"] == "'"$2"'"] + [-1])[0]'
}
health_logged() { grep -q "event=link-health.*link health $2 -> $3" "$(hr_log "$1")"; }

test_health_ok_degraded_failed_ok() {
    hr_node p
    hr_node c
    HSYNC_DEGRADED_AFTER=2 HSYNC_FAILED_AFTER=4 hr_start p
    HSYNC_MAP_SIZE=$MAP HSYNC_MAP_MAX=$MAP hr_start c
    hr_link p c
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --every 1s
    wait_for 10 hr_health_is p c ok
    assert_eq "0" "$(hr_failures p c)" "no failures at first"

    # More item data than the child's store can hold.
    local f
    f=$(hs_tmp)/big.ndjson
    python3 - "$f" "$BIG" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"class": "item.policy", "body": {"n": i, "pad": "y" * 100000}}) + "\n")
EOF
    hr_import p "$f"

    # The scheduled runs (every 1 s, then retries with backoff) fail: two
    # failures make the link degraded.
    wait_for 20 hr_health_is p c degraded
    wait_for 5 health_logged p ok degraded
    assert_eq "up" "$(hr_state p c)" "the link stays up while its runs fail"
    local n
    n=$(hr_failures p c)
    if [ "$n" -ge 2 ] && [ "$n" -lt 4 ]; then pass; else fail "failures while degraded: $n"; fi

    # Drive more runs now (the backoff would make us wait): each fails with
    # the store-full error from the child; at 4 the link is failed.
    local i
    for i in 1 2 3 4 5; do
        [ "$(hr_failures p c)" -ge 4 ] && break
        expect_exit 1 hs sync -d "$(hr_dir p)" --rule items --json
        assert_eq "false" "$(hr_run ok c items down sent)" "forced run $i fails"
        assert_contains "$(hr_run error c items down sent)" "full" "forced run $i: the store-full error"
    done
    wait_for 5 hr_health_is p c failed
    wait_for 5 health_logged p degraded failed
    n=$(hr_failures p c)
    if [ "$n" -ge 4 ]; then pass; else fail "failures while failed: $n"; fi
    assert_eq "up" "$(hr_state p c)" "the link is still up"
    assert_ne "$BIG" "$(hr_count c item.policy)" "the child does not have the items"
    # Status shows it too.
    expect_exit 0 hs status -d "$(hr_dir p)" --json
    assert_eq "failed" "$(json_get "$HS_OUT" '[l.get("health") for l in j["links"] if l["name"] == "c"][0]')" \
        "status shows the failed health"

    # Fix the cause: the child's store may grow again.
    hr_stop c
    hr_start c
    wait_for 15 hr_state_is p c up
    wait_for 15 hr_state_is c p up
    # The next run succeeds (forced: the backoff after several failures is
    # long) and one success makes the link ok.
    hr_sync p --rule items
    assert_eq "true" "$(hr_run ok c items down sent)" "the run after the fix is ok"
    wait_for 5 hr_health_is p c ok
    wait_for 5 health_logged p failed ok
    assert_eq "0" "$(hr_failures p c)" "no failures after the fix"
    assert_eq "$BIG" "$(hr_count c item.policy)" "the child has every item"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal after the fix"

    # The order of the transitions in the parent's log.
    local seq
    seq=$(grep 'event=link-health' "$(hr_log p)" | grep 'peer=c' |
        sed -n 's/.*link health \([a-z]*\) -> \([a-z]*\).*/\1>\2/p' | tr '\n' ' ')
    assert_eq "ok>degraded degraded>failed failed>ok " "$seq" "health transitions logged in order"
}

test_health_ok_degraded_failed_ok
hr_done
