#!/usr/bin/env bash
# Invite tokens with real brokers: a token works once and expires; a reused,
# expired or tampered token is refused with its own reason and records
# nothing on either side; a cycle at any depth is refused.
. "$(dirname "$0")/lib_broker.sh"

hs() { "$HSYNC" "$@"; }

# tamper TOKEN: change one base64 character inside the token's 16-byte id
# (about the middle of the token), keeping the text well formed: only the MAC
# can tell.
tamper() {
    python3 - "$1" <<'EOF'
import base64, sys
tok = sys.argv[1]
pre, b64 = tok[:7], tok[7:]
raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
idpos = raw.index(b"\xc4\x10", 60) + 2          # bin8, 16 bytes: the id
i = (8 * (idpos + 8)) // 6                       # a character inside the id
c = "A" if b64[i] != "A" else "B"
print(pre + b64[:i] + c + b64[i + 1:])
EOF
}

expired() { [ "$(date +%s)" -ge "$1" ]; }

# nothing_recorded NODE...: none of the nodes has any link.
nothing_recorded() {
    local n
    for n in "$@"; do
        assert_eq "" "$(hb_links "$n")" "links of $n"
    done
}

test_token_works_once() {
    hb_node ta
    hb_node tb
    hb_node tc
    hb_start ta
    hb_start tb
    hb_start tc
    local tok spare
    tok=$(hb_invite tc)
    spare=$(hb_invite tc) # keeps tc admitting unknown keys, so tb hears why
    expect_exit 0 hs hierarchy add-child -d "$(hb_dir ta)" "$tok"
    wait_for 10 hb_state_is ta tc up
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "$tok"
    assert_eq "hsync: hierarchy: 'tc' refused the link: it has already been used" "$HS_ERR"
    assert_eq "" "$(hb_links tb)" "tb after a reused token"
    assert_eq "parent:ta" "$(hb_links tc)" "tc after a reused token"
    assert_contains "$(cat "$(hb_log tc)")" "refused 'tb' as parent: it has already been used"
    # The same token again on the same parent: already linked, refused there.
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir ta)" "$tok"
    assert_eq "hsync: hierarchy: 'tc' is already a child of this node" "$HS_ERR"
    assert_eq "child:tc" "$(hb_links ta)"
    assert_contains "$spare" "hsync1." "spare invite"
}

test_expired_token_refused() {
    hb_node te
    hb_start te
    local j tok exp
    j=$(hb_invite te --ttl 1 --json)
    tok=$(json_get "$j" 'j["token"]')
    exp=$(json_get "$j" 'j["expires"]')
    hb_invite te >/dev/null # an outstanding invite: te admits tb and says why
    wait_for 5 expired "$exp"
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "$tok"
    assert_eq "hsync: hierarchy: 'te' refused the link: it has expired" "$HS_ERR"
    nothing_recorded tb te
    assert_contains "$(cat "$(hb_log te)")" "refused 'tb' as parent: it has expired"
    expect_exit 2 hs invite -d "$(hb_dir te)" --ttl 0
    assert_contains "$HS_ERR" "--ttl takes seconds, 1 to 2592000"
}

test_expired_token_without_other_invites() {
    # With no invite outstanding te refuses unknown keys at connect time: the
    # would-be parent gets no answer at all, and nothing is recorded.
    hb_node tf
    hb_start tf
    local j tok exp
    j=$(hb_invite tf --ttl 1 --json)
    tok=$(json_get "$j" 'j["token"]')
    exp=$(json_get "$j" 'j["expires"]')
    wait_for 5 expired "$exp"
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "$tok"
    assert_contains "$HS_ERR" "hsync: hierarchy: 'tf'"
    nothing_recorded tb tf
    wait_for 5 hb_log_has tf "event=refused"
}

test_tampered_token_refused() {
    hb_node tg
    hb_start tg
    local tok bad
    tok=$(hb_invite tg)
    bad=$(tamper "$tok")
    assert_ne "$tok" "$bad" "tampered token"
    assert_eq "${#tok}" "${#bad}" "tampered token length"
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "$bad"
    assert_eq "hsync: hierarchy: 'tg' refused the link: it has been tampered with" "$HS_ERR"
    nothing_recorded tb tg
    # A flip that breaks the encoding is caught before anything is sent.
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "hsync1.A${tok:8}"
    assert_contains "$HS_ERR" "that is not an hsync invite token"
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir tb)" "${tok:0:40}"
    assert_contains "$HS_ERR" "that is not an hsync invite token"
    nothing_recorded tb tg
    # The genuine token was not burnt by the attempts.
    expect_exit 0 hs hierarchy add-child -d "$(hb_dir tb)" "$tok"
    wait_for 10 hb_state_is tg tb up
}

test_cycle_three_levels_refused() {
    hb_node ya
    hb_node yb
    hb_node yc
    hb_start ya
    hb_start yb
    hb_start yc
    hb_link ya yb
    hb_link yb yc
    wait_for 10 hb_path_is yc "ya>yb"
    wait_for 10 hb_state_is yb yc up
    local tok
    tok=$(hb_invite ya)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir yc)" "$tok"
    assert_eq "hsync: hierarchy: 'ya' is an ancestor of this node (2 levels up): linking it as a child would make a cycle" "$HS_ERR"
    assert_eq "parent:yb" "$(hb_links yc)" "yc after the cycle"
    assert_eq "child:yb" "$(hb_links ya)" "ya after the cycle"
    # The direct parent is refused as a child too (one level up).
    tok=$(hb_invite yb)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir yc)" "$tok"
    assert_eq "hsync: hierarchy: 'yb' is an ancestor of this node (1 level up): linking it as a child would make a cycle" "$HS_ERR"
    # The root's subtree reaches the grandchild.
    wait_for 10 hb_subtree_is ya yb yc
    # A new node that only has an ancestor's name is no cycle: the name is used
    hb_node ya2 ya
    hb_start ya2
    tok=$(hb_invite ya2)
    expect_exit 1 hs hierarchy add-child -d "$(hb_dir yc)" "$tok"
    assert_eq "hsync: hierarchy: the name 'ya' is already used in this hierarchy, by an ancestor of this node (2 levels up) with another key: names are unique across the hierarchy; init the new node under another name" "$HS_ERR"
}

test_token_works_once
test_expired_token_refused
test_expired_token_without_other_invites
test_tampered_token_refused
test_cycle_three_levels_refused
hb_done
