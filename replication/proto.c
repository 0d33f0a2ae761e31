#include "replication/proto.h"

#include "topology/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *repl_mode_name(int mode)
{
    switch (mode) {
    case REPL_COMPLETE:
        return "complete";
    case REPL_DIFFERENTIAL:
        return "differential";
    case REPL_RECONCILE:
        return "reconcile";
    case REPL_RECOVER:
        return "recover";
    default:
        return "?";
    }
}

int repl_key_cmp(const repl_key_t *a, const repl_key_t *b)
{
    int c = strcmp(a->k_cls, b->k_cls);
    return c ? c : memcmp(a->k_guid.b, b->k_guid.b, 16);
}

static void s_key_encode(store_mpw_t *w, const repl_key_t *k)
{
    if (!k || !k->k_set) {
        store_mpw_nil(w);
        return;
    }
    store_mpw_array(w, 2);
    store_mpw_str(w, k->k_cls);
    store_mpw_bin(w, k->k_guid.b, 16);
}

static void s_key_decode(store_mpr_t *r, repl_key_t *k)
{
    memset(k, 0, sizeof(*k));
    if (store_mpr_nil(r))
        return;
    if (store_mpr_array(r) != 2) {
        r->mpr_err = HS_EMALF;
        return;
    }
    store_mpr_str(r, k->k_cls, sizeof(k->k_cls));
    size_t n;
    const uint8_t *g = store_mpr_bytes(r, &n);
    if (!g || n != 16) {
        r->mpr_err = HS_EMALF;
        return;
    }
    memcpy(k->k_guid.b, g, 16);
    k->k_set = true;
}

static void s_strs_encode(store_mpw_t *w, size_t n, const char (*s)[STORE_CLASS_MAX + 1])
{
    store_mpw_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        store_mpw_str(w, s[i]);
}

static size_t s_strs_decode(store_mpr_t *r, size_t max, char (*s)[STORE_CLASS_MAX + 1])
{
    uint32_t n = store_mpr_array(r);
    if (n > max) {
        r->mpr_err = HS_EMALF;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        store_mpr_str(r, s[i], STORE_CLASS_MAX + 1);
    return n;
}

int repl_msg_encode(const repl_msg_t *m, store_mpw_t *w)
{
    switch (m->m_type) {
    case REPL_OPEN:
        store_mpw_array(w, 12);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_OPEN);
        store_mpw_uint(w, m->m_run);
        store_mpw_str(w, m->m_rule);
        s_strs_encode(w, m->m_nprefix, m->m_prefix);
        s_strs_encode(w, m->m_ndataclass, m->m_dataclass);
        store_mpw_uint(w, (uint64_t)m->m_mode);
        store_mpw_str(w, m->m_why);
        store_mpw_str(w, m->m_token);
        store_mpw_uint(w, m->m_vfirst);
        store_mpw_uint(w, m->m_vcount);
        store_mpw_array(w, (uint32_t)m->m_nbranch);
        for (size_t i = 0; i < m->m_nbranch; i++)
            store_mpw_str(w, m->m_branch_names[i]);
        break;
    case REPL_OPENED:
        store_mpw_array(w, m->m_branch_names ? 7 : 6);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_OPENED);
        store_mpw_uint(w, m->m_run);
        store_mpw_str(w, m->m_epoch);
        store_mpw_uint(w, m->m_head);
        if (m->m_bin)
            store_mpw_bin(w, m->m_bin, m->m_bin_len);
        else
            store_mpw_nil(w);
        if (m->m_branch_names) {
            store_mpw_array(w, (uint32_t)m->m_nbranch);
            for (size_t i = 0; i < m->m_nbranch; i++)
                store_mpw_str(w, m->m_branch_names[i]);
        }
        break;
    case REPL_LEAVES:
    case REPL_DROP:
        store_mpw_array(w, 4);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, (uint64_t)m->m_type);
        store_mpw_uint(w, m->m_run);
        if (m->m_bin)
            store_mpw_bin(w, m->m_bin, m->m_bin_len);
        else
            store_mpw_nil(w);
        break;
    case REPL_PLAN:
        store_mpw_array(w, 4);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_PLAN);
        store_mpw_uint(w, m->m_run);
        store_mpw_bin(w, m->m_bin, m->m_bin_len);
        break;
    case REPL_ACK:
        store_mpw_array(w, m->m_refused ? 9 : 7);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_ACK);
        store_mpw_uint(w, m->m_run);
        store_mpw_uint(w, m->m_no);
        store_mpw_uint(w, m->m_applied);
        store_mpw_uint(w, m->m_skipped);
        store_mpw_uint(w, m->m_deleted);
        if (m->m_refused) {
            size_t n = m->m_nrefusal < REPL_REFUSALS_MAX ? m->m_nrefusal : REPL_REFUSALS_MAX;
            store_mpw_uint(w, m->m_refused);
            store_mpw_array(w, (uint32_t)n);
            for (size_t i = 0; i < n; i++) {
                store_mpw_array(w, 2);
                store_mpw_bin(w, m->m_refusal[i].rf_guid.b, 16);
                store_mpw_str(w, m->m_refusal[i].rf_why);
            }
        }
        break;
    case REPL_END:
        store_mpw_array(w, 5);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_END);
        store_mpw_uint(w, m->m_run);
        store_mpw_uint(w, m->m_no);
        s_key_encode(w, &m->m_from);
        break;
    case REPL_DONE:
        store_mpw_array(w, 9);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_DONE);
        store_mpw_uint(w, m->m_run);
        store_mpw_bool(w, m->m_ok);
        store_mpw_str(w, m->m_why);
        store_mpw_uint(w, m->m_applied);
        store_mpw_uint(w, m->m_skipped);
        store_mpw_uint(w, m->m_deleted);
        store_mpw_uint(w, m->m_head);
        break;
    case REPL_ABORT:
        store_mpw_array(w, 4);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_ABORT);
        store_mpw_uint(w, m->m_run);
        store_mpw_str(w, m->m_why);
        break;
    case REPL_REQUEST:
        store_mpw_array(w, 5);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_REQUEST);
        store_mpw_str(w, m->m_rule);
        store_mpw_uint(w, (uint64_t)m->m_mode);
        store_mpw_str(w, m->m_token);
        break;
    case REPL_REFUSE:
        store_mpw_array(w, 5);
        store_mpw_uint(w, TOPO_PROTO_VERSION);
        store_mpw_uint(w, REPL_REFUSE);
        store_mpw_str(w, m->m_token);
        store_mpw_str(w, m->m_why);
        store_mpw_bool(w, m->m_ok);
        break;
    default:
        return HS_EINVAL;
    }
    return store_mpw_error(w);
}

int repl_batch_encode(store_mpw_t *w, uint64_t run, uint64_t no, uint64_t upto,
                      const repl_key_t *from, const repl_key_t *to, uint32_t nobj,
                      const store_mpw_t *objs)
{
    store_mpw_array(w, 8);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, REPL_BATCH);
    store_mpw_uint(w, run);
    store_mpw_uint(w, no);
    store_mpw_uint(w, upto);
    s_key_encode(w, from);
    s_key_encode(w, to);
    store_mpw_array(w, nobj);
    store_mpw_raw(w, objs->mpw_buf, objs->mpw_len);
    return store_mpw_error(w);
}

void repl_obj_encode(store_mpw_t *w, const store_obj_t *o)
{
    store_mpw_array(w, 10);
    store_mpw_bin(w, o->guid.b, 16);
    store_mpw_str(w, o->cls);
    store_mpw_str(w, o->origin);
    store_mpw_str(w, o->owner);
    store_mpw_uint(w, o->mtime);
    store_mpw_uint(w, o->flags);
    if (store_guid_is_zero(&o->resource))
        store_mpw_nil(w);
    else
        store_mpw_bin(w, o->resource.b, 16);
    if (o->keys_len)
        store_mpw_raw(w, o->keys, o->keys_len);
    else
        store_mpw_nil(w);
    if (o->body_len)
        store_mpw_raw(w, o->body, o->body_len);
    else
        store_mpw_nil(w);
    store_mpw_uint(w, o->rtime);
}

int repl_obj_decode(store_mpr_t *r, repl_wire_obj_t *out)
{
    memset(&out->o, 0, sizeof(out->o));
    uint32_t fields = store_mpr_array(r);
    if (fields != 9 && fields != 10) /* 9: before hsync 0.10, no registration time */
        return HS_EMALF;
    size_t n;
    const uint8_t *g = store_mpr_bytes(r, &n);
    if (!g || n != 16)
        return HS_EMALF;
    memcpy(out->o.guid.b, g, 16);
    store_mpr_str(r, out->cls, sizeof(out->cls));
    store_mpr_str(r, out->origin, sizeof(out->origin));
    store_mpr_str(r, out->owner, sizeof(out->owner));
    out->o.mtime = store_mpr_uint(r);
    uint64_t flags = store_mpr_uint(r);
    if (!store_mpr_nil(r)) {
        const uint8_t *res = store_mpr_bytes(r, &n);
        if (!res || n != 16)
            return HS_EMALF;
        memcpy(out->o.resource.b, res, 16);
    }
    if (!store_mpr_nil(r))
        out->o.keys = store_mpr_raw(r, &out->o.keys_len);
    if (!store_mpr_nil(r))
        out->o.body = store_mpr_raw(r, &out->o.body_len);
    if (fields == 10)
        out->o.rtime = store_mpr_uint(r);
    if (store_mpr_error(r) || flags > (STORE_OBJ_TOMBSTONE | STORE_OBJ_IMPORTED) ||
        !out->origin[0] || !out->owner[0])
        return HS_EMALF;
    out->o.flags = (uint32_t)flags;
    out->o.cls = out->cls;
    out->o.origin = out->origin;
    out->o.owner = out->owner;
    return HS_OK;
}

int repl_names_decode(store_mpr_t *r, r_names_t *out)
{
    out->v = NULL;
    out->n = 0;
    uint32_t cnt = store_mpr_array(r);
    if (store_mpr_error(r) || cnt > REPL_BRANCH_MAX)
        return HS_EMALF;
    if (cnt && !(out->v = calloc(cnt, sizeof(*out->v))))
        return HS_ENOMEM;
    for (uint32_t i = 0; i < cnt; i++) {
        char name[STORE_NAME_MAX + 1];
        size_t len;
        const uint8_t *p = store_mpr_bytes(r, &len);
        if (!p || !len || len > STORE_NAME_MAX || memchr(p, 0, len)) {
            free(out->v);
            out->v = NULL;
            out->n = 0;
            r->mpr_err = HS_EMALF;
            return HS_EMALF;
        }
        memcpy(name, p, len);
        name[len] = 0;
        bool dup = false;
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = !strcmp(out->v[k], name);
        if (!dup)
            memcpy(out->v[out->n++], name, len + 1);
    }
    return HS_OK;
}

int repl_branch_decode(const repl_msg_t *m, char (**names)[STORE_NAME_MAX + 1], size_t *n)
{
    *names = NULL;
    *n = 0;
    store_mpr_t r;
    store_mpr_init(&r, m->m_branch, m->m_branch_len);
    uint32_t cnt = store_mpr_array(&r);
    if (store_mpr_error(&r) || cnt > REPL_BRANCH_MAX)
        return HS_EMALF;
    char(*out)[STORE_NAME_MAX + 1] = cnt ? calloc(cnt, sizeof(*out)) : NULL;
    if (cnt && !out)
        return HS_ENOMEM;
    for (uint32_t i = 0; i < cnt; i++)
        store_mpr_str(&r, out[i], sizeof(out[i]));
    if (store_mpr_done(&r)) {
        free(out);
        return HS_EMALF;
    }
    *names = out;
    *n = cnt;
    return HS_OK;
}

int repl_msg_decode(const void *buf, size_t len, repl_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    uint32_t n = store_mpr_array(&r);
    if (n < 3 || store_mpr_uint(&r) != TOPO_PROTO_VERSION)
        return HS_EMALF;
    uint64_t type = store_mpr_uint(&r);
    if (type != REPL_REQUEST && type != REPL_REFUSE)
        out->m_run = store_mpr_uint(&r);
    switch (type) {
    case REPL_OPEN:
        if (n != 12)
            return HS_EMALF;
        store_mpr_str(&r, out->m_rule, sizeof(out->m_rule));
        out->m_nprefix = s_strs_decode(&r, RULES_PREFIX_MAX, out->m_prefix);
        out->m_ndataclass = s_strs_decode(&r, RULES_DATACLASS_MAX, out->m_dataclass);
        out->m_mode = (int)store_mpr_uint(&r);
        store_mpr_str(&r, out->m_why, sizeof(out->m_why));
        store_mpr_str(&r, out->m_token, sizeof(out->m_token));
        out->m_vfirst = (uint32_t)store_mpr_uint(&r);
        out->m_vcount = (uint32_t)store_mpr_uint(&r);
        out->m_branch = store_mpr_raw(&r, &out->m_branch_len);
        if (out->m_mode < REPL_DIFFERENTIAL || out->m_mode > REPL_RECOVER)
            return HS_EMALF;
        break;
    case REPL_OPENED:
        if (n != 6 && n != 7)
            return HS_EMALF;
        store_mpr_str(&r, out->m_epoch, sizeof(out->m_epoch));
        out->m_head = store_mpr_uint(&r);
        if (!store_mpr_nil(&r))
            out->m_bin = store_mpr_bytes(&r, &out->m_bin_len);
        if (n == 7)
            out->m_branch = store_mpr_raw(&r, &out->m_branch_len);
        break;
    case REPL_PLAN:
        if (n != 4)
            return HS_EMALF;
        out->m_bin = store_mpr_bytes(&r, &out->m_bin_len);
        break;
    case REPL_LEAVES:
    case REPL_DROP:
        if (n != 4)
            return HS_EMALF;
        if (!store_mpr_nil(&r)) {
            out->m_bin = store_mpr_bytes(&r, &out->m_bin_len);
            if (out->m_bin_len % (type == REPL_LEAVES ? 48 : 16))
                return HS_EMALF;
        }
        break;
    case REPL_BATCH:
        if (n != 8)
            return HS_EMALF;
        out->m_no = store_mpr_uint(&r);
        out->m_upto = store_mpr_uint(&r);
        s_key_decode(&r, &out->m_from);
        s_key_decode(&r, &out->m_to);
        out->m_nobj = store_mpr_array(&r);
        if (store_mpr_error(&r))
            return HS_EMALF;
        out->m_objs = r.mpr_p + r.mpr_pos;
        out->m_objs_len = len - r.mpr_pos;
        r.mpr_pos = len; /* objects are read one by one by the applier */
        break;
    case REPL_ACK:
        if (n != 7 && n != 9)
            return HS_EMALF;
        out->m_no = store_mpr_uint(&r);
        out->m_applied = store_mpr_uint(&r);
        out->m_skipped = store_mpr_uint(&r);
        out->m_deleted = store_mpr_uint(&r);
        if (n == 9) {
            out->m_refused = store_mpr_uint(&r);
            uint32_t nr = store_mpr_array(&r);
            if (nr > REPL_REFUSALS_MAX || nr > out->m_refused)
                return HS_EMALF;
            for (uint32_t i = 0; i < nr && !store_mpr_error(&r); i++) {
                size_t gl;
                if (store_mpr_array(&r) != 2)
                    return HS_EMALF;
                const uint8_t *g = store_mpr_bytes(&r, &gl);
                if (!g || gl != 16)
                    return HS_EMALF;
                memcpy(out->m_refusal[i].rf_guid.b, g, 16);
                store_mpr_str(&r, out->m_refusal[i].rf_why, sizeof(out->m_refusal[i].rf_why));
            }
            out->m_nrefusal = nr;
        }
        break;
    case REPL_END:
        if (n != 5)
            return HS_EMALF;
        out->m_no = store_mpr_uint(&r);
        s_key_decode(&r, &out->m_from);
        break;
    case REPL_DONE:
        if (n != 9)
            return HS_EMALF;
        out->m_ok = store_mpr_bool(&r);
        store_mpr_str(&r, out->m_why, sizeof(out->m_why));
        out->m_applied = store_mpr_uint(&r);
        out->m_skipped = store_mpr_uint(&r);
        out->m_deleted = store_mpr_uint(&r);
        out->m_head = store_mpr_uint(&r);
        break;
    case REPL_ABORT:
        if (n != 4)
            return HS_EMALF;
        store_mpr_str(&r, out->m_why, sizeof(out->m_why));
        break;
    case REPL_REQUEST:
        if (n != 5)
            return HS_EMALF;
        store_mpr_str(&r, out->m_rule, sizeof(out->m_rule));
        out->m_mode = (int)store_mpr_uint(&r);
        store_mpr_str(&r, out->m_token, sizeof(out->m_token));
        if (out->m_mode < 0 || out->m_mode > REPL_RECOVER)
            return HS_EMALF;
        break;
    case REPL_REFUSE:
        if (n != 4 && n != 5)
            return HS_EMALF;
        store_mpr_str(&r, out->m_token, sizeof(out->m_token));
        store_mpr_str(&r, out->m_why, sizeof(out->m_why));
        if (n == 5)
            out->m_ok = store_mpr_bool(&r);
        else /* from a node before the flag: it said so in words */
            out->m_ok = strstr(out->m_why, REPL_WHY_DISABLED) != NULL;
        break;
    default:
        return HS_EMALF;
    }
    out->m_type = (int)type;
    return store_mpr_done(&r);
}

/* ---- hsync verify --------------------------------------------------------- */

void repl_vreq_free(repl_vreq_t *q)
{
    for (size_t i = 0; q->vq_scopes && i < q->vq_nscope; i++)
        free(q->vq_scopes[i].vs_owners);
    free(q->vq_scopes);
    q->vq_scopes = NULL;
    q->vq_nscope = 0;
}

void repl_vnodes_free(repl_vnode_t *nodes, size_t n)
{
    for (size_t i = 0; nodes && i < n; i++) {
        for (size_t k = 0; nodes[i].vn_verdicts && k < nodes[i].vn_nverdict; k++)
            free(nodes[i].vn_verdicts[k].vv_owners.v);
        free(nodes[i].vn_verdicts);
    }
    free(nodes);
}

void repl_vreq_encode(store_mpw_t *w, const repl_vreq_t *q)
{
    store_mpw_array(w, 6);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, REPL_VERIFY);
    store_mpw_uint(w, q->vq_id);
    store_mpw_uint(w, q->vq_budget_ms);
    store_mpw_bool(w, q->vq_repair);
    store_mpw_array(w, (uint32_t)q->vq_nscope);
    for (size_t i = 0; i < q->vq_nscope; i++) {
        const repl_vscope_t *sc = &q->vq_scopes[i];
        store_mpw_array(w, 5);
        store_mpw_str(w, sc->vs_rule);
        store_mpw_uint(w, sc->vs_dir);
        store_mpw_uint(w, sc->vs_count);
        store_mpw_bin(w, sc->vs_digest, 32);
        store_mpw_array(w, (uint32_t)sc->vs_nowner);
        for (size_t k = 0; k < sc->vs_nowner; k++) {
            store_mpw_array(w, 3);
            store_mpw_str(w, sc->vs_owners[k].vo_name);
            store_mpw_uint(w, sc->vs_owners[k].vo_count);
            store_mpw_uint(w, sc->vs_owners[k].vo_sum);
        }
    }
}

static bool s_vdir_ok(uint64_t d)
{
    return d == RULES_DOWN || d == RULES_UP;
}

/* a non-empty name of at most STORE_NAME_MAX bytes */
static void s_name_decode(store_mpr_t *r, char out[STORE_NAME_MAX + 1], bool may_be_empty)
{
    store_mpr_str(r, out, STORE_NAME_MAX + 1);
    if (!may_be_empty && !store_mpr_error(r) && !out[0])
        r->mpr_err = HS_EMALF;
}

int repl_vreq_decode(const void *buf, size_t len, repl_vreq_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 6 || store_mpr_uint(&r) != TOPO_PROTO_VERSION ||
        store_mpr_uint(&r) != REPL_VERIFY)
        return HS_EMALF;
    out->vq_id = store_mpr_uint(&r);
    out->vq_budget_ms = store_mpr_uint(&r);
    out->vq_repair = store_mpr_bool(&r);
    uint32_t ns = store_mpr_array(&r);
    if (store_mpr_error(&r) || ns > REPL_VERIFY_SCOPES_MAX)
        return HS_EMALF;
    if (ns && !(out->vq_scopes = calloc(ns, sizeof(*out->vq_scopes))))
        return HS_ENOMEM;
    out->vq_nscope = ns;
    int err = HS_OK;
    for (uint32_t i = 0; !err && i < ns; i++) {
        repl_vscope_t *sc = &out->vq_scopes[i];
        if (store_mpr_array(&r) != 5) {
            err = HS_EMALF;
            break;
        }
        store_mpr_str(&r, sc->vs_rule, sizeof(sc->vs_rule));
        uint64_t dir = store_mpr_uint(&r);
        sc->vs_count = store_mpr_uint(&r);
        size_t dl = 0;
        const uint8_t *d = store_mpr_bytes(&r, &dl);
        uint32_t no = store_mpr_array(&r);
        if (store_mpr_error(&r) || !d || dl != 32 || !s_vdir_ok(dir) || !sc->vs_rule[0] ||
            no > REPL_VERIFY_OWNERS_MAX) {
            err = HS_EMALF;
            break;
        }
        sc->vs_dir = (unsigned)dir;
        memcpy(sc->vs_digest, d, 32);
        if (no && !(sc->vs_owners = calloc(no, sizeof(*sc->vs_owners)))) {
            err = HS_ENOMEM;
            break;
        }
        sc->vs_nowner = no;
        for (uint32_t k = 0; k < no && !store_mpr_error(&r); k++) {
            if (store_mpr_array(&r) != 3) {
                r.mpr_err = HS_EMALF;
                break;
            }
            s_name_decode(&r, sc->vs_owners[k].vo_name, false);
            sc->vs_owners[k].vo_count = store_mpr_uint(&r);
            sc->vs_owners[k].vo_sum = store_mpr_uint(&r);
        }
        if (store_mpr_error(&r))
            err = HS_EMALF;
    }
    if (!err && store_mpr_done(&r))
        err = HS_EMALF;
    if (err)
        repl_vreq_free(out);
    return err;
}

void repl_vans_header(store_mpw_t *w, uint64_t id, uint32_t n)
{
    store_mpw_array(w, 4);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, REPL_VERIFY_ANS);
    store_mpw_uint(w, id);
    store_mpw_array(w, n);
}

void repl_vnode_encode(store_mpw_t *w, const repl_vnode_t *node)
{
    store_mpw_array(w, 5);
    store_mpw_str(w, node->vn_name);
    store_mpw_str(w, node->vn_parent);
    store_mpw_bool(w, node->vn_reached);
    store_mpw_str(w, node->vn_why);
    store_mpw_array(w, (uint32_t)node->vn_nverdict);
    for (size_t i = 0; i < node->vn_nverdict; i++) {
        const repl_vverdict_t *v = &node->vn_verdicts[i];
        store_mpw_array(w, 7);
        store_mpw_str(w, v->vv_rule);
        store_mpw_uint(w, v->vv_dir);
        store_mpw_bool(w, v->vv_ok);
        store_mpw_uint(w, v->vv_parent_count);
        store_mpw_uint(w, v->vv_count);
        store_mpw_array(w, (uint32_t)v->vv_owners.n);
        for (size_t k = 0; k < v->vv_owners.n; k++)
            store_mpw_str(w, v->vv_owners.v[k]);
        store_mpw_str(w, v->vv_repair);
    }
}

static int s_vnode_decode(store_mpr_t *r, repl_vnode_t *nd)
{
    if (store_mpr_array(r) != 5)
        return HS_EMALF;
    s_name_decode(r, nd->vn_name, false);
    s_name_decode(r, nd->vn_parent, true);
    nd->vn_reached = store_mpr_bool(r);
    store_mpr_str(r, nd->vn_why, sizeof(nd->vn_why));
    uint32_t nv = store_mpr_array(r);
    if (store_mpr_error(r) || nv > REPL_VERIFY_SCOPES_MAX)
        return HS_EMALF;
    if (nv && !(nd->vn_verdicts = calloc(nv, sizeof(*nd->vn_verdicts))))
        return HS_ENOMEM;
    nd->vn_nverdict = nv;
    for (uint32_t i = 0; i < nv; i++) {
        repl_vverdict_t *v = &nd->vn_verdicts[i];
        if (store_mpr_array(r) != 7)
            return HS_EMALF;
        store_mpr_str(r, v->vv_rule, sizeof(v->vv_rule));
        uint64_t dir = store_mpr_uint(r);
        v->vv_ok = store_mpr_bool(r);
        v->vv_parent_count = store_mpr_uint(r);
        v->vv_count = store_mpr_uint(r);
        if (store_mpr_error(r) || !s_vdir_ok(dir) || !v->vv_rule[0])
            return HS_EMALF;
        v->vv_dir = (unsigned)dir;
        int err = repl_names_decode(r, &v->vv_owners);
        if (err)
            return err;
        store_mpr_str(r, v->vv_repair, sizeof(v->vv_repair));
        if (store_mpr_error(r))
            return HS_EMALF;
    }
    return HS_OK;
}

int repl_vans_decode(const void *buf, size_t len, uint64_t *id, repl_vnode_t **nodes, size_t *n)
{
    *nodes = NULL;
    *n = 0;
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 4 || store_mpr_uint(&r) != TOPO_PROTO_VERSION ||
        store_mpr_uint(&r) != REPL_VERIFY_ANS)
        return HS_EMALF;
    *id = store_mpr_uint(&r);
    uint32_t nn = store_mpr_array(&r);
    if (store_mpr_error(&r) || nn > REPL_VERIFY_NODES_MAX)
        return HS_EMALF;
    repl_vnode_t *v = nn ? calloc(nn, sizeof(*v)) : NULL;
    if (nn && !v)
        return HS_ENOMEM;
    int err = HS_OK;
    for (uint32_t i = 0; !err && i < nn; i++)
        err = s_vnode_decode(&r, &v[i]);
    if (!err && store_mpr_done(&r))
        err = HS_EMALF;
    if (err) {
        repl_vnodes_free(v, nn);
        return err;
    }
    *nodes = v;
    *n = nn;
    return HS_OK;
}
