#!/usr/bin/env bash
# Data verification: objects corrupted directly in the child's LMDB (no
# change-log entry, same seq and mtime: nothing a differential run can see)
# are found and repaired by the verification runs of a rule with --verify 10
# within 100/10 = 10 runs, and history counts the repairs.
. "$(dirname "$0")/lib_repl.sh"

: "${HSYNC_CORRUPT:?HSYNC_CORRUPT must name the hsync_corrupt tool}"

N=2000
BAD=3
PCT=10

test_verification_repairs_corruption() {
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
    local f
    f=$(hs_tmp)/items.ndjson
    hr_gen_items "$f" "$N"
    hr_import p "$f"
    hr_sync p --rule items
    wait_for 20 hr_same_digest p c item.
    assert_eq "$N" "$(hr_count c item.policy)" "items at c"
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --verify "$PCT"
    expect_exit 0 hs rule show -d "$(hr_dir p)" items --json
    assert_eq "$PCT" "$(json_get "$HS_OUT" 'j["verify_percent"]')" "rule show: verify_percent"

    # Corrupt BAD items at c, with its broker running (LMDB serialises the
    # writers).
    local guids g
    guids=$(hs export -d "$(hr_dir c)" --class item.policy |
        python3 -c 'import json,sys; [print(json.loads(l)["guid"]) for l in sys.stdin]' |
        shuf -n "$BAD" --random-source=<(yes))
    assert_eq "$BAD" "$(echo "$guids" | wc -l)" "guids picked"
    local before
    before=$(hr_digest c item.)
    # shellcheck disable=SC2086 # one argument per guid
    expect_exit 0 "$HSYNC_CORRUPT" -d "$(hr_dir c)" $guids
    assert_eq "" "$HS_OUT" "hsync_corrupt prints nothing"
    assert_ne "$before" "$(hr_digest c item.)" "digest at c changed by the corruption"
    assert_ne "$(hr_digest p item.)" "$(hr_digest c item.)" "digests differ after the corruption"
    assert_eq "$N" "$(hr_count c item.policy)" "the count does not change"
    for g in $guids; do
        expect_exit 0 hs get -d "$(hr_dir c)" "$g" --json
        assert_contains "$HS_OUT" '"corrupt"' "$g corrupted at c"
    done
    # A differential run alone sees nothing.
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --verify 0
    hr_sync p --rule items
    assert_eq "0" "$(hr_run sent c items down sent)" "a differential run sends nothing"
    assert_ne "$(hr_digest p item.)" "$(hr_digest c item.)" "so the digests still differ"
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --verify "$PCT"

    # At most 100/PCT syncs, each a differential run plus a verification run
    # over the next PCT% of buckets.
    local runs=0 max=$((100 / PCT)) nver
    while [ "$runs" -lt "$max" ]; do
        runs=$((runs + 1))
        hr_sync p --rule items
        nver=$(json_get "$HS_OUT" 'len([r for r in j["runs"] if r["mode"] == "reconcile" and "verification" in r["why"]])')
        assert_eq "1" "$nver" "sync $runs has one verification run"
        assert_contains "$(json_get "$HS_OUT" '[r["why"] for r in j["runs"] if r["mode"] == "reconcile"]')" \
            "($PCT% of the scope)" "why of verification run $runs"
        hr_same_digest p c item. && break
    done
    if hr_same_digest p c item.; then
        pass
    else
        fail "digests still differ after $runs verification runs"
    fi
    echo "converged after $runs verification runs"
    for g in $guids; do
        expect_exit 0 hs get -d "$(hr_dir c)" "$g" --json
        assert_not_contains "$HS_OUT" '"corrupt"' "$g repaired at c"
    done
    assert_eq "$N" "$(hr_count c item.policy)" "items at c after the repair"

    # History at p: verification runs that repaired, BAD repairs in all.
    expect_exit 0 hs history -d "$(hr_dir p)" --limit 2000 --json
    local hist=$HS_OUT q
    assert_json "$hist" "history --json"
    q='[h for h in j if h["peer"] == "c" and h["rule"] == "items" and h["role"] == "sent" and h["mode"] == "reconcile" and "verification" in h["why"]]'
    assert_eq "$runs" "$(json_get "$hist" 'len('"$q"')')" "verification runs in history"
    assert_eq "true" "$(json_get "$hist" 'all(h["ok"] for h in '"$q"')')" "every verification run ok"
    assert_eq "$BAD" "$(json_get "$hist" 'sum(h["applied"] for h in '"$q"')')" "repairs counted in history"
    assert_eq "true" "$(json_get "$hist" 'any(h["applied"] > 0 for h in '"$q"')')" "runs that repaired"
    assert_eq "0" "$(json_get "$hist" 'sum(h["deleted"] for h in '"$q"')')" "nothing deleted by verification"
    # Each window is a different 10%: the whys name different ranges.
    assert_eq "$runs" "$(json_get "$hist" 'len(set(h["why"] for h in '"$q"'))')" "windows rotate"
    # The child's side records what it received too.
    expect_exit 0 hs history -d "$(hr_dir c)" --limit 2000 --json
    assert_eq "$BAD" "$(json_get "$HS_OUT" 'sum(h["applied"] for h in j if h["rule"] == "items" and h["role"] == "received" and h["mode"] == "reconcile")')" \
        "repairs counted in the child's history"

    # Converged: the next verification finds nothing.
    hr_sync p --rule items
    assert_eq "0" "$(json_get "$HS_OUT" 'sum(r["applied"] for r in j["runs"])')" "nothing left to repair"
}

test_verification_repairs_corruption
hr_done
