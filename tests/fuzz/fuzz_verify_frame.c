/*
 * fuzz_verify_frame.c - a `hsync verify` frame from a peer: VERIFY ->
 * repl_vreq_decode, VERIFY_ANS -> repl_vans_decode, and a list of node names
 * (the PUSH_ACK of an emergency) -> repl_names_decode: what a node does with
 * untrusted bytes.
 *
 * Properties: nothing crashes or leaks; decoders answer HS_OK, HS_EMALF or
 * HS_ENOMEM; what decodes re-encodes to a frame that decodes to the same
 * counts and names.
 */
#include "replication/proto.h"
#include "store/hs_error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_rc_ok(int rc)
{
    if (rc != HS_OK && rc != HS_EMALF && rc != HS_ENOMEM)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    repl_vreq_t q;
    int rc = repl_vreq_decode(data, size, &q);
    s_rc_ok(rc);
    if (rc == HS_OK) {
        if (q.vq_nscope > REPL_VERIFY_SCOPES_MAX)
            abort();
        store_mpw_t w;
        store_mpw_init(&w);
        repl_vreq_encode(&w, &q);
        repl_vreq_t q2;
        if (store_mpw_error(&w) || repl_vreq_decode(w.mpw_buf, w.mpw_len, &q2) != HS_OK)
            abort();
        if (q2.vq_nscope != q.vq_nscope || q2.vq_id != q.vq_id)
            abort();
        for (size_t i = 0; i < q.vq_nscope; i++)
            if (q2.vq_scopes[i].vs_nowner != q.vq_scopes[i].vs_nowner ||
                strcmp(q2.vq_scopes[i].vs_rule, q.vq_scopes[i].vs_rule) != 0)
                abort();
        repl_vreq_free(&q2);
        repl_vreq_free(&q);
        store_mpw_free(&w);
    }

    uint64_t id;
    repl_vnode_t *nodes;
    size_t n;
    rc = repl_vans_decode(data, size, &id, &nodes, &n);
    s_rc_ok(rc);
    if (rc == HS_OK) {
        store_mpw_t w;
        store_mpw_init(&w);
        repl_vans_header(&w, id, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            repl_vnode_encode(&w, &nodes[i]);
        repl_vnode_t *nodes2;
        size_t n2;
        uint64_t id2;
        if (store_mpw_error(&w) || repl_vans_decode(w.mpw_buf, w.mpw_len, &id2, &nodes2, &n2) ||
            n2 != n || id2 != id)
            abort();
        for (size_t i = 0; i < n; i++)
            if (strcmp(nodes2[i].vn_name, nodes[i].vn_name) != 0 ||
                nodes2[i].vn_nverdict != nodes[i].vn_nverdict)
                abort();
        repl_vnodes_free(nodes2, n2);
        repl_vnodes_free(nodes, n);
        store_mpw_free(&w);
    }

    store_mpr_t r;
    store_mpr_init(&r, data, size);
    r_names_t names;
    rc = repl_names_decode(&r, &names);
    s_rc_ok(rc);
    if (rc == HS_OK) {
        for (size_t i = 0; i < names.n; i++)
            if (!names.v[i][0] || strlen(names.v[i]) > STORE_NAME_MAX)
                abort();
        free(names.v);
    }
    return 0;
}
