#!/usr/bin/env bash
# A reconcile up from a child is authoritative for what the child owns: the
# parent gets back the child's resources it lost (deleted there behind the
# child's back), moving only those, and the objects' last-changed times do not
# stop the repair (a state transfer takes the owner's copy).
. "$(dirname "$0")/lib_repl.sh"

N=2000
LOST=25

hr_node p
hr_start p
hr_node c
hr_start c
hr_link p c
f=$(hs_tmp)/res.ndjson
hr_gen_resources "$f" "$N" SN
hr_import c "$f"
hr_sync c --rule resources --direction up
wait_for 20 hr_count_is "$N" p resource. c
assert_eq "$(hr_digest c resource. c)" "$(hr_digest p resource. c)" "the parent has the child's resources"

# The parent loses some of them (deleted there: newer than the child's copies).
guids=$(hs export -d "$(hr_dir p)" --class resource.computer --owner c |
    python3 -c 'import json,sys; [print(json.loads(l)["guid"]) for l in sys.stdin]' | head -n "$LOST")
for g in $guids; do
    expect_exit 0 hs rm -d "$(hr_dir p)" "$g"
done
assert_eq "$((N - LOST))" "$(hr_count p resource. c)" "the parent lost $LOST"

hr_sync c --rule resources --direction up --reconcile
assert_eq "reconcile" "$(hr_run mode p resources up sent)" "mode"
assert_eq "$LOST" "$(hr_run sent p resources up sent)" "only the lost objects move"
assert_eq "$LOST" "$(hr_run applied p resources up sent)" "and they are applied"
assert_eq "$(hr_digest c resource. c)" "$(hr_digest p resource. c)" "digests equal again"
for g in $guids; do
    if hr_is_deleted p "$g"; then fail "$g is still deleted at the parent"; else pass; fi
done

# Nothing differs any more.
hr_sync c --rule resources --direction up --reconcile
assert_eq "0" "$(hr_run sent p resources up sent)" "a second reconcile sends nothing"
hr_done
