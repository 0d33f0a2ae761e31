#include "replication/local.h"

#include "replication/events.h"
#include "replication/repl.h"
#include "rules/resource.h"
#include "topology/peers.h"
#include "store/mp.h"

#include <stdio.h>
#include <string.h>

/* The context of a local write: this node and its parent. */
static void s_ctx(store_txn_t *t, rules_ctx_t *c, char parent[STORE_NAME_MAX + 1])
{
    memset(c, 0, sizeof(*c));
    c->rc_self = store_node_name(store_txn_store(t));
    topo_peer_t p = {0};
    if (topo_peer_parent(t, &p) == HS_OK) {
        snprintf(parent, STORE_NAME_MAX + 1, "%s", p.pe_name);
        c->rc_parent = parent;
    }
    topo_peer_clear(&p);
}

int repl_local_put(store_txn_t *t, store_obj_t *o, repl_local_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->lr_guid = o->guid;
    /* a time further ahead than the allowed skew is stored as now + skew
     * (it would count as that in every claim anyway, but only until then) */
    uint64_t cap = repl_now_ms() + RULES_SKEW_MS;
    if (o->mtime > cap)
        o->mtime = cap;
    if (o->rtime > cap)
        o->rtime = cap;
    /* A guid's class never changes: every copy elsewhere would refuse the
     * new class (another family) or keep the old one. A tombstone counts
     * too: the delete might not have reached every copy yet. */
    store_obj_t was;
    int err = store_get(t, &o->guid, &was);
    if (err && err != HS_ENOTFOUND)
        return err;
    if (!err && strcmp(was.cls, o->cls) != 0) {
        char gs[STORE_GUID_STRLEN + 1];
        store_guid_format(&o->guid, gs);
        bool dead = was.flags & STORE_OBJ_TOMBSTONE;
        snprintf(res->lr_why, sizeof(res->lr_why),
                 "%s %s %s %s%s; a guid's class cannot change (%s %s was asked): put the %s "
                 "under a new guid%s",
                 gs, dead ? "was" : "is", strchr("aeiou", was.cls[0]) ? "an" : "a", was.cls,
                 dead ? " (deleted)" : "", o->cls[0] && strchr("aeiou", o->cls[0]) ? "an" : "a", o->cls, o->cls,
                 dead ? "" : ", and rm the old one if it should go");
        return HS_ECLASS;
    }
    rules_ctx_t c;
    char parent[STORE_NAME_MAX + 1];
    s_ctx(t, &c, parent);
    rules_result_t rr;
    rules_result_init(&rr);
    err = rules_local_check(t, &c, o, &rr); /* HEP, parent-only classes */
    if (err) {
        snprintf(res->lr_why, sizeof(res->lr_why), "%s", rr.rr_why);
        rules_result_free(&rr);
        return err;
    }
    if (strncmp(o->cls, "resource.", 9) != 0 || !o->keys_len) {
        err = store_put(t, o, &res->lr_changed);
        rules_result_free(&rr); /* o may point into rr (origin, owner kept) */
        return err;
    }
    rules_result_free(&rr);
    bool found = false;
    store_guid_t dup;
    err = rules_resource_find_duplicate(t, &o->guid, o->keys, o->keys_len, &found, &dup,
                                        res->lr_key, sizeof(res->lr_key));
    if (err || !found)
        return err ? err : store_put(t, o, &res->lr_changed);

    /* merge: the registration already here survives and takes the content;
     * it keeps the earlier registration time of the two */
    store_guid_t gone = o->guid;
    store_obj_t prev;
    uint64_t registered = o->rtime;
    err = store_get(t, &dup, &prev);
    if (!err && (!registered || rules_resource_registered(&prev) < registered))
        registered = rules_resource_registered(&prev);
    if (!err) {
        err = store_get(t, &gone, &prev);
        if (!err && !(prev.flags & STORE_OBJ_TOMBSTONE) && prev.rtime && prev.rtime < registered)
            registered = prev.rtime;
    }
    if (err && err != HS_ENOTFOUND)
        return err;
    err = store_delete(t, &gone, 0);
    if (err && err != HS_ENOTFOUND)
        return err;
    o->guid = dup;
    o->rtime = registered;
    err = store_put(t, o, &res->lr_changed);
    if (!err)
        err = rules_resource_move_rows(t, &gone, &dup);
    if (!err) /* records where gone went */
        err = rules_resource_merged(t, &gone, &dup, NULL, 0, true, NULL);
    if (err)
        return err;
    res->lr_merged = true;
    res->lr_merged_from = gone;
    res->lr_guid = dup;
    char reason[600];
    snprintf(reason, sizeof(reason),
             "same resource key %s: the registration already on %s survives", res->lr_key,
             c.rc_self);
    store_mpw_t w;
    rules_resource_merge_payload(&w, res->lr_key, &dup, c.rc_self, &gone,
                                 o->owner ? o->owner : c.rc_self, reason, o->rtime);
    err = store_mpw_error(&w);
    if (!err)
        err = repl_event_raise(t, REPL_EV_MERGE, w.mpw_buf, w.mpw_len, NULL);
    store_mpw_free(&w);
    return err;
}

int repl_local_delete(store_txn_t *t, const store_guid_t *g, char *why, size_t whylen)
{
    why[0] = '\0';
    store_obj_t cur;
    int err = store_get(t, g, &cur);
    if (err)
        return err;
    if (cur.flags & STORE_OBJ_TOMBSTONE)
        return HS_ENOTFOUND;
    rules_ctx_t c;
    char parent[STORE_NAME_MAX + 1];
    s_ctx(t, &c, parent);
    char cls[STORE_CLASS_MAX + 1];
    snprintf(cls, sizeof(cls), "%s", cur.cls);
    store_obj_t o = {.guid = *g, .cls = cls, .flags = STORE_OBJ_TOMBSTONE};
    rules_result_t rr;
    rules_result_init(&rr);
    err = rules_local_check(t, &c, &o, &rr);
    if (err)
        snprintf(why, whylen, "%s", rr.rr_why);
    rules_result_free(&rr);
    return err ? err : store_delete(t, g, 0);
}
