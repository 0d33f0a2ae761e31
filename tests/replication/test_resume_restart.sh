#!/usr/bin/env bash
# kill -9 the receiving broker mid-run and restart it at once (before the
# sender misses a heartbeat): the sender must notice the new session, and
# 'hsync sync' on the sender resumes the run promptly and converges, instead
# of waiting for the acknowledgement timeout.
. "$(dirname "$0")/lib_repl.sh"

N=${HSYNC_RESUME_N:-150000}

partly_there() {
    local n
    n=$(hr_count p resource. c) || return 1
    [ "$n" -gt 0 ] && [ "$n" -lt "$N" ]
}

# resumed_ok: c's history holds a successful resumed run of resources to p
resumed_ok() {
    json_get "$("$HSYNC" history -d "$(hr_dir c)" --json --limit 2000)" \
        'any(h["peer"] == "p" and h["rule"] == "resources" and h["role"] == "sent" and h["ok"] and "an interrupted complete run resumes" in h["why"] for h in j)' |
        grep -qx true
}

test_quick_restart() {
    hr_node p
    hr_node c
    local f
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$N" Q
    hr_import c "$f"
    hr_start p
    hr_start c
    expect_exit 0 hs hierarchy add-child -d "$(hr_dir p)" "$(hs invite -d "$(hr_dir c)")"
    if ! wait_for 30 partly_there; then
        fail "never saw the run in progress (count at p: $(hr_count p resource. c))"
        return
    fi
    hr_kill9 p
    hr_start p
    wait_for 10 hr_state_is c p up
    # Resume now: sync on the sender, bounded so a stall shows as a failure.
    expect_exit 0 hs sync -d "$(hr_dir c)" --rule resources --timeout 15 --json
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "sync after a quick restart (failed runs: $(json_get "$HS_OUT" '[(r.get("rule"), r.get("direction"), r.get("role"), r.get("error")) for r in j["runs"] if not r["ok"]]'))"
    # The interrupted run resumes: either this sync resumed it, or the retry
    # timer did first (2 s after the failure; under load it can win the race)
    # and this sync found it finished. Either way c's history holds a
    # successful resumed run to p.
    wait_for 20 resumed_ok ||
        fail "the run resumes (this sync's run: $(hr_run why p resources up sent))"
    # Whatever the path, it converges without duplicates.
    wait_for 40 hr_count_is "$N" p resource. c
    assert_eq "$(hr_digest c resource. c)" "$(hr_digest p resource. c)" "digests equal"
    assert_eq "$N" "$(hr_count p resource.)" "exactly N at p"
}

test_quick_restart
hr_done
