/*
 * store.c - LMDB layout of a node's replicated data.
 *
 * On-disk format
 * ==============
 * One LMDB environment in DIR/store/ with these named sub-databases. All
 * integers in keys are big-endian (so LMDB's bytewise order is numeric order);
 * integers inside values are little-endian.
 *
 *   obj   guid[16]                         -> object record (below)
 *   cls   class 0x00 guid[16]              -> (empty)   objects by class
 *   own   owner 0x00 class 0x00 guid[16]   -> (empty)   objects by owner, class
 *   key   name 0x00 value 0x00 guid[16]    -> (empty)   live resources by key
 *   log   seq u64be                        -> change (below); latest change per object
 *   agg   class 0x00 owner                 -> count u64le, sum[32] (256-bit le)
 *   meta, peers, trust, tokens, rules, marks, outbox, history, events, hep
 *                                            -> tables owned by other modules
 *
 * Object record (value of obj), version 1, 80-byte header then payload:
 *
 *   0  u8   version = 1          1  u8 flags (STORE_OBJ_*)   2 u16 zero
 *   4  u64  seq                 12  u64 mtime (ms)
 *  20  u8   hash[32]            52  u8 resource[16]
 *  68  u8   class length        69  u8 origin length     70 u8 owner length
 *  71  u8   zero                72  u16 keys length      74 u16 zero
 *  76  u32  body length
 *  80  class NUL origin NUL owner NUL keys body
 *
 * Version 2 (written since hsync 0.10) is the same with an 88-byte header:
 *
 *  80  u64  registered (ms): when the guid was first registered (put or
 *           imported) on its origin node; see store_obj_t.rtime
 *  88  class NUL origin NUL owner NUL keys body
 *
 * Version 1 records are still read, as registered 0 (unknown): whoever
 * compares registrations then uses the last-changed time (rules/resource.h).
 * A record is valid only if its length is exactly the header + the lengths +
 * 3, every string is non-empty (origin/owner) with no NUL inside, and the
 * lengths are within the limits of store.h. Tombstones keep class, origin,
 * owner, resource and registered; keys and body are empty.
 *
 * Change (value of log): op u8, guid[16], mtime u64le, hash[32], flags u8,
 * class length u8, owner length u8, origin length u8, then class, owner and
 * origin bytes: enough to decide a change's scope without reading the object.
 * When an object changes again, its previous log entry stays where it is,
 * superseded (the object's record holds a later seq, or the object is gone):
 * scans skip it and store_log_compact removes it later. Older versions (before
 * hsync 0.9) deleted it at once and took a log of one entry per object for
 * granted: their retention would purge a re-created object's tombstone entry
 * as if live, so a store written by 0.9 must not be opened by them.
 * The sequence counter itself lives in meta "seq" (u64le): it never goes
 * backwards even when log entries are removed.
 *
 * Content hash: SHA-256 of "hsync-obj-1" NUL class NUL resource[16]
 * keys-length u32be keys body. Origin, owner, seq and mtime are meta, not
 * content.
 *
 * Digest aggregate: for each (class, owner), the count of live objects and the
 * sum mod 2^256 of SHA-256(guid || hash) over them; updated in the same
 * transaction as every write (cached in the transaction, flushed at commit).
 */
/* The one-shot SHA256() of OpenSSL 3 fetches the algorithm on every call (locks,
 * allocation): a third of a put. The low-level interface hashes directly. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "store/store.h"

#include <lmdb.h>
#include <openssl/sha.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

enum s_db { S_OBJ, S_CLS, S_OWN, S_KEY, S_LOG, S_AGG, S_FIXED };

static const char *const s_db_names[S_FIXED + STORE_T__COUNT] = {
    "obj",   "cls",    "own",   "key",   "log",    "agg",     "meta",   "peers",
    "trust", "tokens", "rules", "marks", "outbox", "history", "events", "hep",
};

#define S_NDB (S_FIXED + STORE_T__COUNT)
#define S_REC_HDR 80  /* version 1 */
#define S_REC_HDR2 88 /* version 2: + registered */
#define S_LOG_HDR 61
#define S_AGG_CACHE 32
#define S_AGG_KEY_MAX (STORE_CLASS_MAX + 1 + STORE_NAME_MAX)

struct store {
    MDB_env *env;
    MDB_dbi dbi[S_NDB];
    size_t map_size;
    size_t map_max;
    unsigned open_txns;       /* LMDB may only remap with none open in the process */
    unsigned readers_cleared; /* stale reader slots freed by store_open, not yet reported */
    char *dir;
    char name[STORE_NAME_MAX + 1];
};

typedef struct s_agg {
    uint8_t key[S_AGG_KEY_MAX];
    size_t klen;
    int64_t count;
    uint8_t sum[32];
} s_agg_t;

/* A cursor of the cls or own index kept at one class (owner and class): the
 * objects of one class are time-ordered too, so each class has its own point
 * of insertion, and one cursor per class keeps every insert next to the last. */
#define S_PLACES 4
#define S_PLACE_MAX (STORE_NAME_MAX + 1 + STORE_CLASS_MAX + 1)
typedef struct s_place {
    MDB_cursor *c;
    size_t plen;
    uint8_t prefix[S_PLACE_MAX];
} s_place_t;

struct store_txn {
    store_t *s;
    MDB_txn *txn;
    bool write;
    int err; /* sticky */
    bool seq_loaded, seq_dirty;
    uint64_t seq;
    MDB_cursor *cur[S_FIXED];     /* one long-lived cursor per object sub-database */
    s_place_t place[2][S_PLACES]; /* cls, own: cursors per class (owner+class) */
    unsigned place_next[2];
    size_t naggs;
    s_agg_t aggs[S_AGG_CACHE];
};

/* ---- small helpers ------------------------------------------------------ */

static int s_mdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return HS_OK;
    case MDB_NOTFOUND:
        return HS_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        return HS_EMAPFULL;
    case MDB_READERS_FULL:
        return HS_EREADERS;
    case ENOMEM:
        return HS_ENOMEM;
    case ENOSPC:
        return HS_ENOSPC;
    case EACCES:
        return HS_EACCES;
    case ENOENT:
        return HS_ENOENT;
    case EIO:
        return HS_EIO;
    default:
        return HS_ESTORE;
    }
}

/* A failed commit: LMDB reports a short page write, which is what a full
 * file system gives, as EIO ("short write, filesystem full?"). Name it as
 * the full disk it is when the node folder's file system has less than
 * S_LOW_DISK left, so the user is told to free space, not to check for a
 * failing disk. */
#define S_LOW_DISK ((uint64_t)8 << 20)

static int s_commit_err(const store_t *s, int rc)
{
    struct statvfs vfs;
    if (rc == EIO && statvfs(s->dir, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < S_LOW_DISK)
        return HS_ENOSPC;
    return s_mdb_err(rc);
}

/* Record the first error of a transaction and return it. */
static int s_fail(store_txn_t *t, int err)
{
    if (t->err == HS_OK && err != HS_OK && err != HS_ENOTFOUND)
        t->err = err;
    return err;
}

static void s_sha256(const void *in, size_t n, uint8_t out[32])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, in, n);
    SHA256_Final(out, &c);
}

static void s_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t s_env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (!end || *end || n < 65536)
        return dflt;
    return (size_t)n;
}

/* ---- validation --------------------------------------------------------- */

static const char *const s_families[] = {"item",    "security", "resource", "dataclass",
                                         "package", "event",    "system",   "assoc"};

int store_class_check(const char *cls)
{
    if (!cls)
        return HS_ECLASS;
    size_t n = strlen(cls);
    if (n == 0 || n > STORE_CLASS_MAX)
        return HS_ECLASS;
    size_t part = 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = cls[i];
        if (c == '.') {
            if (part == 0)
                return HS_ECLASS;
            part = 0;
            dots++;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
            part++;
        } else {
            return HS_ECLASS;
        }
    }
    if (part == 0)
        return HS_ECLASS;
    char fam[16];
    store_class_family(cls, fam, sizeof(fam));
    for (size_t i = 0; i < sizeof(s_families) / sizeof(s_families[0]); i++) {
        if (strcmp(fam, s_families[i]) == 0) {
            if (dots == 0 && strcmp(fam, "package") != 0)
                return HS_ECLASS;
            return HS_OK;
        }
    }
    return HS_ECLASS;
}

size_t store_class_family(const char *cls, char *out, size_t outlen)
{
    size_t n = 0;
    while (cls[n] && cls[n] != '.')
        n++;
    if (outlen == 0)
        return n;
    size_t c = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, cls, c);
    out[c] = '\0';
    return n;
}

/* Canonical msgpack walker. Reads one value at *pos; depth counts nesting. */
typedef struct s_mp {
    const uint8_t *p;
    size_t len, pos;
} s_mp_t;

static int s_mp_need(s_mp_t *m, size_t n)
{
    return m->len - m->pos >= n ? HS_OK : HS_EMALF;
}

static uint64_t s_mp_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Read a length-prefixed header: returns size of payload in *n. */
static int s_mp_value(s_mp_t *m, int depth, bool strings_only);

static int s_mp_str(s_mp_t *m, const uint8_t **s, size_t *n)
{
    if (s_mp_need(m, 1))
        return HS_EMALF;
    uint8_t b = m->p[m->pos];
    size_t len;
    if ((b & 0xe0) == 0xa0) {
        len = b & 0x1f;
        m->pos += 1;
    } else if (b == 0xd9) {
        if (s_mp_need(m, 2))
            return HS_EMALF;
        len = m->p[m->pos + 1];
        if (len < 32)
            return HS_EMALF;
        m->pos += 2;
    } else if (b == 0xda) {
        if (s_mp_need(m, 3))
            return HS_EMALF;
        len = (size_t)s_mp_be(m->p + m->pos + 1, 2);
        if (len < 256)
            return HS_EMALF;
        m->pos += 3;
    } else if (b == 0xdb) {
        if (s_mp_need(m, 5))
            return HS_EMALF;
        len = (size_t)s_mp_be(m->p + m->pos + 1, 4);
        if (len < 65536)
            return HS_EMALF;
        m->pos += 5;
    } else {
        return HS_EMALF;
    }
    if (s_mp_need(m, len))
        return HS_EMALF;
    *s = m->p + m->pos;
    *n = len;
    m->pos += len;
    return HS_OK;
}

static int s_key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static int s_mp_map(s_mp_t *m, uint64_t count, int depth, bool strings_only)
{
    const uint8_t *prev = NULL;
    size_t prevn = 0;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *k;
        size_t kn;
        if (s_mp_str(m, &k, &kn))
            return HS_EMALF;
        if (prev && s_key_cmp(prev, prevn, k, kn) >= 0)
            return HS_EMALF;
        prev = k;
        prevn = kn;
        if (strings_only) {
            const uint8_t *v;
            size_t vn;
            if (s_mp_str(m, &v, &vn))
                return HS_EMALF;
        } else if (s_mp_value(m, depth + 1, false)) {
            return HS_EMALF;
        }
    }
    return HS_OK;
}

static int s_mp_value(s_mp_t *m, int depth, bool strings_only)
{
    if (depth > 32 || s_mp_need(m, 1))
        return HS_EMALF;
    uint8_t b = m->p[m->pos];
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        m->pos++;
        return HS_OK;
    }
    if ((b & 0xf0) == 0x80) {
        m->pos++;
        return s_mp_map(m, b & 0x0f, depth, strings_only);
    }
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
        uint64_t n;
        if ((b & 0xf0) == 0x90) {
            n = b & 0x0f;
            m->pos++;
        } else {
            int w = b == 0xdc ? 2 : 4;
            if (s_mp_need(m, 1 + (size_t)w))
                return HS_EMALF;
            n = s_mp_be(m->p + m->pos + 1, w);
            if (n < (w == 2 ? 16u : 65536u))
                return HS_EMALF;
            m->pos += 1 + (size_t)w;
        }
        if (n > m->len - m->pos) /* each element needs at least one byte */
            return HS_EMALF;
        for (uint64_t i = 0; i < n; i++)
            if (s_mp_value(m, depth + 1, false))
                return HS_EMALF;
        return HS_OK;
    }
    if (b == 0xde || b == 0xdf) {
        int w = b == 0xde ? 2 : 4;
        if (s_mp_need(m, 1 + (size_t)w))
            return HS_EMALF;
        uint64_t n = s_mp_be(m->p + m->pos + 1, w);
        if (n < (w == 2 ? 16u : 65536u))
            return HS_EMALF;
        m->pos += 1 + (size_t)w;
        if (n > (m->len - m->pos) / 2)
            return HS_EMALF;
        return s_mp_map(m, n, depth, strings_only);
    }
    if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb) {
        const uint8_t *s;
        size_t n;
        return s_mp_str(m, &s, &n);
    }
    switch (b) {
    case 0xc4: /* bin 8/16/32 */
    case 0xc5:
    case 0xc6: {
        int w = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
        if (s_mp_need(m, 1 + (size_t)w))
            return HS_EMALF;
        uint64_t n = s_mp_be(m->p + m->pos + 1, w);
        if ((w == 2 && n < 256) || (w == 4 && n < 65536))
            return HS_EMALF;
        m->pos += 1 + (size_t)w;
        if (s_mp_need(m, (size_t)n))
            return HS_EMALF;
        m->pos += (size_t)n;
        return HS_OK;
    }
    case 0xca: /* float 32 / 64 */
    case 0xcb: {
        size_t w = b == 0xca ? 4 : 8;
        if (s_mp_need(m, 1 + w))
            return HS_EMALF;
        m->pos += 1 + w;
        return HS_OK;
    }
    case 0xcc: /* uint 8..64: shortest form only */
    case 0xcd:
    case 0xce:
    case 0xcf: {
        int w = 1 << (b - 0xcc);
        if (s_mp_need(m, 1 + (size_t)w))
            return HS_EMALF;
        uint64_t v = s_mp_be(m->p + m->pos + 1, w);
        uint64_t min = w == 1 ? 128u : w == 2 ? 256u : w == 4 ? 65536u : 4294967296u;
        if (v < min)
            return HS_EMALF;
        m->pos += 1 + (size_t)w;
        return HS_OK;
    }
    case 0xd0: /* int 8..64: negative values that need the width only */
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int w = 1 << (b - 0xd0);
        if (s_mp_need(m, 1 + (size_t)w))
            return HS_EMALF;
        uint64_t u = s_mp_be(m->p + m->pos + 1, w);
        int64_t v;
        if (w == 1)
            v = (int8_t)u;
        else if (w == 2)
            v = (int16_t)u;
        else if (w == 4)
            v = (int32_t)u;
        else
            v = (int64_t)u;
        int64_t min = w == 1 ? -32 : w == 2 ? -128 : w == 4 ? -32768 : -2147483648LL;
        if (v >= min)
            return HS_EMALF;
        m->pos += 1 + (size_t)w;
        return HS_OK;
    }
    default:
        return HS_EMALF; /* ext types and the never-used 0xc1 */
    }
}

static int s_check_map(const uint8_t *buf, size_t len, bool strings_only)
{
    if (!buf || len == 0)
        return HS_EMALF;
    uint8_t b = buf[0];
    if (!((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf))
        return HS_EMALF;
    s_mp_t m = {buf, len, 0};
    if (s_mp_value(&m, 0, strings_only))
        return HS_EMALF;
    return m.pos == len ? HS_OK : HS_EMALF;
}

int store_body_check(const uint8_t *buf, size_t len)
{
    if (len > STORE_BODY_MAX)
        return HS_ETOOBIG;
    return s_check_map(buf, len, false);
}

int store_keys_check(const uint8_t *buf, size_t len)
{
    if (len > STORE_KEYS_MAX)
        return HS_ETOOBIG;
    return s_check_map(buf, len, true);
}

void store_obj_hash(const store_obj_t *o, uint8_t out[STORE_HASH_LEN])
{
    static const char tag[] = "hsync-obj-1";
    size_t cl = strlen(o->cls);
    size_t n = sizeof(tag) + cl + 1 + 16 + 4 + o->keys_len + o->body_len;
    uint8_t stackbuf[2048];
    uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
    if (!buf) { /* fall back to hashing the parts into a chained digest */
        memset(out, 0, STORE_HASH_LEN);
        return;
    }
    uint8_t *p = buf;
    memcpy(p, tag, sizeof(tag));
    p += sizeof(tag);
    memcpy(p, o->cls, cl + 1);
    p += cl + 1;
    memcpy(p, o->resource.b, 16);
    p += 16;
    uint32_t kl = (uint32_t)o->keys_len;
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(kl >> (8 * (3 - i)));
    if (o->keys_len)
        memcpy(p, o->keys, o->keys_len);
    p += o->keys_len;
    if (o->body_len)
        memcpy(p, o->body, o->body_len);
    s_sha256(buf, n, out);
    if (buf != stackbuf)
        free(buf);
}

/* ---- record codec ------------------------------------------------------- */

size_t store_record_size(const store_obj_t *o)
{
    return S_REC_HDR2 + strlen(o->cls) + strlen(o->origin) + strlen(o->owner) + 3 + o->keys_len +
           o->body_len;
}

size_t store_record_encode(const store_obj_t *o, uint8_t *buf)
{
    size_t cl = strlen(o->cls), ol = strlen(o->origin), wl = strlen(o->owner);
    memset(buf, 0, S_REC_HDR2);
    buf[0] = 2;
    buf[1] = (uint8_t)o->flags;
    s_put_le64(buf + 4, o->seq);
    s_put_le64(buf + 12, o->mtime);
    memcpy(buf + 20, o->hash, 32);
    memcpy(buf + 52, o->resource.b, 16);
    buf[68] = (uint8_t)cl;
    buf[69] = (uint8_t)ol;
    buf[70] = (uint8_t)wl;
    buf[72] = (uint8_t)(o->keys_len & 0xff);
    buf[73] = (uint8_t)(o->keys_len >> 8);
    for (int i = 0; i < 4; i++)
        buf[76 + i] = (uint8_t)(o->body_len >> (8 * i));
    s_put_le64(buf + 80, o->rtime);
    uint8_t *p = buf + S_REC_HDR2;
    memcpy(p, o->cls, cl + 1);
    p += cl + 1;
    memcpy(p, o->origin, ol + 1);
    p += ol + 1;
    memcpy(p, o->owner, wl + 1);
    p += wl + 1;
    if (o->keys_len)
        memcpy(p, o->keys, o->keys_len);
    p += o->keys_len;
    if (o->body_len)
        memcpy(p, o->body, o->body_len);
    p += o->body_len;
    return (size_t)(p - buf);
}

static int s_rec_str(const uint8_t *p, size_t n)
{
    if (memchr(p, 0, n) || p[n] != 0)
        return HS_EMALF;
    return HS_OK;
}

int store_record_decode(const uint8_t *buf, size_t len, store_obj_t *out)
{
    if (!buf || len < S_REC_HDR || (buf[0] != 1 && buf[0] != 2) || buf[1] > 3)
        return HS_EMALF;
    size_t hdr = buf[0] == 2 ? S_REC_HDR2 : S_REC_HDR;
    if (len < hdr)
        return HS_EMALF;
    size_t cl = buf[68], ol = buf[69], wl = buf[70];
    size_t kl = (size_t)buf[72] | (size_t)buf[73] << 8;
    size_t bl = 0;
    for (int i = 3; i >= 0; i--)
        bl = bl << 8 | buf[76 + i];
    if (cl == 0 || cl > STORE_CLASS_MAX || ol == 0 || ol > STORE_NAME_MAX || wl == 0 ||
        wl > STORE_NAME_MAX || kl > STORE_KEYS_MAX || bl > STORE_BODY_MAX)
        return HS_EMALF;
    if (len != hdr + cl + ol + wl + 3 + kl + bl)
        return HS_EMALF;
    const uint8_t *p = buf + hdr;
    if (s_rec_str(p, cl) || s_rec_str(p + cl + 1, ol) || s_rec_str(p + cl + ol + 2, wl))
        return HS_EMALF;
    memset(out, 0, sizeof(*out));
    out->flags = buf[1];
    out->seq = s_get_le64(buf + 4);
    out->mtime = s_get_le64(buf + 12);
    out->rtime = hdr == S_REC_HDR2 ? s_get_le64(buf + 80) : 0;
    memcpy(out->hash, buf + 20, 32);
    memcpy(out->resource.b, buf + 52, 16);
    out->cls = (const char *)p;
    out->origin = (const char *)p + cl + 1;
    out->owner = (const char *)p + cl + ol + 2;
    p += cl + ol + wl + 3;
    out->keys = kl ? p : NULL;
    out->keys_len = kl;
    out->body = bl ? p + kl : NULL;
    out->body_len = bl;
    return HS_OK;
}

/* ---- environment -------------------------------------------------------- */

static int s_open_env(store_t *s, const char *path, bool create)
{
    int rc = mdb_env_create(&s->env);
    if (rc)
        return s_mdb_err(rc);
    mdb_env_set_maxdbs(s->env, S_NDB + 2);
    mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
    rc = mdb_env_set_mapsize(s->env, s->map_size);
    if (!rc)
        rc = mdb_env_open(s->env, path, MDB_NOTLS, 0600);
    if (rc)
        return s_mdb_err(rc);
    /* slots left by processes killed while reading (a CLI cut off, kill -9) */
    int dead = 0;
    if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
        s->readers_cleared += (unsigned)dead;
    /* Another process may have grown the map already: adopt its size. */
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_mapsize > s->map_size)
        s->map_size = info.me_mapsize;

    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return s_mdb_err(rc);
    for (int i = 0; i < S_NDB; i++) {
        rc = mdb_dbi_open(txn, s_db_names[i], create ? MDB_CREATE : 0, &s->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            return rc == MDB_NOTFOUND ? HS_ENOTNODE : s_mdb_err(rc);
        }
    }
    MDB_val k = {4, (void *)"name"}, v;
    if (mdb_get(txn, s->dbi[S_FIXED + STORE_T_META], &k, &v) == 0 && v.mv_size <= STORE_NAME_MAX) {
        memcpy(s->name, v.mv_data, v.mv_size);
        s->name[v.mv_size] = '\0';
    }
    rc = mdb_txn_commit(txn); /* keeps the dbi handles, read-only too */
    return s_mdb_err(rc);
}

int store_open(const char *dir, unsigned flags, store_t **out)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return HS_ENOENT;
    size_t plen = strlen(dir) + sizeof("/store/data.mdb");
    char *path = malloc(plen);
    if (!path)
        return HS_ENOMEM;
    bool create = flags & STORE_OPEN_CREATE;
    snprintf(path, plen, "%s/store/data.mdb", dir);
    if (stat(path, &st) != 0 && !create) {
        free(path);
        return HS_ENOTNODE;
    }
    snprintf(path, plen, "%s/store", dir);
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST) {
        int e = -errno;
        free(path);
        return e;
    }
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        free(path);
        return HS_ENOMEM;
    }
    s->dir = strdup(dir);
    s->map_size = s_env_size("HSYNC_MAP_SIZE", (size_t)64 << 30);
    s->map_max = s_env_size("HSYNC_MAP_MAX", (size_t)1 << 40);
    if (s->map_max < s->map_size)
        s->map_max = s->map_size;
    int err = s->dir ? s_open_env(s, path, create) : HS_ENOMEM;
    free(path);
    if (!err && !create) /* secrets an older version kept in meta go to DIR/keys */
        err = store_secrets_migrate(s);
    if (err) {
        store_close(&s);
        return err;
    }
    *out = s;
    return HS_OK;
}

void store_close(store_t **sp)
{
    if (!sp || !*sp)
        return;
    store_t *s = *sp;
    if (s->env)
        mdb_env_close(s->env);
    free(s->dir);
    free(s);
    *sp = NULL;
}

int store_disk(const char *dir, store_disk_t *out)
{
    memset(out, 0, sizeof(*out));
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0)
        return errno == ENOENT ? HS_ENOENT : HS_EIO;
    out->sd_free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    out->sd_total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    out->sd_low = out->sd_free_bytes < STORE_DISK_LOW;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/store", dir) >= sizeof(path))
        return HS_OK;
    DIR *d = opendir(path);
    if (!d)
        return HS_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        char f[4400];
        snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
        if (stat(f, &st) == 0 && S_ISREG(st.st_mode))
            out->sd_store_bytes += (uint64_t)st.st_blocks * 512u;
    }
    closedir(d);
    return HS_OK;
}

int store_readers_check(store_t *s, unsigned *cleared)
{
    int dead = 0;
    int rc = mdb_reader_check(s->env, &dead);
    if (cleared)
        *cleared = s->readers_cleared + (dead > 0 ? (unsigned)dead : 0);
    s->readers_cleared = 0;
    return rc ? HS_ESTORE : HS_OK;
}

/* mdb_reader_list's callback: count the lines of slots in use (the first
 * line is the header). */
static int s_reader_line(const char *msg, void *ctx)
{
    unsigned *n = ctx;
    if (strstr(msg, "(no active readers)") == NULL)
        (*n)++;
    return 0;
}

int store_readers_info(store_t *s, unsigned *used, unsigned *max)
{
    unsigned lines = 0, mr = 0;
    if (mdb_reader_list(s->env, s_reader_line, &lines) < 0 || mdb_env_get_maxreaders(s->env, &mr))
        return HS_ESTORE;
    *used = lines ? lines - 1 : 0;
    *max = mr;
    return HS_OK;
}

const char *store_dir(const store_t *s)
{
    return s->dir;
}

const char *store_node_name(const store_t *s)
{
    return s->name;
}

int store_grow(store_t *s)
{
    /* Remapping under an open transaction (a long snapshot of a complete
     * run, say) would pull its pages away: refuse; the write fails as full
     * and is retried once the snapshot is gone. */
    if (s->map_size >= s->map_max || s->open_txns)
        return HS_EMAPFULL;
    size_t next = s->map_size * 2;
    if (next > s->map_max || next < s->map_size)
        next = s->map_max;
    int rc = mdb_env_set_mapsize(s->env, next);
    if (rc)
        return s_mdb_err(rc);
    s->map_size = next;
    return HS_OK;
}

/* ---- transactions ------------------------------------------------------- */

int store_txn_begin(store_t *s, bool write, store_txn_t **out)
{
    *out = NULL;
    store_txn_t *t = malloc(sizeof(*t));
    if (!t)
        return HS_ENOMEM;
    memset(t, 0, offsetof(store_txn_t, aggs));
    t->s = s;
    t->write = write;
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc == MDB_READERS_FULL) { /* free the slots of dead processes, then try once more */
        int dead = 0;
        if (mdb_reader_check(s->env, &dead) == 0 && dead > 0) {
            s->readers_cleared += (unsigned)dead;
            rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
        }
    }
    if (rc == MDB_MAP_RESIZED && s->open_txns == 0) { /* another process grew the map */
        mdb_env_set_mapsize(s->env, 0);
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        s->map_size = info.me_mapsize;
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    }
    if (rc) {
        free(t);
        return rc == MDB_MAP_RESIZED ? HS_EAGAIN : s_mdb_err(rc);
    }
    s->open_txns++;
    *out = t;
    return HS_OK;
}

static int s_agg_flush(store_txn_t *t);

/* Close the transaction's cursors; LMDB frees write cursors at the end of
 * their transaction but not read ones, so close both kinds before it ends. */
static void s_cursors_close(store_txn_t *t)
{
    for (int i = 0; i < S_FIXED; i++) {
        if (t->cur[i]) {
            mdb_cursor_close(t->cur[i]);
            t->cur[i] = NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < S_PLACES; j++) {
            if (t->place[i][j].c) {
                mdb_cursor_close(t->place[i][j].c);
                t->place[i][j].c = NULL;
            }
        }
    }
}

int store_txn_commit(store_txn_t **tp)
{
    store_txn_t *t = *tp;
    *tp = NULL;
    if (!t)
        return HS_EINVAL;
    int err = t->err;
    if (!err && t->write)
        err = s_agg_flush(t);
    if (!err && t->seq_dirty) {
        uint8_t v[8];
        s_put_le64(v, t->seq);
        MDB_val k = {3, (void *)"seq"}, d = {8, v};
        err = s_mdb_err(mdb_put(t->txn, t->s->dbi[S_FIXED + STORE_T_META], &k, &d, 0));
    }
    s_cursors_close(t);
    t->s->open_txns--;
    if (err) {
        mdb_txn_abort(t->txn);
        free(t);
        return err;
    }
    store_t *s = t->s;
    int rc = mdb_txn_commit(t->txn);
    free(t);
    return s_commit_err(s, rc);
}

void store_txn_abort(store_txn_t **tp)
{
    if (!tp || !*tp)
        return;
    s_cursors_close(*tp);
    (*tp)->s->open_txns--;
    mdb_txn_abort((*tp)->txn);
    free(*tp);
    *tp = NULL;
}

int store_txn_error(const store_txn_t *t)
{
    return t->err;
}

store_t *store_txn_store(store_txn_t *t)
{
    return t->s;
}

static int s_run(store_t *s, bool write, store_txn_fn fn, void *ctx)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        store_txn_t *t;
        int err = store_txn_begin(s, write, &t);
        if (err)
            return err;
        int ferr = fn(t, ctx);
        if (ferr == HS_OK && t->err)
            ferr = t->err;
        if (ferr != HS_OK) {
            store_txn_abort(&t);
            if (ferr != HS_EMAPFULL)
                return ferr;
        } else {
            err = write ? store_txn_commit(&t) : (store_txn_abort(&t), HS_OK);
            if (err != HS_EMAPFULL)
                return err;
        }
        err = store_grow(s);
        if (err)
            return err;
    }
    return HS_EMAPFULL;
}

int store_write(store_t *s, store_txn_fn fn, void *ctx)
{
    return s_run(s, true, fn, ctx);
}

int store_read(store_t *s, store_txn_fn fn, void *ctx)
{
    return s_run(s, false, fn, ctx);
}

/* ---- raw access --------------------------------------------------------- */

/*
 * The object sub-databases (obj, cls, own, key, log, agg) are reached through
 * one cursor each, kept open for the transaction. LMDB's cursor lookup first
 * checks the page the cursor is on, so a key next to the previous one (guids
 * are time-ordered, the log is appended) costs a couple of compares instead
 * of a walk from the root that searches the dirty-page list at every level.
 * LMDB keeps every cursor of a transaction valid across writes through others.
 */
static MDB_cursor *s_cursor(store_txn_t *t, int db)
{
    if (db >= S_FIXED)
        return NULL;
    if (!t->cur[db] && mdb_cursor_open(t->txn, t->s->dbi[db], &t->cur[db]) != MDB_SUCCESS)
        t->cur[db] = NULL;
    return t->cur[db];
}

/* The cursor of index db (S_CLS or S_OWN) for keys whose class part is the
 * first plen bytes of key (everything but the guid). */
static MDB_cursor *s_place_cursor(store_txn_t *t, int db, const uint8_t *key, size_t plen)
{
    int d = db == S_CLS ? 0 : 1;
    s_place_t *pl = t->place[d];
    if (plen > S_PLACE_MAX)
        return s_cursor(t, db);
    for (int i = 0; i < S_PLACES; i++)
        if (pl[i].c && pl[i].plen == plen && !memcmp(pl[i].prefix, key, plen))
            return pl[i].c;
    s_place_t *p = &pl[t->place_next[d]++ % S_PLACES];
    if (!p->c && mdb_cursor_open(t->txn, t->s->dbi[db], &p->c) != MDB_SUCCESS) {
        p->c = NULL;
        return s_cursor(t, db);
    }
    memcpy(p->prefix, key, plen);
    p->plen = plen;
    return p->c; /* a reused cursor keeps its old position: LMDB searches from the root */
}

static int s_get(store_txn_t *t, int db, const void *k, size_t kl, MDB_val *v)
{
    MDB_val key = {kl, (void *)k};
    MDB_cursor *c = s_cursor(t, db);
    int rc = c ? mdb_cursor_get(c, &key, v, MDB_SET) : mdb_get(t->txn, t->s->dbi[db], &key, v);
    return rc == MDB_NOTFOUND ? HS_ENOTFOUND : s_fail(t, s_mdb_err(rc));
}

static int s_put(store_txn_t *t, int db, const void *k, size_t kl, const void *v, size_t vl,
                 unsigned flags)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    MDB_cursor *c = s_cursor(t, db);
    int rc = c ? mdb_cursor_put(c, &key, &val, flags)
               : mdb_put(t->txn, t->s->dbi[db], &key, &val, flags);
    return s_fail(t, s_mdb_err(rc));
}

static int s_del(store_txn_t *t, int db, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k}, v;
    MDB_cursor *c = s_cursor(t, db);
    int rc;
    if (c) {
        rc = mdb_cursor_get(c, &key, &v, MDB_SET);
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(c, 0);
    } else {
        rc = mdb_del(t->txn, t->s->dbi[db], &key, NULL);
    }
    return rc == MDB_NOTFOUND ? HS_ENOTFOUND : s_fail(t, s_mdb_err(rc));
}

/* Put or delete an entry of the cls or own index (empty value). */
static int s_place_put(store_txn_t *t, int db, const uint8_t *k, size_t kl, bool remove)
{
    MDB_val key = {kl, (void *)k}, val = {0, (void *)""};
    MDB_cursor *c = s_place_cursor(t, db, k, kl - 16);
    int rc;
    if (!c) {
        rc = remove ? mdb_del(t->txn, t->s->dbi[db], &key, NULL)
                    : mdb_put(t->txn, t->s->dbi[db], &key, &val, 0);
    } else if (!remove) {
        rc = mdb_cursor_put(c, &key, &val, 0);
    } else {
        rc = mdb_cursor_get(c, &key, &val, MDB_SET);
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(c, 0);
    }
    return rc == MDB_NOTFOUND ? HS_ENOTFOUND : s_fail(t, s_mdb_err(rc));
}

static int s_check_write(store_txn_t *t)
{
    if (t->err)
        return t->err;
    if (!t->write)
        return s_fail(t, HS_EINVAL);
    return HS_OK;
}

/* ---- digest aggregates -------------------------------------------------- */

static void s_add256(uint8_t *acc, const uint8_t *x, bool negate)
{
    /* acc += x (or acc -= x) modulo 2^256, both little-endian. */
    unsigned carry = negate ? 1 : 0;
    for (int i = 0; i < 32; i++) {
        unsigned xi = negate ? (uint8_t)~x[i] : x[i];
        unsigned s = acc[i] + xi + carry;
        acc[i] = (uint8_t)s;
        carry = s >> 8;
    }
}

static void s_elem(const store_guid_t *g, const uint8_t *hash, uint8_t out[32])
{
    uint8_t in[48];
    memcpy(in, g->b, 16);
    memcpy(in + 16, hash, 32);
    s_sha256(in, sizeof(in), out);
}

static size_t s_agg_key(uint8_t *k, const char *cls, const char *owner)
{
    size_t cl = strlen(cls), ol = strlen(owner);
    memcpy(k, cls, cl);
    k[cl] = 0;
    memcpy(k + cl + 1, owner, ol);
    return cl + 1 + ol;
}

static int s_agg_flush(store_txn_t *t)
{
    for (size_t i = 0; i < t->naggs; i++) {
        s_agg_t *a = &t->aggs[i];
        uint8_t v[40] = {0};
        MDB_val cur;
        int err = s_get(t, S_AGG, a->key, a->klen, &cur);
        if (err == HS_OK && cur.mv_size == 40)
            memcpy(v, cur.mv_data, 40);
        else if (err != HS_ENOTFOUND && err != HS_OK)
            return err;
        int64_t count = (int64_t)s_get_le64(v) + a->count;
        s_add256(v + 8, a->sum, false);
        if (count <= 0) {
            if (err == HS_OK && s_del(t, S_AGG, a->key, a->klen) != HS_OK)
                return t->err;
        } else {
            s_put_le64(v, (uint64_t)count);
            if (s_put(t, S_AGG, a->key, a->klen, v, 40, 0))
                return t->err;
        }
    }
    t->naggs = 0;
    return HS_OK;
}

static int s_agg_add(store_txn_t *t, const store_obj_t *o, bool remove)
{
    uint8_t key[S_AGG_KEY_MAX];
    size_t kl = s_agg_key(key, o->cls, o->owner);
    s_agg_t *a = NULL;
    for (size_t i = 0; i < t->naggs; i++) {
        if (t->aggs[i].klen == kl && memcmp(t->aggs[i].key, key, kl) == 0) {
            a = &t->aggs[i];
            break;
        }
    }
    if (!a) {
        if (t->naggs == S_AGG_CACHE && s_agg_flush(t))
            return t->err;
        a = &t->aggs[t->naggs++];
        memcpy(a->key, key, kl);
        a->klen = kl;
        a->count = 0;
        memset(a->sum, 0, 32);
    }
    uint8_t e[32];
    s_elem(&o->guid, o->hash, e);
    s_add256(a->sum, e, remove);
    a->count += remove ? -1 : 1;
    return HS_OK;
}

/* ---- indexes ------------------------------------------------------------ */

/* class 0x00 guid */
static size_t s_cls_key(uint8_t *k, const char *cls, const store_guid_t *g)
{
    size_t cl = strlen(cls);
    memcpy(k, cls, cl);
    k[cl] = 0;
    memcpy(k + cl + 1, g->b, 16);
    return cl + 17;
}

/* owner 0x00 class 0x00 guid */
static size_t s_own_key(uint8_t *k, const char *owner, const char *cls, const store_guid_t *g)
{
    size_t ol = strlen(owner);
    memcpy(k, owner, ol);
    k[ol] = 0;
    return ol + 1 + s_cls_key(k + ol + 1, cls, g);
}

/* Iterate the string pairs of a canonical keys map, calling fn for each. */
typedef int (*s_pair_fn)(store_txn_t *t, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn,
                         const store_guid_t *g, bool remove);

static int s_key_entry(store_txn_t *t, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn,
                       const store_guid_t *g, bool remove)
{
    uint8_t key[STORE_KEYS_MAX + 32];
    if (kn + vn + 18 > sizeof(key) || kn + vn + 18 > 511) /* LMDB max key size */
        return HS_OK;                                     /* too long to index; still stored */
    memcpy(key, k, kn);
    key[kn] = 0;
    memcpy(key + kn + 1, v, vn);
    key[kn + 1 + vn] = 0;
    memcpy(key + kn + vn + 2, g->b, 16);
    size_t kl = kn + vn + 18;
    if (remove) {
        int err = s_del(t, S_KEY, key, kl);
        return err == HS_ENOTFOUND ? HS_OK : err;
    }
    return s_put(t, S_KEY, key, kl, "", 0, 0);
}

static int s_keys_each(store_txn_t *t, const uint8_t *keys, size_t len, const store_guid_t *g,
                       bool remove)
{
    if (!keys || !len)
        return HS_OK;
    s_mp_t m = {keys, len, 0};
    uint64_t n;
    uint8_t b = keys[0];
    if ((b & 0xf0) == 0x80) {
        n = b & 0x0f;
        m.pos = 1;
    } else if (b == 0xde && len >= 3) {
        n = s_mp_be(keys + 1, 2);
        m.pos = 3;
    } else {
        return HS_EMALF;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t kn, vn;
        if (s_mp_str(&m, &k, &kn) || s_mp_str(&m, &v, &vn))
            return HS_EMALF;
        int err = s_key_entry(t, k, kn, v, vn, g, remove);
        if (err)
            return err;
    }
    return HS_OK;
}

static bool s_keys_equal(const store_obj_t *a, const store_obj_t *b)
{
    return a->keys_len == b->keys_len &&
           (a->keys_len == 0 || !memcmp(a->keys, b->keys, a->keys_len));
}

/* ---- change log --------------------------------------------------------- */

static int s_next_seq(store_txn_t *t, uint64_t *out)
{
    if (!t->seq_loaded) {
        MDB_val v;
        int err = s_get(t, S_FIXED + STORE_T_META, "seq", 3, &v);
        if (err == HS_OK && v.mv_size == 8)
            t->seq = s_get_le64(v.mv_data);
        else if (err != HS_ENOTFOUND && err != HS_OK)
            return err;
        t->seq_loaded = true;
    }
    *out = ++t->seq;
    t->seq_dirty = true;
    return HS_OK;
}

static int s_log_append(store_txn_t *t, int op, const store_obj_t *o)
{
    uint8_t k[8], v[S_LOG_HDR + STORE_CLASS_MAX + 2 * STORE_NAME_MAX];
    size_t cl = strlen(o->cls), wl = strlen(o->owner), ol = strlen(o->origin);
    s_put_be64(k, o->seq);
    v[0] = (uint8_t)op;
    memcpy(v + 1, o->guid.b, 16);
    s_put_le64(v + 17, o->mtime);
    memcpy(v + 25, o->hash, 32);
    v[57] = (uint8_t)o->flags;
    v[58] = (uint8_t)cl;
    v[59] = (uint8_t)wl;
    v[60] = (uint8_t)ol;
    memcpy(v + S_LOG_HDR, o->cls, cl);
    memcpy(v + S_LOG_HDR + cl, o->owner, wl);
    memcpy(v + S_LOG_HDR + cl + wl, o->origin, ol);
    return s_put(t, S_LOG, k, 8, v, S_LOG_HDR + cl + wl + ol, MDB_APPEND);
}

static int s_log_remove(store_txn_t *t, uint64_t seq)
{
    uint8_t k[8];
    s_put_be64(k, seq);
    int err = s_del(t, S_LOG, k, 8);
    return err == HS_ENOTFOUND ? HS_OK : err;
}

/* ---- objects ------------------------------------------------------------ */

static int s_write_record(store_txn_t *t, const store_obj_t *o)
{
    MDB_val key = {16, (void *)o->guid.b}, val = {store_record_size(o), NULL};
    MDB_cursor *c = s_cursor(t, S_OBJ);
    int rc = c ? mdb_cursor_put(c, &key, &val, MDB_RESERVE)
               : mdb_put(t->txn, t->s->dbi[S_OBJ], &key, &val, MDB_RESERVE);
    if (rc)
        return s_fail(t, s_mdb_err(rc));
    store_record_encode(o, val.mv_data);
    return HS_OK;
}

int store_get(store_txn_t *t, const store_guid_t *g, store_obj_t *out)
{
    if (t->err)
        return t->err;
    MDB_val v;
    int err = s_get(t, S_OBJ, g->b, 16, &v);
    if (err)
        return err;
    if (store_record_decode(v.mv_data, v.mv_size, out))
        return HS_EMALF;
    out->guid = *g;
    return HS_OK;
}

int store_obj_check(const store_obj_t *o)
{
    if (store_class_check(o->cls))
        return HS_ECLASS;
    if (o->body_len > STORE_BODY_MAX || o->keys_len > STORE_KEYS_MAX)
        return HS_ETOOBIG;
    if (store_body_check(o->body, o->body_len))
        return HS_EMALF;
    if (o->keys_len && store_keys_check(o->keys, o->keys_len))
        return HS_EMALF;
    if (o->origin && (!*o->origin || strlen(o->origin) > STORE_NAME_MAX))
        return HS_EINVAL;
    if (o->owner && (!*o->owner || strlen(o->owner) > STORE_NAME_MAX))
        return HS_EINVAL;
    if (strncmp(o->cls, "dataclass.", 10) == 0 && store_guid_is_zero(&o->resource))
        return HS_EINVAL;
    if (o->flags & ~(uint32_t)(STORE_OBJ_TOMBSTONE | STORE_OBJ_IMPORTED))
        return HS_EINVAL;
    return HS_OK;
}

/* Remove the index entries of an existing record that the new one does not share. */
static int s_unindex(store_txn_t *t, const store_obj_t *old, const store_obj_t *o, bool keep_log)
{
    uint8_t k[2 * STORE_CLASS_MAX + STORE_NAME_MAX + 32];
    bool same_place = o && !strcmp(old->cls, o->cls) && !strcmp(old->owner, o->owner);
    if (!same_place) {
        s_place_put(t, S_CLS, k, s_cls_key(k, old->cls, &old->guid), true);
        s_place_put(t, S_OWN, k, s_own_key(k, old->owner, old->cls, &old->guid), true);
    }
    if (!(old->flags & STORE_OBJ_TOMBSTONE)) {
        bool keep_keys = o && !(o->flags & STORE_OBJ_TOMBSTONE) && s_keys_equal(old, o);
        if (!keep_keys && s_keys_each(t, old->keys, old->keys_len, &old->guid, true))
            return s_fail(t, HS_ESTORE);
        if (s_agg_add(t, old, true))
            return t->err;
    }
    if (!keep_log && s_log_remove(t, old->seq))
        return t->err;
    return t->err;
}

static int s_index(store_txn_t *t, const store_obj_t *o, const store_obj_t *old)
{
    uint8_t k[2 * STORE_CLASS_MAX + STORE_NAME_MAX + 32];
    bool same_place = old && !strcmp(old->cls, o->cls) && !strcmp(old->owner, o->owner);
    if (!same_place) {
        if (s_place_put(t, S_CLS, k, s_cls_key(k, o->cls, &o->guid), false) ||
            s_place_put(t, S_OWN, k, s_own_key(k, o->owner, o->cls, &o->guid), false))
            return t->err;
    }
    if (!(o->flags & STORE_OBJ_TOMBSTONE)) {
        bool have_keys = old && !(old->flags & STORE_OBJ_TOMBSTONE) && s_keys_equal(old, o);
        if (!have_keys && s_keys_each(t, o->keys, o->keys_len, &o->guid, false))
            return s_fail(t, HS_ESTORE);
        if (s_agg_add(t, o, false))
            return t->err;
    }
    return s_log_append(t, (o->flags & STORE_OBJ_TOMBSTONE) ? STORE_OP_DEL : STORE_OP_PUT, o);
}

/* Copy the old record's strings: the next write may move the page they live on. */
typedef struct s_oldcopy {
    store_obj_t o;
    char cls[STORE_CLASS_MAX + 1], origin[STORE_NAME_MAX + 1], owner[STORE_NAME_MAX + 1];
    uint8_t keys[STORE_KEYS_MAX];
} s_oldcopy_t;

static void s_copy_old(s_oldcopy_t *c, const store_obj_t *o)
{
    size_t cl = strlen(o->cls), ol = strlen(o->origin), wl = strlen(o->owner);
    c->o = *o;
    /* store_record_decode bounds the lengths by the sizes of these arrays */
    memcpy(c->cls, o->cls, cl + 1);
    memcpy(c->origin, o->origin, ol + 1);
    memcpy(c->owner, o->owner, wl + 1);
    if (o->keys_len)
        memcpy(c->keys, o->keys, o->keys_len);
    c->o.cls = c->cls;
    c->o.origin = c->origin;
    c->o.owner = c->owner;
    c->o.keys = o->keys_len ? c->keys : NULL;
    c->o.body = NULL; /* not needed after this point */
    c->o.body_len = 0;
}

int store_put(store_txn_t *t, store_obj_t *o, bool *changed)
{
    return store_put_ex(t, o, 0, changed);
}

int store_debug_rewrite(store_txn_t *t, const store_guid_t *g, const uint8_t *body, size_t len)
{
    int err = s_check_write(t);
    if (err)
        return err;
    store_obj_t cur;
    err = store_get(t, g, &cur);
    if (err)
        return err;
    if (cur.flags & STORE_OBJ_TOMBSTONE)
        return HS_ENOTFOUND;
    if (store_body_check(body, len))
        return HS_EMALF;
    s_oldcopy_t old;
    s_copy_old(&old, &cur);
    store_obj_t o = old.o;
    o.body = body;
    o.body_len = len;
    store_obj_hash(&o, o.hash);
    /* same seq and mtime, no log entry: nothing says it changed */
    if (s_agg_add(t, &old.o, true) || s_write_record(t, &o) || s_agg_add(t, &o, false))
        return t->err;
    return HS_OK;
}

int store_put_ex(store_txn_t *t, store_obj_t *o, unsigned flags, bool *changed)
{
    if (changed)
        *changed = false;
    int err = s_check_write(t);
    if (err)
        return err;
    if (!(flags & STORE_PUT_CHECKED))
        err = store_obj_check(o);
    if (!err && (o->flags & STORE_OBJ_TOMBSTONE))
        err = HS_EINVAL;
    if (err)
        return s_fail(t, err); /* sticky: validate first (store_obj_check) to skip bad input */
    if (!o->origin)
        o->origin = t->s->name[0] ? t->s->name : "local";
    if (!o->owner)
        o->owner = t->s->name[0] ? t->s->name : "local";

    store_obj_t cur;
    s_oldcopy_t old;
    bool have_old = false;
    uint64_t reg = o->rtime;
    err = store_get(t, &o->guid, &cur);
    if (err == HS_OK) {
        if ((flags & STORE_PUT_NEWER) && cur.mtime > (o->mtime ? o->mtime : s_now_ms()))
            return HS_OK; /* the stored object changed later: it wins */
        /* the guid's first registration is the earliest one known */
        if (cur.rtime && (!reg || cur.rtime < reg))
            reg = cur.rtime;
        store_obj_hash(o, o->hash);
        if (!(flags & STORE_PUT_FORCE) && !(cur.flags & STORE_OBJ_TOMBSTONE) &&
            cur.flags == o->flags && !memcmp(cur.hash, o->hash, 32) &&
            !strcmp(cur.owner, o->owner) && (!reg || cur.rtime == reg)) {
            o->seq = cur.seq;
            o->mtime = cur.mtime;
            o->rtime = cur.rtime;
            return HS_OK;
        }
        s_copy_old(&old, &cur);
        have_old = true;
    } else if (err == HS_ENOTFOUND) {
        store_obj_hash(o, o->hash);
    } else {
        return s_fail(t, err);
    }
    if (!o->mtime)
        o->mtime = s_now_ms();
    o->rtime = reg ? reg : o->mtime; /* a new guid registers now (or when it changed) */
    if (s_next_seq(t, &o->seq))
        return t->err;
    if (have_old && s_unindex(t, &old.o, o, true))
        return t->err;
    if (s_write_record(t, o) || s_index(t, o, have_old ? &old.o : NULL))
        return t->err;
    if (changed)
        *changed = true;
    return HS_OK;
}

int store_delete(store_txn_t *t, const store_guid_t *g, uint64_t mtime)
{
    int err = s_check_write(t);
    if (err)
        return err;
    store_obj_t cur;
    err = store_get(t, g, &cur);
    if (err)
        return err == HS_ENOTFOUND ? err : s_fail(t, err);
    if (cur.flags & STORE_OBJ_TOMBSTONE)
        return HS_ENOTFOUND;
    s_oldcopy_t old;
    s_copy_old(&old, &cur);
    store_obj_t o = old.o;
    o.flags = (old.o.flags & STORE_OBJ_IMPORTED) | STORE_OBJ_TOMBSTONE;
    o.keys = NULL;
    o.keys_len = 0;
    o.body = NULL;
    o.body_len = 0;
    memset(o.hash, 0, 32);
    o.mtime = mtime ? mtime : s_now_ms();
    if (s_next_seq(t, &o.seq) || s_unindex(t, &old.o, &o, true) || s_write_record(t, &o) ||
        s_index(t, &o, &old.o))
        return t->err;
    return HS_OK;
}

int store_put_tombstone(store_txn_t *t, const store_obj_t *in)
{
    int err = s_check_write(t);
    if (err)
        return err;
    store_obj_t cur;
    err = store_get(t, &in->guid, &cur);
    if (err == HS_OK)
        return HS_EEXIST;
    if (err != HS_ENOTFOUND)
        return s_fail(t, err);
    store_obj_t o = *in;
    o.flags = (in->flags & STORE_OBJ_IMPORTED) | STORE_OBJ_TOMBSTONE;
    o.keys = NULL;
    o.keys_len = 0;
    o.body = NULL;
    o.body_len = 0;
    memset(o.hash, 0, 32);
    if (!o.origin || !*o.origin)
        o.origin = t->s->name[0] ? t->s->name : "local";
    if (!o.owner || !*o.owner)
        o.owner = t->s->name[0] ? t->s->name : "local";
    if (!o.mtime)
        o.mtime = s_now_ms();
    if (s_next_seq(t, &o.seq) || s_write_record(t, &o) || s_index(t, &o, NULL))
        return t->err;
    return HS_OK;
}

int store_purge(store_txn_t *t, const store_guid_t *g)
{
    int err = s_check_write(t);
    if (err)
        return err;
    store_obj_t cur;
    err = store_get(t, g, &cur);
    if (err)
        return err == HS_ENOTFOUND ? err : s_fail(t, err);
    s_oldcopy_t old;
    s_copy_old(&old, &cur);
    if (s_unindex(t, &old.o, NULL, false))
        return t->err;
    s_del(t, S_OBJ, g->b, 16);
    return t->err;
}

/* ---- scans -------------------------------------------------------------- */

typedef int (*s_cursor_fn)(void *ctx, const MDB_val *k, const MDB_val *v);

/* Visit entries of db whose key starts with prefix, starting after `after`
 * (exclusive) when given. */
static int s_cursor_scan(store_txn_t *t, int db, const void *prefix, size_t plen, const void *after,
                         size_t alen, s_cursor_fn fn, void *ctx)
{
    if (t->err)
        return t->err;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &c);
    if (rc)
        return s_fail(t, s_mdb_err(rc));
    MDB_val k = {after ? alen : plen, (void *)(after ? after : prefix)}, v;
    rc = mdb_cursor_get(c, &k, &v, (k.mv_size ? MDB_SET_RANGE : MDB_FIRST));
    if (rc == 0 && after && k.mv_size == alen && !memcmp(k.mv_data, after, alen))
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    int err = HS_OK;
    while (rc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        int r = fn(ctx, &k, &v);
        if (r > 0)
            break;
        if (r < 0) {
            err = r;
            break;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND)
        err = s_fail(t, s_mdb_err(rc));
    mdb_cursor_close(c);
    return err;
}

typedef struct s_scan {
    store_txn_t *t;
    unsigned flags;
    store_obj_cb cb;
    void *ctx;
} s_scan_t;

static int s_scan_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    (void)v;
    s_scan_t *sc = ctx;
    if (k->mv_size < 17)
        return HS_EMALF;
    store_guid_t g;
    memcpy(g.b, (const uint8_t *)k->mv_data + k->mv_size - 16, 16);
    store_obj_t o;
    int err = store_get(sc->t, &g, &o);
    if (err)
        return err == HS_ENOTFOUND ? HS_ESTORE : err; /* index without object */
    if ((o.flags & STORE_OBJ_TOMBSTONE) && !(sc->flags & STORE_SCAN_TOMBSTONES))
        return 0;
    return sc->cb(sc->ctx, &o);
}

int store_scan(store_txn_t *t, const char *prefix, const char *owner, unsigned flags,
               const char *after_cls, const store_guid_t *after_guid, store_obj_cb cb, void *ctx)
{
    if (!prefix)
        prefix = "";
    size_t pl = strlen(prefix), ol = owner ? strlen(owner) : 0;
    if (pl > STORE_CLASS_MAX || ol > STORE_NAME_MAX)
        return HS_EINVAL;
    if (after_cls && strlen(after_cls) > STORE_CLASS_MAX)
        return HS_EINVAL;
    uint8_t pk[STORE_CLASS_MAX + STORE_NAME_MAX + 2], ak[2 * STORE_CLASS_MAX + STORE_NAME_MAX + 32];
    size_t pkl = 0, akl = 0;
    int db = owner ? S_OWN : S_CLS;
    if (owner) {
        memcpy(pk, owner, ol);
        pk[ol] = 0;
        pkl = ol + 1;
    }
    memcpy(pk + pkl, prefix, pl);
    pkl += pl;
    if (after_cls && after_guid)
        akl = owner ? s_own_key(ak, owner, after_cls, after_guid)
                    : s_cls_key(ak, after_cls, after_guid);
    s_scan_t sc = {t, flags, cb, ctx};
    return s_cursor_scan(t, db, pk, pkl, akl ? ak : NULL, akl, s_scan_one, &sc);
}

typedef struct s_keyscan {
    store_txn_t *t;
    store_obj_cb cb;
    void *ctx;
} s_keyscan_t;

static int s_key_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    s_keyscan_t *ks = ctx;
    s_scan_t sc = {ks->t, 0, ks->cb, ks->ctx};
    return s_scan_one(&sc, k, v);
}

int store_find_by_key(store_txn_t *t, const char *name, const char *value, store_obj_cb cb,
                      void *ctx)
{
    size_t nl = strlen(name), vl = strlen(value);
    uint8_t pk[512];
    if (nl + vl + 2 > sizeof(pk))
        return HS_EINVAL;
    memcpy(pk, name, nl);
    pk[nl] = 0;
    memcpy(pk + nl + 1, value, vl);
    pk[nl + vl + 1] = 0;
    s_keyscan_t ks = {t, cb, ctx};
    return s_cursor_scan(t, S_KEY, pk, nl + vl + 2, NULL, 0, s_key_one, &ks);
}

/* ---- change log scans ----------------------------------------------------- */

/*
 * An update or a delete leaves the object's previous log entry where it is:
 * removing it would rewrite a page of the log at a random place for every
 * changed record, as many pages as the records themselves. Such a superseded
 * entry (its object has a later seq, or is gone) is skipped by every scan, and
 * removed later, off the write path, by store_log_compact or store_log_trim.
 */

/* HS_OK if entry seq of object guid is the object's latest change,
 * HS_ENOTFOUND if it was superseded (or the object purged), else an error. */
static int s_log_live(store_txn_t *t, uint64_t seq, const uint8_t *guid)
{
    MDB_val v;
    int err = s_get(t, S_OBJ, guid, 16, &v);
    if (err)
        return err;
    if (v.mv_size < S_REC_HDR)
        return s_fail(t, HS_EMALF);
    return s_get_le64((const uint8_t *)v.mv_data + 4) == seq ? HS_OK : HS_ENOTFOUND;
}

typedef struct s_logscan {
    store_txn_t *t;
    bool all; /* superseded entries too (retention) */
    store_change_want_cb want;
    store_change_cb cb;
    void *ctx;
} s_logscan_t;

static int s_log_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    s_logscan_t *ls = ctx;
    const uint8_t *p = v->mv_data;
    if (k->mv_size != 8 || v->mv_size < S_LOG_HDR)
        return HS_EMALF;
    size_t cl = p[58], wl = p[59], ol = p[60];
    if (cl == 0 || cl > STORE_CLASS_MAX || wl > STORE_NAME_MAX || ol > STORE_NAME_MAX ||
        v->mv_size != S_LOG_HDR + cl + wl + ol)
        return HS_EMALF;
    store_change_t c;
    char cls[STORE_CLASS_MAX + 1], owner[STORE_NAME_MAX + 1], origin[STORE_NAME_MAX + 1];
    c.seq = s_get_be64(k->mv_data);
    c.op = p[0];
    memcpy(c.guid.b, p + 1, 16);
    c.mtime = s_get_le64(p + 17);
    memcpy(c.hash, p + 25, 32);
    c.flags = p[57];
    memcpy(cls, p + S_LOG_HDR, cl);
    cls[cl] = '\0';
    memcpy(owner, p + S_LOG_HDR + cl, wl);
    owner[wl] = '\0';
    memcpy(origin, p + S_LOG_HDR + cl + wl, ol);
    origin[ol] = '\0';
    c.cls = cls;
    c.owner = owner;
    c.origin = origin;
    if (ls->want) {
        int w = ls->want(ls->ctx, &c);
        if (w != 1)
            return w; /* 0: not wanted; else stop or error */
    }
    if (!ls->all) {
        /* what the entry says decided; only now read the object */
        int live = s_log_live(ls->t, c.seq, c.guid.b);
        if (live == HS_ENOTFOUND)
            return 0;
        if (live)
            return live;
    }
    return ls->cb(ls->ctx, &c);
}

static int s_log_scan(store_txn_t *t, uint64_t after, bool all, store_change_want_cb want,
                      store_change_cb cb, void *ctx)
{
    uint8_t ak[8];
    s_put_be64(ak, after);
    s_logscan_t ls = {t, all, want, cb, ctx};
    return s_cursor_scan(t, S_LOG, "", 0, ak, 8, s_log_one, &ls);
}

int store_log_scan(store_txn_t *t, uint64_t after, store_change_cb cb, void *ctx)
{
    return s_log_scan(t, after, false, NULL, cb, ctx);
}

int store_log_scan_want(store_txn_t *t, uint64_t after, store_change_want_cb want,
                        store_change_cb cb, void *ctx)
{
    return s_log_scan(t, after, false, want, cb, ctx);
}

uint64_t store_log_head(store_txn_t *t)
{
    if (t->seq_loaded)
        return t->seq;
    MDB_val v;
    if (s_get(t, S_FIXED + STORE_T_META, "seq", 3, &v) == HS_OK && v.mv_size == 8)
        return s_get_le64(v.mv_data);
    return 0;
}

uint64_t store_log_entries(store_txn_t *t)
{
    MDB_stat st;
    return mdb_stat(t->txn, t->s->dbi[S_LOG], &st) == MDB_SUCCESS ? st.ms_entries : 0;
}

static int s_count_one(void *ctx, const store_change_t *c)
{
    (void)c;
    ++*(uint64_t *)ctx;
    return 0;
}

int store_log_count(store_txn_t *t, uint64_t after, uint64_t *out)
{
    *out = 0;
    return store_log_scan(t, after, s_count_one, out);
}

/* ---- retention ------------------------------------------------------------ */

typedef struct s_trim {
    store_txn_t *t;
    uint64_t upto;      /* entries with seq <= upto go */
    uint64_t cutoff_ms; /* and DEL entries deleted before this */
    size_t max;
    size_t n;
    uint64_t seq[1024];
    store_guid_t guid[1024];
    uint8_t purge[1024]; /* the object's live tombstone goes with its entry */
} s_trim_t;

static int s_trim_one(void *ctx, const store_change_t *c)
{
    s_trim_t *tr = ctx;
    bool expired = c->op == STORE_OP_DEL && c->mtime < tr->cutoff_ms;
    int live = HS_ENOTFOUND;
    if (c->op == STORE_OP_DEL && (c->seq <= tr->upto || expired)) {
        live = s_log_live(tr->t, c->seq, c->guid.b);
        if (live && live != HS_ENOTFOUND)
            return live;
        if (live == HS_ENOTFOUND && c->seq > tr->upto)
            return 0; /* a superseded delete: compaction's, not an expiry */
    }
    if (c->seq <= tr->upto || expired) {
        tr->seq[tr->n] = c->seq;
        tr->guid[tr->n] = c->guid;
        tr->purge[tr->n] = live == HS_OK;
        if (++tr->n == tr->max)
            return 1;
    } else if (!tr->cutoff_ms) {
        return 1; /* only the acknowledged prefix: the rest is newer */
    }
    return 0;
}

static int s_floor_raise(store_txn_t *t, uint64_t seq)
{
    uint64_t cur = store_log_floor(t);
    if (seq <= cur)
        return HS_OK;
    uint8_t v[8];
    s_put_le64(v, seq);
    return store_kv_put(t, STORE_T_META, "log_floor", 9, v, 8);
}

static int s_trim(store_txn_t *t, s_trim_t *tr, size_t *removed)
{
    *removed = 0;
    int err = s_check_write(t);
    if (err)
        return err;
    if (tr->max > 1024)
        tr->max = 1024;
    tr->t = t;
    err = s_log_scan(t, 0, true, NULL, s_trim_one, tr);
    for (size_t i = 0; !err && i < tr->n; i++) {
        if (tr->purge[i]) {
            err = store_purge(t, &tr->guid[i]); /* drops its log entry too */
            if (err == HS_ENOTFOUND)
                err = s_log_remove(t, tr->seq[i]);
        } else {
            err = s_log_remove(t, tr->seq[i]);
        }
        if (!err)
            err = s_floor_raise(t, tr->seq[i]);
    }
    if (!err)
        *removed = tr->n;
    return err ? s_fail(t, err) : HS_OK;
}

int store_log_trim(store_txn_t *t, uint64_t upto, size_t max, size_t *removed)
{
    s_trim_t *tr = calloc(1, sizeof(*tr));
    if (!tr)
        return s_fail(t, HS_ENOMEM);
    tr->upto = upto;
    tr->max = max;
    int err = s_trim(t, tr, removed);
    free(tr);
    return err;
}

int store_tombstones_expire(store_txn_t *t, uint64_t cutoff_ms, size_t max, size_t *purged)
{
    s_trim_t *tr = calloc(1, sizeof(*tr));
    if (!tr)
        return s_fail(t, HS_ENOMEM);
    tr->cutoff_ms = cutoff_ms ? cutoff_ms : 1;
    tr->max = max;
    int err = s_trim(t, tr, purged);
    free(tr);
    return err;
}

/* ---- compaction ----------------------------------------------------------- */

typedef struct s_compact {
    store_txn_t *t;
    size_t scan_max, remove_max, scanned, n;
    uint64_t last;
    uint64_t seq[STORE_COMPACT_MAX];
} s_compact_t;

static int s_compact_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    s_compact_t *cp = ctx;
    if (k->mv_size != 8 || v->mv_size < S_LOG_HDR)
        return HS_EMALF;
    cp->last = s_get_be64(k->mv_data);
    int live = s_log_live(cp->t, cp->last, (const uint8_t *)v->mv_data + 1);
    if (live == HS_ENOTFOUND)
        cp->seq[cp->n++] = cp->last;
    else if (live)
        return live;
    return ++cp->scanned >= cp->scan_max || cp->n >= cp->remove_max;
}

int store_log_compact(store_txn_t *t, uint64_t *from, size_t scan_max, size_t remove_max,
                      size_t *removed)
{
    *removed = 0;
    int err = s_check_write(t);
    if (err)
        return err;
    if (!scan_max || !remove_max)
        return HS_OK;
    s_compact_t *cp = calloc(1, sizeof(*cp));
    if (!cp)
        return s_fail(t, HS_ENOMEM);
    cp->t = t;
    cp->scan_max = scan_max;
    cp->remove_max = remove_max < STORE_COMPACT_MAX ? remove_max : STORE_COMPACT_MAX;
    uint8_t ak[8];
    s_put_be64(ak, *from);
    err = s_cursor_scan(t, S_LOG, "", 0, ak, 8, s_compact_one, cp);
    for (size_t i = 0; !err && i < cp->n; i++)
        err = s_log_remove(t, cp->seq[i]);
    if (!err) {
        /* the next call goes on from here; the end of the log starts over */
        bool at_end = cp->scanned < cp->scan_max && cp->n < cp->remove_max;
        *from = at_end ? 0 : cp->last;
        *removed = cp->n;
    }
    free(cp);
    return err ? s_fail(t, err) : HS_OK;
}

uint64_t store_log_floor(store_txn_t *t)
{
    MDB_val v;
    if (s_get(t, S_FIXED + STORE_T_META, "log_floor", 9, &v) == HS_OK && v.mv_size == 8)
        return s_get_le64(v.mv_data);
    return 0;
}

/* ---- digests ------------------------------------------------------------ */

typedef struct s_dig {
    const char *prefix;
    const char *owner;
    uint64_t count;
    uint8_t sum[32];
    store_count_cb cb;
    void *ctx;
} s_dig_t;

static int s_agg_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    s_dig_t *d = ctx;
    const char *key = k->mv_data;
    const char *nul = memchr(key, 0, k->mv_size);
    if (!nul || v->mv_size != 40)
        return HS_EMALF;
    size_t cl = (size_t)(nul - key), ol = k->mv_size - cl - 1;
    if (cl > STORE_CLASS_MAX || ol > STORE_NAME_MAX)
        return HS_EMALF;
    char cls[STORE_CLASS_MAX + 1], owner[STORE_NAME_MAX + 1];
    memcpy(cls, key, cl);
    cls[cl] = 0;
    memcpy(owner, nul + 1, ol);
    owner[ol] = 0;
    uint64_t n = s_get_le64(v->mv_data);
    if (d->cb)
        return d->cb(d->ctx, cls, owner, n);
    if (strncmp(cls, d->prefix, strlen(d->prefix)) != 0)
        return 0;
    if (d->owner && strcmp(owner, d->owner) != 0)
        return 0;
    d->count += n;
    s_add256(d->sum, (const uint8_t *)v->mv_data + 8, false);
    return 0;
}

static void s_dig_final(const s_dig_t *d, uint64_t *count, uint8_t out[32])
{
    uint8_t in[40];
    s_put_be64(in, d->count);
    memcpy(in + 8, d->sum, 32);
    s_sha256(in, sizeof(in), out);
    *count = d->count;
}

int store_digest(store_txn_t *t, const char *prefix, const char *owner, uint64_t *count,
                 uint8_t digest[STORE_HASH_LEN])
{
    if (t->write && s_agg_flush(t))
        return t->err;
    s_dig_t d = {prefix ? prefix : "", owner, 0, {0}, NULL, NULL};
    int err = s_cursor_scan(t, S_AGG, "", 0, NULL, 0, s_agg_one, &d);
    if (err)
        return err;
    s_dig_final(&d, count, digest);
    return HS_OK;
}

static int s_digscan_one(void *ctx, const store_obj_t *o)
{
    s_dig_t *d = ctx;
    uint8_t e[32];
    s_elem(&o->guid, o->hash, e);
    s_add256(d->sum, e, false);
    d->count++;
    return 0;
}

int store_digest_scan(store_txn_t *t, const char *prefix, const char *owner, uint64_t *count,
                      uint8_t digest[STORE_HASH_LEN])
{
    s_dig_t d = {prefix ? prefix : "", owner, 0, {0}, NULL, NULL};
    int err = store_scan(t, prefix, owner, 0, NULL, NULL, s_digscan_one, &d);
    if (err)
        return err;
    s_dig_final(&d, count, digest);
    return HS_OK;
}

int store_counts(store_txn_t *t, store_count_cb cb, void *ctx)
{
    if (t->write && s_agg_flush(t))
        return t->err;
    s_dig_t d = {"", NULL, 0, {0}, cb, ctx};
    return s_cursor_scan(t, S_AGG, "", 0, NULL, 0, s_agg_one, &d);
}

/* ---- small tables ------------------------------------------------------- */

int store_kv_get(store_txn_t *t, enum store_table tb, const void *key, size_t klen,
                 const void **val, size_t *vlen)
{
    if (t->err)
        return t->err;
    if ((unsigned)tb >= STORE_T__COUNT || klen == 0 || klen > 511)
        return HS_EINVAL;
    MDB_val v;
    int err = s_get(t, S_FIXED + (int)tb, key, klen, &v);
    if (err)
        return err;
    *val = v.mv_data;
    *vlen = v.mv_size;
    return HS_OK;
}

int store_kv_put(store_txn_t *t, enum store_table tb, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    int err = s_check_write(t);
    if (err)
        return err;
    if ((unsigned)tb >= STORE_T__COUNT || klen == 0 || klen > 511)
        return HS_EINVAL;
    return s_put(t, S_FIXED + (int)tb, key, klen, val, vlen, 0);
}

int store_kv_del(store_txn_t *t, enum store_table tb, const void *key, size_t klen)
{
    int err = s_check_write(t);
    if (err)
        return err;
    if ((unsigned)tb >= STORE_T__COUNT || klen == 0 || klen > 511)
        return HS_EINVAL;
    return s_del(t, S_FIXED + (int)tb, key, klen);
}

typedef struct s_kvscan {
    store_kv_cb cb;
    void *ctx;
} s_kvscan_t;

static int s_kv_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    s_kvscan_t *ks = ctx;
    return ks->cb(ks->ctx, k->mv_data, k->mv_size, v->mv_data, v->mv_size);
}

int store_kv_scan(store_txn_t *t, enum store_table tb, const void *prefix, size_t plen,
                  store_kv_cb cb, void *ctx)
{
    if ((unsigned)tb >= STORE_T__COUNT || plen > 511)
        return HS_EINVAL;
    s_kvscan_t ks = {cb, ctx};
    return s_cursor_scan(t, S_FIXED + (int)tb, prefix, plen, NULL, 0, s_kv_one, &ks);
}

int store_meta_get(store_txn_t *t, const char *key, char *out, size_t outlen)
{
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_META, key, strlen(key), &v, &vl);
    if (err)
        return err;
    if (vl + 1 > outlen)
        return HS_ETOOBIG;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return HS_OK;
}

int store_meta_put(store_txn_t *t, const char *key, const char *value)
{
    int err = store_kv_put(t, STORE_T_META, key, strlen(key), value, strlen(value));
    if (err == HS_OK && strcmp(key, "name") == 0)
        snprintf(t->s->name, sizeof(t->s->name), "%s", value);
    return err;
}
