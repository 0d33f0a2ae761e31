#!/usr/bin/env bash
# The local data commands (init, put, get, ls, rm, import, export, digest,
# status) end to end, and every kind of bad input: a clear error, the right
# exit status, and an unchanged store.
. "$(dirname "$0")/../lib.sh"

T=$(hs_tmp)
N="$T/n1"
hs() { "$HSYNC" "$@"; }
digest() { hs digest -d "$N"; }

test_help() {
    expect_exit 0 hs --help
    for section in NAME SYNOPSIS COMMANDS ENVIRONMENT "EXIT STATUS" HSYNC_DIR HSYNC_MAP_SIZE \
        HSYNC_MAP_MAX; do
        assert_contains "$HS_OUT" "$section" "hsync --help"
    done
    local main=$HS_OUT
    for cmd in init put get ls rm import export digest status; do
        assert_contains "$main" "    $cmd " "command list"
        expect_exit 0 hs "$cmd" --help
        assert_contains "$HS_OUT" "hsync $cmd" "$cmd --help"
        assert_contains "$HS_OUT" "SYNOPSIS"
    done
    expect_exit 0 hs help put
    assert_contains "$HS_OUT" "--class CLASS"
    expect_exit 2 hs help frobnicate
    expect_exit 2 hs
    assert_contains "$HS_ERR" "hsync: no command given"
    expect_exit 2 hs frobnicate
    assert_contains "$HS_ERR" "hsync: unknown command 'frobnicate'"
}

test_init() {
    expect_exit 0 hs init -d "$N" --name n1
    assert_contains "$HS_OUT" "initialised node n1 in $N"
    assert_eq "700" "$(stat -c %a "$N")" "node folder mode"
    expect_exit 0 hs status -d "$N" --json
    assert_json "$HS_OUT" "status --json"
    assert_eq "n1" "$(json_get "$HS_OUT" 'j["name"]')"
    assert_eq "tcp://127.0.0.1:7600" "$(json_get "$HS_OUT" 'j["listen"]')"
    assert_eq "127.0.0.1:7601" "$(json_get "$HS_OUT" 'j["http"]')"
    assert_eq "0" "$(json_get "$HS_OUT" 'j["log_head"]')"

    expect_exit 1 hs init -d "$N" --name other
    assert_contains "$HS_ERR" "hsync: init: $N already holds an hsync node named n1"

    expect_exit 0 hs init -d "$T/deep/er/n2" --name n2 --listen tcp://0.0.0.0:9000
    expect_exit 0 hs status -d "$T/deep/er/n2" --json
    assert_eq "0.0.0.0:9001" "$(json_get "$HS_OUT" 'j["http"]')" "http defaults to listen port + 1"
    expect_exit 0 hs init -d "$T/n3" --name n3 --http 127.0.0.1:8080
    expect_exit 0 hs status -d "$T/n3"
    assert_contains "$HS_OUT" "http:      127.0.0.1:8080"

    expect_exit 1 hs init -d "$T/bad" --name 'no spaces'
    assert_contains "$HS_ERR" "hsync: init: invalid node name 'no spaces'"
    expect_exit 1 hs init -d "$T/bad" --name "$(printf 'x%.0s' {1..65})"
    expect_exit 1 hs init -d "$T/bad" --name ok --listen http://x:1
    assert_contains "$HS_ERR" "invalid --listen"
    expect_exit 1 hs init -d "$T/bad" --name ok --listen tcp://x:70000
    expect_exit 1 hs init -d "$T/bad" --name ok --http nohost
    [ ! -e "$T/bad" ] && pass || fail "a refused init created its folder"
    expect_exit 2 hs init -d "$T/bad"
    assert_contains "$HS_ERR" "missing --name NAME"
    expect_exit 2 hs init --name x
    assert_contains "$HS_ERR" "no node folder given (use -d DIR or set HSYNC_DIR)"
}

test_put_get() {
    expect_exit 0 hs put -d "$N" --class item.policy '{"name":"Patch","enabled":true,"n":[1,2.5,null]}'
    local g=$HS_OUT
    [[ "$g" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] && pass ||
        fail "put printed '$g', not a guid"
    expect_exit 0 hs get -d "$N" "$g"
    assert_contains "$HS_OUT" "class:    item.policy"
    assert_contains "$HS_OUT" "guid:     $g"
    assert_contains "$HS_OUT" "owner:    n1"
    assert_contains "$HS_OUT" "source:   managed"
    assert_contains "$HS_OUT" '"name": "Patch"'
    [[ "$HS_OUT" =~ mtime:\ +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z ]] && pass ||
        fail "mtime is not ISO-8601: $HS_OUT"
    expect_exit 0 hs get -d "$N" "$g" --json
    assert_json "$HS_OUT" "get --json"
    local j=$HS_OUT
    assert_eq "$g" "$(json_get "$j" 'j["guid"]')"
    assert_eq "item.policy" "$(json_get "$j" 'j["class"]')"
    assert_eq "n1" "$(json_get "$j" 'j["owner"]')"
    assert_eq "n1" "$(json_get "$j" 'j["origin"]')"
    assert_eq "false" "$(json_get "$j" 'j["deleted"]')"
    assert_eq "false" "$(json_get "$j" 'j["imported"]')"
    assert_eq "null" "$(json_get "$j" 'j["keys"]')"
    assert_eq '{"enabled": true, "n": [1, 2.5, null], "name": "Patch"}' \
        "$(json_get "$j" 'j["body"]')" "body round trip"
    assert_eq "64" "$(json_get "$j" 'len(j["hash"])')"
    local hash seq
    hash=$(json_get "$j" 'j["hash"]')
    seq=$(json_get "$j" 'j["seq"]')

    # The same content again changes nothing; key order does not matter.
    expect_exit 0 hs put -d "$N" --class item.policy --guid "$g" --json \
        '{ "n":[1,2.5,null], "enabled":true, "name":"Patch" }'
    assert_eq "false" "$(json_get "$HS_OUT" 'j["changed"]')" "re-put with reordered keys"
    expect_exit 0 hs get -d "$N" "$g" --json
    assert_eq "$hash" "$(json_get "$HS_OUT" 'j["hash"]')"
    assert_eq "$seq" "$(json_get "$HS_OUT" 'j["seq"]')"

    # Body from stdin, guid given in upper case.
    local g2=0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B
    expect_exit 0 hs put -d "$N" --class item.task --guid "$g2" - <<<'{"step": 1}'
    assert_eq "${g2,,}" "$HS_OUT" "put prints the guid in lower case"
    expect_exit 0 hs put -d "$N" --class item.task --guid "$g2" --json '{"step": 2}'
    assert_eq "true" "$(json_get "$HS_OUT" 'j["changed"]')"

    # Resource with keys, imported; data-class row attached to it.
    expect_exit 0 hs put -d "$N" --class resource.computer --key serial=SN1 --key mac=00:11 \
        --imported '{"name":"pc1"}'
    local r=$HS_OUT
    expect_exit 0 hs get -d "$N" "$r" --json
    assert_eq '{"mac": "00:11", "serial": "SN1"}' "$(json_get "$HS_OUT" 'j["keys"]')"
    assert_eq "true" "$(json_get "$HS_OUT" 'j["imported"]')"
    expect_exit 0 hs get -d "$N" "$r"
    assert_contains "$HS_OUT" "source:   imported"
    assert_contains "$HS_OUT" "serial=SN1"
    expect_exit 0 hs put -d "$N" --class dataclass.hardware --resource "$r" '{"cpu":"x86"}'
    local d=$HS_OUT
    expect_exit 0 hs get -d "$N" "$d" --json
    assert_eq "$r" "$(json_get "$HS_OUT" 'j["resource"]')"

    # HSYNC_DIR instead of -d.
    HSYNC_DIR="$N" expect_exit 0 hs get "$g"
    assert_contains "$HS_OUT" "guid:     $g"
}

test_ls_rm() {
    expect_exit 0 hs ls -d "$N"
    assert_eq 4 "$(printf '%s\n' "$HS_OUT" | wc -l)" "ls lines"
    assert_contains "$HS_OUT" "resource.computer"
    expect_exit 0 hs ls -d "$N" --class item. --json
    assert_json "$HS_OUT" "ls --json"
    assert_eq 2 "$(json_get "$HS_OUT" 'len(j)')"
    assert_eq '["item.policy", "item.task"]' "$(json_get "$HS_OUT" '[o["class"] for o in j]')"
    expect_exit 0 hs ls -d "$N" --owner nobody --json
    assert_eq "[]" "$HS_OUT"
    expect_exit 0 hs ls -d "$N" --owner n1
    assert_eq 4 "$(printf '%s\n' "$HS_OUT" | wc -l)"

    local g
    g=$(hs ls -d "$N" --class item.task | cut -d' ' -f1)
    expect_exit 0 hs rm -d "$N" "$g"
    expect_exit 0 hs ls -d "$N" --class item.task
    assert_eq "" "$HS_OUT" "ls skips tombstones"
    expect_exit 0 hs ls -d "$N" --class item.task --deleted --json
    assert_eq "true" "$(json_get "$HS_OUT" 'j[0]["deleted"]')"
    expect_exit 0 hs get -d "$N" "$g"
    assert_contains "$HS_OUT" "deleted:  yes"
    expect_exit 1 hs rm -d "$N" "$g"
    assert_contains "$HS_ERR" "hsync: rm: no object $g in $N (never stored, or already deleted)"
    expect_exit 1 hs rm -d "$N" 00000000-0000-7000-8000-000000000001
    expect_exit 1 hs get -d "$N" 00000000-0000-7000-8000-000000000001
    assert_contains "$HS_ERR" "hsync: get: no object"
    # A put over a tombstone revives the object.
    expect_exit 0 hs put -d "$N" --class item.task --guid "$g" '{"step": 3}'
    expect_exit 0 hs ls -d "$N" --class item.task
    assert_contains "$HS_OUT" "$g"
}

test_digest_status() {
    expect_exit 0 hs digest -d "$N"
    [[ "$HS_OUT" =~ ^4\ [0-9a-f]{64}$ ]] && pass || fail "digest output: $HS_OUT"
    local d=$HS_OUT
    expect_exit 0 hs digest -d "$N" --scan
    assert_eq "$d" "$HS_OUT" "digest == digest --scan"
    expect_exit 0 hs digest -d "$N" --json
    assert_json "$HS_OUT"
    assert_eq 4 "$(json_get "$HS_OUT" 'j["count"]')"
    expect_exit 0 hs digest -d "$N" --class item.
    assert_contains "$HS_OUT" "2 "
    expect_exit 0 hs digest -d "$N" --owner n1
    assert_eq "$d" "$HS_OUT"
    expect_exit 0 hs status -d "$N" --json
    assert_json "$HS_OUT"
    assert_eq 4 "$(json_get "$HS_OUT" 'j["objects"]')"
    assert_eq '{"dataclass": 1, "item": 2, "resource": 1}' \
        "$(json_get "$HS_OUT" 'dict(sorted(j["families"].items()))')"
    [ "$(json_get "$HS_OUT" 'j["log_head"]')" -ge 6 ] && pass || fail "log head too low"
    expect_exit 0 hs status -d "$N"
    assert_contains "$HS_OUT" "node:      n1"
    assert_contains "$HS_OUT" "log head:"
}

test_export_import() {
    expect_exit 0 hs export -d "$N"
    local exp=$HS_OUT
    assert_eq 4 "$(printf '%s\n' "$exp" | wc -l)" "export lines"
    printf '%s\n' "$exp" | while read -r line; do printf '%s' "$line" | python3 -m json.tool >/dev/null || echo bad; done | grep -q bad &&
        fail "export line is not JSON" || pass
    assert_contains "$exp" '"keys":{"mac":"00:11","serial":"SN1"}'
    assert_contains "$exp" '"owner":"n1"'
    assert_contains "$exp" '"mtime":"'

    expect_exit 0 hs init -d "$T/copy" --name copy
    printf '%s\n' "$exp" >"$T/exp.ndjson"
    expect_exit 0 hs import -d "$T/copy" "$T/exp.ndjson"
    assert_eq "read 4 written 4 unchanged 0" "$HS_OUT"
    assert_eq "$(digest)" "$(hs digest -d "$T/copy")" "export | import keeps the digest"
    expect_exit 0 hs export -d "$T/copy"
    assert_eq "$exp" "$HS_OUT" "export of the copy is identical (owner, origin, mtime kept)"
    # Again, from stdin: nothing changes.
    expect_exit 0 hs import -d "$T/copy" --json - <"$T/exp.ndjson"
    assert_eq '{"read":4,"written":0,"unchanged":4,"merged":0}' "$HS_OUT"
    # A resource whose key another one has is the same computer: merged, as
    # with put (the one already here survives and takes the content).
    printf '{"class":"resource.computer","guid":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a6c","keys":{"serial":"SN1"},"body":{"name":"again"}}\n' >"$T/dup.ndjson"
    expect_exit 0 hs import -d "$T/copy" "$T/dup.ndjson"
    assert_contains "$HS_OUT" "(1 merged into a resource with the same key" "import merges a duplicate"
    expect_exit 0 hs export -d "$T/copy" --class resource.
    assert_eq 1 "$(printf '%s\n' "$HS_OUT" | wc -l)" "still one computer after the duplicate"
    assert_contains "$HS_OUT" '"name":"again"' "the survivor took the new content"
    expect_exit 0 hs export -d "$N" --class resource.
    assert_eq 1 "$(printf '%s\n' "$HS_OUT" | wc -l)"

    # Lines without guid get one; --owner applies to lines without owner;
    # blank lines are skipped; mtime as milliseconds.
    printf '%s\n' '{"class":"item.report","body":{"a":1}}' '' \
        '{"class":"item.report","body":{"a":2},"owner":"x1","mtime":1700000000000}' >"$T/new.ndjson"
    expect_exit 0 hs import -d "$T/copy" --owner parent "$T/new.ndjson"
    assert_eq "read 2 written 2 unchanged 0" "$HS_OUT"
    expect_exit 0 hs ls -d "$T/copy" --class item.report --json
    assert_eq '["parent", "x1"]' "$(json_get "$HS_OUT" 'sorted(o["owner"] for o in j)')"
    assert_contains "$HS_OUT" '"mtime":"2023-11-14T22:13:20.000Z"'

    # A time more than 5 minutes ahead is stored as now + 5 minutes (issue
    # 17): it would own the resource, and win every claim, until then.
    local fg=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a7d before after
    printf '{"class":"resource.computer","guid":"%s","keys":{"serial":"FUT-1"},"mtime":"2030-01-01T00:00:00Z","body":{"name":"future"}}\n' "$fg" >"$T/fut.ndjson"
    before=$(python3 -c 'import time; print(int(time.time() * 1000))')
    expect_exit 0 hs import -d "$T/copy" "$T/fut.ndjson"
    after=$(python3 -c 'import time; print(int(time.time() * 1000))')
    expect_exit 0 hs get -d "$T/copy" "$fg" --json
    local got
    for f in mtime registered; do
        got=$(json_get "$HS_OUT" "__import__('calendar').timegm(__import__('time').strptime(j['$f'][:19], '%Y-%m-%dT%H:%M:%S')) * 1000")
        [ "$got" -ge $((before + 300000 - 1000)) ] && [ "$got" -le $((after + 300000)) ] &&
            pass || fail "$f of a far-future import is now + 5 min, got $(json_get "$HS_OUT" "j['$f']")"
    done
}

test_bad_input() {
    local before
    before=$(digest)
    local R
    R=$(hs ls -d "$N" --class resource. | cut -d' ' -f1)

    expect_exit 1 hs put -d "$N" --class widget.thing '{}'
    assert_contains "$HS_ERR" "hsync: put: class 'widget.thing': unknown or invalid class"
    expect_exit 1 hs put -d "$N" --class Item.Policy '{}'
    expect_exit 1 hs put -d "$N" --class item.policy '{"a": 1,}'
    assert_contains "$HS_ERR" "hsync: put: body is not valid JSON at line 1 column"
    expect_exit 1 hs put -d "$N" --class item.policy '{"a":
  1 x}'
    assert_contains "$HS_ERR" "body is not valid JSON at line 2 column"
    expect_exit 1 hs put -d "$N" --class item.policy '{"a":1,"a":2}'
    assert_contains "$HS_ERR" "duplicate"
    expect_exit 1 hs put -d "$N" --class item.policy '[1,2]'
    assert_contains "$HS_ERR" "hsync: put: body must be a JSON object ({...}), not an array"
    expect_exit 1 hs put -d "$N" --class item.policy '"x"'
    expect_exit 1 hs put -d "$N" --class item.policy "$(printf '{"a":%.0s' {1..40})1$(printf '}%.0s' {1..40})"
    assert_contains "$HS_ERR" "nests deeper than 32 levels"
    expect_exit 1 hs put -d "$N" --class item.policy --guid 1234 '{}'
    assert_contains "$HS_ERR" "hsync: put: --guid '1234': not a guid"
    expect_exit 1 hs get -d "$N" not-a-guid
    assert_contains "$HS_ERR" "hsync: get: 'not-a-guid': not a guid"
    expect_exit 1 hs rm -d "$N" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5
    expect_exit 1 hs put -d "$N" --class dataclass.hardware '{}'
    assert_contains "$HS_ERR" "needs --resource GUID"
    expect_exit 1 hs put -d "$N" --class item.policy --resource "$R" '{}'
    assert_contains "$HS_ERR" "--resource is only for dataclass.* rows"
    expect_exit 1 hs put -d "$N" --class item.policy --key a=b '{}'
    assert_contains "$HS_ERR" "--key is only for resource.* classes"
    expect_exit 2 hs put -d "$N" --class resource.computer --key novalue '{}'
    expect_exit 1 hs put -d "$N" --class resource.computer --key a=1 --key a=2 '{}'
    assert_contains "$HS_ERR" "resource key 'a' given twice"

    python3 -c 'import json; print(json.dumps({"blob": "x" * (1 << 20)}))' >"$T/big.json"
    expect_exit 1 hs put -d "$N" --class item.policy - <"$T/big.json"
    assert_contains "$HS_ERR" "hsync: put: body is over the limit of 1048576 bytes"

    expect_exit 1 hs put -d "$T/missing" --class item.policy '{}'
    assert_eq "hsync: put: $T/missing is not an hsync node folder (run 'hsync init -d $T/missing --name NAME' first)" "$HS_ERR"
    [ ! -e "$T/missing" ] && pass || fail "put created a folder"
    mkdir -p "$T/plain"
    echo hello >"$T/plain/file"
    for cmd in "put --class item.policy {}" "get 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" "ls" \
        "rm 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" "export" "digest" "status"; do
        local words
        read -r -a words <<<"$cmd"
        expect_exit 1 hs "${words[0]}" -d "$T/plain" "${words[@]:1}"
        assert_contains "$HS_ERR" "$T/plain is not an hsync node folder" "$cmd"
    done
    expect_exit 1 hs import -d "$T/plain" /dev/null
    assert_eq "file" "$(ls "$T/plain")" "a non-node folder is left alone"

    # Usage errors: exit 2.
    expect_exit 2 hs put -d "$N" --class item.policy
    assert_contains "$HS_ERR" "missing the body"
    expect_exit 2 hs put -d "$N" '{}'
    expect_exit 2 hs put -d "$N" --class item.policy --frob '{}'
    assert_contains "$HS_ERR" "hsync: put: unknown option '--frob'"
    expect_exit 2 hs put -d "$N" --class item.policy '{}' '{}'
    expect_exit 2 hs get -d "$N"
    expect_exit 2 hs ls -d "$N" extra
    expect_exit 2 hs digest -d "$N" --class
    assert_contains "$HS_ERR" "option '--class' needs a value"
    expect_exit 2 hs import -d "$N"

    # Import: a bad line names its number and nothing of its batch is written.
    local good='{"class":"item.policy","guid":"00000000-0000-7000-8000-0000000000a1","body":{}}'
    for bad in '{"class":"item.policy","body":{"a":1,}}' \
        '{"class":"widget","body":{}}' \
        '{"class":"item.policy"}' \
        '{"class":"item.policy","body":[1]}' \
        '{"class":"item.policy","body":{},"color":"red"}' \
        '{"class":"item.policy","guid":"xyz","body":{}}' \
        '{"class":"dataclass.hw","body":{}}' \
        '{"class":"item.policy","keys":{"a":"b"},"body":{}}' \
        '{"class":"resource.computer","keys":{"a":1},"body":{}}' \
        '{"class":"item.policy","owner":"bad name","body":{}}' \
        '{"class":"item.policy","mtime":"yesterday","body":{}}' \
        '{"class":"item.policy","imported":"yes","body":{}}' \
        '[1]'; do
        printf '%s\n%s\n%s\n' "$good" "$good" "$bad" >"$T/bad.ndjson"
        expect_exit 1 hs import -d "$N" "$T/bad.ndjson"
        assert_contains "$HS_ERR" "hsync: import: line 3: " "$bad"
        assert_contains "$HS_ERR" "(nothing was written)"
    done
    printf '%s\n' '{"class":"item.policy","body":{"a":1,}}' >"$T/bad.ndjson"
    expect_exit 1 hs import -d "$N" "$T/bad.ndjson"
    assert_contains "$HS_ERR" "line 1: not valid JSON at column"
    expect_exit 1 hs import -d "$N" "$T/nonexistent.ndjson"
    assert_contains "$HS_ERR" "cannot read $T/nonexistent.ndjson"

    assert_eq "$before" "$(digest)" "bad input changed the store"
    expect_exit 0 hs digest -d "$N" --scan
    assert_eq "$before" "$HS_OUT"
}

test_help
test_init
test_put_get
test_ls_rm
test_digest_status
test_export_import
test_bad_input
hs_done
