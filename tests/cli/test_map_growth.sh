#!/usr/bin/env bash
# A store that starts with a tiny map (1 MiB) grows it as a bulk import fills
# it: every record lands, the counts and digests agree.
. "$(dirname "$0")/../lib.sh"

T=$(hs_tmp)
N="$T/n"
COUNT=20000
export HSYNC_MAP_SIZE=1048576
hs() { "$HSYNC" "$@"; }

expect_exit 0 hs init -d "$N" --name n
python3 - "$T/in.ndjson" "$COUNT" <<'PY'
import json, sys
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(n):
        if i % 2 == 0:
            o = {"class": "resource.computer", "guid": "00000000-0000-7000-8000-%012x" % i,
                 "keys": {"serial": "SN%d" % i}, "body": {"name": "pc%d" % i, "os": "linux"}}
        else:
            o = {"class": "dataclass.hardware", "guid": "00000000-0000-7000-8000-%012x" % i,
                 "resource": "00000000-0000-7000-8000-%012x" % (i - 1),
                 "body": {"cpu": "x86_64", "ram": i * 1024, "disks": ["sda", "sdb"],
                          "pad": "p" * 100}}
        f.write(json.dumps(o) + "\n")
PY
expect_exit 0 hs import -d "$N" "$T/in.ndjson"
assert_eq "read $COUNT written $COUNT unchanged 0" "$HS_OUT"
d=$(hs digest -d "$N")
assert_contains "$d" "$COUNT "
assert_eq "$d" "$(hs digest -d "$N" --scan)" "digest == digest --scan"
expect_exit 0 hs status -d "$N" --json
assert_eq "$COUNT" "$(json_get "$HS_OUT" 'j["objects"]')"
assert_eq "$COUNT" "$(json_get "$HS_OUT" 'j["log_head"]')"
[ "$(json_get "$HS_OUT" 'j["store_bytes"]')" -gt 1048576 ] && pass || fail "store did not grow"
# Single puts keep working on the grown map, from a fresh process.
expect_exit 0 hs put -d "$N" --class item.policy '{"after":"growth"}'
# The same import again changes nothing.
expect_exit 0 hs import -d "$N" - <"$T/in.ndjson"
assert_eq "read $COUNT written 0 unchanged $COUNT" "$HS_OUT"
expect_exit 0 hs export -d "$N" --class dataclass.
assert_eq $((COUNT / 2)) "$(printf '%s\n' "$HS_OUT" | wc -l)"


# A bad line after the first batch: the batches before it stay, nothing of
# its own batch is written, and the message says so.
expect_exit 0 hs init -d "$T/m" --name m
head -n 12344 "$T/in.ndjson" >"$T/partial.ndjson"
echo '{"class":"item.policy","body":{"oops":}}' >>"$T/partial.ndjson"
tail -n +12346 "$T/in.ndjson" >>"$T/partial.ndjson"
expect_exit 1 hs import -d "$T/m" "$T/partial.ndjson"
assert_contains "$HS_ERR" "hsync: import: line 12345: not valid JSON at column 39"
assert_contains "$HS_ERR" "(lines 1-10000 were imported; nothing from line 10001 on was written)"
assert_contains "$(hs digest -d "$T/m")" "10000 "
assert_eq "$(hs digest -d "$T/m")" "$(hs digest -d "$T/m" --scan)"

hs_done
