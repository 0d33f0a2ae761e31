#!/usr/bin/env bash
# Rules: a disabled rule moves nothing and keeps its settings, re-enabling it
# moves what waited; a short schedule runs by itself without 'hsync sync'.
. "$(dirname "$0")/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_link p c
    # let the link's first (complete) runs finish
    hr_sync p
}

rule_field() { json_get "$("$HSYNC" rule show -d "$(hr_dir "$1")" "$2" --json)" 'j["'"$3"'"]'; }

test_disabled_rule_moves_nothing() {
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --every 5m --complete-every 2d
    assert_eq "5m" "$(rule_field p items every)" "every after set"
    expect_exit 0 hs rule disable -d "$(hr_dir p)" items
    assert_eq "false" "$(rule_field p items enabled)" "disabled"
    expect_exit 0 hs rule ls -d "$(hr_dir p)"
    assert_contains "$HS_OUT" "items        disabled" "rule ls shows it disabled"

    local i g
    for i in 1 2 3 4 5; do
        g=$(hr_put p item.policy '{"waiting":'"$i"'}')
    done
    hr_sync p
    assert_eq "true" "$(hr_run skipped c items down)" "items run skipped"
    assert_eq "rule disabled" "$(hr_run why c items down)" "why it was skipped"
    assert_eq "true" "$(hr_run ok c items down)" "a disabled rule is not a failure"
    assert_eq "0" "$(hr_count c item.)" "no items at c"
    expect_exit 0 hs sync -d "$(hr_dir p)" --rule items
    assert_contains "$HS_OUT" "skipped: rule disabled" "table says skipped"
    assert_eq "0" "$(hr_count c item.)" "still no items at c"

    # The settings survive disabling.
    expect_exit 0 hs rule show -d "$(hr_dir p)" items
    assert_contains "$HS_OUT" "5m" "rule show still says every 5m"
    assert_eq "5m" "$(rule_field p items every)" "every kept"
    assert_eq "2d" "$(rule_field p items complete_every)" "complete_every kept"
    assert_eq '["item."]' "$(rule_field p items classes)" "classes kept"

    # Asking from the child: the sender's rule is disabled, nothing comes.
    "$HSYNC" sync -d "$(hr_dir c)" --rule items --json >"$HR_T/csync.out" 2>"$HR_T/csync.err"
    assert_contains "$(cat "$HR_T/csync.out" "$HR_T/csync.err")" "disabled" "the child is told the rule is disabled"
    assert_eq "0" "$(hr_count c item.)" "still no items at c after the child asked"

    expect_exit 0 hs rule enable -d "$(hr_dir p)" items
    assert_eq "true" "$(rule_field p items enabled)" "enabled again"
    assert_eq "5m" "$(rule_field p items every)" "every kept after enable"
    hr_sync p --rule items
    assert_eq "5" "$(hr_run sent c items down sent)" "what waited is sent"
    assert_eq "5" "$(hr_count c item.)" "items at c"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal"
}

test_rule_errors() {
    expect_exit 1 hs rule show -d "$(hr_dir p)" nosuch
    assert_eq "hsync: rule: no rule named 'nosuch' (see 'hsync rule ls')" "$HS_ERR"
    expect_exit 1 hs rule disable -d "$(hr_dir p)" nosuch
    assert_contains "$HS_ERR" "no rule named 'nosuch'"
    expect_exit 1 hs rule set -d "$(hr_dir p)" items --every soon
    assert_contains "$HS_ERR" "--every takes a duration"
    expect_exit 2 hs rule set -d "$(hr_dir p)" items
    expect_exit 2 hs rule frobnicate -d "$(hr_dir p)" items
    assert_eq "5m" "$(rule_field p items every)" "failed edits change nothing"
}

test_schedule_runs_by_itself() {
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --every 1s
    local g
    g=$(hr_put p item.policy '{"scheduled":true}')
    # no hsync sync: the broker's timer moves it
    wait_for 15 hs get -d "$(hr_dir c)" "$g"
    wait_for 5 hr_same_digest p c item.
    expect_exit 0 hs history -d "$(hr_dir p)" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'any(h["rule"] == "items" and h["sent"] >= 1 and h["why"].startswith("schedule") for h in j)')" \
        "history shows a scheduled items run"
    # and a later change goes too
    g=$(hr_put p item.task '{"scheduled":2}')
    wait_for 15 hs get -d "$(hr_dir c)" "$g"
    # a long interval again: nothing moves on its own
    expect_exit 0 hs rule set -d "$(hr_dir p)" items --every 1h
}

setup
test_disabled_rule_moves_nothing
test_rule_errors
test_schedule_runs_by_itself
hr_done
