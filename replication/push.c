/*
 * push.c - replicate-now and emergency software delivery.
 *
 *   PUSH      [1,28, push, emergency, objects[]]   objects as in BATCH
 *   PUSH_ACK  [1,29, push, ok, why, applied, forwarded]
 *
 * repl_push sends one object and what it depends on (every object whose
 * guid its body names, two levels deep: a policy's filter, package and
 * software; a role's privileges) to every adjacent node its class may flow
 * to, at once, and reports each peer's acknowledgement. An emergency push
 * goes down only, and every node that receives it applies it and passes it
 * on to its own children before acknowledging, so it reaches every
 * descendant hop by hop. A push is not queued durably: a peer that is down
 * gets the objects with its next scheduled run.
 */
#include "replication/engine_int.h"

#include "topology/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_PUSH_TIMEOUT_MS 10000
#define R_PUSH_MAX_OBJECTS 64

/* ---- collecting the object and its dependencies -------------------------- */

typedef struct s_set {
    store_guid_t g[R_PUSH_MAX_OBJECTS];
    size_t n;
} s_set_t;

static bool s_set_has(const s_set_t *s, const store_guid_t *g)
{
    for (size_t i = 0; i < s->n; i++)
        if (!memcmp(s->g[i].b, g->b, 16))
            return true;
    return false;
}

/* Walk a msgpack value, adding every string that is a guid of a live local
 * object. */
static void s_refs(store_mpr_t *r, store_txn_t *t, s_set_t *set, int depth)
{
    if (store_mpr_error(r) || r->mpr_pos >= r->mpr_len || depth > 8)
        return;
    uint8_t b = r->mpr_p[r->mpr_pos];
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
        uint32_t n = store_mpr_map(r);
        for (uint32_t i = 0; i < n && !store_mpr_error(r); i++) {
            size_t skip;
            store_mpr_raw(r, &skip); /* key */
            s_refs(r, t, set, depth + 1);
        }
    } else if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
        uint32_t n = store_mpr_array(r);
        for (uint32_t i = 0; i < n && !store_mpr_error(r); i++)
            s_refs(r, t, set, depth + 1);
    } else if ((b & 0xe0) == 0xa0 || b == 0xd9) {
        size_t len;
        const uint8_t *s = store_mpr_bytes(r, &len);
        if (s && len == STORE_GUID_STRLEN && set->n < R_PUSH_MAX_OBJECTS) {
            char txt[STORE_GUID_STRLEN + 1];
            memcpy(txt, s, len);
            txt[len] = 0;
            store_guid_t g;
            store_obj_t o;
            if (store_guid_parse(txt, &g) == HS_OK && !s_set_has(set, &g) &&
                store_get(t, &g, &o) == HS_OK && !(o.flags & STORE_OBJ_TOMBSTONE))
                set->g[set->n++] = g;
        }
    } else {
        size_t skip;
        store_mpr_raw(r, &skip);
    }
}

static int s_collect(store_txn_t *t, const store_guid_t *root, s_set_t *set)
{
    store_obj_t o;
    int err = store_get(t, root, &o);
    if (err)
        return err;
    if (o.flags & STORE_OBJ_TOMBSTONE)
        return HS_ENOTFOUND;
    set->n = 0;
    set->g[set->n++] = *root;
    /* two levels: the object's references, and theirs */
    for (size_t level = 0, from = 0; level < 2; level++) {
        size_t to = set->n;
        for (size_t i = from; i < to; i++) {
            if (store_get(t, &set->g[i], &o))
                continue;
            store_mpr_t r;
            store_mpr_init(&r, o.body, o.body_len);
            s_refs(&r, t, set, 0);
        }
        from = to;
    }
    return HS_OK;
}

/* Is any enabled rule carrying o in direction dir with o in its send scope? */
typedef struct s_scope {
    const store_obj_t *o;
    unsigned dir;
    rules_names_t mine;
    bool in;
} s_scope_t;

static int s_scope_rule(void *ctx, const rules_rule_t *ru)
{
    s_scope_t *s = ctx;
    if (ru->ru_enabled && rules_send_scope(ru, s->dir, s->o, &s->mine)) {
        s->in = true;
        return 1;
    }
    return 0;
}

/* ---- sending -------------------------------------------------------------- */

struct r_push {
    struct r_push *next;
    uint64_t id, req;
    char peer[STORE_NAME_MAX + 1];
    bool emergency;
    unsigned dir;
    uint64_t sent, bytes, started_ms;
};

static void s_push_done(repl_t *r, r_push_t *p, bool ok, uint64_t applied, uint64_t forwarded,
                        const char *error)
{
    for (r_push_t **pp = &r->pushes; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (r->io.io_run_done && p->req) {
        repl_summary_t su = {.su_req = p->req,
                             .su_role = p->emergency ? "emergency" : "pushed",
                             .su_direction = p->dir == RULES_UP ? "up" : "down",
                             .su_mode = 0,
                             .su_sent = p->sent,
                             .su_applied = applied,
                             .su_bytes = p->bytes,
                             .su_ms = repl_mono_ms() - p->started_ms,
                             .su_ok = ok};
        repl_summary_names(&su, p->peer, p->emergency ? "emergency" : "now", NULL, error);
        if (p->emergency)
            snprintf(su.su_why, sizeof(su.su_why), "applied there; passed on to %llu child%s",
                     (unsigned long long)forwarded, forwarded == 1 ? "" : "ren");
        else
            snprintf(su.su_why, sizeof(su.su_why), "applied there");

        r->io.io_run_done(r->io.io_ctx, &su);
    }
    free(p);
}

/* Send the objects of set that are in scope toward peer. Returns the number
 * sent (0: nothing for that peer). */
static int s_send_push(repl_t *r, store_txn_t *t, const s_set_t *set, const char *peer,
                       unsigned dir, bool emergency, uint64_t req, size_t *nsent)
{
    *nsent = 0;
    store_mpw_reset(&r->objs);
    uint32_t n = 0;
    rules_names_t mine = repl_branch(r, NULL);
    for (size_t i = 0; i < set->n; i++) {
        store_obj_t o;
        if (store_get(t, &set->g[i], &o))
            continue;
        s_scope_t sc = {&o, dir, mine, false};
        rules_each(t, s_scope_rule, &sc);
        if (!sc.in)
            continue;
        repl_obj_encode(&r->objs, &o);
        n++;
    }
    if (!n)
        return HS_OK;
    r_push_t *p = calloc(1, sizeof(*p));
    if (!p)
        return HS_ENOMEM;
    p->id = ++r->next_id;
    p->req = req;
    snprintf(p->peer, sizeof(p->peer), "%s", peer);
    p->emergency = emergency;
    p->dir = dir;
    p->sent = n;
    p->started_ms = repl_mono_ms();
    store_mpw_reset(&r->w);
    store_mpw_array(&r->w, 5);
    store_mpw_uint(&r->w, TOPO_PROTO_VERSION);
    store_mpw_uint(&r->w, REPL_PUSH);
    store_mpw_uint(&r->w, p->id);
    store_mpw_bool(&r->w, emergency);
    store_mpw_array(&r->w, n);
    store_mpw_raw(&r->w, r->objs.mpw_buf, r->objs.mpw_len);
    int err = store_mpw_error(&r->w);
    if (!err)
        err = r->io.io_send(r->io.io_ctx, peer, r->w.mpw_buf, r->w.mpw_len);
    if (err) {
        free(p);
        return err;
    }
    p->bytes = r->w.mpw_len;
    p->next = r->pushes;
    r->pushes = p;
    *nsent = n;
    return HS_OK;
}

int repl_push(repl_t *r, const store_guid_t *g, bool emergency, uint64_t req, size_t *peers)
{
    *peers = 0;
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (err)
        return err;
    s_set_t *set = malloc(sizeof(*set));
    err = set ? s_collect(t, g, set) : HS_ENOMEM;
    const char *const *names = NULL;
    size_t np = err ? 0 : r->io.io_peers(r->io.io_ctx, &names);
    char list[16][STORE_NAME_MAX + 1];
    if (np > 16)
        np = 16;
    for (size_t i = 0; i < np; i++)
        snprintf(list[i], sizeof(list[i]), "%s", names[i]);
    for (size_t i = 0; !err && i < np; i++) {
        unsigned dir = r->io.io_dir_to(r->io.io_ctx, list[i]);
        if (!dir || dir == RULES_SIDE || (emergency && dir != RULES_DOWN) ||
            !r->io.io_peer_up(r->io.io_ctx, list[i]))
            continue;
        size_t n = 0;
        err = s_send_push(r, t, set, list[i], dir, emergency, req, &n);
        if (!err && n)
            ++*peers;
    }
    store_txn_abort(&t);
    free(set);
    return err;
}

/* ---- receiving ------------------------------------------------------------ */

typedef struct s_papply {
    const uint8_t *objs;
    size_t len;
    uint32_t n;
    unsigned dir;
    rules_names_t branch; /* up: the child's branch as we know it; down: ours */
    uint64_t applied, refused;
    unsigned raised; /* hierarchy events the handlers' decisions raised */
    s_set_t got;
} s_papply_t;

static int s_papply_txn(store_txn_t *t, void *ctx)
{
    s_papply_t *a = ctx;
    a->applied = a->refused = 0;
    a->raised = 0;
    a->got.n = 0;
    store_mpr_t rd;
    store_mpr_init(&rd, a->objs, a->len);
    for (uint32_t i = 0; i < a->n; i++) {
        repl_wire_obj_t wo;
        if (repl_obj_decode(&rd, &wo))
            return HS_EMALF;
        if (a->got.n < R_PUSH_MAX_OBJECTS)
            a->got.g[a->got.n++] = wo.o.guid;
        /* the same scope checks as a run: a rule carrying just this class */
        rules_rule_t one = {.ru_nprefix = 1, .ru_dirs = a->dir, .ru_enabled = true};
        snprintf(one.ru_prefix[0], sizeof(one.ru_prefix[0]), "%s", wo.o.cls);
        if (!repl_recv_allowed(t, &one, a->dir, &a->branch, &wo.o, NULL, 0)) {
            a->refused++;
            continue;
        }
        int outcome;
        int err = repl_apply_incoming(t, a->dir, 0, &wo.o, &outcome, &a->raised);
        if (rules_refused(err)) {
            a->refused++;
            continue;
        }
        if (err)
            return err;
        if (outcome == RULES_APPLIED)
            a->applied++;
    }
    return store_mpr_done(&rd);
}

static void s_on_push(repl_t *r, const char *peer, const void *buf, size_t len)
{
    store_mpr_t rd;
    store_mpr_init(&rd, buf, len);
    uint64_t id = 0;
    bool emergency = false;
    uint32_t n = 0;
    if (store_mpr_array(&rd) == 5) {
        store_mpr_uint(&rd);
        store_mpr_uint(&rd);
        id = store_mpr_uint(&rd);
        emergency = store_mpr_bool(&rd);
        n = store_mpr_array(&rd);
    }
    unsigned dir = repl_dir_from(r, peer);
    const char *why = NULL;
    if (store_mpr_error(&rd) || n > R_PUSH_MAX_OBJECTS)
        why = "malformed push";
    else if (!dir || dir == RULES_SIDE || (emergency && dir != RULES_DOWN))
        why = "pushes of that kind do not come from that side";
    s_papply_t a = {.objs = rd.mpr_p + rd.mpr_pos, .len = len - rd.mpr_pos, .n = n, .dir = dir};
    a.branch = repl_branch(r, dir == RULES_UP ? peer : NULL);
    int err = why ? HS_EPROTO : store_write(r->store, s_papply_txn, &a);
    if (err && !why)
        why = hs_strerror(err);
    if (!err && a.raised)
        repl_events_pump(r);
    size_t forwarded = 0;
    if (!why && emergency) {
        /* pass it on to our children before acknowledging */
        store_txn_t *t;
        if (store_txn_begin(r->store, false, &t) == HS_OK) {
            const char *const *names = NULL;
            size_t np = r->io.io_peers(r->io.io_ctx, &names);
            char list[16][STORE_NAME_MAX + 1];
            if (np > 16)
                np = 16;
            for (size_t i = 0; i < np; i++)
                snprintf(list[i], sizeof(list[i]), "%s", names[i]);
            for (size_t i = 0; i < np; i++) {
                size_t sent = 0;
                if (r->io.io_dir_to(r->io.io_ctx, list[i]) == RULES_DOWN &&
                    r->io.io_peer_up(r->io.io_ctx, list[i]) &&
                    s_send_push(r, t, &a.got, list[i], RULES_DOWN, true, 0, &sent) == HS_OK && sent)
                    forwarded++;
            }
            store_txn_abort(&t);
        }
    }
    repl_log(r, why ? REPL_LOG_WARN : REPL_LOG_INFO, peer, emergency ? "emergency" : "push",
             "%s: %u objects, %llu applied%s%s", why ? "refused" : "received", n,
             (unsigned long long)a.applied, why ? ": " : "", why ? why : "");
    store_mpw_reset(&r->w);
    store_mpw_array(&r->w, 7);
    store_mpw_uint(&r->w, TOPO_PROTO_VERSION);
    store_mpw_uint(&r->w, REPL_PUSH_ACK);
    store_mpw_uint(&r->w, id);
    store_mpw_bool(&r->w, why == NULL);
    store_mpw_str(&r->w, why ? why : "");
    store_mpw_uint(&r->w, a.applied);
    store_mpw_uint(&r->w, forwarded);
    if (!store_mpw_error(&r->w))
        r->io.io_send(r->io.io_ctx, peer, r->w.mpw_buf, r->w.mpw_len);
}

static void s_on_push_ack(repl_t *r, const char *peer, const void *buf, size_t len)
{
    store_mpr_t rd;
    store_mpr_init(&rd, buf, len);
    if (store_mpr_array(&rd) != 7)
        return;
    store_mpr_uint(&rd);
    store_mpr_uint(&rd);
    uint64_t id = store_mpr_uint(&rd);
    bool ok = store_mpr_bool(&rd);
    char why[REPL_WHY_MAX];
    store_mpr_str(&rd, why, sizeof(why));
    uint64_t applied = store_mpr_uint(&rd);
    uint64_t forwarded = store_mpr_uint(&rd);
    if (store_mpr_done(&rd))
        return;
    for (r_push_t *p = r->pushes; p; p = p->next) {
        if (p->id == id && !strcmp(p->peer, peer)) {
            s_push_done(r, p, ok, applied, forwarded, ok ? NULL : why);
            return;
        }
    }
}

bool repl_push_frame(repl_t *r, const char *peer, int type, const void *buf, size_t len)
{
    if (type == REPL_PUSH)
        s_on_push(r, peer, buf, len);
    else if (type == REPL_PUSH_ACK)
        s_on_push_ack(r, peer, buf, len);
    else
        return false;
    return true;
}

void repl_push_tick(repl_t *r)
{
    uint64_t now = repl_mono_ms();
    for (r_push_t *p = r->pushes, *next; p; p = next) {
        next = p->next;
        if (now > p->started_ms + R_PUSH_TIMEOUT_MS)
            s_push_done(r, p, false, 0, 0, "no acknowledgement within 10 s");
    }
}

void repl_push_peer_down(repl_t *r, const char *peer)
{
    for (r_push_t *p = r->pushes, *next; p; p = next) {
        next = p->next;
        if (!strcmp(p->peer, peer))
            s_push_done(r, p, false, 0, 0, "the link went down");
    }
}

void repl_push_free_all(repl_t *r)
{
    while (r->pushes) {
        r_push_t *p = r->pushes;
        r->pushes = p->next;
        free(p);
    }
}
