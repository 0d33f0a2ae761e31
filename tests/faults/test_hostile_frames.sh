#!/usr/bin/env bash
# Hostile replication input at the wire (hsync_probe with a key the broker
# trusts, so the frames get past ZAP and reach the replication engine):
# every replication frame type 16..31 empty, type-confused, truncated and for
# a run nobody opened, plus a real OPEN followed by BATCHes carrying hostile
# objects. Each is rejected with a logged reason, nothing hostile is stored,
# and both brokers keep serving: a later sync converges. An unknown key
# sending the same frames is refused at the handshake.
. "$(dirname "$0")/../replication/lib_repl.sh"

: "${HSYNC_PROBE:?HSYNC_PROBE must name the hsync_probe tool}"

# probe TARGET KEYNODE ARGS...: frames to TARGET's broker with KEYNODE's key.
probe() {
    local target=$1 keynode=$2
    shift 2
    "$HSYNC_PROBE" --server "$(hr_dir "$target")" --key-from "$(hr_dir "$keynode")" "$@" \
        --expect-reply-ms "$REPLY_MS"
}

FRAMES=0
# How long a probe waits for the handshake and a reply: hostile frames get
# none, so every probe waits this long; a broker under valgrind handshakes
# slower.
REPLY_MS=$((HS_TIME_SCALE > 1 ? 700 : 200))

# hostile_types TARGET KEYNODE: 16 types x 4 shapes, one probe per type.
hostile_types() {
    local t args out
    for t in $(seq 16 31); do
        args=()
        for shape in empty confused truncated unknownrun; do
            args+=(--send-frame "repl:$t:$shape")
            FRAMES=$((FRAMES + 1))
        done
        out=$(probe "$1" "$2" "${args[@]}")
        assert_contains "$out" "handshake: ok" "probe of type $t to $1"
    done
}

test_setup() {
    hr_node p
    hr_node c
    hr_start p
    hr_start c
    hr_link p c
    local f
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" 500 H
    hr_import c "$f"
    hr_sync c --rule resources
    wait_for 20 hr_same_digest c p resource. c
}

test_hostile_replication_frames() {
    local before_c before_p
    before_c=$(hr_log_count c "event=bad-frame")
    before_p=$(hr_log_count p "event=bad-frame")
    # To the child with the parent's key (receiver side: OPEN, BATCH, END,
    # PLAN, DROP...), and to the parent with the child's key (sender side:
    # ACK, DONE, OPENED, LEAVES, REFUSE for runs that do not exist).
    hostile_types c p
    hostile_types p c
    wait_for 10 hr_log_more c "event=bad-frame" "$before_c"
    wait_for 10 hr_log_more p "event=bad-frame" "$before_p"
    echo "hostile frames: $FRAMES sent; bad-frame lines: c $(($(hr_log_count c "event=bad-frame") - before_c)), p $(($(hr_log_count p "event=bad-frame") - before_p))"
    assert_contains "$(cat "$(hr_log c)")" "rejected a malformed replication frame (type 16"
    assert_contains "$(cat "$(hr_log c)")" "rejected a malformed replication frame (type 17"
    hr_running c && pass || fail "c stopped serving after hostile frames"
    hr_running p && pass || fail "p stopped serving after hostile frames"
}

test_hostile_batch_objects() {
    local shape out before
    for shape in badguid bodystr bodyjunk keysarray badflags noowner hugecount badclass; do
        before=$(hr_log_count c "level=warn")
        out=$(probe c p --send-frame replopen --send-frame "replbatch:$shape" \
            --send-frame repl:19:unknownrun)
        FRAMES=$((FRAMES + 3))
        assert_contains "$out" "handshake: ok" "batch $shape"
        wait_for 10 hr_log_more c "level=warn" "$before"
        hr_running c && pass || fail "c stopped serving after a batch with $shape"
    done
    # None of the hostile objects was stored (they all claimed serial PROBE-1).
    assert_eq "" "$(hs export -d "$(hr_dir c)" --class resource. | grep PROBE-1)" \
        "hostile object stored at c"
    expect_exit 0 hs ls -d "$(hr_dir c)" --json
    assert_json "$HS_OUT" "ls at c after hostile batches"
}

# Well-formed answers to runs the node never started (the child's replies to
# the probe's forged runs reach the real parent) are dropped with a line
# each, not silently.
stale_logged() { grep "event=stale-frame" "$(hr_log "$1")" | grep -q -- "$2"; }
test_stale_answers_logged() {
    local what
    for what in "opened for run" "abort for run" "ack for run"; do
        wait_for 10 stale_logged p "$what"
    done
    echo "hostile frames: stale-frame lines at p: $(hr_log_count p "event=stale-frame")"
}

test_unknown_key_dropped() {
    local out before
    before=$(hr_log_count c "event=refused")
    out=$("$HSYNC_PROBE" --server "$(hr_dir c)" --random-key --send-frame replopen \
        --send-frame replbatch:bodystr --expect-reply-ms $((REPLY_MS * 5 / 2)))
    assert_contains "$out" "handshake: refused"
    assert_contains "$out" "no reply"
    wait_for 5 hr_log_more c "event=refused" "$before"
}

test_still_serving() {
    # New data both ways still replicates and converges.
    local g f
    g=$(hr_put p resource.computer '{"name":"after"}' --key serial=AFTER-P)
    f=$(hs_tmp)/more.ndjson
    hr_gen_resources "$f" 200 H2
    hr_import c "$f"
    wait_for 10 hr_state_is p c up
    hr_sync c --rule resources
    hr_sync p --rule resources
    wait_for 20 hr_same_digest c p resource. c
    wait_for 20 hr_same_digest p c resource. p
    assert_eq "700" "$(hr_count p resource. c)" "c's resources at p"
    expect_exit 0 hs get -d "$(hr_dir c)" "$g"
    assert_eq "0" "$(hr_log_count c "level=error")" "errors in c's log"
    assert_eq "0" "$(hr_log_count p "level=error")" "errors in p's log"
}

test_setup
test_hostile_replication_frames
test_hostile_batch_objects
test_stale_answers_logged
test_unknown_key_dropped
test_still_serving
echo "hostile frames: $FRAMES frames in all"
hr_done
