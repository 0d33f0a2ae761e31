/*
 * resource.h - resources: one owner each, one guid per real thing.
 *
 * Ownership. Each resource has one owning node. When a copy arrives from a
 * peer that names another owner than the local copy (an agent moved to
 * another server, or two children both claim it), this node decides by the
 * documented rule: the most recent registration wins, that is the copy with
 * the later last-changed time (the agent reports to the server it now
 * belongs to; a time more than 5 minutes ahead of this node's clock counts
 * as 5 minutes ahead); on a tie, the owner name first in byte order, then
 * the content, so every node decides alike. The decision is raised
 * as a "moved" hierarchy event {from, guid, node, reason, registered, to}
 * that reaches every server, the loser included: each sets the resource's
 * owner to `to`, or, if `to` is outside what its scope holds (neither
 * itself, nor below it, nor one of its ancestors: a node in another
 * branch), drops its copy (replication/events.c). The deciding node writes
 * the copy it keeps again either way, so that it reaches every node in
 * scope that holds an older one.
 *
 * Registration time. Every object records when its guid was first
 * registered (store_obj_t.rtime: the first put or import on its origin
 * node), replicated with it; a node keeps the earliest it has seen, and a
 * claim or a merge keeps the earlier of the two. Guids are random v4 values
 * (agents, imports): nothing is inferred from their order. A record or frame
 * from before hsync 0.10 has no registration time: its last-changed time
 * stands in for it (rules_resource_registered).
 *
 * Duplicates. A resource that arrives with a resource key (name=value) that
 * a different local resource has is the same thing registered twice. The
 * two are merged: the guid registered first survives (the earlier
 * registration time; on equal times, the smaller guid in byte order, the
 * same on every node); the most recently changed copy gives the content
 * and the owner; data-class rows of the other guid are moved to the
 * survivor; the other guid is deleted. A "merge" event {key, new, node,
 * old, owner, reason, registered} tells every server, which make the same
 * change (rules_resource_merged), or drop both guids when the owner is out
 * of their scope. Local puts merge the same way (replication/local.c).
 * Rows that arrive later for the merged-away guid join the survivor.
 */
#ifndef RULES_RESOURCE_H
#define RULES_RESOURCE_H

#include "rules/rules.h"
#include "store/mp.h"

/* How far ahead of this node's clock a last-changed or registration time
 * may be: further counts as this far ahead when compared, and a local write
 * (put, import) stores it as now plus this (replication/local.c), so a
 * wrong clock or a far-future time cannot win every claim for years. */
#define RULES_SKEW_MS (5u * 60u * 1000u)

/* Family handler for resource.* (see rules_family_t). */
int rules_resource_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                         const store_obj_t *cur, rules_result_t *res);

/*
 * Make the merge of old into new here (write txn), as a merge event asks:
 * if only old exists, its content moves to new; new takes owner (when not
 * NULL or "") and registered (when not 0); old is deleted; data-class rows
 * of old move to new. Objects already in that state are left alone. keep
 * false: the survivor's owner is out of this node's scope, so neither guid
 * stays (each becomes a tombstone with its own last-changed time) and
 * *dropped (may be NULL) tells whether a live copy went.
 */
int rules_resource_merged(store_txn_t *t, const store_guid_t *old, const store_guid_t *new_guid,
                          const char *owner, uint64_t registered, bool keep, bool *dropped);

/* Drop this node's copy of resource g (write txn), which now belongs to
 * owner, a node outside this node's scope: its owner becomes owner and it
 * becomes a tombstone with the copy's own last-changed time, so the delete
 * never travels up (it is not this node's) and never looks newer than a
 * real change; nodes below, whose copies came from here, drop theirs when
 * it reaches them. Its data-class rows are dropped the same way (they
 * follow their resource). Nothing to do (HS_OK) if g is not live here. */
int rules_resource_drop(store_txn_t *t, const store_guid_t *g, const char *owner);

/* When o was registered, for "registered first": its recorded registration
 * time, or its last-changed time when none was recorded (before 0.10). */
uint64_t rules_resource_registered(const store_obj_t *o);

/* Family handler for dataclass.*: a row that arrives for a resource merged
 * away here is attached to the survivor. */
int rules_dataclass_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                          const store_obj_t *cur, rules_result_t *res);

/* Where g lives now: the survivor of the merges g went through here (g
 * itself if none). Merges are recorded in STORE_T_EVENTS under
 * "m" old(16) -> new(16). */
int rules_resource_survivor(store_txn_t *t, const store_guid_t *g, store_guid_t *out);

/* The merge event's payload {key, new, node, old, owner, reason,
 * registered} into m (initialised here; the caller frees it;
 * store_mpw_error tells). registered: the survivor's registration time. */
void rules_resource_merge_payload(store_mpw_t *m, const char *key, const store_guid_t *new_guid,
                                  const char *node, const store_guid_t *old, const char *owner,
                                  const char *reason, uint64_t registered);

/* Move the data-class rows of resource from to resource to (write txn). */
int rules_resource_move_rows(store_txn_t *t, const store_guid_t *from, const store_guid_t *to);

/* The first live resource other than self sharing one of keys' name=value
 * pairs: *found true, its guid, and "name=value" in key. */
int rules_resource_find_duplicate(store_txn_t *t, const store_guid_t *self, const uint8_t *keys,
                                  size_t keys_len, bool *found, store_guid_t *dup, char *key,
                                  size_t keylen);

#endif
