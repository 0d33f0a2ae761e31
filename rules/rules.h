/*
 * rules.h - what flows where: object-family handlers and replication rules.
 *
 * Family handlers (one row per family in rules/families.c; adding a family
 * is one row and, if it merges specially, one handler file) tell the
 * replication engine, which holds no family-specific logic:
 *   - which directions the family may flow (down, up);
 *   - whose object it is for scoping (the owner for resources and data
 *     classes, the origin for everything else);
 *   - how differential runs compare (content hash, last-changed time, seq);
 *   - whether one object may be sent at all (item.server_job never;
 *     imported resources never up);
 *   - how an incoming object is applied over the local copy.
 *
 * Hierarchy replication rules (STORE_T_RULES, key "h/<name>") are named,
 * carry their class prefixes, schedule and options, can be disabled and
 * re-enabled without losing any of that, and are created with the defaults
 * of the spec at init:
 *
 *   name       classes               dir      diff by        default
 *   items      item.                 down     content hash   on
 *   security   security.             down     always complete on
 *   resources  resource. dataclass.  up+down  last change    on
 *   packages   package               down     content hash   on
 *   events     event.                up+down  sequence       off
 *   associations assoc.             down     content hash   on
 *   system     system.               up+down  content hash   on
 *
 * A default rule missing from an older store is added at start-up; rules
 * already there are left as the admin set them.
 *
 * Scope. For a run from node S to adjacent node D in direction dir, with
 * MINE = {S} + S's subtree (what S owns in its branch):
 *   down: S sends what is not owned/originated in its own subtree below S
 *         (its own data and what came from above), never a child's data to
 *         that child's siblings;
 *   up:   S sends only what is owned/originated in MINE.
 * The receiver of a complete run removes the objects the sender would have
 * sent but did not: down, those not in the receiver's MINE; up, those in
 * the sender's MINE as the receiver knows it.
 */
#ifndef RULES_RULES_H
#define RULES_RULES_H

#include "store/store.h"

#define RULES_DOWN 0x1u
#define RULES_UP 0x2u
#define RULES_SIDE 0x4u /* standalone: one way, to a destination outside the hierarchy */

#define RULES_NAME_MAX 32
#define RULES_PREFIX_MAX 8
#define RULES_DATACLASS_MAX 32
#define RULES_DEST_MAX 8
#define RULES_WHERE_MAX 8

enum rules_diff_by { RULES_BY_HASH = 1, RULES_BY_MTIME = 2, RULES_BY_SEQ = 3 };
enum rules_key_field { RULES_KEY_ORIGIN = 1, RULES_KEY_OWNER = 2 };

/* Where a handler is called from: a run or push (dir set) or a local write
 * on this node (dir 0). */
typedef struct rules_ctx {
    unsigned rc_dir;       /* RULES_DOWN / RULES_UP: the way the object travels; 0 = local */
    unsigned rc_how;       /* RULES_APPLY_STATE for complete and reconcile runs */
    const char *rc_self;   /* this node's name */
    const char *rc_parent; /* this node's parent, or NULL (top of its hierarchy) */
} rules_ctx_t;

enum rules_outcome { RULES_APPLIED = 1, RULES_SKIPPED = 2, RULES_DELETED = 3 };

/*
 * What a handler decided. A decision that the whole hierarchy must learn
 * (a merge, an ownership change) names a hierarchy event kind and its
 * payload; the caller (the replication engine, or replication/local.c for
 * local writes) raises it in the same transaction. A refused local write
 * says why in words for the user. Initialise with rules_result_init, free
 * with rules_result_free (owns rr_payload).
 */
typedef struct rules_result {
    int rr_outcome;       /* rules_outcome */
    const char *rr_event; /* NULL, or "merge", "moved" (replication/events.h kinds) */
    uint8_t *rr_payload;  /* canonical msgpack map; owned */
    size_t rr_payload_len;
    store_guid_t rr_guid;               /* where the object now lives (a merge moves it) */
    char rr_why[1200];                  /* refusal (HS_ELOCKED) or decision, in words */
    char rr_origin[STORE_NAME_MAX + 1]; /* local writes over a replicated object: */
    char rr_owner[STORE_NAME_MAX + 1];  /*  its origin and owner are kept */
} rules_result_t;

void rules_result_init(rules_result_t *res);
void rules_result_free(rules_result_t *res);

/* A handler hook: o over the local copy cur (NULL if none). */
typedef int (*rules_hook_fn)(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                             const store_obj_t *cur, rules_result_t *res);

/*
 * One object family's handler. Adding a family is one row in the table of
 * rules.c and, if it decides more than the defaults, one handler file
 * (rules/hep.c for data managed from above, rules/resource.c for resources).
 */
typedef struct rules_family {
    const char *fam_name; /* "item", "resource", ... (store_class_family) */
    unsigned fam_dirs;    /* RULES_DOWN | RULES_UP */
    int fam_key;          /* RULES_KEY_* */
    int fam_diff_by;      /* RULES_BY_* */
    /* A peer may send a local object of this family that is in another's
     * scope (a claim: an agent moved); fam_apply decides who owns it. */
    bool fam_claims;
    /* May this object be sent in direction dir at all? NULL = yes. */
    bool (*fam_sendable)(const store_obj_t *o, unsigned dir);
    /* Apply an incoming object o over the local copy cur (NULL if none;
     * for a live o, cur is only looked up for families with fam_claims);
     * NULL = the default (newest wins by last change for RULES_BY_MTIME
     * families outside state transfers, the sender wins otherwise). */
    rules_hook_fn fam_apply;
    /* Check a local write of o (a tombstone for a delete) over cur before
     * it is made; may record side state in t. HS_ELOCKED with rr_why to
     * refuse. When it keeps a replicated object's origin and owner it sets
     * rr_origin/rr_owner. NULL = any local write is allowed. */
    rules_hook_fn fam_local;
} rules_family_t;

/* Handler of a class's family, or NULL for a class no rule may carry. */
const rules_family_t *rules_family_of(const char *cls);

/* ---- replication rules ------------------------------------------------- */

typedef struct rules_rule {
    char ru_name[RULES_NAME_MAX + 1];
    size_t ru_nprefix;
    char ru_prefix[RULES_PREFIX_MAX][STORE_CLASS_MAX + 1];
    unsigned ru_dirs; /* RULES_DOWN | RULES_UP */
    bool ru_enabled;
    bool ru_always_complete;
    uint64_t ru_every_ms;          /* differential interval */
    uint64_t ru_complete_every_ms; /* complete interval (0 = never on schedule) */
    unsigned ru_verify_pct;        /* 0..100: share of data verified per run */
    size_t ru_ndataclass;          /* data classes carried (0 = all) */
    char ru_dataclass[RULES_DATACLASS_MAX][STORE_CLASS_MAX + 1];
    /* standalone rules only (ru_dirs == RULES_SIDE) */
    size_t ru_ndest; /* destinations (peer names) */
    char ru_dest[RULES_DEST_MAX][STORE_NAME_MAX + 1];
    char ru_target[STORE_CLASS_MAX + 1]; /* resource target: a class ("" = none) ... */
    size_t ru_nwhere;                    /* ... and NAME=VALUE conditions on keys or body */
    char ru_where[RULES_WHERE_MAX][128];
} rules_rule_t;

/*
 * Standalone rules (STORE_T_RULES, key "s/<name>", ru_dirs RULES_SIDE) carry
 * their classes one way from this node to the destinations they list, in
 * scope everything of those classes here (what this node received from
 * elsewhere too, so chains A -> B -> C work), minus item.server_job. They
 * share the name space of hierarchy rules. The destination takes what
 * arrives (no merges, no ownership decisions, no HEP); a complete run removes
 * there what the source no longer has among the owners it declared.
 * A resource target (ru_target + ru_where) narrows resources and their
 * data-class rows to the target's current members (rules_target_member).
 */

/* Does rule r run to peer at all (a standalone rule: peer is a destination)? */
bool rules_applies_to(const rules_rule_t *r, const char *peer);

/* Is o (a resource, or a data-class row whose resource is looked up in t) a
 * member of r's resource target? Always true without a target; objects of
 * other families are not narrowed. */
bool rules_target_member(store_txn_t *t, const rules_rule_t *r, const store_obj_t *o);

/* Remove a standalone rule (write txn). HS_ENOTFOUND; HS_EINVAL for a
 * hierarchy rule (those are disabled, never removed). */
int rules_del(store_txn_t *t, const char *name);

/* Create the default rules if no rule exists yet (write txn). */
int rules_ensure_defaults(store_txn_t *t);

int rules_get(store_txn_t *t, const char *name, rules_rule_t *out); /* HS_ENOTFOUND */
int rules_put(store_txn_t *t, const rules_rule_t *r);
typedef int (*rules_cb)(void *ctx, const rules_rule_t *r);
int rules_each(store_txn_t *t, rules_cb cb, void *ctx);

/* Encode/decode a rule record (decode is fuzzed). */
int rules_encode(const rules_rule_t *r, uint8_t **out, size_t *len);
int rules_decode(const void *buf, size_t len, rules_rule_t *out);

/* Does rule r carry class cls at all (prefix and data-class selection)? */
bool rules_carries(const rules_rule_t *r, const char *cls);

/* A set of node names (this node's branch, or a peer's). */
typedef struct rules_names {
    size_t rn_count;
    const char *const *rn_names; /* borrowed */
} rules_names_t;

bool rules_names_has(const rules_names_t *n, const char *name);

/* Sender side: may o be sent over rule r in direction dir, where mine is the
 * sender's branch ({sender} + its subtree)? Standalone (RULES_SIDE): mine is
 * instead the owners the destination takes none of (the nodes of its own
 * hierarchy it named when the run opened; empty: everything goes). */
bool rules_send_scope(const rules_rule_t *r, unsigned dir, const store_obj_t *o,
                      const rules_names_t *mine);

/* Receiver side of a complete run: is local object o one the sender is
 * responsible for (so it is removed if the sender no longer has it)? For
 * down, branch is the receiver's {self} + subtree; for up, the sender's. */
bool rules_recv_scope(const rules_rule_t *r, unsigned dir, const store_obj_t *o,
                      const rules_names_t *branch);

/* Apply one incoming object through its family handler. o->flags may carry
 * STORE_OBJ_TOMBSTONE (then o->mtime is the deletion time). c->rc_how: 0 for
 * a change (differential, push): families compared by last-changed time
 * keep a local copy that changed later; or RULES_APPLY_STATE for a state
 * transfer (complete, reconcile): the sender is the authority for its scope
 * and its copy is taken. res->rr_outcome is a rules_outcome; a decision the
 * hierarchy must learn is in rr_event/rr_payload. Errors: store errors;
 * HS_EDIRECTION if the family may not arrive from that direction. */
#define RULES_APPLY_STATE 0x1u
int rules_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, rules_result_t *res);

/* The default apply (what a family without fam_apply gets); handlers call
 * it for the cases they do not decide themselves. cur may be NULL for a
 * live o (then it is looked up as part of the write). */
int rules_apply_default(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                        const store_obj_t *cur, rules_result_t *res);

/* Check a local write (put, or delete when o carries STORE_OBJ_TOMBSTONE)
 * through its family's fam_local. HS_ELOCKED with res->rr_why when the
 * write is refused; store errors. */
int rules_local_check(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, rules_result_t *res);

/* Is err a refusal of one incoming object (wrong direction, invalid class,
 * body or size) rather than a failure of the whole transaction? */
bool rules_refused(int err);

/* Parse "5m", "1h", "1d", "30d", "10s", "500ms" into ms. HS_OK/HS_EINVAL. */
int rules_parse_duration(const char *s, uint64_t *ms);
/* Format ms as the shortest of those forms (out: 24 bytes). */
void rules_format_duration(uint64_t ms, char *out, size_t outlen);

#endif
