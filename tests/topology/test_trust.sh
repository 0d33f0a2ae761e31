#!/usr/bin/env bash
# Trust at the wire, with a raw ZeroMQ client (hsync_probe): a key the broker
# does not trust gets nothing; a removed child's key is refused from then on;
# malformed, oversized and type-confused frames are rejected with a logged
# reason while the broker keeps serving and heartbeats go on.
. "$(dirname "$0")/lib_broker.sh"

hs() { "$HSYNC" "$@"; }

# seen_within NAME PEER MS: NAME heard from PEER less than MS ago.
seen_within() {
    [ "$(hb_q "$1" 'int(links["'"$2"'"]["last_seen_ms_ago"] < '"$3"')')" == "1" ]
}

test_untrusted_key_gets_nothing() {
    hb_node sp
    hb_node sc
    hb_start sp
    hb_start sc
    hb_link sp sc
    wait_for 10 hb_state_is sp sc up
    wait_for 10 hb_state_is sc sp up
    local before
    before=$(hb_refused sp)
    hb_probe 3 --server "$(hb_dir sp)" --random-key --send-frame hb --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    assert_contains "$HS_OUT" "no reply"
    hb_probe 3 --server "$(hb_dir sp)" --random-key --name sc --send-frame join:x \
        --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    # counted each; logged once per 10 s with a count (broker_log_throttled)
    wait_for 5 hb_refused_ge sp $((before + 2))
    assert_contains "$(cat "$(hb_log sp)")" "refused a connection from 127.0.0.1 with key"
    # The child refuses strangers too (it has no invite outstanding).
    hb_probe 3 --server "$(hb_dir sc)" --random-key --send-frame hb --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    wait_for 5 hb_log_has sc "event=refused"
    assert_eq "child:sc" "$(hb_links sp)"
}

test_trusted_key_is_admitted() {
    # The child's own key reaches the parent (a JOIN on that connection is
    # answered, and refused: it is not how a child talks to its parent).
    hb_probe 0 --server "$(hb_dir sp)" --key-from "$(hb_dir sc)" --send-frame join:x \
        --expect-reply-ms 3000
    assert_contains "$HS_OUT" "handshake: ok"
    assert_contains "$HS_OUT" "reply: JOINED from 'sp' ok=0"
    assert_eq "child:sc" "$(hb_links sp)"
}

test_unknown_key_may_only_present_an_invite() {
    # While a token is outstanding, unknown keys are let in to present it, and
    # get nothing else: no answer to a heartbeat, a refusal to a bad token,
    # and nothing about the tree.
    hb_node sq
    hb_start sq
    hb_link sq sp
    wait_for 10 hb_subtree_is sq sp sc
    hb_invite sq >/dev/null
    hb_probe 3 --server "$(hb_dir sq)" --random-key --send-frame hb --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: ok"
    wait_for 5 hb_log_has sq "dropped a frame from an untrusted key"
    hb_probe 0 --server "$(hb_dir sq)" --random-key --name intruder \
        --send-frame join:hsync1.bogus --expect-reply-ms 3000
    assert_contains "$HS_OUT" 'reply: JOINED from '"'"'sq'"'"' ok=0 why="the token is not an hsync invite" rels=0 []'
    assert_not_contains "$HS_OUT" "sp" "tree leaked to an unknown key"
    assert_eq "child:sp" "$(hb_links sq)"
}

# bad_frame KIND TEXT: send one frame of KIND with sp's (trusted) key to sc;
# sc must log TEXT for it and keep its parent link.
bad_frame() {
    local kind=$1 text=$2 before
    before=$(hb_log_count sc "$text")
    hb_probe 3 --server "$(hb_dir sc)" --key-from "$(hb_dir sp)" --send-frame "$kind" \
        --expect-reply-ms 300
    assert_contains "$HS_OUT" "handshake: ok" "$kind"
    wait_for 5 hb_log_count_ge sc "$text" $((before + 1))
}

test_bad_frames_rejected_and_logged() {
    local before
    before=$(hb_log_count sc "event=bad-frame")
    bad_frame garbage "rejected a 27-byte frame: malformed"
    bad_frame truncated "rejected a malformed link frame"
    bad_frame oversized "rejected a malformed link frame (24"
    bad_frame badversion "unsupported protocol version"
    bad_frame unknowntype "rejected a malformed link frame"
    bad_frame repltype "replication frame (type 16"
    bad_frame confused "rejected a malformed link frame (23 bytes)"
    bad_frame multipart "rejected a 2-part message"
    assert_eq $((before + 8)) "$(hb_log_count sc "event=bad-frame")" "bad-frame lines"
    printf '\x93\x01\x01' >"$HB_T/short.bin"
    bad_frame_file() {
        hb_probe 3 --server "$(hb_dir sc)" --key-from "$(hb_dir sp)" "$@" --expect-reply-ms 300
    }
    bad_frame_file --send-file "$HB_T/short.bin"
    bad_frame_file --send 9801
    bad_frame_file --send ""
    bad_frame_file --send dc0000
    bad_frame_file --send 9801dd7fffffff
    wait_for 5 hb_log_count_ge sc "event=bad-frame" $((before + 13))
    # Over the transport limit: ZeroMQ drops the connection before the broker
    # sees a byte.
    bad_frame_file --send-frame huge

    # Still serving: both brokers run, answer, and the link stays up with
    # fresh heartbeats.
    hb_running sc && pass || fail "sc stopped serving"
    hb_running sp && pass || fail "sp stopped serving"
    wait_for 5 seen_within sp sc 1500
    wait_for 5 seen_within sc sp 1500
    assert_eq "up" "$(hb_state sp sc)"
    assert_eq "up" "$(hb_state sc sp)"
    assert_eq "parent:sp" "$(hb_links sc)"
    assert_eq "0" "$(hb_log_count sc "level=error")" "errors in sc's log"
}

test_removed_child_key_refused() {
    expect_exit 0 hs hierarchy remove-child -d "$(hb_dir sp)" sc
    assert_eq "removed child 'sc'; its key is no longer trusted" "$HS_OUT"
    assert_eq "parent:sq" "$(hb_links sp)" "sp after remove-child"
    wait_for 10 hb_links_are sc ""
    local before
    before=$(hb_refused sp)
    hb_probe 3 --server "$(hb_dir sp)" --key-from "$(hb_dir sc)" --send-frame join:x \
        --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    assert_contains "$HS_OUT" "no reply"
    wait_for 5 hb_refused_ge sp $((before + 1))
    # And the other way: the child revoked the parent's key on LEAVE.
    hb_probe 3 --server "$(hb_dir sc)" --key-from "$(hb_dir sp)" --send-frame hb \
        --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    # Both stay revoked across restarts.
    hb_stop sp
    hb_start sp
    hb_probe 3 --server "$(hb_dir sp)" --key-from "$(hb_dir sc)" --send-frame hb \
        --expect-reply-ms 500
    assert_contains "$HS_OUT" "handshake: refused"
    assert_eq "" "$(hb_links sc)"
    wait_for 10 hb_state_is sp sq up
}

test_untrusted_key_gets_nothing
test_trusted_key_is_admitted
test_unknown_key_may_only_present_an_invite
test_bad_frames_rejected_and_logged
test_removed_child_key_refused
hb_done
