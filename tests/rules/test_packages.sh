#!/usr/bin/env bash
# Packages replicate down; `hsync package locate` says where each node gets
# one from: the publisher serves its codebase, every node below redirects to
# its parent, naming the origin and its codebase.
. "$(dirname "$0")/../replication/lib_repl.sh"

setup() {
    local n
    for n in p c g; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link p c
    hr_link c g
}

PKG=""
CODEBASE="http://p.example/packages/7zip-23.01.msi"

test_publish_and_replicate() {
    PKG=$(hr_put p package '{"name":"7zip","version":"23.01","codebase":"'"$CODEBASE"'"}')
    hr_sync p
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "p's runs ok"
    hr_sync c
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "c's runs ok"
    local n
    for n in c g; do
        assert_eq "$(hr_digest p package)" "$(hr_digest "$n" package)" "package digest, p vs $n"
        expect_exit 0 hs get -d "$(hr_dir "$n")" "$PKG" --json
        assert_eq '{"codebase": "'"$CODEBASE"'", "name": "7zip", "version": "23.01"}' \
            "$(json_get "$HS_OUT" 'j["body"]')" "body of the package at $n"
        assert_eq "p" "$(json_get "$HS_OUT" 'j["origin"]')" "origin of the package at $n"
    done
}

test_locate() {
    expect_exit 0 hs package locate -d "$(hr_dir p)" "$PKG"
    assert_eq "package $PKG (7zip 23.01): published here (p) at $CODEBASE" "$HS_OUT" "locate on p"

    expect_exit 0 hs package locate -d "$(hr_dir c)" "$PKG"
    assert_eq "package $PKG (7zip 23.01): from p at $CODEBASE; this node (c) redirects to its parent p" \
        "$HS_OUT" "locate on c"

    expect_exit 0 hs package locate -d "$(hr_dir g)" "$PKG"
    assert_contains "$HS_OUT" "package $PKG (7zip 23.01): from p at $CODEBASE; this node (g) redirects to its parent c" \
        "locate on g"
    assert_contains "$HS_OUT" "path p > c > g" "locate on g names the path"

    expect_exit 0 hs package locate -d "$(hr_dir g)" "$PKG" --json
    assert_json "$HS_OUT"
    assert_eq "c|p|$CODEBASE|false|p,c,g" \
        "$(json_get "$HS_OUT" '"%s|%s|%s|%s|%s" % (j["redirect_to"], j["origin"], j["codebase"], str(j["published_here"]).lower(), ",".join(j["path"]))')" \
        "locate --json on g"
    expect_exit 0 hs package locate -d "$(hr_dir p)" "$PKG" --json
    assert_eq "None|true" "$(json_get "$HS_OUT" '"%s|%s" % (j["redirect_to"], str(j["published_here"]).lower())')" \
        "locate --json on p"
}

test_locate_errors() {
    local item
    item=$(hr_put p item.policy '{"name":"not a package"}')
    expect_exit 1 hs package locate -d "$(hr_dir p)" "$item"
    assert_eq "hsync: package locate: $item is of class item.policy, not a package (see 'hsync ls -d $(hr_dir p) --class package')" \
        "$HS_ERR" "non-package guid"
    expect_exit 1 hs package locate -d "$(hr_dir c)" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b
    assert_contains "$HS_ERR" "hsync: package locate: no object 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b on this node" "unknown guid"
    expect_exit 1 hs package locate -d "$(hr_dir c)" nope
    assert_contains "$HS_ERR" "not a guid"
    expect_exit 2 hs package locate -d "$(hr_dir c)"
    expect_exit 2 hs package where -d "$(hr_dir c)" "$PKG"
}

setup
test_publish_and_replicate
test_locate
test_locate_errors
hr_done
