# hsync model-checker history (seed 0, ops put,dup).
# Merge of two resources with one key: a registered first (guid f000...), b
# second (guid 1000...). SPEC: the one registered first survives, whatever
# the guids; hsync keeps the lower guid, and a keeps a stale body (item 1).
#op {"i": 1, "op": "put", "node": "a", "cls": "resource.computer", "guid": "f0000000-0000-4000-8000-000000000001", "keys": {"serial": "DUP-1"}, "body": {"name": "first", "site": "north", "v": 1}}
#op {"i": 2, "op": "dup", "node": "b", "cls": "resource.computer", "guid": "10000000-0000-4000-8000-000000000002", "keys": {"serial": "DUP-1"}, "body": {"name": "second", "site": "north", "v": 2}}
