/*
 * fuzz_repl_frame.c - a replication frame from a peer -> repl_msg_decode,
 * then every object of a BATCH -> repl_obj_decode and store_obj_check, the
 * branch of an OPEN -> repl_branch_decode, and the buckets of an OPENED ->
 * repl_buckets_decode: what a receiver does with untrusted bytes.
 *
 * Properties: nothing crashes or leaks; decoders answer HS_OK or HS_EMALF
 * (HS_ENOMEM for allocations); a decoded frame has a known type.
 */
#include "replication/buckets.h"
#include "replication/proto.h"
#include "store/hs_error.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    repl_msg_t m;
    int rc = repl_msg_decode(data, size, &m);
    if (rc != HS_OK) {
        if (rc != HS_EMALF)
            abort();
        return 0;
    }
    if (m.m_type < REPL_OPEN || m.m_type > REPL_DROP)
        abort();
    if (m.m_type == REPL_BATCH) {
        store_mpr_t r;
        store_mpr_init(&r, m.m_objs, m.m_objs_len);
        for (uint32_t i = 0; i < m.m_nobj; i++) {
            repl_wire_obj_t wo;
            if (repl_obj_decode(&r, &wo))
                break;
            (void)store_obj_check(&wo.o);
        }
    }
    if (m.m_type == REPL_OPEN) {
        char(*names)[STORE_NAME_MAX + 1] = NULL;
        size_t n = 0;
        rc = repl_branch_decode(&m, &names, &n);
        if (rc != HS_OK && rc != HS_EMALF && rc != HS_ENOMEM)
            abort();
        free(names);
    }
    if (m.m_type == REPL_OPENED && m.m_bin) {
        repl_buckets_t *b = malloc(sizeof(*b));
        if (b) {
            rc = repl_buckets_decode(m.m_bin, m.m_bin_len, b);
            if (rc != HS_OK && rc != HS_EMALF)
                abort();
            free(b);
        }
    }
    return 0;
}
