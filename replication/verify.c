/*
 * verify.c - `hsync verify`: is every node below this one in sync with its
 * parent, scope by scope? (frames VERIFY / VERIFY_ANS, replication/proto.h)
 *
 * The node where the command runs computes, for each of its children and
 * each enabled hierarchy rule and direction, its side of the link's scope:
 * the object count, SHA-256 of the scope's bucket vector (the same vectors
 * a reconcile compares, replication/buckets.h) and the count and bucket sum
 * per owner, and sends them in a VERIFY. The child computes its own side,
 * compares (in sync: same count and digest; otherwise the owners whose
 * objects differ), starts a reconcile of each differing scope when asked to
 * repair, and asks its own children the same way, hop by hop, with a budget
 * R_VERIFY_MARGIN_MS shorter than its own. It answers VERIFY_ANS with its
 * verdicts and those of every node below it when all have answered and its
 * repairs have ended, or when its budget runs out: a child that is down or
 * did not answer in time is reported "not reached", with its subtree. So the
 * command returns within its deadline whatever is down.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* low-level SHA256 */
#include "replication/engine_int.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_VERIFY_MARGIN_MS 1500
#define R_VERIFY_MIN_MS 1000
/* Requests of repair runs: this bit, the verification's id, the verdict. */
#define R_VREQ_BIT (1ull << 63)
#define R_VREQ_IDX_BITS 6 /* REPL_VERIFY_SCOPES_MAX = 64 */

typedef struct r_vchild {
    char name[STORE_NAME_MAX + 1];
    uint64_t id; /* the id of the VERIFY sent to it */
    bool done;
} r_vchild_t;

struct r_verify {
    struct r_verify *next;
    uint64_t id;
    char parent[STORE_NAME_MAX + 1]; /* "" where the command runs */
    uint64_t parent_id;
    uint64_t req;              /* the command's request (where it runs) */
    uint64_t deadline, budget; /* repl_mono_ms; ms */
    bool repair;
    repl_vnode_t self;   /* this node's verdicts (not where the command runs) */
    repl_vnode_t *nodes; /* what the children answered */
    size_t nnodes, capnodes;
    r_vchild_t *children;
    size_t nchildren, pending;
    size_t repairs; /* reconciles started and not ended */
};

/* ---- one side of a scope --------------------------------------------------- */

typedef struct s_side {
    repl_vscope_t *sc;
    int err;
} s_side_t;

static int s_side_one(void *ctx, const store_obj_t *o, uint64_t e)
{
    s_side_t *sd = ctx;
    repl_vscope_t *sc = sd->sc;
    for (size_t i = 0; i < sc->vs_nowner; i++) {
        if (!strcmp(sc->vs_owners[i].vo_name, o->owner)) {
            sc->vs_owners[i].vo_count++;
            sc->vs_owners[i].vo_sum += e;
            return 0;
        }
    }
    if (sc->vs_nowner >= REPL_VERIFY_OWNERS_MAX)
        return 0; /* the digest still covers them */
    repl_vowner_t *ow = realloc(sc->vs_owners, (sc->vs_nowner + 1) * sizeof(*ow));
    if (!ow) {
        sd->err = HS_ENOMEM;
        return 0;
    }
    sc->vs_owners = ow;
    repl_vowner_t *n = &ow[sc->vs_nowner++];
    snprintf(n->vo_name, sizeof(n->vo_name), "%s", o->owner);
    n->vo_count = 1;
    n->vo_sum = e;
    return 0;
}

static int s_side(repl_t *r, store_txn_t *t, const rules_rule_t *ru, unsigned dir, int side,
                  const rules_names_t *names, repl_vscope_t *sc)
{
    snprintf(sc->vs_rule, sizeof(sc->vs_rule), "%s", ru->ru_name);
    sc->vs_dir = dir;
    repl_buckets_t *b = malloc(sizeof(*b));
    uint8_t *wire = malloc(REPL_BUCKETS_WIRE);
    s_side_t sd = {sc, HS_OK};
    int err = b && wire ? repl_buckets_scan(t, ru, dir, side, names, b, r->io.io_keepalive,
                                            r->io.io_ctx, s_side_one, &sd)
                        : HS_ENOMEM;
    if (!err)
        err = sd.err;
    if (!err) {
        sc->vs_count = 0;
        for (unsigned i = 0; i < REPL_BUCKETS; i++)
            sc->vs_count += b->bk_count[i];
        repl_buckets_encode(b, wire);
        SHA256(wire, REPL_BUCKETS_WIRE, sc->vs_digest);
    }
    free(b);
    free(wire);
    return err;
}

/* Our side of every scope of the link to child `child`, as its parent. The
 * down side is the same for every child (what we send down): computed once
 * per verification, in down (a scope per rule). */
typedef struct s_scopes {
    repl_t *r;
    store_txn_t *t;
    const char *child;
    repl_vreq_t *q;
    repl_vreq_t *down;
    int err;
} s_scopes_t;

static int s_scope_copy(repl_vscope_t *dst, const repl_vscope_t *src)
{
    *dst = *src;
    dst->vs_owners = NULL;
    if (src->vs_nowner && !(dst->vs_owners = malloc(src->vs_nowner * sizeof(*src->vs_owners)))) {
        dst->vs_nowner = 0;
        return HS_ENOMEM;
    }
    if (src->vs_nowner)
        memcpy(dst->vs_owners, src->vs_owners, src->vs_nowner * sizeof(*src->vs_owners));
    return HS_OK;
}

static int s_scope_rule(void *ctx, const rules_rule_t *ru)
{
    s_scopes_t *ss = ctx;
    if (!ru->ru_enabled || !(ru->ru_dirs & (RULES_UP | RULES_DOWN)) ||
        !rules_applies_to(ru, ss->child))
        return 0;
    for (unsigned dir = RULES_DOWN; dir <= RULES_UP; dir <<= 1) {
        if (!(ru->ru_dirs & dir) || ss->q->vq_nscope >= REPL_VERIFY_SCOPES_MAX)
            continue;
        repl_vscope_t *sc = &ss->q->vq_scopes[ss->q->vq_nscope++];
        repl_vscope_t *cached = NULL;
        for (size_t i = 0; dir == RULES_DOWN && i < ss->down->vq_nscope && !cached; i++)
            if (!strcmp(ss->down->vq_scopes[i].vs_rule, ru->ru_name))
                cached = &ss->down->vq_scopes[i];
        if (cached) {
            if ((ss->err = s_scope_copy(sc, cached)))
                return 1;
            continue;
        }
        /* down: what we send (our branch's view); up: what the child's
         * branch sends us */
        rules_names_t names = repl_branch(ss->r, dir == RULES_DOWN ? NULL : ss->child);
        ss->err = s_side(ss->r, ss->t, ru, dir, dir == RULES_DOWN ? REPL_SIDE_SEND : REPL_SIDE_RECV,
                         &names, sc);
        if (!ss->err && dir == RULES_DOWN && ss->down->vq_nscope < REPL_VERIFY_SCOPES_MAX)
            ss->err = s_scope_copy(&ss->down->vq_scopes[ss->down->vq_nscope++], sc);
        if (ss->err)
            return 1;
    }
    return 0;
}

/* t: one snapshot for every child; down: the cache of down sides (its
 * vq_scopes allocated with room for REPL_VERIFY_SCOPES_MAX). */
static int s_parent_side(repl_t *r, store_txn_t *t, const char *child, repl_vreq_t *down,
                         repl_vreq_t *q)
{
    q->vq_nscope = 0;
    if (!(q->vq_scopes = calloc(REPL_VERIFY_SCOPES_MAX, sizeof(*q->vq_scopes))))
        return HS_ENOMEM;
    s_scopes_t ss = {r, t, child, q, down, HS_OK};
    int err = rules_each(t, s_scope_rule, &ss);
    return err ? err : ss.err;
}

/* ---- state ------------------------------------------------------------------ */

static void s_free(repl_t *r, r_verify_t *v)
{
    for (r_verify_t **p = &r->verifies; *p; p = &(*p)->next) {
        if (*p == v) {
            *p = v->next;
            break;
        }
    }
    repl_vnodes_free(v->nodes, v->nnodes);
    for (size_t i = 0; i < v->self.vn_nverdict; i++)
        free(v->self.vn_verdicts[i].vv_owners.v);
    free(v->self.vn_verdicts);
    free(v->children);
    free(v);
}

void repl_verify_free_all(repl_t *r)
{
    while (r->verifies)
        s_free(r, r->verifies);
}

static repl_vnode_t *s_node_add(r_verify_t *v)
{
    if (v->nnodes >= REPL_VERIFY_NODES_MAX - 1)
        return NULL;
    if (v->nnodes == v->capnodes) {
        size_t cap = v->capnodes ? v->capnodes * 2 : 16;
        repl_vnode_t *n = realloc(v->nodes, cap * sizeof(*n));
        if (!n)
            return NULL;
        v->nodes = n;
        v->capnodes = cap;
    }
    repl_vnode_t *n = &v->nodes[v->nnodes++];
    memset(n, 0, sizeof(*n));
    return n;
}

/* child (parent: this node) and every node we know below it: not reached */
static void s_unreached(repl_t *r, r_verify_t *v, const char *child, const char *why)
{
    const char *const *names = NULL;
    size_t k = r->io.io_branch(r->io.io_ctx, child, &names);
    char(*copy)[STORE_NAME_MAX + 1] = k ? calloc(k, sizeof(*copy)) : NULL;
    for (size_t i = 0; copy && i < k; i++)
        snprintf(copy[i], sizeof(copy[i]), "%s", names[i]);
    if (!copy) { /* out of memory, or the link knows nothing: the child alone */
        k = 1;
        copy = calloc(1, sizeof(*copy));
        if (!copy)
            return;
        snprintf(copy[0], sizeof(copy[0]), "%s", child);
    }
    for (size_t i = 0; i < k; i++) {
        repl_vnode_t *n = s_node_add(v);
        if (!n)
            break;
        snprintf(n->vn_name, sizeof(n->vn_name), "%s", copy[i]);
        if (i == 0)
            snprintf(n->vn_parent, sizeof(n->vn_parent), "%s", store_node_name(r->store));
        snprintf(n->vn_why, sizeof(n->vn_why), "%s", why);
    }
    free(copy);
}

static void s_finish(repl_t *r, r_verify_t *v)
{
    if (v->parent[0]) {
        store_mpw_reset(&r->w);
        repl_vans_header(&r->w, v->parent_id, (uint32_t)(1 + v->nnodes));
        repl_vnode_encode(&r->w, &v->self);
        for (size_t i = 0; i < v->nnodes; i++)
            repl_vnode_encode(&r->w, &v->nodes[i]);
        int err = store_mpw_error(&r->w);
        if (!err)
            err = r->io.io_send(r->io.io_ctx, v->parent, r->w.mpw_buf, r->w.mpw_len);
        size_t differ = 0;
        for (size_t i = 0; i < v->self.vn_nverdict; i++)
            differ += !v->self.vn_verdicts[i].vv_ok;
        repl_log(r, differ || err ? REPL_LOG_WARN : REPL_LOG_INFO, v->parent, "verify",
                 "%zu of %zu scopes of the link in sync%s; answered for %zu node%s below%s%s",
                 v->self.vn_nverdict - differ, v->self.vn_nverdict,
                 v->repair && differ ? " (repair asked)" : "", v->nnodes, v->nnodes == 1 ? "" : "s",
                 err ? ": could not send the answer: " : "", err ? hs_strerror(err) : "");
    } else if (r->io.io_verify_done) {
        r->io.io_verify_done(r->io.io_ctx, v->req, v->nodes, v->nnodes);
    }
    s_free(r, v);
}

static void s_check(repl_t *r, r_verify_t *v)
{
    if (!v->pending && !v->repairs)
        s_finish(r, v);
}

/* ---- the verification --------------------------------------------------------- */

/* Ask every child (VERIFY with our side of its link); children that are
 * down are not reached at once. */
static void s_ask_children(repl_t *r, r_verify_t *v)
{
    const char *const *names = NULL;
    size_t np = r->io.io_peers(r->io.io_ctx, &names);
    char(*list)[STORE_NAME_MAX + 1] = np ? calloc(np, sizeof(*list)) : NULL;
    for (size_t i = 0; list && i < np; i++)
        snprintf(list[i], sizeof(list[i]), "%s", names[i]);
    if (list && !(v->children = calloc(np, sizeof(*v->children))))
        np = 0;
    repl_vreq_t down = {0};
    store_txn_t *t = NULL;
    int terr = np ? store_txn_begin(r->store, false, &t) : HS_OK;
    if (!terr && np && !(down.vq_scopes = calloc(REPL_VERIFY_SCOPES_MAX, sizeof(*down.vq_scopes))))
        terr = HS_ENOMEM;
    for (size_t i = 0; list && i < np; i++) {
        if (r->io.io_dir_to(r->io.io_ctx, list[i]) != RULES_DOWN)
            continue;
        if (!r->io.io_peer_up(r->io.io_ctx, list[i])) {
            s_unreached(r, v, list[i], "the link to it is down");
            continue;
        }
        repl_vreq_t q = {.vq_id = ++r->next_id, .vq_budget_ms = v->budget, .vq_repair = v->repair};
        int err = terr ? terr : s_parent_side(r, t, list[i], &down, &q);
        if (!err) {
            store_mpw_reset(&r->w);
            repl_vreq_encode(&r->w, &q);
            err = store_mpw_error(&r->w);
            if (!err)
                err = r->io.io_send(r->io.io_ctx, list[i], r->w.mpw_buf, r->w.mpw_len);
        }
        repl_vreq_free(&q);
        if (err) {
            char why[REPL_WHY_MAX];
            snprintf(why, sizeof(why), "could not ask it: %s", hs_strerror(err));
            s_unreached(r, v, list[i], why);
            continue;
        }
        r_vchild_t *c = &v->children[v->nchildren++];
        snprintf(c->name, sizeof(c->name), "%s", list[i]);
        c->id = q.vq_id;
        v->pending++;
    }
    if (t)
        store_txn_abort(&t);
    repl_vreq_free(&down);
    free(list);
}

static r_verify_t *s_new(repl_t *r, uint64_t budget_ms, bool repair)
{
    r_verify_t *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->id = ++r->next_id;
    v->repair = repair;
    v->deadline = repl_mono_ms() + budget_ms;
    v->budget = budget_ms > R_VERIFY_MIN_MS + R_VERIFY_MARGIN_MS ? budget_ms - R_VERIFY_MARGIN_MS
                                                                 : R_VERIFY_MIN_MS;
    v->next = r->verifies;
    r->verifies = v;
    return v;
}

int repl_verify(repl_t *r, uint64_t req, bool repair, uint64_t budget_ms)
{
    r_verify_t *v = s_new(r, budget_ms, repair);
    if (!v)
        return HS_ENOMEM;
    v->req = req;
    s_ask_children(r, v);
    s_check(r, v);
    return HS_OK;
}

/* Compare our side of one scope with the parent's; start its repair. */
static void s_compare(repl_t *r, r_verify_t *v, store_txn_t *t, const repl_vscope_t *ps,
                      repl_vverdict_t *vv, size_t idx)
{
    snprintf(vv->vv_rule, sizeof(vv->vv_rule), "%s", ps->vs_rule);
    vv->vv_dir = ps->vs_dir;
    vv->vv_parent_count = ps->vs_count;
    rules_rule_t ru;
    if (rules_get(t, ps->vs_rule, &ru) != HS_OK || !ru.ru_enabled || !(ru.ru_dirs & ps->vs_dir)) {
        snprintf(vv->vv_repair, sizeof(vv->vv_repair),
                 "the rule is missing or disabled on this node (hsync rule ls)");
        return;
    }
    repl_vscope_t mine = {0};
    int err;
    if (ps->vs_dir == RULES_UP) {
        rules_names_t names = repl_branch(r, NULL);
        err = s_side(r, t, &ru, RULES_UP, REPL_SIDE_SEND, &names, &mine);
    } else {
        r_names_t own = {0};
        err = repl_recv_down_names(r, &own);
        const char **ptrs = err ? NULL : calloc(own.n + 1, sizeof(*ptrs));
        if (!err && !ptrs)
            err = HS_ENOMEM;
        for (size_t i = 0; !err && i < own.n; i++)
            ptrs[i] = own.v[i];
        rules_names_t names = {own.n, ptrs};
        if (!err)
            err = s_side(r, t, &ru, RULES_DOWN, REPL_SIDE_RECV, &names, &mine);
        free(ptrs);
        free(own.v);
    }
    if (err) {
        snprintf(vv->vv_repair, sizeof(vv->vv_repair), "could not compute this side: %s",
                 hs_strerror(err));
        free(mine.vs_owners);
        return;
    }
    vv->vv_count = mine.vs_count;
    vv->vv_ok = mine.vs_count == ps->vs_count && !memcmp(mine.vs_digest, ps->vs_digest, 32);
    /* owners whose objects differ: either side's, compared */
    for (int pass = 0; !vv->vv_ok && pass < 2; pass++) {
        const repl_vscope_t *a = pass ? &mine : ps, *b = pass ? ps : &mine;
        for (size_t i = 0; i < a->vs_nowner; i++) {
            const repl_vowner_t *oa = &a->vs_owners[i], *ob = NULL;
            for (size_t k = 0; k < b->vs_nowner && !ob; k++)
                if (!strcmp(b->vs_owners[k].vo_name, oa->vo_name))
                    ob = &b->vs_owners[k];
            if (ob && ob->vo_count == oa->vo_count && ob->vo_sum == oa->vo_sum)
                continue;
            bool have = false;
            for (size_t k = 0; k < vv->vv_owners.n && !have; k++)
                have = !strcmp(vv->vv_owners.v[k], oa->vo_name);
            if (have || vv->vv_owners.n >= REPL_VERIFY_OWNERS_MAX)
                continue;
            char(*nv)[STORE_NAME_MAX + 1] =
                realloc(vv->vv_owners.v, (vv->vv_owners.n + 1) * sizeof(*nv));
            if (!nv)
                break;
            vv->vv_owners.v = nv;
            snprintf(nv[vv->vv_owners.n++], sizeof(nv[0]), "%s", oa->vo_name);
        }
    }
    free(mine.vs_owners);
    if (vv->vv_ok || !v->repair)
        return;
    /* repair: a reconcile of that scope, from whichever side sends it */
    uint64_t req = R_VREQ_BIT | (v->id << R_VREQ_IDX_BITS) | idx;
    size_t queued = 0;
    if (ps->vs_dir == RULES_DOWN) {
        err = repl_request(r, v->parent, ps->vs_rule, REPL_RECONCILE, req);
        queued = err ? 0 : 1;
    } else {
        err = repl_start(r, v->parent, ps->vs_rule, REPL_RECONCILE, false, req, &queued);
    }
    if (err)
        snprintf(vv->vv_repair, sizeof(vv->vv_repair), "could not start a reconcile: %s",
                 hs_strerror(err));
    else
        snprintf(vv->vv_repair, sizeof(vv->vv_repair),
                 "reconcile started; it had not ended by the deadline");
    v->repairs += queued;
}

static void s_on_verify(repl_t *r, const char *peer, const void *buf, size_t len)
{
    repl_vreq_t q;
    int err = repl_vreq_decode(buf, len, &q);
    if (err) {
        repl_log(r, REPL_LOG_WARN, peer, "bad-frame", "malformed verify request: %s",
                 hs_strerror(err));
        return;
    }
    if (r->io.io_dir_from(r->io.io_ctx, peer) != RULES_DOWN) {
        repl_log(r, REPL_LOG_WARN, peer, "verify-refused",
                 "a verify request comes from the parent only");
        repl_vreq_free(&q);
        return;
    }
    r_verify_t *v = s_new(r, q.vq_budget_ms, q.vq_repair);
    if (!v) {
        repl_vreq_free(&q);
        return;
    }
    snprintf(v->parent, sizeof(v->parent), "%s", peer);
    v->parent_id = q.vq_id;
    snprintf(v->self.vn_name, sizeof(v->self.vn_name), "%s", store_node_name(r->store));
    snprintf(v->self.vn_parent, sizeof(v->self.vn_parent), "%s", peer);
    v->self.vn_reached = true;
    if (q.vq_nscope && !(v->self.vn_verdicts = calloc(q.vq_nscope, sizeof(repl_vverdict_t))))
        snprintf(v->self.vn_why, sizeof(v->self.vn_why), "out of memory");
    store_txn_t *t = NULL;
    if (v->self.vn_verdicts && (err = store_txn_begin(r->store, false, &t)))
        snprintf(v->self.vn_why, sizeof(v->self.vn_why), "%s", hs_strerror(err));
    for (size_t i = 0; t && i < q.vq_nscope; i++) {
        v->self.vn_nverdict++;
        s_compare(r, v, t, &q.vq_scopes[i], &v->self.vn_verdicts[i], i);
    }
    if (t)
        store_txn_abort(&t);
    repl_vreq_free(&q);
    s_ask_children(r, v);
    s_check(r, v);
}

static void s_on_answer(repl_t *r, const char *peer, const void *buf, size_t len)
{
    uint64_t id;
    repl_vnode_t *nodes;
    size_t n;
    int err = repl_vans_decode(buf, len, &id, &nodes, &n);
    if (err) {
        repl_log(r, REPL_LOG_WARN, peer, "bad-frame", "malformed verify answer: %s",
                 hs_strerror(err));
        return;
    }
    for (r_verify_t *v = r->verifies; v; v = v->next) {
        for (size_t i = 0; i < v->nchildren; i++) {
            r_vchild_t *c = &v->children[i];
            if (c->done || c->id != id || strcmp(c->name, peer) != 0)
                continue;
            c->done = true;
            v->pending--;
            /* take the nodes over (the answer's first is the child itself) */
            size_t k = 0;
            for (; k < n; k++) {
                repl_vnode_t *dst = s_node_add(v);
                if (!dst)
                    break;
                *dst = nodes[k];
                memset(&nodes[k], 0, sizeof(nodes[k]));
            }
            repl_vnodes_free(nodes, n);
            s_check(r, v);
            return;
        }
    }
    repl_vnodes_free(nodes, n);
}

bool repl_verify_frame(repl_t *r, const char *peer, int type, const void *buf, size_t len)
{
    if (type == REPL_VERIFY)
        s_on_verify(r, peer, buf, len);
    else if (type == REPL_VERIFY_ANS)
        s_on_answer(r, peer, buf, len);
    else
        return false;
    return true;
}

void repl_verify_tick(repl_t *r)
{
    uint64_t now = repl_mono_ms();
    for (r_verify_t *v = r->verifies, *next; v; v = next) {
        next = v->next;
        if (now < v->deadline)
            continue;
        for (size_t i = 0; i < v->nchildren; i++) {
            if (v->children[i].done)
                continue;
            v->children[i].done = true;
            char why[REPL_WHY_MAX];
            snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)v->budget);
            s_unreached(r, v, v->children[i].name, why);
        }
        v->pending = 0;
        v->repairs = 0; /* their verdicts say they had not ended */
        s_finish(r, v);
    }
}

void repl_verify_peer_down(repl_t *r, const char *peer)
{
    for (r_verify_t *v = r->verifies, *next; v; v = next) {
        next = v->next;
        for (size_t i = 0; i < v->nchildren; i++) {
            if (v->children[i].done || strcmp(v->children[i].name, peer) != 0)
                continue;
            v->children[i].done = true;
            v->pending--;
            s_unreached(r, v, peer, "the link went down before it answered");
            s_check(r, v);
            break;
        }
    }
}

void repl_run_done(repl_t *r, const repl_summary_t *su)
{
    if (su->su_req & R_VREQ_BIT) {
        uint64_t id = (su->su_req & ~R_VREQ_BIT) >> R_VREQ_IDX_BITS;
        size_t idx = (size_t)(su->su_req & ((1u << R_VREQ_IDX_BITS) - 1));
        for (r_verify_t *v = r->verifies; v; v = v->next) {
            if (v->id != id || idx >= v->self.vn_nverdict)
                continue;
            repl_vverdict_t *vv = &v->self.vn_verdicts[idx];
            if (su->su_ok)
                snprintf(vv->vv_repair, sizeof(vv->vv_repair),
                         "reconciled: %llu object%s applied, %llu deleted",
                         (unsigned long long)su->su_applied, su->su_applied == 1 ? "" : "s",
                         (unsigned long long)su->su_deleted);
            else
                snprintf(vv->vv_repair, sizeof(vv->vv_repair), "the reconcile failed: %.200s",
                         su->su_error);
            if (v->repairs)
                v->repairs--;
            s_check(r, v);
            break;
        }
        /* the broker records the run, but no command waits for it there */
        repl_summary_t copy = *su;
        copy.su_req = 0;
        su = &copy;
        if (r->io.io_run_done)
            r->io.io_run_done(r->io.io_ctx, su);
        return;
    }
    if (r->io.io_run_done)
        r->io.io_run_done(r->io.io_ctx, su);
}
