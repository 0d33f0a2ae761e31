#!/usr/bin/env bash
# kill -9 the receiving broker in the middle of a large complete run: after
# a restart the sender resumes after the last acknowledged batch (it does not
# start over), and the two converge with no duplicates.
. "$(dirname "$0")/lib_repl.sh"

N=${HSYNC_RESUME_N:-150000}

# some, not all, of c's resources are durable at p
partly_there() {
    local n
    n=$(hr_count p resource. c) || return 1
    [ "$n" -gt 0 ] && [ "$n" -lt "$N" ]
}

test_kill9_receiver_mid_run() {
    hr_node p
    hr_node c
    local f
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$N" C
    hr_import c "$f"
    assert_eq "$N" "$(hr_count c resource. c)" "resources loaded at c"
    hr_start p
    hr_start c
    # Linking starts the first (complete) run of c's resources up to p;
    # watch for it at once.
    expect_exit 0 hs hierarchy add-child -d "$(hr_dir p)" "$(hs invite -d "$(hr_dir c)")"
    if ! wait_for 30 partly_there; then
        fail "never saw the run in progress (count at p: $(hr_count p resource. c))"
        return
    fi
    hr_kill9 p
    local at_kill
    at_kill=$(hr_count p resource. c)
    assert_ne "$N" "$at_kill" "killed before the end"
    # Let c notice (no heartbeat), so its run ends as failed, then restart p.
    wait_for 10 hr_state_is c p down
    hr_start p
    wait_for 10 hr_state_is c p up
    # c retries (with backoff) on its own; then a sync has nothing left.
    wait_for 40 hr_count_is "$N" p resource. c
    assert_eq "$(hr_digest c resource. c)" "$(hr_digest p resource. c)" "digests equal after the resume"
    assert_eq "$N" "$(hr_count p resource.)" "exactly N at p: no duplicates"
    hr_sync c --rule resources
    assert_eq "true" "$(hr_run ok p resources up sent)" "sync after convergence ok"
    assert_eq "differential" "$(hr_run mode p resources up sent)" "then differential"
    assert_eq "0" "$(hr_run sent p resources up sent)" "then nothing to send"
    assert_eq "$N" "$(hr_count p resource.)" "still exactly N at p"

    # History: a failed complete run, then a complete run that resumed and
    # sent only what was not yet acknowledged.
    expect_exit 0 hs history -d "$(hr_dir c)" --json
    local hist=$HS_OUT
    assert_json "$hist" "history --json"
    local q='[h for h in reversed(j) if h["rule"] == "resources" and h["role"] == "sent" and h["mode"] == "complete"]'
    assert_eq "true" "$(json_get "$hist" 'any(not h["ok"] for h in '"$q"')')" "a failed complete run"
    local resumed='[h for h in '"$q"' if h["ok"] and "resum" in h["why"]]'
    assert_eq "1" "$(json_get "$hist" 'len('"$resumed"')')" "one ok run that resumed"
    assert_eq "true" "$(json_get "$hist" 'next(i for i, h in enumerate('"$q"') if not h["ok"]) < next(i for i, h in enumerate('"$q"') if h["ok"] and "resum" in h["why"])')" \
        "the failure comes before the resumed run"
    local sent
    sent=$(json_get "$hist" '('"$resumed"' + [{"sent": -1}])[0]["sent"]')
    if [ "$sent" -gt 0 ] && [ "$sent" -lt "$N" ]; then
        pass
    else
        fail "the resumed run sent $sent of $N (it should send only the unacknowledged rest)"
    fi
    # What p applied across the runs adds up: nothing applied twice beyond
    # the batches in flight at the kill.
    expect_exit 0 hs history -d "$(hr_dir p)" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'any(h["rule"] == "resources" and h["role"] == "received" and h["ok"] and h["mode"] == "complete" for h in j)')" \
        "p records the received resumed run"
}

test_kill9_receiver_mid_run
hr_done
