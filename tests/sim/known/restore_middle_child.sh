# hsync model-checker history (seed 1, ops put,import,restore).
# A copy of the middle node a is taken (op 2); r imports resources (op 4);
# a is restored from the copy (op 6). After quiescence a holds r's
# resources again (from r), but a1, below it, never gets them: README
# "Store epochs": a restored store takes a new epoch and its peers
# reconcile. From seed 1 of put,rm,import,standalone,target,restore,complete.
# (restore_middle.sh: the same with a HEP edit on a1 that is lost too.)
#op {"i": 2, "node": "a", "op": "snapshot"}
#op {"i": 4, "lines": [{"body": {"name": "pc-IM-1-2-i4", "site": "south", "v": 923}, "class": "resource.computer", "guid": "9755d4c1-3a90-4931-8d44-7e35b8b6d8fe", "imported": false, "keys": {"serial": "IM-1-2"}}, {"body": {"name": "pc-IM-1-3-i4", "site": "north", "v": 902}, "class": "resource.computer", "guid": "8a9a021e-a648-47dd-8683-9eb905b6e6e3", "imported": true, "keys": {"serial": "IM-1-3"}}, {"body": {"name": "pc-IM-1-4-i4", "site": "south", "v": 227}, "class": "resource.computer", "guid": "b9d179e0-6c0f-44f5-b813-0c4237730edf", "imported": true, "keys": {"serial": "IM-1-4"}}, {"body": {"enabled": true, "n": 353, "name": "imp4-3"}, "class": "item.policy", "guid": "3bab6c39-8d88-448a-beed-8d14f06d3fef"}], "node": "r", "op": "import"}
#op {"i": 6, "node": "a", "op": "restore"}
