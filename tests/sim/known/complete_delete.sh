#!/usr/bin/env bash
# hsync model-checker history (seed 0, ops put,rm).
# a1 holds one imported and one managed resource (both its own); both reach
# a and r; a1 removes the managed one and runs 'sync --complete': the delete
# never reaches a and r (they keep the object forever; b gets it too). With
# two managed resources, or without the imported one, the delete goes through.
# Re-run with its checks:  python3 tests/sim/sim.py --known branch-down --replay tests/sim/known/complete_delete.sh
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
#op {"body": {"name": "imp", "site": "north", "v": 1}, "cls": "resource.computer", "guid": "cc21ce88-d006-4cc5-8278-c2614e1bcb38", "i": 1, "imported": true, "keys": {"serial": "IM-1"}, "node": "a1", "op": "put"}
$H put -d $D/a1 --class resource.computer --guid cc21ce88-d006-4cc5-8278-c2614e1bcb38 --key serial=IM-1 --imported '{"name": "imp", "site": "north", "v": 1}'
#op {"body": {"name": "pc1", "site": "south", "v": 1}, "cls": "resource.computer", "guid": "88dcf943-84d4-4d1f-87ca-7883ff5a52f1", "i": 2, "keys": {"serial": "SN-1"}, "node": "a1", "op": "put"}
$H put -d $D/a1 --class resource.computer --guid 88dcf943-84d4-4d1f-87ca-7883ff5a52f1 --key serial=SN-1 '{"name": "pc1", "site": "south", "v": 1}'
#op {"i": 3, "op": "quiesce"}
hs_quiesce  # op 3
#op {"guid": "88dcf943-84d4-4d1f-87ca-7883ff5a52f1", "i": 4, "node": "a1", "op": "rm"}
$H rm -d $D/a1 88dcf943-84d4-4d1f-87ca-7883ff5a52f1
#op {"complete": true, "i": 5, "node": "a1", "op": "sync"}
$H sync -d $D/a1 --json --timeout 60 --complete
#op {"final": true, "i": 6, "op": "quiesce"}
hs_quiesce  # final
# what each node holds now (compare with the divergences sim.py printed)
for n in r a b a1 s; do echo "== $n"; "$H" ls -d "$D/$n" | grep -v ' system\.'; done
