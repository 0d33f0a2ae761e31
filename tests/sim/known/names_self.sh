# hsync model-checker history (seed 5, ops put,names).
# A second node named 'a' (another node, its own keys) joins under a: it is
# refused, but with "a node cannot be its own child" instead of where the
# name is used ('a' is a node under 'r'); README "Unique node names". Run
# without --known names-self to see it.
#op {"i": 1, "name": "a", "node": "a", "op": "names"}
