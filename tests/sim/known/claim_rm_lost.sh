# hsync model-checker history (seed 3, ops put,rm,import,claim).
# A resource put on a, then claimed by b (put there with the same guid: the
# most recent registration) and removed there by b, its owner, before any
# sync: after quiescence r, a and a1 still hold a's copy (owner a, body p3)
# while b holds nothing; the oracle expects the removal everywhere (b's
# claim is the most recent registration; nothing explains the object
# staying). From seed 3 of OPS=put,rm,import,claim (ops 3, 6, 13; with a1
# claiming it in between, op 5, the same with a1's copy).
#op {"body": {"name": "pc-SN-3-2-p3", "site": "south", "v": 856}, "cls": "resource.computer", "guid": "8a7d43b5-7863-4074-b797-0386fee29476", "i": 3, "imported": false, "keys": {"serial": "SN-3-2"}, "node": "a", "op": "put"}
#op {"body": {"name": "pc-SN-3-2-c6", "site": "south", "v": 43}, "cls": "resource.computer", "guid": "8a7d43b5-7863-4074-b797-0386fee29476", "i": 6, "keys": {"serial": "SN-3-2"}, "node": "b", "op": "claim"}
#op {"guid": "8a7d43b5-7863-4074-b797-0386fee29476", "i": 13, "node": "b", "op": "rm"}
