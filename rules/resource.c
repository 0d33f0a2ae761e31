#include "rules/resource.h"

#include "store/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An object copied out of the store's pages (writes move them). */
typedef struct s_copy {
    store_obj_t o;
    char cls[STORE_CLASS_MAX + 1];
    char origin[STORE_NAME_MAX + 1];
    char owner[STORE_NAME_MAX + 1];
    uint8_t *buf; /* body then keys */
} s_copy_t;

static int s_copy(const store_obj_t *src, s_copy_t *c)
{
    c->o = *src;
    snprintf(c->cls, sizeof(c->cls), "%s", src->cls);
    snprintf(c->origin, sizeof(c->origin), "%s", src->origin);
    snprintf(c->owner, sizeof(c->owner), "%s", src->owner);
    c->buf = malloc(src->body_len + src->keys_len + 1);
    if (!c->buf)
        return HS_ENOMEM;
    memcpy(c->buf, src->body, src->body_len);
    if (src->keys_len)
        memcpy(c->buf + src->body_len, src->keys, src->keys_len);
    c->o.cls = c->cls;
    c->o.origin = c->origin;
    c->o.owner = c->owner;
    c->o.body = c->buf;
    c->o.keys = src->keys_len ? c->buf + src->body_len : NULL;
    return HS_OK;
}

static void s_iso(uint64_t ms, char *out, size_t outlen)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_guid_str(store_mpw_t *w, const store_guid_t *g)
{
    char s[STORE_GUID_STRLEN + 1];
    store_guid_format(g, s);
    store_mpw_str(w, s);
}

static int s_event(rules_result_t *res, const char *kind, store_mpw_t *w)
{
    int err = store_mpw_error(w);
    if (err) {
        store_mpw_free(w);
        return err;
    }
    free(res->rr_payload);
    res->rr_event = kind;
    res->rr_payload = w->mpw_buf;
    res->rr_payload_len = w->mpw_len;
    return HS_OK;
}

/* ---- where merged-away guids went ------------------------------------------ */

static int s_merge_record(store_txn_t *t, const store_guid_t *old, const store_guid_t *new_guid)
{
    uint8_t k[17] = {'m'};
    memcpy(k + 1, old->b, 16);
    return store_kv_put(t, STORE_T_EVENTS, k, sizeof(k), new_guid->b, 16);
}

int rules_resource_survivor(store_txn_t *t, const store_guid_t *g, store_guid_t *out)
{
    *out = *g;
    for (int hop = 0; hop < 8; hop++) { /* a chain of merges, bounded */
        uint8_t k[17] = {'m'};
        memcpy(k + 1, out->b, 16);
        const void *v;
        size_t vl;
        int err = store_kv_get(t, STORE_T_EVENTS, k, sizeof(k), &v, &vl);
        if (err == HS_ENOTFOUND)
            return HS_OK;
        if (err)
            return err;
        if (vl != 16)
            return HS_OK;
        memcpy(out->b, v, 16);
    }
    return HS_OK;
}

int rules_dataclass_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                          const store_obj_t *cur, rules_result_t *res)
{
    /* a row of a resource merged away here belongs to the survivor */
    if (!(o->flags & STORE_OBJ_TOMBSTONE) && !store_guid_is_zero(&o->resource)) {
        int err = rules_resource_survivor(t, &o->resource, &o->resource);
        if (err)
            return err;
    }
    return rules_apply_default(t, c, o, cur, res);
}

/* ---- data-class rows ------------------------------------------------------ */

typedef struct s_rows {
    const store_guid_t *from;
    store_guid_t *g;
    size_t n, cap;
    int err;
} s_rows_t;

static int s_row_one(void *ctx, const store_obj_t *o)
{
    s_rows_t *r = ctx;
    if (memcmp(o->resource.b, r->from->b, 16) != 0)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        store_guid_t *ng = realloc(r->g, cap * sizeof(*ng));
        if (!ng)
            return HS_ENOMEM;
        r->g = ng;
        r->cap = cap;
    }
    r->g[r->n++] = o->guid;
    return 0;
}

int rules_resource_move_rows(store_txn_t *t, const store_guid_t *from, const store_guid_t *to)
{
    /* no index by resource: merges are rare, a scan of the rows is fine */
    s_rows_t r = {.from = from};
    int err = store_scan(t, "dataclass.", NULL, 0, NULL, NULL, s_row_one, &r);
    for (size_t i = 0; !err && i < r.n; i++) {
        store_obj_t row;
        s_copy_t c;
        err = store_get(t, &r.g[i], &row);
        if (err)
            break;
        if ((err = s_copy(&row, &c)))
            break;
        c.o.resource = *to;
        c.o.mtime = 0; /* changed now */
        err = store_put(t, &c.o, NULL);
        free(c.buf);
    }
    free(r.g);
    return err;
}

/* ---- duplicates ----------------------------------------------------------- */

typedef struct s_dup {
    const store_guid_t *self;
    store_guid_t found;
    bool any;
} s_dup_t;

static int s_dup_one(void *ctx, const store_obj_t *o)
{
    s_dup_t *d = ctx;
    if (!memcmp(o->guid.b, d->self->b, 16) || strncmp(o->cls, "resource.", 9) != 0)
        return 0;
    d->found = o->guid;
    d->any = true;
    return 1;
}

int rules_resource_find_duplicate(store_txn_t *t, const store_guid_t *self, const uint8_t *keys,
                                  size_t keys_len, bool *found, store_guid_t *dup, char *key,
                                  size_t keylen)
{
    *found = false;
    store_mpr_t r;
    store_mpr_init(&r, keys, keys_len);
    uint32_t n = keys_len ? store_mpr_map(&r) : 0;
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        char name[128], value[256];
        store_mpr_str(&r, name, sizeof(name));
        store_mpr_str(&r, value, sizeof(value));
        if (store_mpr_error(&r))
            return HS_OK; /* keys too long to match: no merge */
        s_dup_t d = {.self = self};
        int err = store_find_by_key(t, name, value, s_dup_one, &d);
        if (err)
            return err;
        if (d.any) {
            *found = true;
            *dup = d.found;
            snprintf(key, keylen, "%.127s=%.255s", name, value);
            return HS_OK;
        }
    }
    return HS_OK;
}

/* Is a the more recent registration than b? Last-changed times, a time from
 * the future counting as at most RULES_SKEW_MS ahead of this node's clock
 * (so a wrong clock cannot win every claim); a tie goes to the owner name
 * first in byte order, then to the content, the same on every node. */
static bool s_newer(const store_obj_t *a, const store_obj_t *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t cap = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + RULES_SKEW_MS;
    uint64_t ta = a->mtime < cap ? a->mtime : cap, tb = b->mtime < cap ? b->mtime : cap;
    if (ta != tb)
        return ta > tb;
    int c = strcmp(a->owner, b->owner);
    if (c)
        return c < 0;
    /* the content itself (hashes do not travel with objects) */
    if (a->body_len != b->body_len)
        return a->body_len > b->body_len;
    return a->body_len && memcmp(a->body, b->body, a->body_len) > 0;
}

/* Incoming o and local resource dup are one: merge them (see resource.h). */
static int s_merge(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                   const store_guid_t *dupg, const char *key, rules_result_t *res)
{
    store_obj_t dl;
    s_copy_t d;
    int err = store_get(t, dupg, &dl);
    if (err)
        return err;
    if ((err = s_copy(&dl, &d)))
        return err;
    /* registered first survives: by the recorded registration times, the
     * guid bytes (random v4 values say nothing of time) only break a tie */
    uint64_t reg_in = rules_resource_registered(o), reg_dup = rules_resource_registered(&d.o);
    bool in_first = reg_in != reg_dup ? reg_in < reg_dup : memcmp(o->guid.b, dupg->b, 16) < 0;
    store_guid_t survivor = in_first ? o->guid : *dupg, loser = in_first ? *dupg : o->guid;
    uint64_t registered = in_first ? reg_in : reg_dup;
    bool in_wins = s_newer(o, &d.o);
    const store_obj_t *win = in_wins ? o : &d.o, *lose = in_wins ? &d.o : o;
    char gw[STORE_GUID_STRLEN + 1], gl[STORE_GUID_STRLEN + 1], gs[STORE_GUID_STRLEN + 1];
    char tw[24], tl[24], tr[24];
    store_guid_format(&win->guid, gw);
    store_guid_format(&lose->guid, gl);
    store_guid_format(&survivor, gs);
    s_iso(win->mtime, tw, sizeof(tw));
    s_iso(lose->mtime, tl, sizeof(tl));
    s_iso(registered, tr, sizeof(tr));
    char reason[1200];
    snprintf(reason, sizeof(reason),
             "same resource key %s: %s (owner %s, changed %s) and %s (owner %s, changed %s) are "
             "one resource; %s survives (registered first, %s); the copy of %s changed last, so "
             "its content is kept and %s owns it (decided on %s)",
             key, gw, win->owner, tw, gl, lose->owner, tl, gs, tr, win->owner, win->owner,
             c->rc_self);
    char owner[STORE_NAME_MAX + 1];
    snprintf(owner, sizeof(owner), "%s", win->owner);

    /* the winner's content under the surviving guid */
    store_obj_t w = *win;
    w.guid = survivor;
    w.rtime = registered;
    if (w.mtime == 0)
        w.mtime = 1;
    /* written even if this node had it so: a new change-log entry takes the
     * survivor to every node in scope that holds an older copy of it */
    bool changed = false;
    err = store_put_ex(t, &w, STORE_PUT_CHECKED | STORE_PUT_FORCE, &changed);
    /* the other guid goes, its rows move */
    bool cur_live = cur && !(cur->flags & STORE_OBJ_TOMBSTONE);
    if (!err && (memcmp(loser.b, dupg->b, 16) == 0 || cur_live)) {
        err = store_delete(t, &loser, 0);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
    }
    if (!err)
        err = rules_resource_move_rows(t, &loser, &survivor);
    if (!err)
        err = s_merge_record(t, &loser, &survivor);
    free(d.buf);
    if (err)
        return err;
    res->rr_outcome = RULES_APPLIED;
    res->rr_guid = survivor;
    snprintf(res->rr_why, sizeof(res->rr_why), "%s", reason);
    store_mpw_t m;
    rules_resource_merge_payload(&m, key, &survivor, c->rc_self, &loser, owner, reason, registered);
    return s_event(res, "merge", &m);
}

uint64_t rules_resource_registered(const store_obj_t *o)
{
    return o->rtime ? o->rtime : o->mtime;
}

void rules_resource_merge_payload(store_mpw_t *m, const char *key, const store_guid_t *new_guid,
                                  const char *node, const store_guid_t *old, const char *owner,
                                  const char *reason, uint64_t registered)
{
    store_mpw_init(m);
    store_mpw_map(m, 7); /* canonical: keys in byte order */
    store_mpw_str(m, "key");
    store_mpw_str(m, key);
    store_mpw_str(m, "new");
    s_guid_str(m, new_guid);
    store_mpw_str(m, "node");
    store_mpw_str(m, node);
    store_mpw_str(m, "old");
    s_guid_str(m, old);
    store_mpw_str(m, "owner");
    store_mpw_str(m, owner);
    store_mpw_str(m, "reason");
    store_mpw_str(m, reason);
    store_mpw_str(m, "registered");
    store_mpw_uint(m, registered);
}

/* ---- ownership ------------------------------------------------------------ */

/* The "moved" event of an ownership decision taken here. */
static int s_moved(const rules_ctx_t *c, rules_result_t *res, const char *from, const char *gs,
                   const char *to, const char *reason, uint64_t registered)
{
    snprintf(res->rr_why, sizeof(res->rr_why), "%s", reason);
    store_mpw_t m;
    store_mpw_init(&m);
    store_mpw_map(&m, 6);
    store_mpw_str(&m, "from");
    store_mpw_str(&m, from);
    store_mpw_str(&m, "guid");
    store_mpw_str(&m, gs);
    store_mpw_str(&m, "node");
    store_mpw_str(&m, c->rc_self);
    store_mpw_str(&m, "reason");
    store_mpw_str(&m, reason);
    store_mpw_str(&m, "registered");
    store_mpw_uint(&m, registered);
    store_mpw_str(&m, "to");
    store_mpw_str(&m, to);
    return s_event(res, "moved", &m);
}

static int s_claim(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                   rules_result_t *res)
{
    bool claim_wins = s_newer(o, cur);
    char from[STORE_NAME_MAX + 1], to[STORE_NAME_MAX + 1], gs[STORE_GUID_STRLEN + 1];
    char tin[24], tcur[24], reason[1200];
    snprintf(from, sizeof(from), "%s", claim_wins ? cur->owner : o->owner);
    snprintf(to, sizeof(to), "%s", claim_wins ? o->owner : cur->owner);
    store_guid_format(&o->guid, gs);
    s_iso(o->mtime, tin, sizeof(tin));
    s_iso(cur->mtime, tcur, sizeof(tcur));
    snprintf(reason, sizeof(reason),
             "resource %s claimed by %s (changed %s) while %s owned it (changed %s): the most "
             "recent registration wins, so %s %s it (decided on %s)",
             gs, o->owner, tin, cur->owner, tcur, to, claim_wins ? "owns" : "keeps", c->rc_self);
    /* one guid: its registration is the earlier of the two */
    uint64_t reg_o = rules_resource_registered(o), reg_cur = rules_resource_registered(cur);
    uint64_t registered = reg_o < reg_cur ? reg_o : reg_cur;
    int err = HS_OK;
    bool changed = false;
    if (claim_wins) {
        o->rtime = registered;
        err = store_put_ex(t, o, STORE_PUT_CHECKED | STORE_PUT_FORCE, &changed);
        res->rr_outcome = RULES_APPLIED;
    } else {
        /* the local copy stays; written again (a new change-log entry) so
         * that it reaches the claimant's side wherever that side is in
         * its scope (an ancestor owns it), over the claimant's older copy */
        s_copy_t k;
        if ((err = s_copy(cur, &k)))
            return err;
        k.o.rtime = registered;
        err = store_put_ex(t, &k.o, STORE_PUT_FORCE, &changed);
        free(k.buf);
        res->rr_outcome = RULES_SKIPPED;
    }
    if (err)
        return err;
    return s_moved(c, res, from, gs, to, reason, registered);
}

/* A delete and a live copy of one resource with different owners meet
 * (the delete's owner claimed the resource and removed it before its claim
 * reached this node): the newer one wins, as a claim does. o is the
 * incoming object, cur the local one; one of them is a tombstone. Returns
 * HS_ENOTFOUND when the live copy is the newer (it is applied as usual). */
static int s_delete_claim(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                          const store_obj_t *cur, rules_result_t *res)
{
    bool incoming_dead = o->flags & STORE_OBJ_TOMBSTONE;
    const store_obj_t *dead = incoming_dead ? o : cur, *live = incoming_dead ? cur : o;
    if (!s_newer(dead, live))
        return HS_ENOTFOUND;
    char from[STORE_NAME_MAX + 1], to[STORE_NAME_MAX + 1], gs[STORE_GUID_STRLEN + 1];
    char tdead[24], tlive[24], reason[1200];
    snprintf(from, sizeof(from), "%s", live->owner);
    snprintf(to, sizeof(to), "%s", dead->owner);
    store_guid_format(&o->guid, gs);
    s_iso(dead->mtime, tdead, sizeof(tdead));
    s_iso(live->mtime, tlive, sizeof(tlive));
    snprintf(reason, sizeof(reason),
             "resource %s claimed and deleted by %s (deleted %s) while %s owned it (changed %s): "
             "the most recent registration wins, so the delete stands (decided on %s)",
             gs, to, tdead, from, tlive, c->rc_self);
    uint64_t reg_d = rules_resource_registered(dead), reg_l = rules_resource_registered(live);
    uint64_t registered = reg_d && reg_d < reg_l ? reg_d : reg_l;
    res->rr_guid = o->guid;
    res->rr_outcome = RULES_SKIPPED;
    if (incoming_dead) {
        int err = store_delete(t, &o->guid, o->mtime);
        if (err && err != HS_ENOTFOUND)
            return err;
        res->rr_outcome = RULES_DELETED;
    }
    return s_moved(c, res, from, gs, to, reason, registered);
}

int rules_resource_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                         const store_obj_t *cur, rules_result_t *res)
{
    if ((o->flags & STORE_OBJ_TOMBSTONE) && !cur && !(c->rc_how & RULES_APPLY_STATE)) {
        /* the delete arrived before any copy (its owner claimed the resource
         * and removed it before a run): kept, so that an older copy of the
         * previous owner arriving later loses to it and the delete reaches
         * every node (most recent registration wins) */
        res->rr_guid = o->guid;
        res->rr_outcome = RULES_SKIPPED;
        return store_put_tombstone(t, o);
    }
    bool owners_differ = cur && strcmp(cur->owner, o->owner) != 0 &&
                         !(c->rc_how & RULES_APPLY_STATE) &&
                         !((o->flags & STORE_OBJ_TOMBSTONE) && (cur->flags & STORE_OBJ_TOMBSTONE));
    if (owners_differ && ((o->flags & STORE_OBJ_TOMBSTONE) || (cur->flags & STORE_OBJ_TOMBSTONE))) {
        int err = s_delete_claim(t, c, o, cur, res);
        if (err != HS_ENOTFOUND)
            return err;
    }
    if (o->flags & STORE_OBJ_TOMBSTONE)
        return rules_apply_default(t, c, o, cur, res);
    if (o->keys_len) {
        bool found = false;
        store_guid_t dup;
        char key[400];
        int err = rules_resource_find_duplicate(t, &o->guid, o->keys, o->keys_len, &found, &dup,
                                                key, sizeof(key));
        if (err)
            return err;
        if (found)
            return s_merge(t, c, o, cur, &dup, key, res);
    }
    if (cur && !(cur->flags & STORE_OBJ_TOMBSTONE) && strcmp(cur->owner, o->owner) != 0)
        return s_claim(t, c, o, cur, res);
    return rules_apply_default(t, c, o, cur, res);
}

/* ---- a merge decided elsewhere -------------------------------------------- */

static int s_drop_one(store_txn_t *t, const store_guid_t *g, const char *owner)
{
    store_obj_t cur;
    int err = store_get(t, g, &cur);
    if (err == HS_ENOTFOUND || (!err && (cur.flags & STORE_OBJ_TOMBSTONE)))
        return HS_OK;
    if (err)
        return err;
    uint64_t mtime = cur.mtime ? cur.mtime : 1;
    if (owner && *owner && strcmp(cur.owner, owner) != 0) {
        /* the tombstone names the new owner: it is then never this node's
         * to send up (where the owner's copy lives), only down to the
         * nodes below, which drop theirs too */
        s_copy_t c;
        if ((err = s_copy(&cur, &c)))
            return err;
        c.o.owner = owner;
        err = store_put(t, &c.o, NULL);
        free(c.buf);
        if (err)
            return err;
    }
    err = store_delete(t, g, mtime); /* its own time: never newer than a real change */
    return err == HS_ENOTFOUND ? HS_OK : err;
}

int rules_resource_drop(store_txn_t *t, const store_guid_t *g, const char *owner)
{
    int err = s_drop_one(t, g, owner);
    if (err)
        return err;
    /* its data-class rows go with it: they follow their resource */
    s_rows_t r = {.from = g};
    err = store_scan(t, "dataclass.", NULL, 0, NULL, NULL, s_row_one, &r);
    for (size_t i = 0; !err && i < r.n; i++)
        err = s_drop_one(t, &r.g[i], owner);
    free(r.g);
    return err;
}

int rules_resource_merged(store_txn_t *t, const store_guid_t *old, const store_guid_t *new_guid,
                          const char *owner, uint64_t registered, bool keep, bool *dropped)
{
    if (dropped)
        *dropped = false;
    if (!memcmp(old->b, new_guid->b, 16))
        return HS_OK;
    store_obj_t oo, no;
    int err = store_get(t, old, &oo);
    bool old_live = !err && !(oo.flags & STORE_OBJ_TOMBSTONE);
    if (err && err != HS_ENOTFOUND)
        return err;
    if (old_live && strncmp(oo.cls, "resource.", 9) != 0)
        return HS_OK; /* merges are of resources only */
    err = store_get(t, new_guid, &no);
    bool new_live = !err && !(no.flags & STORE_OBJ_TOMBSTONE);
    if (err && err != HS_ENOTFOUND)
        return err;
    if (new_live && strncmp(no.cls, "resource.", 9) != 0)
        return HS_OK;
    err = HS_OK;
    const store_obj_t *src = new_live ? &no : old_live ? &oo : NULL;
    if (src && !keep) {
        /* the survivor's owner is out of this node's scope: no run will
         * ever bring its content here, so no copy of it stays */
        if (new_live)
            err = rules_resource_drop(t, new_guid, owner);
        if (!err && old_live)
            err = rules_resource_drop(t, old, owner);
        if (!err && dropped)
            *dropped = true;
        old_live = false;
        src = NULL;
    }
    bool new_owner = owner && *owner && src && strcmp(src->owner, owner) != 0;
    bool new_reg = registered && src && src->rtime != registered;
    if (!err && src && (!new_live || new_owner || new_reg)) {
        s_copy_t cp;
        if ((err = s_copy(src, &cp)))
            return err;
        cp.o.guid = *new_guid;
        if (owner && *owner)
            cp.o.owner = owner;
        if (registered)
            cp.o.rtime = registered;
        /* keep the content's own time: a stale copy must not look newer than
         * the winning one still on its way (an owner change is still written) */
        err = store_put(t, &cp.o, NULL);
        free(cp.buf);
    }
    if (!err && old_live) {
        err = store_delete(t, old, 0);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
    }
    if (!err)
        err = rules_resource_move_rows(t, old, new_guid);
    if (!err)
        err = s_merge_record(t, old, new_guid);
    return err;
}
