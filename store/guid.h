/*
 * guid.h - 128-bit object ids, written as 8-4-4-4-12 lowercase hex.
 *
 * New guids are time-ordered (UUIDv7 layout: 48-bit milliseconds, then random
 * bits from OpenSSL's RAND_bytes) so that objects created together land next to
 * each other in LMDB's B-trees and bulk inserts stream in key order.
 */
#ifndef STORE_GUID_H
#define STORE_GUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_GUID_STRLEN 36 /* without the terminating NUL */

typedef struct store_guid {
    uint8_t b[16];
} store_guid_t;

/* Make a new time-ordered guid. Returns HS_OK or HS_ECRYPTO if the RNG fails. */
int store_guid_new(store_guid_t *out);

/* Parse exactly 36 characters of 8-4-4-4-12 hex (either case) from a
 * NUL-terminated string. Returns HS_OK or HS_EGUID. */
int store_guid_parse(const char *s, store_guid_t *out);

/* Write the 36-character lowercase form plus NUL into out (37 bytes). */
void store_guid_format(const store_guid_t *g, char out[STORE_GUID_STRLEN + 1]);

/* A name-based guid (UUIDv8 layout): the first 16 bytes of SHA-256 of
 * "hsync-guid-1" NUL ns NUL name, with version 8 and variant bits set. The
 * same (ns, name) gives the same guid on every node, so records that exist
 * once per node or per target (trust summaries, HEP settings) need no
 * lookup table. HS_OK or HS_ECRYPTO. */
int store_guid_derive(const char *ns, const char *name, store_guid_t *out);

bool store_guid_is_zero(const store_guid_t *g);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void store_hex(const uint8_t *in, size_t len, char *out);

#endif
