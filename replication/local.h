/*
 * local.h - writes made on this node (command line, data connector import):
 * the management logic that runs when they happen.
 *
 * Duplicates: a resource put with a resource key (name=value) that another
 * live resource already has is the same computer registered twice. The two
 * are merged at once: the resource registered first (the one already here)
 * survives and takes the new content; the other guid, if it existed, becomes
 * a tombstone; a merge event (replication/events.h) tells every server,
 * with the reason, in the same transaction.
 */
#ifndef REPL_LOCAL_H
#define REPL_LOCAL_H

#include "rules/rules.h"
#include "store/store.h"

typedef struct repl_local_result {
    bool lr_changed;
    bool lr_merged;
    store_guid_t lr_guid;        /* where the object now lives */
    store_guid_t lr_merged_from; /* the guid merged away */
    char lr_key[400];            /* "name=value" that matched */
    char lr_why[1200];           /* a refused write (HS_ELOCKED): why, for the user */
} repl_local_result_t;

/* Put o as a local write (write txn; o as for store_put). HS_ECLASS with
 * res->lr_why when the guid exists here (or was deleted here) with another
 * class: a guid's class never changes. Family rules check it then
 * (rules_local_check): HS_ELOCKED with res->lr_why when it edits what is
 * managed above (rules/hep.h). Errors as store_put's, plus event errors. */
int repl_local_put(store_txn_t *t, store_obj_t *o, repl_local_result_t *res);

/* Delete g as a local write (write txn). HS_ENOTFOUND if there is no live
 * object; HS_ELOCKED with why when it is managed above. */
int repl_local_delete(store_txn_t *t, const store_guid_t *g, char *why, size_t whylen);

#endif
