#!/usr/bin/env bash
# Secrets and copies (issue 18, item 6): the node's secret keys (CURVE secret
# key, token MAC key) live in DIR/keys (0600), never in the LMDB file, so a
# dump or backup of the store carries none; a store of the old layout (secrets
# in meta) is migrated on open with the same identity; a copied node folder
# warns that two nodes may share one identity (log and `hsync status`).
. "$(dirname "$0")/../topology/lib_broker.sh"

: "${HSYNC_LEGACY_KEYS:?HSYNC_LEGACY_KEYS must name the hsync_legacy_keys tool}"
hs() { "$HSYNC" "$@"; }
command -v mdb_dump >/dev/null || {
    fail "mdb_dump missing (Debian package lmdb-utils, installed by .ci/setup)"
    hb_done
}
secret_of() { awk -v n="$2" '$1 == n {print $2}' "$1/keys"; }
# the whole store as mdb_dump prints it, and its raw file: neither has TEXT
store_has() { mdb_dump -a -p "$1/store" | grep -qF -- "$2" || grep -qaF -- "$2" "$1/store/data.mdb"; }
dump_has() { mdb_dump -a -p "$1/store" | grep -qF -- "$2"; }

A=$(hb_dir a)
B=$(hb_dir b)
C=$(hb_dir c)
T=$(hs_tmp)

# ---- a new node: keys in DIR/keys, 0600, nothing secret in the store ----
hb_node a
hb_node b
assert_eq 600 "$(stat -c %a "$A/keys")" "keys file mode"
sec=$(secret_of "$A" curve_secret)
tk=$(secret_of "$A" token_key)
assert_eq 40 "${#sec}" "curve_secret in DIR/keys"
assert_eq 64 "${#tk}" "token_key in DIR/keys"
if store_has "$A" "$sec" || store_has "$A" "$tk"; then
    fail "the store of a new node holds a secret"
else
    pass
fi
pub=$(mdb_dump -s meta -p "$A/store" | awk 'prev == " curve_public" {print substr($0, 2)} {prev = $0}')
assert_eq "$(secret_of "$A" curve_public)" "$pub" "meta keeps the public key, DIR/keys repeats it"

# the keys work: a link between two brokers comes up (CURVE with them)
hb_start a
hb_start b
hb_link a b
wait_for 10 hb_state_is a b up
hb_stop b

# ---- an old-layout store (secrets in meta) is migrated, same identity ----
bsec=$(secret_of "$B" curve_secret)
btk=$(secret_of "$B" token_key)
expect_exit 0 "$HSYNC_LEGACY_KEYS" -d "$B"
if dump_has "$B" "$bsec" && [ ! -e "$B/keys" ]; then pass; else
    fail "hsync_legacy_keys did not make an old-layout store"
fi
hb_start b
assert_eq 600 "$(stat -c %a "$B/keys")" "migrated keys file mode"
assert_eq "$bsec" "$(secret_of "$B" curve_secret)" "curve_secret moved to DIR/keys"
assert_eq "$btk" "$(secret_of "$B" token_key)" "token_key moved to DIR/keys"
if dump_has "$B" "$bsec" || dump_has "$B" "$btk"; then
    fail "the migrated store still holds a secret"
else
    pass
fi
wait_for 10 hb_state_is a b up # a pinned b's key: same identity after the move
hb_stop b

# a command opening the store migrates too (no broker)
hb_node c
csec=$(secret_of "$C" curve_secret)
expect_exit 0 "$HSYNC_LEGACY_KEYS" -d "$C"
expect_exit 0 hs digest -d "$C"
assert_eq "$csec" "$(secret_of "$C" curve_secret)" "migrated by a plain command"
if dump_has "$C" "$csec"; then fail "secret left in meta after a plain command"; else pass; fi

# ---- a keys file others can read, or none, is refused with what to do ----
chmod 644 "$C/keys"
expect_exit 1 hs invite -d "$C"
assert_contains "$HS_ERR" "chmod 600" "loose keys file"
chmod 600 "$C/keys"
mv "$C/keys" "$C/keys.away"
expect_exit 1 hs invite -d "$C"
assert_contains "$HS_ERR" "restore this node's keys file" "missing keys file"
mv "$C/keys.away" "$C/keys"
expect_exit 0 hs invite -d "$C"

# ---- each keys check says which failed (issue 18 bis, item 4) ----
# a curve_secret that is not the secret of curve_public (A's, beside C's public)
cp -p "$C/keys" "$T/keys.c"
awk -v s="$(secret_of "$A" curve_secret)" '$1 == "curve_secret" {$2 = s} {print}' "$T/keys.c" >"$C/keys"
chmod 600 "$C/keys"
expect_exit 1 hs invite -d "$C"
assert_contains "$HS_ERR" "not the secret of its curve_public" "mismatched key pair"
# a FIFO at DIR/keys: refused at once, not a hang
rm "$C/keys"
mkfifo -m 600 "$C/keys"
expect_exit 1 timeout 10 "$HSYNC" invite -d "$C"
assert_contains "$HS_ERR" "not a regular file" "FIFO keys file"
rm "$C/keys"
cp -p "$T/keys.c" "$C/keys"
# a keys file of another user (only root can make one here)
if [ "$(id -u)" = 0 ]; then
    chown nobody "$C/keys"
    expect_exit 1 hs invite -d "$C"
    assert_contains "$HS_ERR" "belongs to another user" "keys file of another user"
    chown 0 "$C/keys"
fi
expect_exit 0 hs invite -d "$C"

# ---- a copied node folder warns that two nodes may share one identity ----
cp -a "$B" "$(hb_dir b2)"
HB_IDX[b2]=${HB_IDX[b]}
hb_start b2
wait_for 5 hb_log_has b2 "event=identity-copied"
# its parent link comes back first: a link still coming up counts as a problem too
wait_for 20 hb_state_is b2 a up
assert_contains "$(grep -F event=identity-copied "$(hb_log b2)")" "two nodes now share one identity"
expect_exit 0 hs status -d "$(hb_dir b2)"
assert_contains "$HS_OUT" "problem:   this node's folder was copied or restored" "status of the copy"
assert_contains "$HS_OUT" "1 problem (listed first" "counted in the problems headline"
expect_exit 0 hs status -d "$(hb_dir b2)" --json
assert_contains "$(json_get "$HS_OUT" 'j.get("identity_copied", "")')" "share one identity"
hb_stop b2
expect_exit 0 hs status -d "$B"
assert_not_contains "$HS_OUT" "copied or restored" "the original is not flagged"
hb_start b2 # a restart of the copy raises nothing new
hb_stop b2
assert_eq 1 "$(hb_log_count b2 "event=identity-copied")" "one warning per copy"
expect_exit 0 hs status -d "$(hb_dir b2)" --ack-copy
expect_exit 0 hs status -d "$(hb_dir b2)"
assert_not_contains "$HS_OUT" "copied or restored" "dismissed with --ack-copy"
hb_done
