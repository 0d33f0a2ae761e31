# hsync model-checker history (seed 0, ops put).
# A resource put on a1, a complete sync on r, quiesce. Without --known
# branch-down: b (a's sibling) receives a1's resource from r,
# and r sends it back down to a, which refuses it while the sync exits 0.
#op {"i": 1, "op": "put", "node": "a1", "cls": "resource.computer", "guid": "a1000000-0000-4000-8000-000000000001", "keys": {"serial": "GC-1"}, "body": {"name": "grandchild", "site": "north", "v": 1}}
#op {"i": 2, "op": "sync", "node": "r", "complete": true}
