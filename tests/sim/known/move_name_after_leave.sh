#!/usr/bin/env bash
# hsync model-checker history (seed 4, ops put,rm,import,kill,restore,move).
# Re-run with its checks:  python3 tests/sim/sim.py --replay tests/sim/known/move_name_after_leave.sh
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
#op {"body": {"enabled": true, "n": 20779, "name": "policy1"}, "cls": "item.policy", "guid": "27ac435a-7a97-4643-a564-12a9b8a1abcd", "i": 1, "node": "b", "op": "put"}
$H put -d $D/b --class item.policy --guid 27ac435a-7a97-4643-a564-12a9b8a1abcd '{"enabled": true, "n": 20779, "name": "policy1"}'
#op {"i": 2, "node": "r", "op": "kill"}
hs_kill9 r
hs_start r
#op {"guid": "27ac435a-7a97-4643-a564-12a9b8a1abcd", "i": 3, "node": "b", "op": "rm"}
$H rm -d $D/b 27ac435a-7a97-4643-a564-12a9b8a1abcd
#op {"i": 4, "node": "a", "op": "snapshot"}
hs_stop a
cp -a $D/a $D/snap-a-4
hs_start a
#op {"body": {"enabled": false, "n": 202831, "name": "policy5"}, "cls": "item.policy", "guid": "42a00403-ce80-44b0-a404-2bb3d4341aad", "i": 5, "node": "a", "op": "put"}
$H put -d $D/a --class item.policy --guid 42a00403-ce80-44b0-a404-2bb3d4341aad '{"enabled": false, "n": 202831, "name": "policy5"}'
#op {"body": {"name": "pc-SN-4-1-p6", "site": "south", "v": 875}, "cls": "resource.computer", "guid": "f5ff0c03-bb5d-4385-9e08-caa1a0817910", "i": 6, "imported": false, "keys": {"serial": "SN-4-1"}, "node": "b", "op": "put"}
$H put -d $D/b --class resource.computer --guid f5ff0c03-bb5d-4385-9e08-caa1a0817910 --key serial=SN-4-1 '{"name": "pc-SN-4-1-p6", "site": "south", "v": 875}'
#op {"i": 7, "node": "a1", "op": "move", "to": "b"}
$H hierarchy leave -d $D/a1
tok=$($H invite -d $D/a1)
$H hierarchy add-child -d $D/b "$tok"
# what each node holds now (compare with the divergences sim.py printed)
for n in r a b a1 s; do echo "== $n"; "$H" ls -d "$D/$n" | grep -v ' system\.'; done
