/*
 * buckets.h - bucketed hashes of a rule's scope, for reconcile and
 * verification.
 *
 * Objects fall into REPL_BUCKETS buckets by a hash of their guid (not of
 * their content, so a changed object stays in its bucket). A bucket holds
 * the number of in-scope live objects in it and the sum (mod 2^64) of the
 * first 8 bytes of SHA-256(guid || content hash) over them: equal buckets on
 * two nodes mean equal objects in them. Two nodes compare their bucket
 * vectors and exchange only the objects of the buckets that differ.
 *
 * Wire form of a vector: REPL_BUCKETS entries of u32be count, u64be sum.
 */
#ifndef REPL_BUCKETS_H
#define REPL_BUCKETS_H

#include "rules/rules.h"

#define REPL_BUCKETS 4096
#define REPL_BUCKETS_WIRE (REPL_BUCKETS * 12)

typedef struct repl_buckets {
    uint32_t bk_count[REPL_BUCKETS];
    uint64_t bk_sum[REPL_BUCKETS];
} repl_buckets_t;

/* Bucket of a guid (0 .. REPL_BUCKETS-1). */
unsigned repl_bucket_of(const store_guid_t *g);

/* Side of the comparison: the sender's scope (rules_send_scope with its
 * branch) or the receiver's (rules_recv_scope). */
enum repl_side { REPL_SIDE_SEND = 1, REPL_SIDE_RECV = 2 };

/* Compute the vector of rule's scope in direction dir by one scan of the
 * scope (names as for rules_send_scope / rules_recv_scope). The scan of a
 * large scope takes seconds on the event loop: tick (if not NULL) is called
 * with tick_ctx every REPL_BUCKETS_TICK objects, so links can stay alive. */
#define REPL_BUCKETS_TICK 65536u
int repl_buckets_compute(store_txn_t *t, const rules_rule_t *rule, unsigned dir, int side,
                         const rules_names_t *names, repl_buckets_t *out, void (*tick)(void *),
                         void *tick_ctx);

/* The same scan, calling each (if not NULL) with every in-scope object and
 * its bucket element (what it adds to its bucket's sum); a non-zero return
 * stops the scan and is returned (HS_* errors). */
typedef int (*repl_bucket_each_fn)(void *ctx, const store_obj_t *o, uint64_t element);
int repl_buckets_scan(store_txn_t *t, const rules_rule_t *rule, unsigned dir, int side,
                      const rules_names_t *names, repl_buckets_t *out, void (*tick)(void *),
                      void *tick_ctx, repl_bucket_each_fn each, void *each_ctx);

void repl_buckets_encode(const repl_buckets_t *b, uint8_t out[REPL_BUCKETS_WIRE]);
/* HS_OK or HS_EMALF (wrong length). */
int repl_buckets_decode(const uint8_t *buf, size_t len, repl_buckets_t *out);

/* A set of buckets as a bitmap. */
typedef struct repl_bucket_set {
    uint8_t bs_bits[REPL_BUCKETS / 8];
} repl_bucket_set_t;

static inline bool repl_bucket_set_has(const repl_bucket_set_t *s, unsigned b)
{
    return s->bs_bits[b >> 3] & (1u << (b & 7));
}

/* Buckets in [first, first+count) (wrapping) where a and b differ; returns
 * how many. */
size_t repl_buckets_diff(const repl_buckets_t *a, const repl_buckets_t *b, unsigned first,
                         unsigned count, repl_bucket_set_t *out);

#endif
