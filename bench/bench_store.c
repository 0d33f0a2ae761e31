/*
 * bench_store.c - throughput of the store on its own.
 *
 * Puts N records (default 1,000,000) through the store API: the shape of the
 * spec's reference run, one resource.computer with resource keys followed by
 * four dataclass.hardware rows of that computer, bodies of about 300 bytes,
 * content pseudo-random but fixed by the seed, guids time-ordered like
 * store_guid_new's (so inserts stream in key order). Writes go in
 * transactions of 10,000 through store_write, each commit durable (the
 * store's default LMDB sync). Then times store_digest and store_digest_scan
 * over everything, a store_scan of everything and a store_log_scan.
 *
 * Prints a human summary and one JSON line:
 *   {"records":..,"put_seconds":..,"puts_per_s":..,"digest_seconds":..,
 *    "digest_scan_seconds":..,"scan_seconds":..,"log_scan_seconds":..,"store_bytes":..}
 *
 *   bench_store [--records N] [--dir DIR] [--seed S] [--batch N] [--keep]
 *
 * Without --dir it works in a fresh folder under /tmp and removes it at the
 * end unless --keep is given.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BODY_TARGET 300

typedef struct {
    uint8_t b[1024];
    size_t n;
} wbuf_t;

typedef struct {
    uint64_t seed;
    uint64_t base_ms;
    uint64_t first, n;
} batch_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t s_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- a minimal canonical msgpack writer (keys written in sorted order) -- */

static void s_byte(wbuf_t *w, uint8_t v)
{
    if (w->n < sizeof w->b)
        w->b[w->n++] = v;
}

static void s_map(wbuf_t *w, unsigned n)
{
    s_byte(w, (uint8_t)(0x80 | n)); /* n < 16 here */
}

static void s_strn(wbuf_t *w, const char *s, size_t len)
{
    if (len < 32) {
        s_byte(w, (uint8_t)(0xa0 | len));
    } else if (len < 256) {
        s_byte(w, 0xd9);
        s_byte(w, (uint8_t)len);
    } else {
        s_byte(w, 0xda);
        s_byte(w, (uint8_t)(len >> 8));
        s_byte(w, (uint8_t)len);
    }
    for (size_t i = 0; i < len; i++)
        s_byte(w, (uint8_t)s[i]);
}

static void s_str(wbuf_t *w, const char *s)
{
    s_strn(w, s, strlen(s));
}

static void s_uint(wbuf_t *w, uint64_t v)
{
    if (v < 128) {
        s_byte(w, (uint8_t)v);
    } else if (v < 256) {
        s_byte(w, 0xcc);
        s_byte(w, (uint8_t)v);
    } else if (v < 65536) {
        s_byte(w, 0xcd);
        s_byte(w, (uint8_t)(v >> 8));
        s_byte(w, (uint8_t)v);
    } else {
        s_byte(w, 0xce);
        for (int i = 3; i >= 0; i--)
            s_byte(w, (uint8_t)(v >> (8 * i)));
    }
}

/* "notes": filler so the whole body is about BODY_TARGET bytes. */
static void s_notes(wbuf_t *w, uint64_t r)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
    char pad[BODY_TARGET];
    s_str(w, "notes");
    size_t used = w->n + 2 + 24; /* str8 header, about 24 bytes of fields after notes */
    size_t len = used < BODY_TARGET - 64 ? BODY_TARGET - used : 64;
    len -= (size_t)(r % 16); /* some variety */
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            r = s_mix(r);
        pad[i] = alpha[(r >> (8 * (i % 8)) & 0xff) % (sizeof alpha - 1)];
    }
    s_strn(w, pad, len);
}

static void s_word(char *out, size_t len, uint64_t r)
{
    for (size_t i = 0; i + 1 < len; i++) {
        out[i] = (char)('a' + r % 26);
        r = r / 26 ? r / 26 : s_mix(r);
    }
    out[len - 1] = '\0';
}

static store_guid_t s_guid(const batch_t *b, uint64_t i)
{
    store_guid_t g;
    uint64_t ms = b->base_ms + i / 1000, sub = i % 1000;
    uint64_t r = s_mix(b->seed ^ (i * 0x9e3779b97f4a7c15ull));
    for (int k = 0; k < 6; k++)
        g.b[k] = (uint8_t)(ms >> (8 * (5 - k)));
    g.b[6] = (uint8_t)(0x70 | (sub >> 8));
    g.b[7] = (uint8_t)sub;
    for (int k = 8; k < 16; k++)
        g.b[k] = (uint8_t)(r >> (8 * (k - 8)));
    g.b[8] = (uint8_t)(0x80 | (g.b[8] & 0x3f));
    return g;
}

static void s_computer(wbuf_t *body, wbuf_t *keys, uint64_t i, uint64_t r)
{
    char name[12], domain[10], mac[18], serial[24], ip[16];
    s_word(name, sizeof name, r);
    s_word(domain, sizeof domain, s_mix(r + 1));
    uint64_t m = s_mix(r + 2);
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned)(m & 255),
             (unsigned)(m >> 8 & 255), (unsigned)(m >> 16 & 255), (unsigned)(m >> 24 & 255),
             (unsigned)(m >> 32 & 255), (unsigned)(m >> 40 & 255));
    snprintf(serial, sizeof serial, "SN%010" PRIu64, i);
    snprintf(ip, sizeof ip, "10.%u.%u.%u", (unsigned)(m >> 48 & 255), (unsigned)(m >> 56),
             (unsigned)(i & 255));
    body->n = 0;
    s_map(body, 6);
    s_str(body, "domain");
    s_str(body, domain);
    s_str(body, "ip");
    s_str(body, ip);
    s_str(body, "last_seen");
    s_uint(body, 1700000000u + (uint32_t)(r % 10000000));
    s_str(body, "name");
    s_str(body, name);
    s_notes(body, s_mix(r + 3));
    s_str(body, "os");
    s_str(body, (r >> 7) % 3 == 0 ? "Windows 11" : (r >> 7) % 3 == 1 ? "Windows 10" : "Linux");
    keys->n = 0;
    s_map(keys, 2);
    s_str(keys, "mac");
    s_str(keys, mac);
    s_str(keys, "serial");
    s_str(keys, serial);
}

static void s_hardware(wbuf_t *body, uint64_t slot, uint64_t r)
{
    static const char *const makers[] = {"Dell", "HP", "Lenovo", "Fujitsu", "Acer"};
    static const char *const cpus[] = {"Intel Core i5-1245U", "Intel Core i7-1365U",
                                       "AMD Ryzen 5 7530U", "AMD Ryzen 7 PRO 7840U"};
    char model[12], serial[20];
    s_word(model, sizeof model, r);
    snprintf(serial, sizeof serial, "HW%016" PRIx64, s_mix(r + 1));
    body->n = 0;
    s_map(body, 8);
    s_str(body, "cpu");
    s_str(body, cpus[r % 4]);
    s_str(body, "disk_gb");
    s_uint(body, 128u << (r >> 8) % 4);
    s_str(body, "manufacturer");
    s_str(body, makers[(r >> 12) % 5]);
    s_str(body, "model");
    s_str(body, model);
    s_notes(body, s_mix(r + 2));
    s_str(body, "ram_mb");
    s_uint(body, 4096u << (r >> 16) % 4);
    s_str(body, "serial");
    s_str(body, serial);
    s_str(body, "slot");
    s_uint(body, slot);
}

static uint64_t s_body_bytes; /* sum of body sizes of the last run of s_put_batch */

static int s_put_batch(store_txn_t *t, void *ctx)
{
    const batch_t *b = ctx;
    wbuf_t body, keys;
    s_body_bytes = 0;
    for (uint64_t i = b->first; i < b->first + b->n; i++) {
        uint64_t r = s_mix(b->seed ^ s_mix(i));
        store_obj_t o;
        memset(&o, 0, sizeof o);
        o.guid = s_guid(b, i);
        o.owner = "bench";
        o.mtime = 1700000000000ull + i;
        if (i % 5 == 0) {
            o.cls = "resource.computer";
            s_computer(&body, &keys, i, r);
            o.keys = keys.b;
            o.keys_len = keys.n;
        } else {
            o.cls = "dataclass.hardware";
            o.resource = s_guid(b, i - i % 5);
            s_hardware(&body, i % 5, r);
        }
        o.body = body.b;
        o.body_len = body.n;
        s_body_bytes += body.n;
        int rc = store_put(t, &o, NULL);
        if (rc)
            return rc;
    }
    return HS_OK;
}

static int s_count_obj(void *ctx, const store_obj_t *o)
{
    uint64_t *n = ctx;
    (void)o;
    (*n)++;
    return 0;
}

static int s_count_change(void *ctx, const store_change_t *c)
{
    uint64_t *n = ctx;
    (void)c;
    (*n)++;
    return 0;
}

static uint64_t s_dir_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4096];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p)
            continue;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_usage(void)
{
    fprintf(stderr, "usage: bench_store [--records N] [--dir DIR] [--seed S] [--batch N] "
                    "[--keep]\n");
    return 2;
}

static int s_fail(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, hs_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    uint64_t records = 1000000, seed = 42, batch = 10000;
    const char *dir = NULL;
    bool keep = false;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--records") && a + 1 < argc)
            records = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--dir") && a + 1 < argc)
            dir = argv[++a];
        else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
            seed = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--batch") && a + 1 < argc)
            batch = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--keep"))
            keep = true;
        else
            return s_usage();
    }
    if (records == 0 || batch == 0)
        return s_usage();

    char tmp[] = "/tmp/hsync-bench.XXXXXX";
    bool own_dir = dir == NULL;
    if (own_dir) {
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "bench_store: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
        dir = tmp;
    } else if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_store: %s: %s\n", dir, strerror(errno));
        return 1;
    }

    store_t *s = NULL;
    store_txn_t *t = NULL;
    int rc = store_open(dir, STORE_OPEN_CREATE, &s);
    if (rc)
        return s_fail("open", rc);
    if ((rc = store_txn_begin(s, true, &t)) || (rc = store_meta_put(t, "name", "bench")) ||
        (rc = store_txn_commit(&t)))
        return s_fail("init", rc);

    batch_t b = {.seed = seed, .base_ms = 1700000000000ull + seed % 1000000};
    uint64_t body_total = 0;
    printf("bench_store: %" PRIu64 " records in transactions of %" PRIu64 " into %s\n", records,
           batch, dir);
    double t0 = s_now();
    for (b.first = 0; b.first < records; b.first += batch) {
        b.n = records - b.first < batch ? records - b.first : batch;
        rc = store_write(s, s_put_batch, &b);
        if (rc)
            return s_fail("put", rc);
        body_total += s_body_bytes;
    }
    double put_s = s_now() - t0;

    uint64_t dcount = 0, scount = 0, objs = 0, changes = 0;
    uint8_t d1[STORE_HASH_LEN], d2[STORE_HASH_LEN];
    if ((rc = store_txn_begin(s, false, &t)))
        return s_fail("begin", rc);
    t0 = s_now();
    rc = store_digest(t, NULL, NULL, &dcount, d1);
    double digest_s = s_now() - t0;
    if (rc)
        return s_fail("digest", rc);
    t0 = s_now();
    rc = store_digest_scan(t, NULL, NULL, &scount, d2);
    double digest_scan_s = s_now() - t0;
    if (rc)
        return s_fail("digest_scan", rc);
    t0 = s_now();
    rc = store_scan(t, NULL, NULL, 0, NULL, NULL, s_count_obj, &objs);
    double scan_s = s_now() - t0;
    if (rc)
        return s_fail("scan", rc);
    t0 = s_now();
    rc = store_log_scan(t, 0, s_count_change, &changes);
    double log_s = s_now() - t0;
    if (rc)
        return s_fail("log_scan", rc);
    store_txn_abort(&t);

    char path[4096];
    snprintf(path, sizeof path, "%s/store", dir);
    uint64_t bytes = s_dir_bytes(path);
    store_close(&s);

    int bad = 0;
    if (dcount != records || scount != records || objs != records || changes != records) {
        fprintf(stderr,
                "bench_store: counts disagree: digest %" PRIu64 ", digest_scan %" PRIu64
                ", scan %" PRIu64 ", log %" PRIu64 ", expected %" PRIu64 "\n",
                dcount, scount, objs, changes, records);
        bad = 1;
    }
    if (memcmp(d1, d2, STORE_HASH_LEN) != 0) {
        fprintf(stderr, "bench_store: store_digest and store_digest_scan disagree\n");
        bad = 1;
    }
    char hex[2 * STORE_HASH_LEN + 1];
    store_hex(d1, STORE_HASH_LEN, hex);

    printf("  put          %10.3f s  %10.0f records/s  (avg body %.0f bytes)\n", put_s,
           (double)records / put_s, (double)body_total / (double)records);
    printf("  digest       %10.6f s  (%" PRIu64 " objects, %s)\n", digest_s, dcount, hex);
    printf("  digest_scan  %10.3f s  %10.0f records/s\n", digest_scan_s,
           (double)records / digest_scan_s);
    printf("  scan         %10.3f s  %10.0f records/s\n", scan_s, (double)records / scan_s);
    printf("  log_scan     %10.3f s  %10.0f entries/s\n", log_s, (double)changes / log_s);
    printf("  store        %10.1f MB (%.0f bytes/record)\n", (double)bytes / 1e6,
           (double)bytes / (double)records);
    printf("{\"records\":%" PRIu64 ",\"put_seconds\":%.3f,\"puts_per_s\":%.0f,"
           "\"digest_seconds\":%.6f,\"digest_scan_seconds\":%.3f,\"scan_seconds\":%.3f,"
           "\"log_scan_seconds\":%.3f,\"store_bytes\":%" PRIu64 "}\n",
           records, put_s, (double)records / put_s, digest_s, digest_scan_s, scan_s, log_s, bytes);

    if (own_dir && !keep)
        nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return bad;
}
