/*
 * fuzz_peer_record.c - a STORE_T_PEERS value -> topo_peer_decode.
 *
 * The table is written only by this node, but a damaged store must not crash
 * the broker. Properties: HS_OK, HS_EMALF or HS_ENOMEM, nothing leaked; a
 * record that decodes has a known role, a name, at most TOPO_REL_MAX
 * relatives, and re-encodes (never longer) to a value that decodes the same.
 */
#include "store/hs_error.h"
#include "topology/peers.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    topo_peer_t p, back;
    int rc = topo_peer_decode(data, size, &p);
    if (rc != HS_OK) {
        if ((rc != HS_EMALF && rc != HS_ENOMEM) || p.pe_rel || p.pe_nrel)
            abort();
        return 0;
    }
    if (p.pe_role < TOPO_ROLE_PARENT || p.pe_role > TOPO_ROLE_SOURCE || !p.pe_name[0] ||
        p.pe_nrel > TOPO_REL_MAX || (p.pe_nrel && !p.pe_rel))
        abort();
    uint8_t *buf = NULL;
    size_t len = 0;
    if (topo_peer_encode(&p, &buf, &len) != HS_OK)
        abort();
    if (len > size)
        abort(); /* accepted something the canonical form cannot express */
    if (topo_peer_decode(buf, len, &back) != HS_OK || back.pe_role != p.pe_role ||
        strcmp(back.pe_name, p.pe_name) || strcmp(back.pe_key, p.pe_key) ||
        strcmp(back.pe_endpoint, p.pe_endpoint) || back.pe_since != p.pe_since ||
        back.pe_nrel != p.pe_nrel ||
        (p.pe_nrel && memcmp(back.pe_rel, p.pe_rel, p.pe_nrel * sizeof(*p.pe_rel))))
        abort();
    topo_peer_clear(&back);
    topo_peer_clear(&p);
    free(buf);
    return 0;
}
