/*
 * push.c - replicate-now and emergency software delivery.
 *
 *   PUSH      [1,28, push, emergency, objects[], budget]   objects as in BATCH;
 *             budget (emergency only): ms the sender waits for PUSH_ACK (a
 *             5-field PUSH: 10 s, and the PUSH_ACK has 7 fields)
 *   PUSH_ACK  [1,29, push, ok, why, applied, forwarded, reached[], not_reached[]]
 *             emergency: the names of the nodes of the receiver's branch
 *             that applied it (the receiver first) and of those that did
 *             not acknowledge (repl_names_decode; a 7-field PUSH_ACK: the
 *             receiver alone)
 *
 * repl_push sends one object and what it depends on (every object whose
 * guid its body names, two levels deep: a policy's filter, package and
 * software; a role's privileges) to every adjacent node its class may flow
 * to, at once, and reports each peer's acknowledgement. An emergency push
 * goes down only, and every node that receives it applies it, passes it
 * on to its own children and acknowledges once they have acknowledged (or
 * failed to within its budget, which is shorter than its parent's), naming
 * every node of its branch that applied it and every one that did not, so
 * it reaches every descendant hop by hop and the origin learns which did.
 * A push is not queued durably: a peer that is down gets the objects with
 * its next scheduled run.
 */
#include "replication/engine_int.h"

#include "topology/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_PUSH_TIMEOUT_MS 10000
#define R_PUSH_MAX_OBJECTS 64
#define R_RELAY_MARGIN_MS 1500 /* a relaying node answers this much before its parent gives up */
#define R_RELAY_MIN_MS 1000

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
    uint64_t relay; /* an emergency passed on for a parent: its r_relay_t id (0: none) */
    char peer[STORE_NAME_MAX + 1];
    bool emergency;
    unsigned dir;
    uint64_t sent, bytes, started_ms, timeout_ms;
};

/* An emergency push this node applied for its parent and passed on to its
 * children: acknowledged to the parent when the last of them has answered. */
typedef struct r_relay {
    struct r_relay *next;
    uint64_t id;
    char parent[STORE_NAME_MAX + 1];
    uint64_t parent_push; /* the parent's push id */
    uint64_t applied;
    size_t pending, forwarded;
    bool lists; /* the parent reads the name lists (it sent a 6-field PUSH) */
    r_names_t reached, unreached;
} r_relay_t;

static int s_names_add(r_names_t *n, const char *name)
{
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->v[i], name))
            return HS_OK;
    if (n->n >= REPL_BRANCH_MAX)
        return HS_OK;
    char(*v)[STORE_NAME_MAX + 1] = realloc(n->v, (n->n + 1) * sizeof(*v));
    if (!v)
        return HS_ENOMEM;
    n->v = v;
    snprintf(v[n->n++], sizeof(v[0]), "%s", name);
    return HS_OK;
}

/* peer and what it reported below it */
static void s_names_branch(repl_t *r, r_names_t *n, const char *peer)
{
    const char *const *names = NULL;
    size_t k = r->io.io_branch(r->io.io_ctx, peer, &names);
    s_names_add(n, peer);
    for (size_t i = 0; i < k; i++)
        s_names_add(n, names[i]);
}

static void s_names_encode(store_mpw_t *w, const r_names_t *n)
{
    store_mpw_array(w, (uint32_t)n->n);
    for (size_t i = 0; i < n->n; i++)
        store_mpw_str(w, n->v[i]);
}

static void s_relay_answer(repl_t *r, r_relay_t *rl);
static void s_relay_child_done(repl_t *r, uint64_t relay, const char *child, bool ok,
                               const r_names_t *reached, const r_names_t *unreached);

/* reached/unreached: what the peer's acknowledgement named (NULL: it did
 * not acknowledge, so the peer and its branch are not reached). */
static void s_push_done(repl_t *r, r_push_t *p, bool ok, uint64_t applied, uint64_t forwarded,
                        const char *error, const r_names_t *reached, const r_names_t *unreached)
{
    for (r_push_t **pp = &r->pushes; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    r_names_t re = {0}, un = {0};
    if (p->emergency) {
        for (size_t i = 0; ok && reached && i < reached->n; i++)
            s_names_add(&re, reached->v[i]);
        for (size_t i = 0; unreached && i < unreached->n; i++)
            s_names_add(&un, unreached->v[i]);
        if (ok && !re.n) /* a node before the lists: itself */
            s_names_add(&re, p->peer);
        if (!ok) /* refused, silent or gone: neither it nor its branch */
            s_names_branch(r, &un, p->peer);
    }
    if (p->relay) {
        s_relay_child_done(r, p->relay, p->peer, ok, &re, &un);
    } else if (r->io.io_run_done && p->req) {
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
        su.su_reached = (const char(*)[STORE_NAME_MAX + 1]) re.v;
        su.su_nreached = re.n;
        su.su_unreached = (const char(*)[STORE_NAME_MAX + 1]) un.v;
        su.su_nunreached = un.n;
        r->io.io_run_done(r->io.io_ctx, &su);
    }
    free(re.v);
    free(un.v);
    free(p);
}

/* Send the objects of set that are in scope toward peer. Returns the number
 * sent (0: nothing for that peer). */
static int s_send_push(repl_t *r, store_txn_t *t, const s_set_t *set, const char *peer,
                       unsigned dir, bool emergency, uint64_t req, uint64_t relay,
                       uint64_t budget_ms, size_t *nsent)
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
    p->relay = relay;
    snprintf(p->peer, sizeof(p->peer), "%s", peer);
    p->emergency = emergency;
    p->dir = dir;
    p->sent = n;
    p->started_ms = repl_mono_ms();
    p->timeout_ms = budget_ms;
    store_mpw_reset(&r->w);
    store_mpw_array(&r->w, emergency ? 6 : 5); /* replicate-now: as before the budget */
    store_mpw_uint(&r->w, TOPO_PROTO_VERSION);
    store_mpw_uint(&r->w, REPL_PUSH);
    store_mpw_uint(&r->w, p->id);
    store_mpw_bool(&r->w, emergency);
    store_mpw_array(&r->w, n);
    store_mpw_raw(&r->w, r->objs.mpw_buf, r->objs.mpw_len);
    if (emergency)
        store_mpw_uint(&r->w, budget_ms);
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
        err = s_send_push(r, t, set, list[i], dir, emergency, req, 0, R_PUSH_TIMEOUT_MS, &n);
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

/* lists: answer a 6-field PUSH with the name lists (9 fields); a 5-field
 * one, from a node before them, with the 7 fields it reads. */
static void s_push_ack(repl_t *r, const char *peer, uint64_t id, const char *why, uint64_t applied,
                       uint64_t forwarded, bool lists, const r_names_t *reached,
                       const r_names_t *unreached)
{
    store_mpw_reset(&r->w);
    store_mpw_array(&r->w, lists ? 9 : 7);
    store_mpw_uint(&r->w, TOPO_PROTO_VERSION);
    store_mpw_uint(&r->w, REPL_PUSH_ACK);
    store_mpw_uint(&r->w, id);
    store_mpw_bool(&r->w, why == NULL);
    store_mpw_str(&r->w, why ? why : "");
    store_mpw_uint(&r->w, applied);
    store_mpw_uint(&r->w, forwarded);
    r_names_t none = {0};
    if (lists) {
        s_names_encode(&r->w, reached ? reached : &none);
        s_names_encode(&r->w, unreached ? unreached : &none);
    }
    if (!store_mpw_error(&r->w))
        r->io.io_send(r->io.io_ctx, peer, r->w.mpw_buf, r->w.mpw_len);
}

static void s_relay_free(repl_t *r, r_relay_t *rl)
{
    for (r_relay_t **pp = &r->relays; *pp; pp = &(*pp)->next) {
        if (*pp == rl) {
            *pp = rl->next;
            break;
        }
    }
    free(rl->reached.v);
    free(rl->unreached.v);
    free(rl);
}

static void s_relay_answer(repl_t *r, r_relay_t *rl)
{
    repl_log(r, rl->unreached.n ? REPL_LOG_WARN : REPL_LOG_INFO, rl->parent, "emergency",
             "passed on to %zu child%s: %zu node%s of this branch applied it, %zu did not answer",
             rl->forwarded, rl->forwarded == 1 ? "" : "ren", rl->reached.n,
             rl->reached.n == 1 ? "" : "s", rl->unreached.n);
    s_push_ack(r, rl->parent, rl->parent_push, NULL, rl->applied, rl->forwarded, rl->lists,
               &rl->reached, &rl->unreached);
    s_relay_free(r, rl);
}

static void s_relay_child_done(repl_t *r, uint64_t relay, const char *child, bool ok,
                               const r_names_t *reached, const r_names_t *unreached)
{
    (void)child;
    (void)ok;
    for (r_relay_t *rl = r->relays; rl; rl = rl->next) {
        if (rl->id != relay)
            continue;
        for (size_t i = 0; i < reached->n; i++)
            s_names_add(&rl->reached, reached->v[i]);
        for (size_t i = 0; i < unreached->n; i++)
            s_names_add(&rl->unreached, unreached->v[i]);
        if (rl->pending && --rl->pending == 0)
            s_relay_answer(r, rl);
        return;
    }
}

static void s_on_push(repl_t *r, const char *peer, const void *buf, size_t len)
{
    store_mpr_t rd;
    store_mpr_init(&rd, buf, len);
    uint64_t id = 0, budget = R_PUSH_TIMEOUT_MS;
    bool emergency = false;
    uint32_t n = 0, fields = store_mpr_array(&rd);
    if (fields == 5 || fields == 6) {
        store_mpr_uint(&rd);
        store_mpr_uint(&rd);
        id = store_mpr_uint(&rd);
        emergency = store_mpr_bool(&rd);
        n = store_mpr_array(&rd);
    }
    unsigned dir = repl_dir_from(r, peer);
    const char *why = NULL;
    if (store_mpr_error(&rd) || (fields != 5 && fields != 6) || n > R_PUSH_MAX_OBJECTS)
        why = "malformed push";
    else if (!dir || dir == RULES_SIDE || (emergency && dir != RULES_DOWN))
        why = "pushes of that kind do not come from that side";
    s_papply_t a = {.objs = rd.mpr_p + rd.mpr_pos, .len = len - rd.mpr_pos, .n = n, .dir = dir};
    if (!why && fields == 6) {
        /* the budget follows the objects: skip them to read it */
        store_mpr_t sk = rd;
        for (uint32_t i = 0; i < n && !store_mpr_error(&sk); i++) {
            size_t skip;
            store_mpr_raw(&sk, &skip);
        }
        a.len = sk.mpr_pos - rd.mpr_pos;
        budget = store_mpr_uint(&sk);
        if (store_mpr_done(&sk))
            why = "malformed push";
    }
    a.branch = repl_branch(r, dir == RULES_UP ? peer : NULL);
    int err = why ? HS_EPROTO : store_write(r->store, s_papply_txn, &a);
    if (err && !why)
        why = hs_strerror(err);
    if (!err && a.raised)
        repl_events_pump(r);
    repl_log(r, why ? REPL_LOG_WARN : REPL_LOG_INFO, peer, emergency ? "emergency" : "push",
             "%s: %u objects, %llu applied%s%s", why ? "refused" : "received", n,
             (unsigned long long)a.applied, why ? ": " : "", why ? why : "");
    if (why || !emergency) {
        s_push_ack(r, peer, id, why, a.applied, 0, fields == 6, NULL, NULL);
        return;
    }
    /* pass it on to our children; acknowledge when they have answered */
    r_relay_t *rl = calloc(1, sizeof(*rl));
    if (!rl) {
        s_push_ack(r, peer, id, "out of memory", a.applied, 0, fields == 6, NULL, NULL);
        return;
    }
    rl->id = ++r->next_id;
    snprintf(rl->parent, sizeof(rl->parent), "%s", peer);
    rl->parent_push = id;
    rl->applied = a.applied;
    rl->lists = fields == 6;
    rl->next = r->relays;
    r->relays = rl;
    s_names_add(&rl->reached, store_node_name(r->store));
    uint64_t child_budget =
        budget > R_RELAY_MIN_MS + R_RELAY_MARGIN_MS ? budget - R_RELAY_MARGIN_MS : R_RELAY_MIN_MS;
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
            if (r->io.io_dir_to(r->io.io_ctx, list[i]) != RULES_DOWN)
                continue;
            size_t sent = 0;
            if (r->io.io_peer_up(r->io.io_ctx, list[i]) &&
                s_send_push(r, t, &a.got, list[i], RULES_DOWN, true, 0, rl->id, child_budget,
                            &sent) == HS_OK &&
                sent) {
                rl->forwarded++;
                rl->pending++;
            } else {
                s_names_branch(r, &rl->unreached, list[i]); /* down, or nothing for it */
            }
        }
        store_txn_abort(&t);
    }
    if (!rl->pending)
        s_relay_answer(r, rl);
}

static void s_on_push_ack(repl_t *r, const char *peer, const void *buf, size_t len)
{
    store_mpr_t rd;
    store_mpr_init(&rd, buf, len);
    uint32_t fields = store_mpr_array(&rd);
    if (fields != 7 && fields != 9)
        return;
    store_mpr_uint(&rd);
    store_mpr_uint(&rd);
    uint64_t id = store_mpr_uint(&rd);
    bool ok = store_mpr_bool(&rd);
    char why[REPL_WHY_MAX];
    store_mpr_str(&rd, why, sizeof(why));
    uint64_t applied = store_mpr_uint(&rd);
    uint64_t forwarded = store_mpr_uint(&rd);
    r_names_t re = {0}, un = {0};
    if (fields == 9 && (repl_names_decode(&rd, &re) || repl_names_decode(&rd, &un))) {
        free(re.v);
        free(un.v);
        return;
    }
    if (store_mpr_done(&rd)) {
        free(re.v);
        free(un.v);
        return;
    }
    for (r_push_t *p = r->pushes; p; p = p->next) {
        if (p->id == id && !strcmp(p->peer, peer)) {
            s_push_done(r, p, ok, applied, forwarded, ok ? NULL : why, &re, &un);
            break;
        }
    }
    free(re.v);
    free(un.v);
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
        if (now > p->started_ms + p->timeout_ms) {
            char why[64];
            snprintf(why, sizeof(why), "no acknowledgement within %llu ms",
                     (unsigned long long)p->timeout_ms);
            s_push_done(r, p, false, 0, 0, why, NULL, NULL);
        }
    }
}

void repl_push_peer_down(repl_t *r, const char *peer)
{
    for (r_push_t *p = r->pushes, *next; p; p = next) {
        next = p->next;
        if (!strcmp(p->peer, peer))
            s_push_done(r, p, false, 0, 0, "the link went down", NULL, NULL);
    }
}

void repl_push_free_all(repl_t *r)
{
    while (r->pushes) {
        r_push_t *p = r->pushes;
        r->pushes = p->next;
        free(p);
    }
    while (r->relays)
        s_relay_free(r, r->relays);
}
