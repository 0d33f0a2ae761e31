#!/usr/bin/env bash
# A full LMDB map on the receiving side of a replication run: the child runs
# with a 4 MiB map that may not grow, the parent sends it far more. The run
# fails with a clear error (sync output, history, the child's log), the child
# keeps serving reads, what arrived is whole batches (a prefix of the
# parent's scope in (class, guid) order, identical objects), and after a
# restart with room to grow the run completes and the digests agree.
. "$(dirname "$0")/../replication/lib_repl.sh"

N=${HSYNC_MAPFULL_N:-30000}
SMALL=$((4 << 20))

test_map_full_then_grow() {
    hr_node p
    hr_node c
    local f g
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$N" M
    hr_import p "$f"
    g=$(HSYNC_MAP_SIZE=$SMALL HSYNC_MAP_MAX=$SMALL hr_put c resource.computer '{"name":"own"}' \
        --key serial=OWN-1)
    hr_start p
    HSYNC_MAP_SIZE=$SMALL HSYNC_MAP_MAX=$SMALL hr_start c
    hr_link p c

    expect_exit 1 hs sync -d "$(hr_dir p)" --rule resources --timeout 40 --json
    local why
    why=$(json_get "$HS_OUT" '[r.get("error") or r.get("why") for r in j["runs"] if r["peer"] == "c" and r["direction"] == "down"][0]' 2>/dev/null)
    echo "map full: sync said: $why"
    assert_contains "$why" "full" "sync output names the full store"
    assert_contains "$(cat "$(hr_log c)")" "HSYNC_MAP_MAX" "c's log says what to do"
    expect_exit 0 hs history -d "$(hr_dir p)" --json
    assert_contains "$HS_OUT" "full" "history records the failure"

    # Reads still work on the child, with the broker still up.
    hr_running c && pass || fail "c stopped serving after its map filled"
    expect_exit 0 hs get -d "$(hr_dir c)" "$g"
    assert_contains "$HS_OUT" "own"
    expect_exit 0 hs digest -d "$(hr_dir c)" --class resource.
    local k
    hs export -d "$(hr_dir p)" --class resource. >"$HR_T/p.export"
    hs export -d "$(hr_dir c)" --class resource. >"$HR_T/c.export"
    k=$(hr_prefix_check "$HR_T/p.export" "$HR_T/c.export" p)
    echo "map full: $k of $N objects arrived before the map filled"
    if [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -lt "$N" ]; then pass; else fail "arrived: $k"; fi
    if [[ "$k" =~ ^[0-9]+$ ]] && [ $((k % 2048)) -eq 0 ]; then pass; else
        fail "$k objects is not a whole number of 2048-object batches"; fi

    # Room to grow: the run completes and digests agree.
    hr_stop c
    HSYNC_MAP_SIZE=$SMALL hr_start c
    wait_for 10 hr_state_is p c up
    wait_for 10 hr_state_is c p up # the new session, not p's view of the old one
    hr_sync p --rule resources --timeout 60
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "sync after raising the limit"
    wait_for 20 hr_same_digest p c resource. p
    assert_eq "$N" "$(hr_count c resource. p)" "everything arrived"
    assert_eq "1" "$(hr_count c resource. c)" "c's own resource kept"
}

test_map_full_then_grow
hr_done
