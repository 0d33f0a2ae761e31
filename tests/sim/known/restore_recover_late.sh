# hsync model-checker history (seed 5, ops put,rm,import,restore).
# A copy of a1 is taken (op 1); a1 puts a resource (op 7); everything is
# quiesced, a1 is restored from the copy and restarted, and `sync -d a1`
# exits 0 (op 9); yet `rm` of that resource on a1 (op 10) says "no object":
# README "Non-authoritative restore": before its first run up the node asks
# its parent for a recovery run and takes each object it lacks. After the
# final quiescence a1 holds it again.
#op {"i": 1, "node": "a1", "op": "snapshot"}
#op {"body": {"name": "pc-SN-5-1-p7", "site": "north", "v": 5}, "cls": "resource.computer", "guid": "df1461aa-f8eb-48b9-8074-513021da8978", "i": 7, "imported": false, "keys": {"serial": "SN-5-1"}, "node": "a1", "op": "put"}
#op {"i": 9, "node": "a1", "op": "restore"}
#op {"guid": "df1461aa-f8eb-48b9-8074-513021da8978", "i": 10, "node": "a1", "op": "rm"}
