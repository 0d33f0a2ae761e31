#include "replication/events.h"

#include "rules/resource.h"
#include "topology/peers.h"
#include "topology/wire.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_UP 0x1u
#define S_DOWN 0x2u

static const struct {
    int kind;
    const char *name;
    unsigned route; /* S_UP: to the parent; S_DOWN: to the children */
} s_kinds[] = {
    {REPL_EV_MERGE, "merge", S_UP | S_DOWN},
    {REPL_EV_MOVED, "moved", S_UP | S_DOWN},
    {REPL_EV_PURGED, "purged", S_UP | S_DOWN},
    {REPL_EV_TRUST, "trust", S_UP},
    {REPL_EV_KEY, "key", S_DOWN},
    {REPL_EV_ALERT, "alert", S_UP},
    {REPL_EV_SYNC_PROBLEM, "sync-problem", S_UP},
};

#define S_NKINDS (sizeof(s_kinds) / sizeof(s_kinds[0]))

const char *repl_event_kind_name(int kind)
{
    for (size_t i = 0; i < S_NKINDS; i++)
        if (s_kinds[i].kind == kind)
            return s_kinds[i].name;
    return "unknown";
}

int repl_event_kind_parse(const char *name)
{
    for (size_t i = 0; i < S_NKINDS; i++)
        if (!strcmp(s_kinds[i].name, name))
            return s_kinds[i].kind;
    return 0;
}

static unsigned s_route(int kind)
{
    for (size_t i = 0; i < S_NKINDS; i++)
        if (s_kinds[i].kind == kind)
            return s_kinds[i].route;
    return 0;
}

const char *repl_delivery_name(int state)
{
    switch (state) {
    case REPL_DL_QUEUED:
        return "queued";
    case REPL_DL_SENT:
        return "sent";
    case REPL_DL_ACKED:
        return "acknowledged";
    case REPL_DL_FAILED:
        return "failed";
    default:
        return "?";
    }
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- records ----------------------------------------------------------- */

static int s_record_decode(const void *buf, size_t len, repl_event_t *ev)
{
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 8 || store_mpr_uint(&r) != 1)
        return HS_EMALF;
    ev->ev_kind = (int)store_mpr_uint(&r);
    store_mpr_str(&r, ev->ev_origin, sizeof(ev->ev_origin));
    ev->ev_created_ms = store_mpr_uint(&r);
    ev->ev_payload = store_mpr_raw(&r, &ev->ev_payload_len);
    store_mpr_str(&r, ev->ev_from, sizeof(ev->ev_from));
    ev->ev_seq = store_mpr_uint(&r);
    ev->ev_at_ms = store_mpr_uint(&r);
    return store_mpr_done(&r);
}

static int s_next_seq(store_txn_t *t, uint64_t *out)
{
    const void *v;
    size_t vl;
    uint64_t seq = 0;
    int err = store_kv_get(t, STORE_T_META, "event_seq", 9, &v, &vl);
    if (err == HS_OK && vl == 8)
        seq = s_get_be64(v);
    else if (err && err != HS_ENOTFOUND)
        return err;
    uint8_t nv[8];
    s_be64(nv, ++seq);
    *out = seq;
    return store_kv_put(t, STORE_T_META, "event_seq", 9, nv, 8);
}

static int s_delivery_put(store_txn_t *t, const uint8_t id[16], const char *peer, int state,
                          uint32_t attempts, const char *error)
{
    uint8_t k[1 + 16 + STORE_NAME_MAX];
    size_t pl = strlen(peer);
    k[0] = 'd';
    memcpy(k + 1, id, 16);
    memcpy(k + 17, peer, pl);
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 4);
    store_mpw_uint(&w, (uint64_t)state);
    store_mpw_uint(&w, s_now_ms());
    store_mpw_uint(&w, attempts);
    store_mpw_str(&w, error ? error : "");
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_EVENTS, k, 17 + pl, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

/* Queue ev for every adjacent peer its kind travels to, but `from`. */
typedef struct s_fan {
    store_txn_t *t;
    const repl_event_t *ev;
    const char *from;
    unsigned route;
    int err;
} s_fan_t;

static int s_fan_one(void *ctx, const topo_peer_t *p)
{
    s_fan_t *f = ctx;
    unsigned dir = p->pe_role == TOPO_ROLE_PARENT  ? S_UP
                   : p->pe_role == TOPO_ROLE_CHILD ? S_DOWN
                                                   : 0;
    if (!(dir & f->route) || !strcmp(p->pe_name, f->from))
        return 0;
    uint8_t k[STORE_NAME_MAX + 9];
    size_t pl = strlen(p->pe_name);
    memcpy(k, p->pe_name, pl);
    k[pl] = 0;
    s_be64(k + pl + 1, f->ev->ev_seq);
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 3);
    store_mpw_bin(&w, f->ev->ev_id, 16);
    store_mpw_uint(&w, 0);
    store_mpw_uint(&w, 0);
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(f->t, STORE_T_OUTBOX, k, pl + 9, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    if (!err)
        err = s_delivery_put(f->t, f->ev->ev_id, p->pe_name, REPL_DL_QUEUED, 0, NULL);
    if (err) {
        f->err = err;
        return err;
    }
    return 0;
}

static int s_record(store_txn_t *t, repl_event_t *ev)
{
    int err = s_next_seq(t, &ev->ev_seq);
    if (err)
        return err;
    ev->ev_at_ms = s_now_ms();
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 8);
    store_mpw_uint(&w, 1);
    store_mpw_uint(&w, (uint64_t)ev->ev_kind);
    store_mpw_str(&w, ev->ev_origin);
    store_mpw_uint(&w, ev->ev_created_ms);
    store_mpw_raw(&w, ev->ev_payload, ev->ev_payload_len);
    store_mpw_str(&w, ev->ev_from);
    store_mpw_uint(&w, ev->ev_seq);
    store_mpw_uint(&w, ev->ev_at_ms);
    uint8_t k[17], sk[25];
    k[0] = 'e';
    memcpy(k + 1, ev->ev_id, 16);
    sk[0] = 's';
    s_be64(sk + 1, ev->ev_seq);
    memcpy(sk + 9, ev->ev_id, 16);
    err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_EVENTS, k, sizeof(k), w.mpw_buf, w.mpw_len);
    if (!err)
        err = store_kv_put(t, STORE_T_EVENTS, sk, sizeof(sk), "", 0);
    store_mpw_free(&w);
    if (err)
        return err;
    s_fan_t f = {t, ev, ev->ev_from, s_route(ev->ev_kind), 0};
    err = topo_peer_each(t, 0, s_fan_one, &f);
    return err ? err : f.err;
}

int repl_event_raise(store_txn_t *t, int kind, const uint8_t *payload, size_t len,
                     uint8_t out_id[16])
{
    if (!s_route(kind))
        return HS_EINVAL;
    if (store_body_check(payload, len))
        return HS_EMALF;
    repl_event_t ev = {.ev_kind = kind, .ev_payload = payload, .ev_payload_len = len};
    if (RAND_bytes(ev.ev_id, 16) != 1)
        return HS_ECRYPTO;
    snprintf(ev.ev_origin, sizeof(ev.ev_origin), "%s", store_node_name(store_txn_store(t)));
    ev.ev_created_ms = s_now_ms();
    int err = s_record(t, &ev);
    if (!err && out_id)
        memcpy(out_id, ev.ev_id, 16);
    return err;
}

/* ---- effects ----------------------------------------------------------- */

/* Position r on the value of payload key `name`. HS_ENOTFOUND if absent. */
static int s_payload_find(const repl_event_t *ev, const char *name, store_mpr_t *r)
{
    store_mpr_init(r, ev->ev_payload, ev->ev_payload_len);
    uint32_t n = store_mpr_map(r);
    for (uint32_t i = 0; i < n && !store_mpr_error(r); i++) {
        size_t kl, skip;
        const uint8_t *k = store_mpr_bytes(r, &kl);
        if (k && kl == strlen(name) && !memcmp(k, name, kl))
            return HS_OK;
        store_mpr_raw(r, &skip);
    }
    return store_mpr_error(r) ? HS_EMALF : HS_ENOTFOUND;
}

static int s_payload_str(const repl_event_t *ev, const char *name, char *out, size_t outlen)
{
    store_mpr_t r;
    int err = s_payload_find(ev, name, &r);
    if (err)
        return err;
    store_mpr_str(&r, out, outlen);
    return store_mpr_error(&r) ? HS_EMALF : HS_OK;
}

/* The guid named by payload key `name` (a 36-character string). */
static int s_payload_guid(const repl_event_t *ev, const char *name, store_guid_t *g)
{
    char s[STORE_GUID_STRLEN + 1];
    int err = s_payload_str(ev, name, s, sizeof(s));
    return err ? err : store_guid_parse(s, g);
}

/* The unsigned integer under payload key `name`, 0 if absent. */
static uint64_t s_payload_uint(const repl_event_t *ev, const char *name)
{
    store_mpr_t r;
    if (s_payload_find(ev, name, &r) != HS_OK)
        return 0;
    uint64_t v = store_mpr_uint(&r);
    return store_mpr_error(&r) ? 0 : v;
}

typedef struct s_reach {
    const char *name;
    bool found;
} s_reach_t;

static int s_reach_one(void *ctx, const topo_peer_t *p)
{
    s_reach_t *r = ctx;
    if (p->pe_role != TOPO_ROLE_PARENT && p->pe_role != TOPO_ROLE_CHILD)
        return 0;
    if (!strcmp(p->pe_name, r->name))
        r->found = true;
    /* the parent's rel: the path from the root down to it; a child's: its subtree */
    for (size_t i = 0; i < p->pe_nrel && !r->found; i++)
        if (!strcmp(p->pe_rel[i].rel_name, r->name))
            r->found = true;
    return r->found ? 1 : 0;
}

/* Does this node's scope hold the resources of owner: this node, a node
 * below it (they come up), or an ancestor (they come down)? A node of
 * another branch is none of these: its resources never reach here. An
 * empty owner is taken as held (nothing to decide). */
static int s_in_reach(store_txn_t *t, const char *owner, bool *held)
{
    *held = true;
    if (!*owner || !strcmp(owner, store_node_name(store_txn_store(t))))
        return HS_OK;
    s_reach_t r = {owner, false};
    int err = topo_peer_each(t, 0, s_reach_one, &r);
    *held = r.found;
    return err;
}

static int s_effect(store_txn_t *t, const repl_event_t *ev, char *note, size_t notelen)
{
    store_guid_t g;
    int err;
    switch (ev->ev_kind) {
    case REPL_EV_MERGE: { /* the same merge here: old goes into the survivor */
        store_guid_t ng;
        char owner[STORE_NAME_MAX + 1];
        err = s_payload_guid(ev, "old", &g);
        if (!err)
            err = s_payload_guid(ev, "new", &ng);
        if (err)
            return err == HS_ENOTFOUND ? HS_OK : err;
        if (s_payload_str(ev, "owner", owner, sizeof(owner)) != HS_OK)
            owner[0] = '\0';
        bool held = true, dropped = false;
        if ((err = s_in_reach(t, owner, &held)))
            return err;
        err = rules_resource_merged(t, &g, &ng, owner, s_payload_uint(ev, "registered"), held,
                                    &dropped);
        if (!err && dropped) {
            char gs[STORE_GUID_STRLEN + 1];
            store_guid_format(&ng, gs);
            snprintf(note, notelen,
                     "dropped resource %s (merged, owner now %s): %s is outside this node's "
                     "scope (not below it, not an ancestor), so its resources are never sent "
                     "here",
                     gs, owner, owner);
        }
        return err;
    }
    case REPL_EV_PURGED:
        err = s_payload_guid(ev, "guid", &g);
        if (err)
            return err == HS_ENOTFOUND ? HS_OK : err;
        err = store_delete(t, &g, 0);
        return err == HS_ENOTFOUND ? HS_OK : err;
    case REPL_EV_MOVED: {
        char owner[STORE_NAME_MAX + 1];
        err = s_payload_guid(ev, "guid", &g);
        if (!err)
            err = s_payload_str(ev, "to", owner, sizeof(owner));
        if (err)
            return err == HS_ENOTFOUND ? HS_OK : err;
        store_obj_t o;
        err = store_get(t, &g, &o);
        if (err || (o.flags & STORE_OBJ_TOMBSTONE))
            return HS_OK; /* not here (yet): the next run brings it with its owner */
        if (strncmp(o.cls, "resource.", 9) != 0)
            return HS_OK; /* ownership is of resources */
        bool held = true;
        if ((err = s_in_reach(t, owner, &held)))
            return err;
        if (!held) {
            /* another branch's now: no run will bring its changes here, and
             * a stale copy must not stay; the tombstone keeps the copy's own
             * time, so that it never looks newer than a real change */
            err = rules_resource_drop(t, &g, owner);
            char gs[STORE_GUID_STRLEN + 1];
            store_guid_format(&g, gs);
            snprintf(note, notelen,
                     "dropped resource %s (moved to %s): %s is outside this node's scope (not "
                     "below it, not an ancestor), so its resources are never sent here",
                     gs, owner, owner);
            return err;
        }
        uint64_t registered = s_payload_uint(ev, "registered");
        if (!strcmp(o.owner, owner) && (!registered || o.rtime == registered))
            return HS_OK; /* already so */
        o.owner = owner;  /* its own time kept: only the owner changes */
        if (registered)
            o.rtime = registered;
        /* o's strings point into the map; store_put copies before writing */
        char cls[STORE_CLASS_MAX + 1], origin[STORE_NAME_MAX + 1];
        snprintf(cls, sizeof(cls), "%s", o.cls);
        snprintf(origin, sizeof(origin), "%s", o.origin);
        o.cls = cls;
        o.origin = origin;
        uint8_t *body = malloc(o.body_len + o.keys_len + 1);
        if (!body)
            return HS_ENOMEM;
        memcpy(body, o.body, o.body_len);
        if (o.keys_len)
            memcpy(body + o.body_len, o.keys, o.keys_len);
        o.body = body;
        o.keys = o.keys_len ? body + o.body_len : NULL;
        err = store_put(t, &o, NULL);
        free(body);
        return err;
    }
    default:
        return HS_OK; /* recorded only */
    }
}

int repl_event_accept(store_txn_t *t, const char *peer, const repl_event_t *in, bool *dup,
                      char *note, size_t notelen)
{
    *dup = false;
    if (notelen)
        note[0] = '\0';
    uint8_t k[17];
    k[0] = 'e';
    memcpy(k + 1, in->ev_id, 16);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_EVENTS, k, sizeof(k), &v, &vl);
    if (err == HS_OK) {
        *dup = true;
        return HS_OK;
    }
    if (err != HS_ENOTFOUND)
        return err;
    if (!s_route(in->ev_kind) || store_body_check(in->ev_payload, in->ev_payload_len))
        return HS_EMALF;
    /* an event travels only the way its kind goes: from our parent it must
     * be going down, from a child up */
    topo_peer_t parent;
    unsigned came = S_UP;
    if (topo_peer_parent(t, &parent) == HS_OK) {
        if (!strcmp(parent.pe_name, peer))
            came = S_DOWN;
        topo_peer_clear(&parent);
    }
    if (!(s_route(in->ev_kind) & came))
        return HS_EDIRECTION;
    repl_event_t ev = *in;
    snprintf(ev.ev_from, sizeof(ev.ev_from), "%s", peer);
    err = s_effect(t, &ev, note, notelen);
    return err ? err : s_record(t, &ev);
}

int repl_event_acked(store_txn_t *t, const char *peer, const uint8_t id[16], uint32_t attempts)
{
    uint8_t k[17];
    k[0] = 'e';
    memcpy(k + 1, id, 16);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_EVENTS, k, sizeof(k), &v, &vl);
    if (err)
        return err == HS_ENOTFOUND ? HS_OK : err;
    repl_event_t ev;
    if (s_record_decode(v, vl, &ev))
        return HS_OK;
    uint8_t ok[STORE_NAME_MAX + 9];
    size_t pl = strlen(peer);
    memcpy(ok, peer, pl);
    ok[pl] = 0;
    s_be64(ok + pl + 1, ev.ev_seq);
    err = store_kv_del(t, STORE_T_OUTBOX, ok, pl + 9);
    if (err == HS_ENOTFOUND)
        return HS_OK; /* a repeated acknowledgement */
    return err ? err : s_delivery_put(t, id, peer, REPL_DL_ACKED, attempts, NULL);
}

/* ---- outbox ------------------------------------------------------------ */

typedef struct s_ob {
    store_txn_t *t;
    repl_outbox_cb cb;
    void *ctx;
    size_t plen;
    uint64_t n;
} s_ob_t;

static int s_ob_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    s_ob_t *o = ctx;
    if (kl != o->plen + 8)
        return 0;
    o->n++;
    if (!o->cb)
        return 0;
    store_mpr_t r;
    store_mpr_init(&r, v, vl);
    if (store_mpr_array(&r) != 3)
        return 0;
    size_t il;
    const uint8_t *id = store_mpr_bytes(&r, &il);
    uint32_t attempts = (uint32_t)store_mpr_uint(&r);
    uint64_t last = store_mpr_uint(&r);
    if (store_mpr_done(&r) || il != 16)
        return 0;
    uint8_t ek[17];
    ek[0] = 'e';
    memcpy(ek + 1, id, 16);
    const void *ev_v;
    size_t ev_l;
    repl_event_t ev;
    if (store_kv_get(o->t, STORE_T_EVENTS, ek, sizeof(ek), &ev_v, &ev_l) ||
        s_record_decode(ev_v, ev_l, &ev))
        return 0;
    memcpy(ev.ev_id, id, 16);
    return o->cb(o->ctx, s_get_be64((const uint8_t *)k + o->plen), &ev, attempts, last);
}

static size_t s_ob_prefix(uint8_t *p, const char *peer)
{
    size_t pl = strlen(peer);
    memcpy(p, peer, pl);
    p[pl] = 0;
    return pl + 1;
}

int repl_outbox_each(store_txn_t *t, const char *peer, repl_outbox_cb cb, void *ctx)
{
    uint8_t p[STORE_NAME_MAX + 2];
    size_t pl = s_ob_prefix(p, peer);
    s_ob_t o = {t, cb, ctx, pl, 0};
    return store_kv_scan(t, STORE_T_OUTBOX, p, pl, s_ob_one, &o);
}

int repl_outbox_count(store_txn_t *t, const char *peer, uint64_t *n)
{
    uint8_t p[STORE_NAME_MAX + 2];
    size_t pl = s_ob_prefix(p, peer);
    s_ob_t o = {t, NULL, NULL, pl, 0};
    int err = store_kv_scan(t, STORE_T_OUTBOX, p, pl, s_ob_one, &o);
    *n = o.n;
    return err;
}

int repl_event_delivery(store_txn_t *t, const char *peer, const uint8_t id[16], int state,
                        uint32_t attempts, const char *error)
{
    uint8_t k[17];
    k[0] = 'e';
    memcpy(k + 1, id, 16);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_EVENTS, k, sizeof(k), &v, &vl);
    if (err)
        return err == HS_ENOTFOUND ? HS_OK : err;
    return s_delivery_put(t, id, peer, state, attempts, error);
}

int repl_outbox_sent(store_txn_t *t, const char *peer, uint64_t oseq, uint64_t now_ms)
{
    uint8_t k[STORE_NAME_MAX + 10];
    size_t pl = s_ob_prefix(k, peer);
    s_be64(k + pl, oseq);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_OUTBOX, k, pl + 8, &v, &vl);
    if (err)
        return err == HS_ENOTFOUND ? HS_OK : err;
    store_mpr_t r;
    store_mpr_init(&r, v, vl);
    size_t il;
    uint8_t id[16];
    if (store_mpr_array(&r) != 3)
        return HS_EMALF;
    const uint8_t *idp = store_mpr_bytes(&r, &il);
    uint32_t attempts = (uint32_t)store_mpr_uint(&r);
    if (!idp || il != 16)
        return HS_EMALF;
    memcpy(id, idp, 16);
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 3);
    store_mpw_bin(&w, id, 16);
    store_mpw_uint(&w, attempts + 1);
    store_mpw_uint(&w, now_ms);
    err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_OUTBOX, k, pl + 8, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    if (!err)
        err = s_delivery_put(t, id, peer, REPL_DL_SENT, attempts + 1, NULL);
    return err;
}

/* ---- listing ----------------------------------------------------------- */

typedef struct s_dl {
    repl_delivery_rec_t r[64];
    size_t n;
} s_dl_t;

static int s_dl_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    s_dl_t *d = ctx;
    if (d->n == 64 || kl <= 17 || kl - 17 > STORE_NAME_MAX)
        return 0;
    repl_delivery_rec_t *rec = &d->r[d->n];
    memcpy(rec->dl_peer, (const char *)k + 17, kl - 17);
    rec->dl_peer[kl - 17] = 0;
    store_mpr_t r;
    store_mpr_init(&r, v, vl);
    if (store_mpr_array(&r) != 4)
        return 0;
    rec->dl_state = (int)store_mpr_uint(&r);
    rec->dl_at_ms = store_mpr_uint(&r);
    rec->dl_attempts = (uint32_t)store_mpr_uint(&r);
    store_mpr_str(&r, rec->dl_error, sizeof(rec->dl_error));
    if (!store_mpr_error(&r))
        d->n++;
    return 0;
}

typedef struct s_list {
    store_txn_t *t;
    uint8_t (*ids)[16];
    size_t n, cap;
} s_list_t;

static int s_list_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)v;
    (void)vl;
    s_list_t *l = ctx;
    if (kl != 25)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        uint8_t(*ids)[16] = realloc(l->ids, cap * 16);
        if (!ids)
            return HS_ENOMEM;
        l->ids = ids;
        l->cap = cap;
    }
    memcpy(l->ids[l->n++], (const uint8_t *)k + 9, 16);
    return 0;
}

int repl_events_each(store_txn_t *t, size_t limit, repl_event_cb cb, void *ctx)
{
    s_list_t l = {t, NULL, 0, 0};
    int err = store_kv_scan(t, STORE_T_EVENTS, "s", 1, s_list_one, &l);
    s_dl_t *dl = malloc(sizeof(*dl));
    if (!err && !dl)
        err = HS_ENOMEM;
    for (size_t i = l.n; !err && i > 0 && l.n - i < limit; i--) {
        uint8_t k[17];
        k[0] = 'e';
        memcpy(k + 1, l.ids[i - 1], 16);
        const void *v;
        size_t vl;
        repl_event_t ev;
        if (store_kv_get(t, STORE_T_EVENTS, k, sizeof(k), &v, &vl) || s_record_decode(v, vl, &ev))
            continue;
        memcpy(ev.ev_id, l.ids[i - 1], 16);
        k[0] = 'd';
        dl->n = 0;
        err = store_kv_scan(t, STORE_T_EVENTS, k, sizeof(k), s_dl_one, dl);
        if (!err) {
            int r = cb(ctx, &ev, dl->r, dl->n);
            if (r)
                err = r < 0 ? r : HS_OK;
            if (r)
                break;
        }
    }
    free(dl);
    free(l.ids);
    return err;
}

/* ---- wire -------------------------------------------------------------- */

int repl_event_encode(const repl_event_t *ev, store_mpw_t *w)
{
    store_mpw_array(w, 7);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, REPL_EVENT);
    store_mpw_bin(w, ev->ev_id, 16);
    store_mpw_uint(w, (uint64_t)ev->ev_kind);
    store_mpw_str(w, ev->ev_origin);
    store_mpw_uint(w, ev->ev_created_ms);
    store_mpw_raw(w, ev->ev_payload, ev->ev_payload_len);
    return store_mpw_error(w);
}

int repl_event_decode(const void *buf, size_t len, repl_event_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 7 || store_mpr_uint(&r) != TOPO_PROTO_VERSION ||
        store_mpr_uint(&r) != REPL_EVENT)
        return HS_EMALF;
    size_t il;
    const uint8_t *id = store_mpr_bytes(&r, &il);
    out->ev_kind = (int)store_mpr_uint(&r);
    store_mpr_str(&r, out->ev_origin, sizeof(out->ev_origin));
    out->ev_created_ms = store_mpr_uint(&r);
    out->ev_payload = store_mpr_raw(&r, &out->ev_payload_len);
    if (store_mpr_done(&r) || !id || il != 16 || !s_route(out->ev_kind) || !out->ev_origin[0] ||
        store_body_check(out->ev_payload, out->ev_payload_len))
        return HS_EMALF;
    memcpy(out->ev_id, id, 16);
    return HS_OK;
}

int repl_event_ack_encode(const uint8_t id[16], store_mpw_t *w)
{
    store_mpw_array(w, 3);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, REPL_EVENT_ACK);
    store_mpw_bin(w, id, 16);
    return store_mpw_error(w);
}

int repl_event_ack_decode(const void *buf, size_t len, uint8_t id[16])
{
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 3 || store_mpr_uint(&r) != TOPO_PROTO_VERSION ||
        store_mpr_uint(&r) != REPL_EVENT_ACK)
        return HS_EMALF;
    size_t il;
    const uint8_t *p = store_mpr_bytes(&r, &il);
    if (store_mpr_done(&r) || !p || il != 16)
        return HS_EMALF;
    memcpy(id, p, 16);
    return HS_OK;
}
