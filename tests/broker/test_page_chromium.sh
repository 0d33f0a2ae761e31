#!/usr/bin/env bash
# The status page renders in a real browser: headless Chromium loads / of
# the parent of a running 1x2 hierarchy, runs its script (which fetches
# /api/status) and the rendered DOM holds both children and a rule's state.
# .ci/setup installs chromium, so CI never skips; locally the suite skips
# (exit 0, with a message) only when no chromium can be found at all.
. "$(dirname "$0")/../replication/lib_repl.sh"

CHROME=""
for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$c" >/dev/null 2>&1; then
        CHROME=$(command -v "$c")
        break
    fi
done
if [ -z "$CHROME" ]; then
    echo "SKIP: no chromium found (install it with 'bash .ci/setup' or 'apt-get install chromium')"
    exit 0
fi

hr_node p
hr_start p
hr_node c1
hr_start c1
hr_node c2
hr_start c2
hr_link p c1
hr_link p c2
hr_sync p --rule items

# dump_dom: the DOM after the page's script has run (virtual time lets the
# fetch and the render finish before the dump; timeout bounds the browser).
dump_dom() {
    timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --user-data-dir="$HR_T/chrome" --virtual-time-budget=3000 \
        --dump-dom "http://127.0.0.1:$(($(hr_port p) + 1))/" 2>>"$HR_T/chrome.log" >"$HR_T/dom.html"
}
rendered() {
    dump_dom && grep -q 'data-node="c1"' "$HR_T/dom.html" && grep -q 'data-node="c2"' "$HR_T/dom.html"
}

wait_for 120 rendered
dom=$(cat "$HR_T/dom.html")
assert_contains "$dom" 'data-node="c1"' "c1 in the hierarchy"
assert_contains "$dom" 'data-node="c2"' "c2 in the hierarchy"
assert_contains "$dom" '<tr data-peer="c1" data-state="up">' "c1's link is up"
assert_contains "$dom" '<tr data-peer="c2" data-rule="items" data-state="ok">' "rule items to c2 is ok"
assert_contains "$dom" '<tr data-peer="c1" data-rule="events" data-state="disabled">' "rule events is disabled"
assert_contains "$dom" 'hsync — p' "the node's name as the title"
assert_contains "$dom" '<div id="err"></div>' "no fetch error shown"
assert_contains "$dom" 'no hsync verify run from this node yet' "no verify verdict yet"

# the last hsync verify verdict per node (c2 stopped: not reached)
hr_stop c2
wait_for 10 hr_state_is p c2 down
expect_exit 1 "$HSYNC" verify -d "$(hr_dir p)"
verdict_shown() { dump_dom && grep -q 'data-node="c2" data-verdict="not reached"' "$HR_T/dom.html"; }
wait_for 120 verdict_shown
dom=$(cat "$HR_T/dom.html")
assert_contains "$dom" '<tr data-node="c2" data-verdict="not reached">' "the verify table shows c2 not reached"
assert_contains "$dom" 'data-node="c1" data-verdict="' "and a verdict for c1"
assert_contains "$dom" 'last hsync verify' "when it ran"
hr_done
