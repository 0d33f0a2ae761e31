# hsync model-checker history (seed 3, ops put,events,move,kill).
# About 3 runs in 4: right after a1 moves from a to b, `sync -d r` waits its
# whole --timeout (20 s in sim.py) and exits 1, while r refused b's runs at once ("the
# sender claims node 'a1', which is elsewhere in the hierarchy"). Run with
# HSYNC_SIM_SLOW=5 --known branch-down.
#op {"i": 17, "node": "a", "op": "kill"}
#op {"i": 18, "node": "b", "op": "events", "text": "sim-3-18"}
#op {"body": {"enabled": true, "n": 360794, "name": "policy19"}, "cls": "item.policy", "guid": "fd63ed5b-a385-4c4b-9a9b-f98c7b6471e2", "i": 19, "node": "r", "op": "put"}
#op {"complete": false, "i": 20, "node": "a1", "op": "sync"}
#op {"body": {"enabled": true, "n": 806136, "name": "policy19"}, "cls": "item.policy", "guid": "fd63ed5b-a385-4c4b-9a9b-f98c7b6471e2", "i": 21, "node": "r", "op": "put"}
#op {"i": 22, "node": "a1", "op": "move", "to": "b"}
#op {"complete": false, "i": 23, "node": "r", "op": "sync"}
