#!/usr/bin/env bash
# hsync model-checker history (seed 7, ops put,rm,import,dup,claim,move,standalone,target).
# Re-run with its checks:  python3 tests/sim/sim.py --replay tests/sim/known/move_misses_upstream.sh
# Or by hand (H=hsync binary, D=empty folder): the lines below are the commands
# the checker ran; '#op' lines are the operations as the checker read them.
set -u
H=${HSYNC:-build/hsync}; D=${D:-$(mktemp -d)}; B=${PORT_BASE:-7400}
declare -A P=()
hs_start() { "$H" serve -d "$D/$1" 2>>"$D/$1.log" & P[$1]=$!
    for _ in $(seq 100); do "$H" hierarchy show -d "$D/$1" --json 2>/dev/null | grep -q '"running"' && return; sleep 0.1; done; }
hs_stop() { kill -TERM "${P[$1]}"; wait "${P[$1]}" 2>/dev/null; }
hs_kill9() { kill -KILL "${P[$1]}"; wait "${P[$1]}" 2>/dev/null; }
hs_quiesce() { for _ in 1 2 3 4; do for n in a1 a b r a b a1; do "$H" sync -d "$D/$n" >/dev/null; done; done; }
trap 'for p in "${P[@]}"; do kill "$p" 2>/dev/null; done' EXIT
i=0; for n in r a b a1 s; do "$H" init -d "$D/$n" --name $n --listen tcp://127.0.0.1:$((B + 2 * i)) >/dev/null; i=$((i + 1)); done
for n in r a b a1 s; do hs_start $n; done
$H hierarchy add-child -d $D/r "$($H invite -d $D/a)"
$H hierarchy add-child -d $D/r "$($H invite -d $D/b)"
$H hierarchy add-child -d $D/a "$($H invite -d $D/a1)"
#op {"i": 1, "node": "a1", "op": "move", "to": "b"}
$H hierarchy leave -d $D/a1
tok=$($H invite -d $D/a1)
$H hierarchy add-child -d $D/b "$tok"
#op {"body": {"name": "pc-SN-7-1-p2", "site": "south", "v": 219}, "cls": "resource.computer", "guid": "81e74ef5-e8e2-4d94-8ed9-04759531985d", "i": 2, "imported": true, "keys": {"serial": "SN-7-1"}, "node": "r", "op": "put"}
$H put -d $D/r --class resource.computer --guid 81e74ef5-e8e2-4d94-8ed9-04759531985d --key serial=SN-7-1 --imported '{"name": "pc-SN-7-1-p2", "site": "south", "v": 219}'
#op {"body": {"enabled": false, "n": 993473, "name": "policy3"}, "cls": "item.policy", "guid": "d3ac94af-0f21-4db6-acad-4a268d116ece", "i": 3, "node": "a", "op": "put"}
$H put -d $D/a --class item.policy --guid d3ac94af-0f21-4db6-acad-4a268d116ece '{"enabled": false, "n": 993473, "name": "policy3"}'
#op {"guid": "d3ac94af-0f21-4db6-acad-4a268d116ece", "i": 4, "node": "a", "op": "rm"}
$H rm -d $D/a d3ac94af-0f21-4db6-acad-4a268d116ece
#op {"complete": false, "i": 5, "node": "a", "op": "sync"}
$H sync -d $D/a --json --timeout 20
#op {"complete": false, "i": 6, "node": "a", "op": "sync"}
$H sync -d $D/a --json --timeout 20
#op {"i": 7, "lines": [{"body": {"enabled": true, "n": 698, "name": "imp7-0"}, "class": "item.policy", "guid": "d0eda82f-8f6d-4558-8ef8-aa3892276658"}, {"body": {"name": "pc-IM-7-2-i7", "site": "south", "v": 560}, "class": "resource.computer", "guid": "301850c5-a38f-4547-923a-736994e3bf91", "imported": true, "keys": {"serial": "IM-7-2"}}], "node": "a1", "op": "import"}
$H import -d $D/a1 - <<'EOF'
{"body": {"enabled": true, "n": 698, "name": "imp7-0"}, "class": "item.policy", "guid": "d0eda82f-8f6d-4558-8ef8-aa3892276658"}
{"body": {"name": "pc-IM-7-2-i7", "site": "south", "v": 560}, "class": "resource.computer", "guid": "301850c5-a38f-4547-923a-736994e3bf91", "imported": true, "keys": {"serial": "IM-7-2"}}
EOF
#op {"body": {"name": "pc-SN-7-3-p8", "site": "south", "v": 795}, "cls": "resource.computer", "guid": "6d76b07e-881e-4162-ae2e-b1547f150524", "i": 8, "imported": false, "keys": {"serial": "SN-7-3"}, "node": "r", "op": "put"}
$H put -d $D/r --class resource.computer --guid 6d76b07e-881e-4162-ae2e-b1547f150524 --key serial=SN-7-3 '{"name": "pc-SN-7-3-p8", "site": "south", "v": 795}'
#op {"i": 9, "node": "a1", "op": "move", "to": "a"}
$H hierarchy leave -d $D/a1
tok=$($H invite -d $D/a1)
$H hierarchy add-child -d $D/a "$tok"
#op {"i": 10, "lines": [{"body": {"enabled": true, "n": 537, "name": "imp10-0"}, "class": "item.policy", "guid": "4cdd2055-930d-4eaf-94f4-733f3e7d1bfb"}, {"body": {"name": "pc-IM-7-4-i10", "site": "north", "v": 74}, "class": "resource.computer", "guid": "49b64a08-72e6-4c3a-babc-ed2057ee05cd", "imported": false, "keys": {"serial": "IM-7-4"}}], "node": "a", "op": "import"}
$H import -d $D/a - <<'EOF'
{"body": {"enabled": true, "n": 537, "name": "imp10-0"}, "class": "item.policy", "guid": "4cdd2055-930d-4eaf-94f4-733f3e7d1bfb"}
{"body": {"name": "pc-IM-7-4-i10", "site": "north", "v": 74}, "class": "resource.computer", "guid": "49b64a08-72e6-4c3a-babc-ed2057ee05cd", "imported": false, "keys": {"serial": "IM-7-4"}}
EOF
#op {"body": {"name": "pc-SN-7-5-p11", "site": "south", "v": 500}, "cls": "resource.computer", "guid": "eeeacbe2-26e8-4555-9790-f82ec1d3fcff", "i": 11, "imported": false, "keys": {"serial": "SN-7-5"}, "node": "a1", "op": "put"}
$H put -d $D/a1 --class resource.computer --guid eeeacbe2-26e8-4555-9790-f82ec1d3fcff --key serial=SN-7-5 '{"name": "pc-SN-7-5-p11", "site": "south", "v": 500}'
#op {"body": {"name": "pc-SN-7-6-p12", "site": "south", "v": 593}, "cls": "resource.computer", "guid": "7f26144b-9828-4fcd-99a5-4a7bb1fee08f", "i": 12, "imported": false, "keys": {"serial": "SN-7-6"}, "node": "b", "op": "put"}
$H put -d $D/b --class resource.computer --guid 7f26144b-9828-4fcd-99a5-4a7bb1fee08f --key serial=SN-7-6 '{"name": "pc-SN-7-6-p12", "site": "south", "v": 593}'
#op {"body": {"name": "pc-SN-7-3-u13", "site": "south", "v": 713}, "cls": "resource.computer", "guid": "6d76b07e-881e-4162-ae2e-b1547f150524", "i": 13, "imported": false, "keys": {"serial": "SN-7-3"}, "node": "r", "op": "put"}
$H put -d $D/r --class resource.computer --guid 6d76b07e-881e-4162-ae2e-b1547f150524 --key serial=SN-7-3 '{"name": "pc-SN-7-3-u13", "site": "south", "v": 713}'
#op {"body": {"name": "pc-SN-7-3-u14", "site": "south", "v": 291}, "cls": "resource.computer", "guid": "6d76b07e-881e-4162-ae2e-b1547f150524", "i": 14, "imported": false, "keys": {"serial": "SN-7-3"}, "node": "r", "op": "put"}
$H put -d $D/r --class resource.computer --guid 6d76b07e-881e-4162-ae2e-b1547f150524 --key serial=SN-7-3 '{"name": "pc-SN-7-3-u14", "site": "south", "v": 291}'
#op {"body": {"name": "pc-SN-7-3-c15", "site": "south", "v": 363}, "cls": "resource.computer", "guid": "6d76b07e-881e-4162-ae2e-b1547f150524", "i": 15, "keys": {"serial": "SN-7-3"}, "node": "b", "op": "claim"}
$H put -d $D/b --class resource.computer --guid 6d76b07e-881e-4162-ae2e-b1547f150524 --key serial=SN-7-3 '{"name": "pc-SN-7-3-c15", "site": "south", "v": 363}'
#op {"body": {"n": 16, "name": "role16"}, "cls": "security.role", "guid": "49952399-c4aa-4ac1-b7dc-76fb0f17a300", "i": 16, "node": "r", "op": "put"}
$H put -d $D/r --class security.role --guid 49952399-c4aa-4ac1-b7dc-76fb0f17a300 '{"n": 16, "name": "role16"}'
#op {"guid": "eeeacbe2-26e8-4555-9790-f82ec1d3fcff", "i": 17, "node": "a1", "op": "rm"}
$H rm -d $D/a1 eeeacbe2-26e8-4555-9790-f82ec1d3fcff
#op {"i": 18, "node": "a1", "op": "move", "to": "b"}
$H hierarchy leave -d $D/a1
tok=$($H invite -d $D/a1)
$H hierarchy add-child -d $D/b "$tok"
#op {"classes": ["resource.", "dataclass."], "i": 19, "name": "inv", "node": "a1", "op": "standalone"}
tok=$($H invite -d $D/s)
$H standalone add -d $D/a1 --name inv --to "$tok" --class resource. --class dataclass.
#op {"classes": ["resource.", "dataclass."], "i": 20, "name": "north", "node": "b", "op": "standalone", "target": "resource.computer", "where": {"site": "north"}}
tok=$($H invite -d $D/s)
$H standalone add -d $D/b --name north --to "$tok" --class resource. --class dataclass. --target resource.computer --where site=north
#op {"final": true, "i": 21, "op": "quiesce"}
hs_quiesce  # final
# what each node holds now (compare with the divergences sim.py printed)
for n in r a b a1 s; do echo "== $n"; "$H" ls -d "$D/$n" | grep -v ' system\.'; done
