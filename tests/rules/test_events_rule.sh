#!/usr/bin/env bash
# The events rule (event.*) is disabled by default: an event object put on a
# child stays there through syncs until the rule is enabled on the child.
# With the rule enabled on the child only, asking the parent for events
# down is a skip (the parent has it disabled), not a failure.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_link p c
}

rule_enabled() { json_get "$("$HSYNC" rule show -d "$(hr_dir "$1")" events --json)" 'j["enabled"]'; }

EV=""

test_disabled_by_default() {
    assert_eq "false" "$(rule_enabled c)" "events rule off on c"
    assert_eq "false" "$(rule_enabled p)" "events rule off on p"
    EV=$(hr_put c event.login '{"user":"alice","at":"2025-01-31T12:00:00Z"}')
    hr_sync c
    assert_eq "true" "$(hr_run skipped p events up)" "events run skipped"
    assert_eq "rule disabled" "$(hr_run why p events up)" "why"
    hr_sync p
    assert_eq "0" "$(hr_count p event.)" "no events at p"
    expect_exit 1 hs get -d "$(hr_dir p)" "$EV"
}

test_enabled_on_child_goes_up() {
    expect_exit 0 hs rule enable -d "$(hr_dir c)" events
    assert_eq "true" "$(rule_enabled c)" "events rule on at c"
    # p's events rule is still disabled: the run down is skipped, not failed
    hr_sync c
    assert_eq "true" "$(hr_run ok p events up)" "events run ok"
    assert_eq "true" "$(hr_run ok p events down)" "p's disabled rule: not a failure"
    assert_contains "$(hr_run why p events down)" "disabled on the sender" "why it was skipped"
    # (the broker may already have run the newly enabled rule by itself)
    wait_for 10 hr_count_is 1 p event. c
    assert_eq "$(hr_digest c event.)" "$(hr_digest p event. c)" "event digest, c vs p"
    expect_exit 0 hs get -d "$(hr_dir p)" "$EV" --json
    assert_eq "alice" "$(json_get "$HS_OUT" 'j["body"]["user"]')" "the body arrived"
}

setup
test_disabled_by_default
test_enabled_on_child_goes_up
hr_done
