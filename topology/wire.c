#include "topology/wire.h"

#include "topology/identity.h"

#include <stdlib.h>
#include <string.h>

int topo_frame_type(const void *buf, size_t len, int *type)
{
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (len > TOPO_FRAME_MAX || store_mpr_array(&r) < 2)
        return HS_EMALF;
    uint64_t v = store_mpr_uint(&r);
    uint64_t t = store_mpr_uint(&r);
    if (store_mpr_error(&r) || t > 255)
        return HS_EMALF;
    if (v != TOPO_PROTO_VERSION)
        return HS_EPROTO;
    *type = (int)t;
    return HS_OK;
}

int topo_msg_encode(const topo_msg_t *m, store_mpw_t *w)
{
    store_mpw_array(w, 8);
    store_mpw_uint(w, TOPO_PROTO_VERSION);
    store_mpw_uint(w, (uint64_t)m->m_type);
    store_mpw_str(w, m->m_name);
    store_mpw_str(w, m->m_key);
    store_mpw_str(w, m->m_token);
    store_mpw_bool(w, m->m_ok);
    store_mpw_str(w, m->m_why);
    store_mpw_array(w, (uint32_t)m->m_nrel);
    for (size_t i = 0; i < m->m_nrel; i++) {
        store_mpw_array(w, 3);
        store_mpw_str(w, m->m_rel[i].rel_name);
        store_mpw_str(w, m->m_rel[i].rel_key);
        store_mpw_str(w, m->m_rel[i].rel_parent);
    }
    return store_mpw_error(w);
}

int topo_msg_decode(const void *buf, size_t len, topo_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 8 || store_mpr_uint(&r) != TOPO_PROTO_VERSION)
        return HS_EMALF;
    uint64_t type = store_mpr_uint(&r);
    store_mpr_str(&r, out->m_name, sizeof(out->m_name));
    store_mpr_str(&r, out->m_key, sizeof(out->m_key));
    store_mpr_str(&r, out->m_token, sizeof(out->m_token));
    out->m_ok = store_mpr_bool(&r);
    store_mpr_str(&r, out->m_why, sizeof(out->m_why));
    uint32_t n = store_mpr_array(&r);
    if (store_mpr_error(&r) || n > TOPO_REL_MAX || type < TOPO_MSG_HB || type > TOPO_MSG_NAMEA)
        return HS_EMALF;
    out->m_type = (int)type;
    if (n && !(out->m_rel = calloc(n, sizeof(*out->m_rel))))
        return HS_ENOMEM;
    out->m_nrel = n;
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        if (store_mpr_array(&r) != 3) { /* a relative is [name, key, parent] */
            topo_msg_clear(out);
            return HS_EMALF;
        }
        store_mpr_str(&r, out->m_rel[i].rel_name, sizeof(out->m_rel[i].rel_name));
        store_mpr_str(&r, out->m_rel[i].rel_key, sizeof(out->m_rel[i].rel_key));
        store_mpr_str(&r, out->m_rel[i].rel_parent, sizeof(out->m_rel[i].rel_parent));
    }
    /* every name a peer sends ends up in the trust table, the links and the
     * log: refuse the frame unless each is a node name (topo_name_ok), a
     * relative's parent being empty for the root */
    bool names_ok = topo_name_ok(out->m_name);
    for (size_t i = 0; i < out->m_nrel && names_ok; i++)
        names_ok = topo_name_ok(out->m_rel[i].rel_name) &&
                   (!out->m_rel[i].rel_parent[0] || topo_name_ok(out->m_rel[i].rel_parent));
    if (store_mpr_done(&r) || !names_ok) {
        topo_msg_clear(out);
        return HS_EMALF;
    }
    return HS_OK;
}

void topo_msg_clear(topo_msg_t *m)
{
    free(m->m_rel);
    m->m_rel = NULL;
    m->m_nrel = 0;
}
