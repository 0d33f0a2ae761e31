#!/usr/bin/env bash
# Hierarchy editable properties: settings travel down; below, locked edits
# and deletes are refused with the property and the node to ask; editable
# edits survive differential and complete runs while every other property
# follows the parent; locking again hands the property back. Primary-user
# associations flow down only and are never changed below.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    hr_node p
    hr_start p
    hr_node c
    hr_start c
    hr_node g
    hr_start g
    hr_link p c
    hr_link c g
    hr_sync p
    hr_sync c
}

body() { json_get "$("$HSYNC" get -d "$(hr_dir "$1")" "$2" --json)" 'j["body"]["'"$3"'"]'; }

# sync_down: parent to child, then child to grandchild (all rules).
sync_down() {
    hr_sync p
    hr_sync c
}

test_locked_by_default() {
    POL=$(hr_put p item.policy '{"name":"Patch","enabled":true,"schedule":"daily"}')
    sync_down
    assert_eq "Patch" "$(body g "$POL" name)" "the policy reached the grandchild"
    expect_exit 1 hs put -d "$(hr_dir c)" --class item.policy --guid "$POL" \
        '{"name":"Patch","enabled":false,"schedule":"daily"}'
    assert_contains "$HS_ERR" "hsync: put: property 'enabled' of $POL (item.policy) is locked by p" \
        "locked edit refused, names the property and the node"
    assert_contains "$HS_ERR" "hsync hep set -d <p's folder> $POL enabled editable" "says how to unlock"
    # a bulk import is a local write too: the same refusal, nothing written
    printf '{"class":"item.policy","guid":"%s","body":{"name":"Patch","enabled":false,"schedule":"daily"}}\n' \
        "$POL" >"$HR_T/locked.ndjson"
    expect_exit 1 hs import -d "$(hr_dir c)" "$HR_T/locked.ndjson"
    assert_contains "$HS_ERR" "line 1: property 'enabled' of $POL (item.policy) is locked by p" \
        "locked edit by import refused"
    assert_contains "$HS_ERR" "nothing was written" "import says nothing was written"
    expect_exit 1 hs rm -d "$(hr_dir c)" "$POL"
    assert_contains "$HS_ERR" "is managed on p and replicated here: delete it on p" "delete refused"
    assert_eq "true" "$(body c "$POL" enabled)" "nothing changed on c"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal"
}

test_editable_edit_survives() {
    expect_exit 0 hs hep set -d "$(hr_dir p)" "$POL" enabled editable
    assert_contains "$HS_OUT" "enabled is editable" "hep set says what it did"
    # a class-wide setting too
    expect_exit 0 hs hep set -d "$(hr_dir p)" item.policy schedule editable
    sync_down
    expect_exit 0 hs hep ls -d "$(hr_dir g)" --json
    assert_eq "2" "$(json_get "$HS_OUT" 'len([r for r in j if r["node"] == "p"])')" "settings reached the grandchild"

    # the child edits an editable property: kept
    expect_exit 0 hs put -d "$(hr_dir c)" --class item.policy --guid "$POL" \
        '{"name":"Patch","enabled":false,"schedule":"daily"}'
    assert_eq "false" "$(body c "$POL" enabled)" "edit stored"
    expect_exit 0 hs get -d "$(hr_dir c)" "$POL"
    assert_contains "$HS_OUT" "edited here (kept over copies from p): enabled" "get lists the edit"
    expect_exit 0 hs get -d "$(hr_dir c)" "$POL" --json
    assert_eq "p" "$(json_get "$HS_OUT" 'j["origin"]')" "origin stays p"

    # the parent changes the policy: the locked name follows, the edit stays
    expect_exit 0 hs put -d "$(hr_dir p)" --class item.policy --guid "$POL" \
        '{"name":"Patch v2","enabled":true,"schedule":"daily"}'
    hr_sync p --rule items
    assert_eq "Patch v2" "$(body c "$POL" name)" "locked property follows the parent (differential)"
    assert_eq "false" "$(body c "$POL" enabled)" "editable edit kept (differential)"
    hr_sync p --rule items --complete
    assert_eq "complete" "$(hr_run mode c items down)" "a complete run"
    assert_eq "false" "$(body c "$POL" enabled)" "editable edit kept (complete)"
    assert_eq "Patch v2" "$(body c "$POL" name)" "name still the parent's (complete)"

    # a class-editable property edited on the grandchild, whose copy comes from c
    hr_sync c --rule items
    assert_eq "false" "$(body g "$POL" enabled)" "c's edit is what c passes down"
    expect_exit 0 hs put -d "$(hr_dir g)" --class item.policy --guid "$POL" \
        '{"name":"Patch v2","enabled":false,"schedule":"weekly"}'
    hr_sync c --rule items --complete
    assert_eq "weekly" "$(body g "$POL" schedule)" "grandchild keeps its class-editable edit"
    assert_eq "false" "$(body g "$POL" enabled)" "and c's value of the property it did not edit"
    expect_exit 0 hs get -d "$(hr_dir g)" "$POL" --json
    assert_eq "schedule" "$(json_get "$HS_OUT" 'j["edited_here"]')" "g's own edit is the schedule only"
    expect_exit 1 hs put -d "$(hr_dir g)" --class item.policy --guid "$POL" \
        '{"name":"mine","enabled":false,"schedule":"weekly"}'
    assert_contains "$HS_ERR" "property 'name' of $POL (item.policy) is locked by p" "grandchild: name locked"

    # other data still converges
    hr_put p item.task '{"t":1}' >/dev/null
    hr_sync p --rule items
    assert_eq "$(hr_digest p item.task)" "$(hr_digest c item.task)" "other items: digests equal"
}

test_lock_again_hands_back() {
    expect_exit 0 hs hep set -d "$(hr_dir p)" "$POL" enabled locked
    hr_sync p --rule system
    expect_exit 0 hs put -d "$(hr_dir p)" --class item.policy --guid "$POL" \
        '{"name":"Patch v3","enabled":true,"schedule":"daily"}'
    hr_sync p --rule items
    assert_eq "true" "$(body c "$POL" enabled)" "locked again: the parent's value replaces the edit"
    assert_eq "$(hr_digest p item.)" "$(hr_digest c item.)" "digests equal again"
    expect_exit 1 hs put -d "$(hr_dir c)" --class item.policy --guid "$POL" \
        '{"name":"Patch v3","enabled":false,"schedule":"daily"}'
    assert_contains "$HS_ERR" "property 'enabled'" "locked again: edit refused"
}

test_hep_errors() {
    local own
    own=$(hr_put c item.policy '{"name":"c-own"}')
    expect_exit 0 hs put -d "$(hr_dir c)" --class item.policy --guid "$own" '{"name":"c-own 2"}'
    expect_exit 1 hs hep set -d "$(hr_dir c)" "$POL" enabled editable
    assert_contains "$HS_ERR" "is managed on p: set its editable properties there" "hep set on a replicated object"
    expect_exit 1 hs hep set -d "$(hr_dir p)" resource.computer name editable
    assert_contains "$HS_ERR" "neither a guid nor a class of items" "hep set on a resource class"
    expect_exit 2 hs hep set -d "$(hr_dir p)" "$POL" enabled maybe
    assert_contains "$HS_ERR" "'editable' or 'locked'" "bad state"
    expect_exit 1 hs hep set -d "$(hr_dir p)" "$POL" a.b editable
    assert_contains "$HS_ERR" "one top-level property name" "dotted property"
    expect_exit 0 hs hep --help
    assert_contains "$HS_OUT" "hsync hep set -d DIR (GUID|CLASS) PROPERTY editable|locked" "help synopsis"
}

test_primary_user_down_only() {
    local pc user a
    pc=$(hr_put p resource.computer '{"name":"pc-1"}' --key serial=PU-1)
    user=$(hr_put p resource.user '{"name":"alice"}' --key upn=alice@example)
    a=$(hr_put p assoc.primary_user '{"computer":"'"$pc"'","user":"'"$user"'"}')
    sync_down
    assert_eq "$user" "$(body g "$a" user)" "association reached the grandchild"
    assert_eq "$(hr_digest p assoc.)" "$(hr_digest g assoc.)" "association digests equal"
    expect_exit 1 hs put -d "$(hr_dir c)" --class assoc.primary_user --guid "$a" \
        '{"computer":"'"$pc"'","user":"someone-else"}'
    assert_contains "$HS_ERR" "primary-user associations are managed on the parent (p) and flow down only" \
        "change below refused"
    expect_exit 1 hs put -d "$(hr_dir c)" --class assoc.primary_user '{"computer":"'"$pc"'","user":"x"}'
    assert_contains "$HS_ERR" "managed on the parent (p)" "new association below refused"
    expect_exit 1 hs rm -d "$(hr_dir g)" "$a"
    assert_contains "$HS_ERR" "managed on the parent (c)" "delete below refused"
    # the parent changes it: it flows down
    expect_exit 0 hs put -d "$(hr_dir p)" --class assoc.primary_user --guid "$a" \
        '{"computer":"'"$pc"'","user":"'"$pc"'"}'
    sync_down
    assert_eq "$pc" "$(body g "$a" user)" "the parent's change reached the grandchild"
    # an association set on the child never goes up (down-only family)
    assert_eq "$(hr_digest p assoc.)" "$(hr_digest c assoc.)" "digests equal"
}

test_edits_in_any_order() {
    # two editable properties edited in separate puts, the later one first in
    # key order: both kept, the body stays canonical, the rest follows
    local t
    expect_exit 0 hs hep set -d "$(hr_dir p)" item.task zeta editable
    expect_exit 0 hs hep set -d "$(hr_dir p)" item.task alpha editable
    t=$(hr_put p item.task '{"alpha":1,"name":"t1","zeta":1}')
    sync_down
    expect_exit 0 hs put -d "$(hr_dir c)" --class item.task --guid "$t" '{"alpha":1,"name":"t1","zeta":2}'
    expect_exit 0 hs put -d "$(hr_dir c)" --class item.task --guid "$t" '{"alpha":2,"name":"t1","zeta":2}'
    expect_exit 0 hs put -d "$(hr_dir p)" --class item.task --guid "$t" '{"alpha":1,"name":"t2","zeta":1}'
    hr_sync p --rule items
    expect_exit 0 hs get -d "$(hr_dir c)" "$t" --json
    assert_eq '{"alpha": 2, "name": "t2", "zeta": 2}' "$(json_get "$HS_OUT" 'j["body"]')" \
        "both edits kept, the name followed the parent"
    assert_eq "alpha,zeta" "$(json_get "$HS_OUT" 'j["edited_here"]')" "edits listed in order"
}

setup
test_locked_by_default
test_editable_edit_survives
test_lock_again_hands_back
test_hep_errors
test_primary_user_down_only
test_edits_in_any_order
hr_done
