/*
 * fuzz_link_frame.c - a frame from a peer -> topo_frame_type, topo_msg_decode.
 *
 * Properties: decoding never crashes or leaks and returns HS_OK, HS_EMALF,
 * HS_EPROTO or HS_ENOMEM; a frame that decodes has a known link type and at
 * most TOPO_REL_MAX relatives and only valid node names (topo_name_ok), and
 * topo_frame_type agrees with it; its re-encoding is canonical (never longer than the input) and decodes to the
 * same message.
 */
#include "store/hs_error.h"
#include "store/mp.h"
#include "topology/identity.h"
#include "topology/wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool s_same(const topo_msg_t *a, const topo_msg_t *b)
{
    return a->m_type == b->m_type && !strcmp(a->m_name, b->m_name) && !strcmp(a->m_key, b->m_key) &&
           !strcmp(a->m_token, b->m_token) && a->m_ok == b->m_ok && !strcmp(a->m_why, b->m_why) &&
           a->m_nrel == b->m_nrel &&
           (a->m_nrel == 0 || memcmp(a->m_rel, b->m_rel, a->m_nrel * sizeof(*a->m_rel)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int type = -1;
    int frc = topo_frame_type(data, size, &type);
    if (frc != HS_OK && frc != HS_EMALF && frc != HS_EPROTO)
        abort();
    if (frc == HS_OK && (type < 0 || type > 255))
        abort();
    topo_msg_t m, back;
    int rc = topo_msg_decode(data, size, &m);
    if (rc != HS_OK) {
        if ((rc != HS_EMALF && rc != HS_ENOMEM) || m.m_rel)
            abort();
        return 0;
    }
    if (frc != HS_OK || type != m.m_type || m.m_type < TOPO_MSG_HB || m.m_type > TOPO_MSG_NAMEA ||
        m.m_nrel > TOPO_REL_MAX || !topo_name_ok(m.m_name))
        abort();
    for (size_t i = 0; i < m.m_nrel; i++) /* names reach the log and the trust table */
        if (!topo_name_ok(m.m_rel[i].rel_name) ||
            (m.m_rel[i].rel_parent[0] && !topo_name_ok(m.m_rel[i].rel_parent)))
            abort();
    store_mpw_t w;
    store_mpw_init(&w);
    if (topo_msg_encode(&m, &w) != HS_OK)
        abort();
    if (w.mpw_len > size)
        abort(); /* accepted something the canonical form cannot express */
    if (topo_msg_decode(w.mpw_buf, w.mpw_len, &back) != HS_OK || !s_same(&m, &back))
        abort();
    topo_msg_clear(&back);
    topo_msg_clear(&m);
    store_mpw_free(&w);
    return 0;
}
