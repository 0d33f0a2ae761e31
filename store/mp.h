/*
 * mp.h - a bounded msgpack reader and a growable msgpack writer.
 *
 * The reader never allocates and never reads past the buffer: every call
 * checks the remaining length and sets a sticky error (like a store
 * transaction) so a decoder can read a whole frame and check once at the end.
 * It is the one place untrusted msgpack (frames from peers, records) is
 * parsed; the fuzzers drive it through every decoder built on it.
 *
 * The writer appends to a heap buffer it owns (store_mpw_buf hands it over).
 */
#ifndef STORE_MP_H
#define STORE_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store_mpr {
    const uint8_t *mpr_p;
    size_t mpr_len;
    size_t mpr_pos;
    int mpr_err; /* HS_OK until the first malformed or missing value */
} store_mpr_t;

void store_mpr_init(store_mpr_t *r, const void *buf, size_t len);
/* Element count of an array (HS_EMALF if the next value is not an array or
 * claims more elements than bytes remain). */
uint32_t store_mpr_array(store_mpr_t *r);
uint32_t store_mpr_map(store_mpr_t *r);
uint64_t store_mpr_uint(store_mpr_t *r); /* non-negative integer */
int64_t store_mpr_int(store_mpr_t *r);
bool store_mpr_bool(store_mpr_t *r);
bool store_mpr_nil(store_mpr_t *r); /* true and consumed if the next value is nil */
/* String or binary: pointer into the buffer and its length. */
const uint8_t *store_mpr_bytes(store_mpr_t *r, size_t *len);
/* Copy a string into out (outlen incl. NUL); error if longer or contains NUL. */
void store_mpr_str(store_mpr_t *r, char *out, size_t outlen);
/* Skip one value of any type (bounded nesting). Returns pointer/length of the
 * raw encoding skipped, for embedding (for example an object body). */
const uint8_t *store_mpr_raw(store_mpr_t *r, size_t *len);
/* HS_OK when no error occurred; done also requires the buffer be consumed. */
int store_mpr_error(const store_mpr_t *r);
int store_mpr_done(const store_mpr_t *r);

typedef struct store_mpw {
    uint8_t *mpw_buf;
    size_t mpw_len;
    size_t mpw_cap;
    int mpw_err;
} store_mpw_t;

void store_mpw_init(store_mpw_t *w);
void store_mpw_free(store_mpw_t *w);
void store_mpw_reset(store_mpw_t *w); /* length 0, keeps the buffer */
void store_mpw_array(store_mpw_t *w, uint32_t n);
void store_mpw_map(store_mpw_t *w, uint32_t n);
void store_mpw_uint(store_mpw_t *w, uint64_t v);
void store_mpw_int(store_mpw_t *w, int64_t v);
void store_mpw_bool(store_mpw_t *w, bool v);
void store_mpw_nil(store_mpw_t *w);
void store_mpw_str(store_mpw_t *w, const char *s);
void store_mpw_strn(store_mpw_t *w, const void *s, size_t n);
void store_mpw_bin(store_mpw_t *w, const void *p, size_t n);
void store_mpw_raw(store_mpw_t *w, const void *p, size_t n); /* pre-encoded value */
/* HS_OK or HS_ENOMEM. */
int store_mpw_error(const store_mpw_t *w);

#endif
