/*
 * fuzz_http_target.c - HTTP request target -> route (broker_http_route).
 *
 * The input is the raw request target as a client sends it (any bytes,
 * NULs included). The route must be one of the documented values; a
 * well-formed target keeps its route when a query is appended, and no
 * target longer than BROKER_HTTP_TARGET_MAX or holding a control byte is
 * routed anywhere but BROKER_HTTP_BAD.
 */
#include "broker/http.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: reads past it are caught by ASan */
    char *t = malloc(size ? size : 1);
    if (!t)
        return 0;
    memcpy(t, data, size);
    int r = broker_http_route(t, size);
    if (r < BROKER_HTTP_BAD || r > BROKER_HTTP_METRICS)
        abort();
    if (size > BROKER_HTTP_TARGET_MAX && r != BROKER_HTTP_BAD)
        abort();
    for (size_t i = 0; i < size && r != BROKER_HTTP_BAD; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            abort();
    if (r > BROKER_HTTP_BAD && size + 3 <= BROKER_HTTP_TARGET_MAX && !memchr(t, '?', size) &&
        !memchr(t, '#', size)) {
        char *q = malloc(size + 3);
        if (q) {
            memcpy(q, t, size);
            memcpy(q + size, "?x=", 3);
            if (broker_http_route(q, size + 3) != r)
                abort();
            free(q);
        }
    }
    free(t);
    return 0;
}
