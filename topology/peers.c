#include "topology/peers.h"

#include "store/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_prefix(int role)
{
    switch (role) {
    case TOPO_ROLE_PARENT:
        return "parent/";
    case TOPO_ROLE_CHILD:
        return "child/";
    case TOPO_ROLE_DEST:
        return "dest/";
    case TOPO_ROLE_SOURCE:
        return "source/";
    default:
        return "";
    }
}

static size_t s_key(char *k, size_t cap, int role, const char *name)
{
    int n = snprintf(k, cap, "%s%s", s_prefix(role), name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

void topo_peer_clear(topo_peer_t *p)
{
    free(p->pe_rel);
    p->pe_rel = NULL;
    p->pe_nrel = 0;
}

int topo_peer_encode(const topo_peer_t *p, uint8_t **out, size_t *len)
{
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 6);
    store_mpw_uint(&w, (uint64_t)p->pe_role);
    store_mpw_str(&w, p->pe_name);
    store_mpw_str(&w, p->pe_key);
    store_mpw_str(&w, p->pe_endpoint);
    store_mpw_uint(&w, p->pe_since);
    store_mpw_array(&w, (uint32_t)p->pe_nrel);
    for (size_t i = 0; i < p->pe_nrel; i++) {
        store_mpw_array(&w, 3);
        store_mpw_str(&w, p->pe_rel[i].rel_name);
        store_mpw_str(&w, p->pe_rel[i].rel_key);
        store_mpw_str(&w, p->pe_rel[i].rel_parent);
    }
    int err = store_mpw_error(&w);
    if (err) {
        store_mpw_free(&w);
        return err;
    }
    *out = w.mpw_buf;
    *len = w.mpw_len;
    return HS_OK;
}

int topo_peer_decode(const void *buf, size_t len, topo_peer_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 6)
        return HS_EMALF;
    out->pe_role = (int)store_mpr_uint(&r);
    store_mpr_str(&r, out->pe_name, sizeof(out->pe_name));
    store_mpr_str(&r, out->pe_key, sizeof(out->pe_key));
    store_mpr_str(&r, out->pe_endpoint, sizeof(out->pe_endpoint));
    out->pe_since = store_mpr_uint(&r);
    uint32_t n = store_mpr_array(&r);
    if (store_mpr_error(&r) || n > TOPO_REL_MAX)
        return HS_EMALF;
    if (n) {
        out->pe_rel = calloc(n, sizeof(*out->pe_rel));
        if (!out->pe_rel)
            return HS_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (store_mpr_array(&r) != 3) { /* a relative is [name, key, parent] */
            topo_peer_clear(out);
            return HS_EMALF;
        }
        store_mpr_str(&r, out->pe_rel[i].rel_name, sizeof(out->pe_rel[i].rel_name));
        store_mpr_str(&r, out->pe_rel[i].rel_key, sizeof(out->pe_rel[i].rel_key));
        store_mpr_str(&r, out->pe_rel[i].rel_parent, sizeof(out->pe_rel[i].rel_parent));
    }
    out->pe_nrel = n;
    if (store_mpr_done(&r) || out->pe_role < TOPO_ROLE_PARENT || out->pe_role > TOPO_ROLE_SOURCE ||
        !out->pe_name[0]) {
        topo_peer_clear(out);
        return HS_EMALF;
    }
    return HS_OK;
}

int topo_peer_put(store_txn_t *t, const topo_peer_t *p)
{
    char k[80];
    size_t kl = s_key(k, sizeof(k), p->pe_role, p->pe_name);
    if (!kl)
        return HS_EINVAL;
    uint8_t *v;
    size_t vl;
    int err = topo_peer_encode(p, &v, &vl);
    if (err)
        return err;
    err = store_kv_put(t, STORE_T_PEERS, k, kl, v, vl);
    free(v);
    return err;
}

int topo_peer_get(store_txn_t *t, int role, const char *name, topo_peer_t *out)
{
    char k[80];
    size_t kl = s_key(k, sizeof(k), role, name);
    if (!kl)
        return HS_ENOTFOUND;
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_PEERS, k, kl, &v, &vl);
    if (err)
        return err;
    return topo_peer_decode(v, vl, out);
}

int topo_peer_del(store_txn_t *t, int role, const char *name)
{
    char k[80];
    size_t kl = s_key(k, sizeof(k), role, name);
    if (!kl)
        return HS_ENOTFOUND;
    return store_kv_del(t, STORE_T_PEERS, k, kl);
}

typedef struct s_each {
    topo_peer_cb cb;
    void *ctx;
    size_t count;
} s_each_t;

static int s_each_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    s_each_t *e = ctx;
    topo_peer_t p;
    if (topo_peer_decode(v, vl, &p))
        return 0; /* a damaged entry is skipped, not fatal */
    e->count++;
    int r = e->cb ? e->cb(e->ctx, &p) : 0;
    topo_peer_clear(&p);
    return r;
}

int topo_peer_each(store_txn_t *t, int role, topo_peer_cb cb, void *ctx)
{
    const char *pre = s_prefix(role);
    s_each_t e = {cb, ctx, 0};
    return store_kv_scan(t, STORE_T_PEERS, pre, strlen(pre), s_each_one, &e);
}

int topo_peer_count(store_txn_t *t, int role, size_t *out)
{
    const char *pre = s_prefix(role);
    s_each_t e = {NULL, NULL, 0};
    int err = store_kv_scan(t, STORE_T_PEERS, pre, strlen(pre), s_each_one, &e);
    *out = e.count;
    return err;
}

static int s_first(void *ctx, const topo_peer_t *p)
{
    topo_peer_t *out = ctx;
    *out = *p;
    out->pe_rel = NULL;
    out->pe_nrel = 0;
    if (p->pe_nrel) {
        out->pe_rel = malloc(p->pe_nrel * sizeof(*p->pe_rel));
        if (!out->pe_rel)
            return HS_ENOMEM;
        memcpy(out->pe_rel, p->pe_rel, p->pe_nrel * sizeof(*p->pe_rel));
        out->pe_nrel = p->pe_nrel;
    }
    return 1;
}

int topo_peer_parent(store_txn_t *t, topo_peer_t *out)
{
    memset(out, 0, sizeof(*out));
    int err = topo_peer_each(t, TOPO_ROLE_PARENT, s_first, out);
    if (err)
        return err;
    return out->pe_name[0] ? HS_OK : HS_ENOTFOUND;
}

/* ---- rules -------------------------------------------------------------- */

typedef struct s_find {
    const char *name;
    const char *key;
    const char *hit; /* which child matched, or whose subtree holds it */
    bool direct;
} s_find_t;

static int s_find_child(void *ctx, const topo_peer_t *p)
{
    s_find_t *f = ctx;
    if (!strcmp(p->pe_key, f->key) || !strcmp(p->pe_name, f->name)) {
        f->hit = "child";
        f->direct = true;
        return 1;
    }
    for (size_t i = 0; i < p->pe_nrel; i++) {
        if (!strcmp(p->pe_rel[i].rel_key, f->key)) {
            f->hit = "subtree";
            return 1;
        }
    }
    return 0;
}

/* A node of that name in a child's branch (the child itself or below it):
 * which child's branch. */
typedef struct s_find_name {
    const char *name;
    char branch[STORE_NAME_MAX + 1]; /* "" = none */
} s_find_name_t;

static int s_find_name(void *ctx, const topo_peer_t *p)
{
    s_find_name_t *f = ctx;
    bool hit = !strcmp(p->pe_name, f->name);
    for (size_t i = 0; i < p->pe_nrel && !hit; i++)
        hit = !strcmp(p->pe_rel[i].rel_name, f->name);
    if (hit)
        snprintf(f->branch, sizeof(f->branch), "%s", p->pe_name);
    return hit ? 1 : 0;
}

int topo_check_add_child(store_txn_t *t, const topo_identity_t *me, const char *name,
                         const char *key, bool allow_more, const char **why)
{
    static char msg[384];
    *why = NULL;
    if (!topo_name_ok(name)) {
        *why = "the node's name is not a valid node name (1 to 64 of A-Z a-z 0-9 _ . -)";
        return HS_ETOPO;
    }
    if (!strcmp(key, me->id_public)) {
        *why = "a node cannot be its own child";
        return HS_ETOPO;
    }
    if (!strcmp(name, me->id_name)) {
        /* another node (its own key) with this node's name: say where the
         * name is used, like the other name refusals */
        topo_peer_t up;
        int perr = topo_peer_parent(t, &up);
        if (perr != HS_OK && perr != HS_ENOTFOUND)
            return perr;
        if (perr == HS_OK) {
            snprintf(msg, sizeof(msg),
                     "the name '%s' is already used in this hierarchy (it is the name of this "
                     "node, a node under '%s'): node names must be unique across the hierarchy",
                     name, up.pe_name);
            topo_peer_clear(&up);
        } else {
            snprintf(msg, sizeof(msg),
                     "the name '%s' is already used in this hierarchy (it is the name of this "
                     "node, the root): node names must be unique across the hierarchy",
                     name);
        }
        *why = msg;
        return HS_ETOPO;
    }
    s_find_t f = {name, key, NULL, false};
    int err = topo_peer_each(t, TOPO_ROLE_CHILD, s_find_child, &f);
    if (err)
        return err;
    if (f.hit && f.direct) {
        snprintf(msg, sizeof(msg), "'%s' is already a child of this node", name);
        *why = msg;
        return HS_ETOPO;
    }
    topo_peer_t parent;
    err = topo_peer_parent(t, &parent);
    if (err == HS_OK) {
        bool cycle = !strcmp(parent.pe_key, key);
        bool named = !cycle && !strcmp(parent.pe_name, name); /* another node, same name */
        size_t depth = 1;
        for (size_t i = 0; !cycle && !named && i < parent.pe_nrel; i++) {
            if (!strcmp(parent.pe_rel[i].rel_key, key) || !strcmp(parent.pe_rel[i].rel_name, name)) {
                cycle = !strcmp(parent.pe_rel[i].rel_key, key);
                named = !cycle;
                depth = parent.pe_nrel - i; /* the path ends with the parent */
            }
        }
        topo_peer_clear(&parent);
        if (named) {
            snprintf(msg, sizeof(msg),
                     "the name '%s' is already used in this hierarchy, by an ancestor of "
                     "this node (%zu level%s up) with another key: names are unique across "
                     "the hierarchy; init the new node under another name",
                     name, depth, depth == 1 ? "" : "s");
            *why = msg;
            return HS_ETOPO;
        }
        if (cycle) {
            snprintf(msg, sizeof(msg),
                     "'%s' is an ancestor of this node (%zu level%s up): linking it as a child "
                     "would make a cycle",
                     name, depth, depth == 1 ? "" : "s");
            *why = msg;
            return HS_ETOPO;
        }
    } else if (err != HS_ENOTFOUND) {
        return err;
    }
    size_t n = 0;
    err = topo_peer_count(t, TOPO_ROLE_CHILD, &n);
    if (err)
        return err;
    if (n >= TOPO_MAX_CHILDREN && !allow_more) {
        snprintf(msg, sizeof(msg),
                 "this node already has %zu children, the recommended maximum; pass "
                 "--allow-more-children to override",
                 n);
        *why = msg;
        return HS_ETOPO;
    }
    return HS_OK;
}

int topo_check_accept_parent(store_txn_t *t, const topo_identity_t *me, const char *name,
                             const char *key, const topo_rel_t *path, size_t npath,
                             const char **why)
{
    static char msg[256];
    *why = NULL;
    if (!topo_name_ok(name)) {
        *why = "the node's name is not a valid node name (1 to 64 of A-Z a-z 0-9 _ . -)";
        return HS_ETOPO;
    }
    if (!strcmp(key, me->id_public) || !strcmp(name, me->id_name)) {
        *why = "a node cannot be its own parent";
        return HS_ETOPO;
    }
    topo_peer_t parent;
    int err = topo_peer_parent(t, &parent);
    if (err == HS_OK) {
        snprintf(msg, sizeof(msg),
                 "this node already has a parent ('%s'); run 'hsync hierarchy leave' on it first",
                 parent.pe_name);
        topo_peer_clear(&parent);
        *why = msg;
        return HS_ETOPO;
    }
    if (err != HS_ENOTFOUND)
        return err;
    for (size_t i = 0; i < npath; i++) {
        if (!strcmp(path[i].rel_key, me->id_public)) {
            *why = "this node is an ancestor of the would-be parent: the link would make a cycle";
            return HS_ETOPO;
        }
    }
    s_find_t f = {name, key, NULL, false};
    err = topo_peer_each(t, TOPO_ROLE_CHILD, s_find_child, &f);
    if (err)
        return err;
    if (f.hit) {
        snprintf(msg, sizeof(msg),
                 "'%s' is %s of this node: making it the parent would make a cycle", name,
                 f.direct ? "a child" : "in the subtree");
        *why = msg;
        return HS_ETOPO;
    }
    /* node names are unique across a hierarchy: none of the would-be
     * parent's path may be named like this node or a node below it */
    for (size_t i = 0; i < npath; i++) {
        s_find_name_t g = {path[i].rel_name, ""};
        if (!strcmp(path[i].rel_name, me->id_name)) {
            snprintf(msg, sizeof(msg),
                     "the name '%s' is already used in that hierarchy (an ancestor of '%s'): "
                     "node names must be unique across the hierarchy",
                     me->id_name, name);
            *why = msg;
            return HS_ETOPO;
        }
        err = topo_peer_each(t, TOPO_ROLE_CHILD, s_find_name, &g);
        if (err)
            return err;
        if (g.branch[0]) {
            snprintf(msg, sizeof(msg),
                     "the name '%s' is used both in that hierarchy (an ancestor of '%s') and "
                     "in the branch of '%s' below this node: node names must be unique across "
                     "the hierarchy",
                     path[i].rel_name, name, g.branch);
            *why = msg;
            return HS_ETOPO;
        }
    }
    return HS_OK;
}
