#!/usr/bin/env bash
# The digest depends on the data, not on the order it was written in: the same
# objects written in different orders (one by one, in bulk, reversed) into two
# folders give equal digests, the incremental digest equals a full scan, and
# reordering the keys of a JSON body does not change its content hash.
. "$(dirname "$0")/../lib.sh"

T=$(hs_tmp)
hs() { "$HSYNC" "$@"; }

expect_exit 0 hs init -d "$T/a" --name a
expect_exit 0 hs init -d "$T/b" --name a
expect_exit 0 hs init -d "$T/c" --name a

# 60 objects over several classes, fixed guids; nested bodies.
python3 - "$T/lines.ndjson" <<'PY'
import json, sys
classes = ["item.policy", "item.task", "resource.computer", "security.role", "event.alert"]
with open(sys.argv[1], "w") as f:
    for i in range(60):
        cls = classes[i % len(classes)]
        o = {"class": cls, "guid": "00000000-0000-7000-8000-%012x" % (i * 7919 % 1000),
             "body": {"name": "obj%d" % i, "n": i, "neg": -i * 1000, "r": i / 8,
                      "tags": ["t%d" % (i % 3), None, True], "sub": {"z": i, "a": {"deep": [i]}}}}
        if cls == "resource.computer":
            o["keys"] = {"serial": "SN%d" % i, "mac": "00:00:%02x" % i}
        f.write(json.dumps(o) + "\n")
PY

# a: one put per object in file order; b: import of the reversed file;
# c: import in a shuffled order, in two halves.
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    keys = " ".join("--key=%s=%s" % kv for kv in o.get("keys", {}).items())
    print("\x1f".join([o["class"], o["guid"], keys, json.dumps(o["body"])]))' \
    "$T/lines.ndjson" >"$T/puts.tsv"
while IFS=$'\x1f' read -r cls guid keys body; do
    # shellcheck disable=SC2086
    hs put -d "$T/a" --class "$cls" --guid "$guid" $keys "$body" >/dev/null || fail "put $guid"
done <"$T/puts.tsv"
tac "$T/lines.ndjson" >"$T/rev.ndjson"
expect_exit 0 hs import -d "$T/b" "$T/rev.ndjson"
assert_eq "read 60 written 60 unchanged 0" "$HS_OUT"
python3 -c 'import random,sys; l=open(sys.argv[1]).readlines(); random.Random(7).shuffle(l); open(sys.argv[2],"w").writelines(l[:30]); open(sys.argv[3],"w").writelines(l[30:])' \
    "$T/lines.ndjson" "$T/s1.ndjson" "$T/s2.ndjson"
expect_exit 0 hs import -d "$T/c" "$T/s2.ndjson"
expect_exit 0 hs import -d "$T/c" "$T/s1.ndjson"

da=$(hs digest -d "$T/a")
assert_contains "$da" "60 " "count"
assert_eq "$da" "$(hs digest -d "$T/b")" "a vs b"
assert_eq "$da" "$(hs digest -d "$T/c")" "a vs c"
for n in a b c; do
    assert_eq "$da" "$(hs digest -d "$T/$n" --scan)" "digest == digest --scan ($n)"
    for p in item. item.policy resource. security. event.; do
        assert_eq "$(hs digest -d "$T/a" --class "$p")" "$(hs digest -d "$T/$n" --class "$p")" \
            "scoped digest $p ($n)"
        assert_eq "$(hs digest -d "$T/$n" --class "$p")" "$(hs digest -d "$T/$n" --class "$p" --scan)"
    done
done

# A change makes the digests differ; changing it back makes them equal again.
g=00000000-0000-7000-8000-000000000000
orig=$(hs get -d "$T/b" "$g" --json)
expect_exit 0 hs put -d "$T/b" --class "$(json_get "$orig" 'j["class"]')" --guid "$g" '{"changed":1}'
assert_ne "$da" "$(hs digest -d "$T/b")" "digest after a change"
assert_eq "$(hs digest -d "$T/b")" "$(hs digest -d "$T/b" --scan)"
expect_exit 0 hs put -d "$T/b" --class "$(json_get "$orig" 'j["class"]')" --guid "$g" \
    "$(json_get "$orig" 'j["body"]')"
assert_eq "$da" "$(hs digest -d "$T/b")" "digest after changing back"
# A delete, then the same object again.
expect_exit 0 hs rm -d "$T/c" "$g"
assert_eq "59 " "$(hs digest -d "$T/c" | cut -c1-3)"
assert_eq "$(hs digest -d "$T/c")" "$(hs digest -d "$T/c" --scan)" "after rm"
expect_exit 0 hs put -d "$T/c" --class "$(json_get "$orig" 'j["class"]')" --guid "$g" \
    "$(json_get "$orig" 'j["body"]')"
assert_eq "$da" "$(hs digest -d "$T/c")" "after rm and put back"

# Key order and whitespace in a JSON body do not change the hash.
g1=00000000-0000-7000-8000-0000000000f1
expect_exit 0 hs put -d "$T/a" --class item.filter --guid "$g1" \
    '{"b":{"y":[1,{"q":1,"p":2}],"x":"s"},"a":1,"aa":2,"A":3,"":4}'
expect_exit 0 hs put -d "$T/b" --class item.filter --guid "$g1" \
    ' { "":4, "A":3, "aa":2, "a":1, "b":{ "x":"s", "y":[1,{"p":2,"q":1}] } } '
assert_eq "$(json_get "$(hs get -d "$T/a" "$g1" --json)" 'j["hash"]')" \
    "$(json_get "$(hs get -d "$T/b" "$g1" --json)" 'j["hash"]')" "hash with reordered keys"
assert_eq "$(hs digest -d "$T/a")" "$(hs digest -d "$T/b")" "digests with reordered keys"
# ...but a different value type does.
expect_exit 0 hs put -d "$T/c" --class item.filter --guid "$g1" \
    '{"b":{"y":[1,{"q":1,"p":2}],"x":"s"},"a":1.0,"aa":2,"A":3,"":4}'
assert_ne "$(json_get "$(hs get -d "$T/a" "$g1" --json)" 'j["hash"]')" \
    "$(json_get "$(hs get -d "$T/c" "$g1" --json)" 'j["hash"]')" "1 and 1.0 differ"

hs_done
