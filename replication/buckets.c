#define OPENSSL_SUPPRESS_DEPRECATED /* low-level SHA256: no per-call fetch */
#include "replication/buckets.h"

#include <openssl/sha.h>
#include <string.h>

unsigned repl_bucket_of(const store_guid_t *g)
{
    /* FNV-1a over all 16 bytes: guids made by other systems need not be
     * random in any particular byte. */
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++) {
        h ^= g->b[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    return (unsigned)(h % REPL_BUCKETS);
}

typedef struct s_comp {
    const rules_rule_t *rule;
    unsigned dir;
    int side;
    const rules_names_t *names;
    repl_buckets_t *out;
    void (*tick)(void *);
    void *tick_ctx;
    uint64_t seen;
    repl_bucket_each_fn each;
    void *each_ctx;
} s_comp_t;

static int s_comp_one(void *ctx, const store_obj_t *o)
{
    s_comp_t *c = ctx;
    if (c->tick && ++c->seen % REPL_BUCKETS_TICK == 0)
        c->tick(c->tick_ctx);
    bool in = c->side == REPL_SIDE_SEND ? rules_send_scope(c->rule, c->dir, o, c->names)
                                        : rules_recv_scope(c->rule, c->dir, o, c->names);
    if (!in)
        return 0;
    uint8_t buf[48], h[32];
    memcpy(buf, o->guid.b, 16);
    memcpy(buf + 16, o->hash, 32);
    SHA256_CTX sc;
    SHA256_Init(&sc);
    SHA256_Update(&sc, buf, sizeof(buf));
    SHA256_Final(h, &sc);
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | h[i];
    unsigned b = repl_bucket_of(&o->guid);
    c->out->bk_count[b]++;
    c->out->bk_sum[b] += e;
    if (c->each)
        return c->each(c->each_ctx, o, e);
    return 0;
}

int repl_buckets_compute(store_txn_t *t, const rules_rule_t *rule, unsigned dir, int side,
                         const rules_names_t *names, repl_buckets_t *out, void (*tick)(void *),
                         void *tick_ctx)
{
    return repl_buckets_scan(t, rule, dir, side, names, out, tick, tick_ctx, NULL, NULL);
}

int repl_buckets_scan(store_txn_t *t, const rules_rule_t *rule, unsigned dir, int side,
                      const rules_names_t *names, repl_buckets_t *out, void (*tick)(void *),
                      void *tick_ctx, repl_bucket_each_fn each, void *each_ctx)
{
    memset(out, 0, sizeof(*out));
    s_comp_t c = {rule, dir, side, names, out, tick, tick_ctx, 0, each, each_ctx};
    int err = HS_OK;
    for (size_t i = 0; !err && i < rule->ru_nprefix; i++)
        err = store_scan(t, rule->ru_prefix[i], NULL, 0, NULL, NULL, s_comp_one, &c);
    return err;
}

void repl_buckets_encode(const repl_buckets_t *b, uint8_t out[REPL_BUCKETS_WIRE])
{
    for (unsigned i = 0; i < REPL_BUCKETS; i++) {
        uint8_t *p = out + 12 * i;
        for (int k = 0; k < 4; k++)
            p[k] = (uint8_t)(b->bk_count[i] >> (8 * (3 - k)));
        for (int k = 0; k < 8; k++)
            p[4 + k] = (uint8_t)(b->bk_sum[i] >> (8 * (7 - k)));
    }
}

int repl_buckets_decode(const uint8_t *buf, size_t len, repl_buckets_t *out)
{
    if (!buf || len != REPL_BUCKETS_WIRE)
        return HS_EMALF;
    for (unsigned i = 0; i < REPL_BUCKETS; i++) {
        const uint8_t *p = buf + 12 * i;
        uint32_t c = 0;
        uint64_t s = 0;
        for (int k = 0; k < 4; k++)
            c = c << 8 | p[k];
        for (int k = 0; k < 8; k++)
            s = s << 8 | p[4 + k];
        out->bk_count[i] = c;
        out->bk_sum[i] = s;
    }
    return HS_OK;
}

size_t repl_buckets_diff(const repl_buckets_t *a, const repl_buckets_t *b, unsigned first,
                         unsigned count, repl_bucket_set_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    if (count > REPL_BUCKETS)
        count = REPL_BUCKETS;
    for (unsigned k = 0; k < count; k++) {
        unsigned i = (first + k) % REPL_BUCKETS;
        if (a->bk_count[i] != b->bk_count[i] || a->bk_sum[i] != b->bk_sum[i]) {
            out->bs_bits[i >> 3] |= (uint8_t)(1u << (i & 7));
            n++;
        }
    }
    return n;
}
