/*
 * bench_bounds.c - what bounds replication on this machine, measured alone.
 *
 * Each figure is one of the costs a replicated record pays, with nothing of
 * hsync around it, so the benchmark's figures can be set against them:
 *
 *   commit     a durable LMDB commit (default sync: data pages, fdatasync,
 *              meta page, fdatasync) of a transaction that writes one record:
 *              the fixed cost of one acknowledged batch
 *   raw_put    key-ordered puts of records of --record bytes into one LMDB
 *              sub-database, in durable transactions of --batch records: the
 *              floor of storing the records at all
 *   raw_layout the same records written the way the store lays them out
 *              (store/store.c): object record, class index, owner index and
 *              change-log entry, four sub-databases, key-ordered
 *   rand_update  durable transactions of --spread records each, every one an
 *              in-place rewrite of a record at a random place of the raw_put
 *              table (--records records): what a differential batch costs a
 *              receiver whose changed records are spread over its whole
 *              store (each dirties a page of its own, written at commit)
 *   disk       sequential writes of --disk-mb MB in 1 MB writes, then one
 *              fdatasync: the bandwidth a durable commit's pages go out at
 *   sha256     the two SHA-256 of a put (content hash of the record, digest
 *              element of guid and hash), per record
 *   zmq        one-way loopback TCP throughput of frames of --batch records
 *              (--wire bytes each, what a BATCH carries per record), DEALER
 *              to ROUTER, with and without CURVE, one ZeroMQ I/O thread per
 *              side: records/s the link alone can carry
 *
 * Prints a human summary and one JSON line. Asserts nothing.
 *
 *   bench_bounds [--records N] [--batch N] [--record BYTES] [--wire BYTES]
 *                [--commits N] [--frames N] [--spread N] [--updates N] [--disk-mb N]
 *                [--dir DIR]
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_die(const char *what, int rc)
{
    fprintf(stderr, "bench_bounds: %s: %s\n", what, rc > 0 ? mdb_strerror(rc) : strerror(-rc));
    exit(1);
}

static int s_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

/* ---- LMDB ----------------------------------------------------------------- */

typedef struct env {
    MDB_env *env;
    MDB_dbi dbi[4];
} env_t;

static void s_env_open(env_t *e, const char *dir)
{
    int rc = mdb_env_create(&e->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(e->env, 8);
    if (!rc)
        rc = mdb_env_set_mapsize(e->env, (size_t)8 << 30);
    if (!rc)
        rc = mdb_env_open(e->env, dir, MDB_NOTLS, 0600); /* durable, as the store */
    if (rc)
        s_die("mdb_env_open", rc);
    MDB_txn *t;
    static const char *names[4] = {"obj", "cls", "own", "log"};
    if ((rc = mdb_txn_begin(e->env, NULL, 0, &t)))
        s_die("mdb_txn_begin", rc);
    for (int i = 0; i < 4; i++)
        if ((rc = mdb_dbi_open(t, names[i], MDB_CREATE, &e->dbi[i])))
            s_die("mdb_dbi_open", rc);
    if ((rc = mdb_txn_commit(t)))
        s_die("mdb_txn_commit", rc);
}

/* time-ordered guid-like key: a big-endian counter after a fixed prefix */
static void s_guid(uint8_t g[16], uint64_t i)
{
    memset(g, 0x01, 8);
    s_put_be64(g + 8, i);
}

/* durable commits of one small record each: seconds per commit */
static double s_commit_cost(env_t *e, int n, size_t rec)
{
    uint8_t *v = calloc(1, rec);
    double t0 = s_now();
    for (int i = 0; i < n; i++) {
        MDB_txn *t;
        int rc = mdb_txn_begin(e->env, NULL, 0, &t);
        uint8_t g[16];
        s_guid(g, (uint64_t)i);
        MDB_val k = {16, g}, d = {rec, v};
        if (!rc)
            rc = mdb_put(t, e->dbi[0], &k, &d, 0);
        if (!rc)
            rc = mdb_txn_commit(t);
        if (rc)
            s_die("commit", rc);
    }
    free(v);
    return (s_now() - t0) / n;
}

/* records/s of key-ordered puts; layout: also class, owner and log entries */
static double s_put_rate(env_t *e, uint64_t n, uint64_t batch, size_t rec, bool layout,
                         uint64_t base)
{
    uint8_t *v = malloc(rec);
    for (size_t i = 0; i < rec; i++)
        v[i] = (uint8_t)(i * 131 + 7);
    static const char cls[] = "dataclass.hardware", own[] = "child1";
    double t0 = s_now();
    for (uint64_t i = 0; i < n;) {
        MDB_txn *t;
        int rc = mdb_txn_begin(e->env, NULL, 0, &t);
        for (uint64_t j = 0; !rc && j < batch && i < n; j++, i++) {
            uint8_t g[16], ck[64], ok[96], lk[8], lv[100];
            s_guid(g, base + i);
            MDB_val k = {16, g}, d = {rec, v};
            rc = mdb_put(t, e->dbi[0], &k, &d, 0);
            if (!rc && layout) {
                size_t cl = sizeof(cls), ol = sizeof(own);
                memcpy(ck, cls, cl);
                memcpy(ck + cl, g, 16);
                memcpy(ok, own, ol);
                memcpy(ok + ol, ck, cl + 16);
                s_put_be64(lk, base + i + 1);
                memset(lv, 0, sizeof(lv));
                memcpy(lv + 1, g, 16);
                MDB_val kc = {cl + 16, ck}, ko = {ol + cl + 16, ok}, kl = {8, lk},
                        e0 = {0, (void *)""}, dl = {sizeof(lv), lv};
                rc = mdb_put(t, e->dbi[1], &kc, &e0, 0);
                if (!rc)
                    rc = mdb_put(t, e->dbi[2], &ko, &e0, 0);
                if (!rc)
                    rc = mdb_put(t, e->dbi[3], &kl, &dl, MDB_APPEND);
            }
        }
        if (!rc)
            rc = mdb_txn_commit(t);
        if (rc)
            s_die("put", rc);
    }
    free(v);
    return (double)n / (s_now() - t0);
}

/* seconds per durable transaction rewriting `spread` records at random places
 * of the n key-ordered records s_put_rate wrote (deterministic positions) */
static double s_rand_update(env_t *e, uint64_t n, uint64_t spread, int txns, size_t rec)
{
    uint8_t *v = malloc(rec);
    memset(v, 0x5a, rec);
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    double t0 = s_now();
    for (int i = 0; i < txns; i++) {
        MDB_txn *t;
        int rc = mdb_txn_begin(e->env, NULL, 0, &t);
        for (uint64_t j = 0; !rc && j < spread; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint8_t g[16];
            s_guid(g, x % n);
            MDB_val k = {16, g}, d = {rec, v};
            rc = mdb_put(t, e->dbi[0], &k, &d, 0);
        }
        if (!rc)
            rc = mdb_txn_commit(t);
        if (rc)
            s_die("update", rc);
    }
    free(v);
    return (s_now() - t0) / txns;
}

/* MB/s of writing mb MB sequentially into a new file, durably */
static double s_disk_rate(const char *dir, size_t mb)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/disk.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        s_die("disk", -errno);
    uint8_t *buf = malloc(1 << 20);
    for (size_t i = 0; i < (1u << 20); i++)
        buf[i] = (uint8_t)(i * 31 + 1);
    double t0 = s_now();
    for (size_t i = 0; i < mb; i++)
        if (write(fd, buf, 1 << 20) != (ssize_t)(1 << 20))
            s_die("disk write", -errno);
    if (fdatasync(fd))
        s_die("disk sync", -errno);
    double dt = s_now() - t0;
    close(fd);
    unlink(path);
    free(buf);
    return (double)mb / dt;
}

/* ---- SHA-256 ---------------------------------------------------------------- */

static double s_sha_rate(uint64_t n, size_t rec)
{
    uint8_t *buf = malloc(rec), out[32], in[48] = {0};
    for (size_t i = 0; i < rec; i++)
        buf[i] = (uint8_t)i;
    double t0 = s_now();
    for (uint64_t i = 0; i < n; i++) {
        SHA256_CTX c;
        buf[0] = (uint8_t)i;
        SHA256_Init(&c);
        SHA256_Update(&c, buf, rec);
        SHA256_Final(out, &c);
        memcpy(in + 16, out, 32);
        SHA256_Init(&c);
        SHA256_Update(&c, in, sizeof(in));
        SHA256_Final(out, &c);
    }
    free(buf);
    return (double)n / (s_now() - t0);
}

/* ---- ZeroMQ loopback ------------------------------------------------------ */

typedef struct zrun {
    void *ctx;
    const char *endpoint;
    bool curve;
    char srv_pub[41], srv_sec[41], cli_pub[41], cli_sec[41];
    size_t frame;
    int frames;
    double seconds;
} zrun_t;

static void *s_zsend(void *arg)
{
    zrun_t *z = arg;
    void *s = zmq_socket(z->ctx, ZMQ_DEALER);
    int hwm = 16, linger = 2000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (z->curve) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, z->srv_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, z->cli_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, z->cli_sec, 40);
    }
    zmq_connect(s, z->endpoint);
    uint8_t *buf = malloc(z->frame);
    for (size_t i = 0; i < z->frame; i++)
        buf[i] = (uint8_t)(i * 17);
    for (int i = 0; i < z->frames; i++)
        zmq_send(s, buf, z->frame, 0);
    zmq_send(s, "", 0, 0); /* end */
    free(buf);
    zmq_close(s);
    return NULL;
}

static double s_zmq_rate(zrun_t *z)
{
    void *rctx = zmq_ctx_new(); /* one I/O thread per side, as two brokers */
    z->ctx = zmq_ctx_new();
    void *r = zmq_socket(rctx, ZMQ_ROUTER);
    int hwm = 16, one = 1;
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (z->curve) {
        zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof(one));
        zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, z->srv_sec, 40);
    }
    if (zmq_bind(r, z->endpoint))
        s_die("zmq_bind", -errno);
    pthread_t th;
    pthread_create(&th, NULL, s_zsend, z);
    zmq_msg_t m;
    zmq_msg_init(&m);
    double t0 = 0;
    int got = 0;
    for (;;) {
        zmq_msg_recv(&m, r, 0); /* routing id */
        zmq_msg_recv(&m, r, 0);
        if (zmq_msg_size(&m) == 0)
            break;
        if (got++ == 0)
            t0 = s_now(); /* from the first frame: the handshake is not throughput */
    }
    double dt = s_now() - t0;
    zmq_msg_close(&m);
    pthread_join(th, NULL);
    zmq_close(r);
    zmq_ctx_term(rctx);
    zmq_ctx_term(z->ctx);
    return got > 1 ? (double)(got - 1) / dt : 0; /* frames/s */
}

int main(int argc, char **argv)
{
    uint64_t records = 300000, batch = 2048;
    size_t rec = 400, wire = 312;
    int commits = 200, frames = 400, updates = 10, disk_mb = 256;
    uint64_t spread = 1400;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--records"))
            records = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--batch"))
            batch = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--record"))
            rec = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--wire"))
            wire = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--commits"))
            commits = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--frames"))
            frames = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--spread"))
            spread = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--disk-mb"))
            disk_mb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--updates"))
            updates = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_bounds [--records N] [--batch N] [--record BYTES] "
                            "[--wire BYTES] [--commits N] [--frames N] [--spread N] "
                            "[--updates N] [--disk-mb N] [--dir DIR]\n");
            return 2;
        }
    }
    if (!batch || !records || !commits || !frames || !spread || updates <= 0 || disk_mb <= 0) {
        fprintf(stderr, "bench_bounds: counts must be positive\n");
        return 2;
    }
    char tmpl[] = "/tmp/hsync-bounds.XXXXXX", sub[512];
    char *base = dir ? (char *)dir : mkdtemp(tmpl);
    if (!base || (dir && mkdir(dir, 0700) && errno != EEXIST))
        s_die("work folder", -errno);
    printf("bench_bounds: in %s, records of %zu bytes, batches of %llu\n", base, rec,
           (unsigned long long)batch);

    env_t e1, e2, e3;
    snprintf(sub, sizeof(sub), "%s/commit", base);
    mkdir(sub, 0700);
    s_env_open(&e1, sub);
    double commit_s = s_commit_cost(&e1, commits, rec);
    mdb_env_close(e1.env);
    snprintf(sub, sizeof(sub), "%s/raw", base);
    mkdir(sub, 0700);
    s_env_open(&e2, sub);
    double raw = s_put_rate(&e2, records, batch, rec, false, 0);
    double upd_s = s_rand_update(&e2, records, spread, updates, rec);
    mdb_env_close(e2.env);
    snprintf(sub, sizeof(sub), "%s/layout", base);
    mkdir(sub, 0700);
    s_env_open(&e3, sub);
    double layout = s_put_rate(&e3, records, batch, rec, true, 0);
    mdb_env_close(e3.env);
    double sha = s_sha_rate(records, 350);
    double disk = s_disk_rate(base, (size_t)disk_mb);

    zrun_t z = {.endpoint = "tcp://127.0.0.1:29899", .frame = batch * wire, .frames = frames};
    double zplain = s_zmq_rate(&z);
    z.curve = true;
    zmq_curve_keypair(z.srv_pub, z.srv_sec);
    zmq_curve_keypair(z.cli_pub, z.cli_sec);
    z.endpoint = "tcp://127.0.0.1:29898";
    double zcurve = s_zmq_rate(&z);

    printf("  commit       %8.3f ms per durable commit (%d commits of one record)\n",
           commit_s * 1e3, commits);
    printf("  raw_put      %10.0f records/s (one sub-database, key-ordered, durable)\n", raw);
    printf("  raw_layout   %10.0f records/s (object, class, owner, log: the store's layout)\n",
           layout);
    printf("  rand_update  %8.3f ms per durable commit of %llu records rewritten at random "
           "places of %llu (%.0f records/s)\n",
           upd_s * 1e3, (unsigned long long)spread, (unsigned long long)records,
           (double)spread / upd_s);
    printf("  disk         %8.1f MB/s (%d MB written in 1 MB writes, then fdatasync)\n", disk,
           disk_mb);
    printf("  sha256       %10.0f records/s (both hashes of a put)\n", sha);
    printf("  zmq plain    %10.0f frames/s = %10.0f records/s = %7.1f MB/s (frames of %zu B)\n",
           zplain, zplain * (double)batch, zplain * (double)z.frame / 1e6, z.frame);
    printf("  zmq curve    %10.0f frames/s = %10.0f records/s = %7.1f MB/s\n", zcurve,
           zcurve * (double)batch, zcurve * (double)z.frame / 1e6);
    printf("{\"commit_ms\":%.3f,\"raw_put_per_s\":%.0f,\"raw_layout_per_s\":%.0f,"
           "\"rand_update_ms\":%.3f,\"rand_update_records\":%llu,\"disk_mb_per_s\":%.1f,\"sha256_"
           "per_s\":%.0f,\"zmq_plain_"
           "records_per_s\":%.0f,"
           "\"zmq_curve_records_per_s\":%.0f,\"zmq_curve_mb_per_s\":%.1f,\"batch\":%llu,"
           "\"record_bytes\":%zu,\"wire_bytes\":%zu}\n",
           commit_s * 1e3, raw, layout, upd_s * 1e3, (unsigned long long)spread, disk, sha,
           zplain * (double)batch, zcurve * (double)batch, zcurve * (double)z.frame / 1e6,
           (unsigned long long)batch, rec, wire);
    if (!dir)
        nftw(base, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
