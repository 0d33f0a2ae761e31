#!/usr/bin/env bash
# Trust abuse that tests/topology/test_trust.sh and test_tokens.sh do not
# cover (they cover unknown keys, reused, expired and tampered tokens, and
# a removed child's key at the wire): a token of one node presented to
# another; a peer with a valid key claiming another node's name, and
# sending data as that node; a revoked parent reconnecting with real
# brokers after a restart. Each is refused, logged, and nothing replicates.
. "$(dirname "$0")/../replication/lib_repl.sh"

: "${HSYNC_PROBE:?HSYNC_PROBE must name the hsync_probe tool}"

links_of() { json_get "$(hr_show "$1")" '",".join(sorted(l["role"] + ":" + l["name"] for l in j["links"]))'; }

test_setup() {
    hr_node p
    hr_node c1
    hr_node c2
    hr_node x
    hr_start p
    hr_start c1
    hr_start c2
    hr_start x
    hr_link p c1
    hr_link p c2
}

test_token_for_another_node() {
    # c1's invite presented to c2 (which has an invite of its own out, so it
    # admits the unknown key far enough to say why it refuses).
    local tok1 out
    tok1=$(hs invite -d "$(hr_dir c1)")
    hs invite -d "$(hr_dir x)" >/dev/null
    out=$("$HSYNC_PROBE" --server "$(hr_dir x)" --random-key --name intruder \
        --send-frame "join:$tok1" --expect-reply-ms 3000)
    assert_contains "$out" "ok=0" "x refuses c1's token"
    echo "token for another node: $out"
    assert_eq "" "$(links_of x)" "x recorded nothing"
    # With the CLI: x's parent-to-be is told the token is not x's; the token
    # leads to c1, which already has a parent: refused there too.
    expect_exit 1 hs hierarchy add-child -d "$(hr_dir x)" "$tok1"
    assert_contains "$HS_ERR" "hsync: hierarchy:"
    assert_eq "" "$(links_of x)" "x after presenting c1's token"
    assert_eq "parent:p" "$(links_of c1)" "c1 keeps its parent"
}

test_valid_key_other_name() {
    # c1's genuine key, claiming to be c2, sends a heartbeat and an up run
    # of a resource owned by c2. p attributes frames by key, never by the
    # claimed name: nothing is stored as c2's, and the claim is logged.
    local before_w n2
    before_w=$(hr_log_count p "level=warn")
    n2=$(hr_count p resource. c2)
    local out
    out=$("$HSYNC_PROBE" --server "$(hr_dir p)" --key-from "$(hr_dir c1)" --name c2 \
        --send-frame hb --send-frame replopen --send-frame replbatch:ok \
        --send-frame repl:19:unknownrun --expect-reply-ms 500)
    echo "other name: $out"
    wait_for 10 hr_log_more p "level=warn" "$before_w"
    assert_eq "$n2" "$(hr_count p resource. c2)" "resources of c2 at p"
    assert_eq "" "$(hs export -d "$(hr_dir p)" --class resource. | grep PROBE-1)" \
        "object sent under a false name stored at p"
    assert_eq "child:c1,child:c2" "$(links_of p)" "p's links"
    # On a linked channel: p's key to its child c1, claiming to be c2 (and
    # then x): the heartbeats are dropped and logged, the link stays p's.
    local before_m
    before_m=$(hr_log_count c1 "event=name-mismatch")
    "$HSYNC_PROBE" --server "$(hr_dir c1)" --key-from "$(hr_dir p)" --name c2 --send-frame hb         --expect-reply-ms 300 >/dev/null
    "$HSYNC_PROBE" --server "$(hr_dir c1)" --key-from "$(hr_dir p)" --name x --send-frame hb         --send-frame "join:$(hs invite -d "$(hr_dir x)")" --expect-reply-ms 300 >/dev/null
    wait_for 10 hr_log_more c1 "event=name-mismatch" "$((before_m + 1))"
    assert_contains "$(cat "$(hr_log c1)")" "claims to be 'c2': frame dropped"
    assert_eq "parent:p" "$(links_of c1)" "c1's links after the false names"
    wait_for 10 hr_state_is p c2 up
    wait_for 10 hr_state_is p c1 up
}

test_revoked_parent_reconnecting() {
    # c2 leaves while p is down: p never hears the LEAVE, keeps c2 as a
    # child, and after its restart dials c2 with the key c2 revoked.
    hr_stop p
    expect_exit 0 hs hierarchy leave -d "$(hr_dir c2)"
    assert_eq "" "$(links_of c2)" "c2 after leave"
    local before g
    before=$(hr_log_count c2 "event=refused")
    g=$(hr_put p item.policy '{"name":"after the leave"}')
    hr_start p
    wait_for 15 hr_log_more c2 "event=refused" "$before"
    assert_contains "$(cat "$(hr_log c2)")" "refused a connection from 127.0.0.1 with key"
    wait_for 10 hr_state_is p c1 up
    expect_exit 1 hs sync -d "$(hr_dir p)" --peer c2 --rule items --timeout 5 --json
    hr_sync p --peer c1 --rule items
    expect_exit 0 hs get -d "$(hr_dir c1)" "$g"
    expect_exit 1 hs get -d "$(hr_dir c2)" "$g"
    assert_eq "0 " "$(hr_digest c2 item. | cut -c1-2)" "nothing replicated to c2"
}

test_setup
test_token_for_another_node
test_valid_key_other_name
test_revoked_parent_reconnecting
hr_done
