/*
 * fuzz_event_frame.c - urgent-lane frames from a peer -> repl_event_decode
 * and repl_event_ack_decode.
 *
 * Properties: nothing crashes; a decoded event has a known kind, an origin
 * and a canonical payload, and re-encodes to bytes that decode to the same
 * event.
 */
#include "replication/events.h"
#include "store/hs_error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t id[16];
    int rc = repl_event_ack_decode(data, size, id);
    if (rc != HS_OK && rc != HS_EMALF)
        abort();
    repl_event_t ev;
    rc = repl_event_decode(data, size, &ev);
    if (rc != HS_OK) {
        if (rc != HS_EMALF)
            abort();
        return 0;
    }
    if (!strcmp(repl_event_kind_name(ev.ev_kind), "unknown") || !ev.ev_origin[0] ||
        store_body_check(ev.ev_payload, ev.ev_payload_len))
        abort();
    store_mpw_t w;
    store_mpw_init(&w);
    if (repl_event_encode(&ev, &w) == HS_OK) {
        repl_event_t back;
        if (repl_event_decode(w.mpw_buf, w.mpw_len, &back) != HS_OK || back.ev_kind != ev.ev_kind ||
            memcmp(back.ev_id, ev.ev_id, 16) || strcmp(back.ev_origin, ev.ev_origin) ||
            back.ev_created_ms != ev.ev_created_ms || back.ev_payload_len != ev.ev_payload_len)
            abort();
    }
    store_mpw_free(&w);
    return 0;
}
