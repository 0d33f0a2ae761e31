# hsync model-checker history (seed 2, ops put,standalone,target,dup).
# A standalone rule on b (north: resource.computer where site=north) has
# delivered b's resource to s; a second resource with the same key is put on
# a (another branch): merged, b's guid survives (registered first), a's copy
# changed last so a owns it, and b drops its copy (README "Ownership and
# duplicates"). s keeps b's old copy (owner b, body p2) forever: the rule's
# source no longer holds it, and s differs from every other copy (owner a,
# body d8). From seed 2 of the mixed families (ops 2, 7, 8).
#op {"body": {"name": "pc-SN-2-1-p2", "site": "north", "v": 595}, "cls": "resource.computer", "guid": "0925e474-9b57-4bd1-b653-f8dd9b1f282e", "i": 2, "imported": false, "keys": {"serial": "SN-2-1"}, "node": "b", "op": "put"}
#op {"classes": ["resource.", "dataclass."], "i": 7, "name": "north", "node": "b", "op": "standalone", "target": "resource.computer", "where": {"site": "north"}}
#op {"body": {"name": "pc-SN-2-1-d8", "site": "north", "v": 543}, "cls": "resource.computer", "guid": "a7a83ee0-761e-4fd2-bd14-3fa9b714210c", "i": 8, "keys": {"serial": "SN-2-1"}, "node": "a", "op": "dup"}
