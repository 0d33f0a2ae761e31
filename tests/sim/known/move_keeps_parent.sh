# hsync model-checker history (seed 2, ops put,rm,import,move).
# a1 moves under b, takes b's items and resources, then moves back under a:
# after quiescence a1 still holds b's item.policy and b's (imported)
# resource.computer, which its scope no longer gives it (the oracle: items
# flow down from the managing node b, an imported resource stays at b and
# below; a1 is neither). The former parent drops the branch's resources
# (README "Moving a node"), but the moved node keeps its former parent's
# items and resources, and no run ever updates them again.
# From seed 2 of OPS=put,rm,import,move (ops 11, 13, 16).
#op {"i": 11, "lines": [{"body": {"name": "pc-IM-2-4-i11", "site": "south", "v": 772}, "class": "resource.computer", "guid": "721dea3b-f63f-43d0-9be5-3fcafb2147df", "imported": true, "keys": {"serial": "IM-2-4"}}, {"body": {"name": "pc-IM-2-5-i11", "site": "north", "v": 285}, "class": "resource.computer", "guid": "87c56473-a7a8-4ee0-b61e-bfd2bd143fa9", "imported": true, "keys": {"serial": "IM-2-5"}}, {"body": {"enabled": true, "n": 362, "name": "imp11-2"}, "class": "item.policy", "guid": "cbd4d3e2-d4de-49ef-83f0-be4e80371eb9"}, {"body": {"enabled": true, "n": 359, "name": "imp11-3"}, "class": "item.policy", "guid": "7604e4b4-e736-45c3-a652-c71a74667bff"}], "node": "b", "op": "import"}
#op {"i": 13, "node": "a1", "op": "move", "to": "b"}
#op {"complete": false, "i": 14, "node": "a1", "op": "sync"}
#op {"i": 16, "node": "a1", "op": "move", "to": "a"}
