# hsync model-checker history (seed 1, ops put,hep,restore).
# A copy of the middle node a is taken (op 2) right after r put a resource;
# r puts a policy and a1 edits its editable property 'enabled' (HEP, op 4);
# a is restored from the copy (op 15). After quiescence a1 lacks r's
# resource (a holds it again) and a1's HEP edit is gone (enabled back to
# r's value). README "Store epochs": a restored store takes a new epoch and
# its peers reconcile; "edited here (kept over copies from a)". From seed 2
# of the mixed families (ops 1, 2, 3, 4, 15; the policy came from an
# emergency there).
#op {"body": {"name": "pc-SN-1-1-p1", "site": "south", "v": 483}, "cls": "resource.computer", "guid": "7311d8a3-c2ce-4f44-bed4-d57b1e2feb89", "i": 1, "imported": false, "keys": {"serial": "SN-1-1"}, "node": "r", "op": "put"}
#op {"i": 2, "node": "a", "op": "snapshot"}
#op {"body": {"enabled": true, "n": 712, "name": "urgent3"}, "cls": "item.policy", "guid": "008a05a6-c464-4159-8324-c9859b810e76", "i": 3, "node": "r", "op": "put"}
#op {"child": "a1", "guid": "008a05a6-c464-4159-8324-c9859b810e76", "i": 4, "node": "r", "op": "hep"}
#op {"i": 15, "node": "a", "op": "restore"}
