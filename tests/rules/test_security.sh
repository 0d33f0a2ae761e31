#!/usr/bin/env bash
# Security: roles, privileges and permissions on a folder replicate down
# whole at every run (the security rule is always complete): a changed
# permission reaches the child at the next ordinary sync, a deleted
# privilege disappears there, and the child's own security objects stay.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_link p c
}

FOLDER="" ROLE="" PRIV1="" PRIV2="" PERM1="" PERM2="" LOCAL=""

test_security_goes_down() {
    FOLDER=$(hr_put p item.folder '{"name":"Servers","path":"/Computers/Servers"}')
    PRIV1=$(hr_put p security.privilege '{"name":"read"}')
    PRIV2=$(hr_put p security.privilege '{"name":"write"}')
    ROLE=$(hr_put p security.role '{"name":"Operators","privileges":["'"$PRIV1"'","'"$PRIV2"'"]}')
    PERM1=$(hr_put p security.permission '{"folder":"'"$FOLDER"'","role":"'"$ROLE"'","rights":["read"]}')
    PERM2=$(hr_put p security.permission '{"folder":"'"$FOLDER"'","role":"'"$ROLE"'","rights":["write"],"inherit":false}')
    # The child's own role, never the parent's to remove.
    LOCAL=$(hr_put c security.role '{"name":"Local helpdesk"}')

    hr_sync p
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "all runs ok"
    assert_eq "complete" "$(hr_run mode c security down sent)" "security runs complete"
    assert_eq "5" "$(hr_count c security. p)" "p's security objects at c"
    assert_eq "$(hr_digest p security. p)" "$(hr_digest c security. p)" "security digest of p's objects, p vs c"
    assert_eq "$(hr_digest p security.)" "$(hr_digest c security. p)" "c holds exactly p's security objects (besides its own)"
    assert_eq "$(hr_digest p item.folder)" "$(hr_digest c item.folder)" "the folder is there too"
    expect_exit 0 hs get -d "$(hr_dir c)" "$PERM1" --json
    assert_eq "$FOLDER" "$(json_get "$HS_OUT" 'j["body"]["folder"]')" "permission names the folder at c"
    assert_eq "0" "$(hr_count p security. c)" "security never goes up"
}

test_changed_permission_reaches_child() {
    expect_exit 0 hs put -d "$(hr_dir p)" --class security.permission --guid "$PERM1" \
        '{"folder":"'"$FOLDER"'","role":"'"$ROLE"'","rights":["read","execute"]}'
    hr_sync p
    assert_eq "true" "$(hr_run ok c security down sent)" "security run ok"
    assert_eq "complete" "$(hr_run mode c security down sent)" "an ordinary run is complete for security"
    expect_exit 0 hs get -d "$(hr_dir c)" "$PERM1" --json
    assert_eq '["read", "execute"]' "$(json_get "$HS_OUT" 'j["body"]["rights"]')" "new permission body at c"
    assert_eq "$(hr_digest p security. p)" "$(hr_digest c security. p)" "digests equal after the change"
}

test_deleted_privilege_gone_on_child() {
    expect_exit 0 hs rm -d "$(hr_dir p)" "$PRIV2"
    hr_sync p
    assert_eq "true" "$(hr_run ok c security down sent)" "security run ok"
    assert_deleted c "$PRIV2" "deleted privilege at c"
    assert_eq "4" "$(hr_count c security. p)" "p's security objects at c after the delete"
    assert_eq "$(hr_digest p security.)" "$(hr_digest c security. p)" "c has exactly p's set"
    expect_exit 0 hs get -d "$(hr_dir c)" "$LOCAL" --json
    assert_eq "false" "$(json_get "$HS_OUT" 'j["deleted"]')" "the child's own role stays"
}

setup
test_security_goes_down
test_changed_permission_reaches_child
test_deleted_privilege_gone_on_child
hr_done
