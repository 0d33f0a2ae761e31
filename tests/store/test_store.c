/*
 * test_store.c - store/store.h against real LMDB files in a scratch folder:
 * open, objects, change log, tombstones, scans, key index, digests, counts,
 * small tables, transactions (abort, sticky errors) and map growth.
 */
#include "tests/test.h"

#include "store/store.h"

/* ---- helpers ---------------------------------------------------------- */

/* A tiny canonical msgpack writer; callers emit map keys in sorted order. */
typedef struct {
    uint8_t b[8192];
    size_t n;
} mp_t;

static void s_mp_byte(mp_t *m, uint8_t v)
{
    if (m->n < sizeof m->b)
        m->b[m->n++] = v;
}

static void s_mp_be(mp_t *m, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        s_mp_byte(m, (uint8_t)(v >> (8 * i)));
}

static void s_mp_map(mp_t *m, uint32_t n)
{
    if (n < 16) {
        s_mp_byte(m, (uint8_t)(0x80 | n));
    } else {
        s_mp_byte(m, 0xde);
        s_mp_be(m, n, 2);
    }
}

static void s_mp_strn(mp_t *m, const char *s, size_t len)
{
    if (len < 32) {
        s_mp_byte(m, (uint8_t)(0xa0 | len));
    } else if (len < 256) {
        s_mp_byte(m, 0xd9);
        s_mp_byte(m, (uint8_t)len);
    } else {
        s_mp_byte(m, 0xda);
        s_mp_be(m, len, 2);
    }
    for (size_t i = 0; i < len; i++)
        s_mp_byte(m, (uint8_t)s[i]);
}

static void s_mp_str(mp_t *m, const char *s)
{
    s_mp_strn(m, s, strlen(s));
}

static void s_mp_uint(mp_t *m, uint64_t v)
{
    if (v < 128) {
        s_mp_byte(m, (uint8_t)v);
    } else if (v < 256) {
        s_mp_byte(m, 0xcc);
        s_mp_byte(m, (uint8_t)v);
    } else if (v < 65536) {
        s_mp_byte(m, 0xcd);
        s_mp_be(m, v, 2);
    } else if (v < (1ull << 32)) {
        s_mp_byte(m, 0xce);
        s_mp_be(m, v, 4);
    } else {
        s_mp_byte(m, 0xcf);
        s_mp_be(m, v, 8);
    }
}

/* {"n": val, "name": "obj"} */
static void s_body(mp_t *m, uint64_t val)
{
    m->n = 0;
    s_mp_map(m, 2);
    s_mp_str(m, "n");
    s_mp_uint(m, val);
    s_mp_str(m, "name");
    s_mp_str(m, "obj");
}

/* {"serial": serial} or {"mac": mac, "serial": serial} */
static void s_keys(mp_t *m, const char *serial, const char *mac)
{
    m->n = 0;
    s_mp_map(m, mac ? 2 : 1);
    if (mac) {
        s_mp_str(m, "mac");
        s_mp_str(m, mac);
    }
    s_mp_str(m, "serial");
    s_mp_str(m, serial);
}

/* Guid n: sorts like n. */
static store_guid_t s_guid(uint32_t n)
{
    store_guid_t g;
    memset(&g, 0, sizeof g);
    g.b[0] = 0x01;
    g.b[12] = (uint8_t)(n >> 24);
    g.b[13] = (uint8_t)(n >> 16);
    g.b[14] = (uint8_t)(n >> 8);
    g.b[15] = (uint8_t)n;
    return g;
}

static uint32_t s_guid_num(const store_guid_t *g)
{
    return (uint32_t)g->b[12] << 24 | (uint32_t)g->b[13] << 16 | (uint32_t)g->b[14] << 8 | g->b[15];
}

static bool s_is_dataclass(const char *cls)
{
    return strncmp(cls, "dataclass.", 10) == 0;
}

static bool s_is_resource(const char *cls)
{
    return strncmp(cls, "resource.", 9) == 0;
}

/* Put object id of class cls with body {"n": val, ...}: resources get keys
 * {"serial": "SN<id>"}, data-class rows the resource guid 100000 + id. */
static int s_put(store_txn_t *t, uint32_t id, const char *cls, const char *owner, uint64_t val,
                 bool *changed)
{
    mp_t body, keys;
    char serial[32];
    store_obj_t o;
    memset(&o, 0, sizeof o);
    o.guid = s_guid(id);
    o.cls = cls;
    o.owner = owner;
    s_body(&body, val);
    o.body = body.b;
    o.body_len = body.n;
    if (s_is_resource(cls)) {
        snprintf(serial, sizeof serial, "SN%u", id);
        s_keys(&keys, serial, NULL);
        o.keys = keys.b;
        o.keys_len = keys.n;
    }
    if (s_is_dataclass(cls))
        o.resource = s_guid(100000 + id);
    return store_put(t, &o, changed);
}

/* A fresh node folder with meta "name" = name, opened. */
static store_t *s_new_store(const char *name)
{
    const char *dir = test_tmpdir();
    store_t *s = NULL;
    store_txn_t *t = NULL;
    REQUIRE_OK(store_open(dir, STORE_OPEN_CREATE, &s));
    REQUIRE(s != NULL);
    REQUIRE_OK(store_txn_begin(s, true, &t));
    REQUIRE_OK(store_meta_put(t, "name", name));
    REQUIRE_OK(store_txn_commit(&t));
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", store_dir(s));
    store_close(&s);
    REQUIRE_OK(store_open(keep, 0, &s));
    REQUIRE(s != NULL);
    CHECK_EQ_STR(store_node_name(s), name);
    return s;
}

static store_txn_t *s_begin(store_t *s, bool write)
{
    store_txn_t *t = NULL;
    REQUIRE_OK(store_txn_begin(s, write, &t));
    REQUIRE(t != NULL);
    return t;
}

typedef struct {
    uint64_t count;
    uint8_t digest[STORE_HASH_LEN];
    uint64_t head;
    uint64_t log_count;
} state_t;

static state_t s_state(store_t *s)
{
    state_t st;
    memset(&st, 0, sizeof st);
    store_txn_t *t = s_begin(s, false);
    CHECK_OK(store_digest(t, NULL, NULL, &st.count, st.digest));
    st.head = store_log_head(t);
    CHECK_OK(store_log_count(t, 0, &st.log_count));
    store_txn_abort(&t);
    return st;
}

static bool s_state_eq(const state_t *a, const state_t *b)
{
    return a->count == b->count && memcmp(a->digest, b->digest, STORE_HASH_LEN) == 0 &&
           a->head == b->head && a->log_count == b->log_count;
}

/* Collects scanned objects (guid numbers, classes, owners). */
typedef struct {
    uint32_t id[1024];
    char cls[1024][STORE_CLASS_MAX + 1];
    char owner[1024][STORE_NAME_MAX + 1];
    uint32_t flags[1024];
    int n;
    int stop_after; /* > 0: stop after that many */
} seen_t;

static int s_collect(void *ctx, const store_obj_t *o)
{
    seen_t *v = ctx;
    if (v->n >= 1024)
        return -1;
    v->id[v->n] = s_guid_num(&o->guid);
    snprintf(v->cls[v->n], sizeof v->cls[0], "%s", o->cls ? o->cls : "(null)");
    snprintf(v->owner[v->n], sizeof v->owner[0], "%s", o->owner ? o->owner : "(null)");
    v->flags[v->n] = o->flags;
    v->n++;
    return v->stop_after > 0 && v->n % v->stop_after == 0 ? 1 : 0;
}

typedef struct {
    uint64_t seq[1024];
    int op[1024];
    uint32_t id[1024];
    char cls[1024][STORE_CLASS_MAX + 1];
    uint8_t hash[1024][STORE_HASH_LEN];
    int n;
} log_t;

static int s_log_collect(void *ctx, const store_change_t *c)
{
    log_t *l = ctx;
    if (l->n >= 1024)
        return -1;
    l->seq[l->n] = c->seq;
    l->op[l->n] = c->op;
    l->id[l->n] = s_guid_num(&c->guid);
    snprintf(l->cls[l->n], sizeof l->cls[0], "%s", c->cls ? c->cls : "(null)");
    memcpy(l->hash[l->n], c->hash, STORE_HASH_LEN);
    l->n++;
    return 0;
}

static log_t *s_log(store_t *s, uint64_t after)
{
    static log_t l;
    memset(&l, 0, sizeof l);
    store_txn_t *t = s_begin(s, false);
    CHECK_OK(store_log_scan(t, after, s_log_collect, &l));
    store_txn_abort(&t);
    return &l;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- open ------------------------------------------------------------- */

TEST(test_open_missing_folder_is_enoent)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/does-not-exist", test_tmpdir());
    store_t *s = NULL;
    CHECK_ERR(store_open(path, 0, &s), HS_ENOENT);
    CHECK(s == NULL);
    store_close(&s);
}

TEST(test_open_without_create_is_enotnode)
{
    const char *dir = test_tmpdir();
    store_t *s = NULL;
    CHECK_ERR(store_open(dir, 0, &s), HS_ENOTNODE);
    CHECK(s == NULL);
    /* a folder holding unrelated files is no node either */
    char path[4096];
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("hello\n", f);
    fclose(f);
    CHECK_ERR(store_open(dir, 0, &s), HS_ENOTNODE);
    CHECK(s == NULL);
}

TEST(test_open_create_then_reopen)
{
    const char *dir = test_tmpdir();
    store_t *s = NULL;
    REQUIRE_OK(store_open(dir, STORE_OPEN_CREATE, &s));
    REQUIRE(s != NULL);
    CHECK_EQ_STR(store_dir(s), dir);
    CHECK_EQ_STR(store_node_name(s), "");
    store_txn_t *t = s_begin(s, false);
    CHECK_EQ_U64(store_log_head(t), 0);
    CHECK(store_txn_store(t) == s);
    store_txn_abort(&t);
    CHECK(t == NULL);
    store_close(&s);
    CHECK(s == NULL);
    store_close(&s); /* accepts *s == NULL */
    store_close(NULL);
    REQUIRE_OK(store_open(dir, 0, &s));
    CHECK_EQ_STR(store_dir(s), dir);
    /* create over an existing store keeps it */
    store_t *s2 = NULL;
    CHECK_OK(store_open(dir, STORE_OPEN_CREATE, &s2));
    store_close(&s2);
    store_close(&s);
}

TEST(test_node_name_comes_from_meta)
{
    store_t *s = s_new_store("alpha");
    CHECK_EQ_STR(store_node_name(s), "alpha");
    store_close(&s);
}

TEST(test_data_survives_reopen_and_seq_keeps_growing)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.policy", NULL, 1, NULL));
    CHECK_OK(s_put(t, 2, "item.policy", NULL, 2, NULL));
    CHECK_OK(store_txn_commit(&t));
    CHECK(t == NULL);
    state_t before = s_state(s);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", store_dir(s));
    store_close(&s);
    REQUIRE_OK(store_open(dir, 0, &s));
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    CHECK_EQ_U64(after.count, 2);
    t = s_begin(s, true);
    store_obj_t o;
    store_guid_t g1 = s_guid(1);
    CHECK_OK(store_get(t, &g1, &o));
    CHECK_OK(s_put(t, 3, "item.policy", NULL, 3, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    CHECK(store_log_head(t) > before.head);
    store_txn_abort(&t);
    store_close(&s);
}

/* ---- put / get -------------------------------------------------------- */

TEST(test_put_get_round_trip_every_field)
{
    store_t *s = s_new_store("n0");
    mp_t body, keys, body2;
    s_body(&body, 4242);
    s_keys(&keys, "SN-1", "00:11:22:33:44:55");
    s_body(&body2, 7);

    store_obj_t res, row;
    memset(&res, 0, sizeof res);
    res.guid = s_guid(10);
    res.cls = "resource.computer";
    res.origin = "origin-node";
    res.owner = "owner-node";
    res.mtime = 1700000000123ull;
    res.flags = STORE_OBJ_IMPORTED;
    res.keys = keys.b;
    res.keys_len = keys.n;
    res.body = body.b;
    res.body_len = body.n;

    memset(&row, 0, sizeof row);
    row.guid = s_guid(11);
    row.cls = "dataclass.hardware";
    row.origin = "o2";
    row.owner = "w2";
    row.mtime = 1600000000000ull;
    row.resource = s_guid(10);
    row.body = body2.b;
    row.body_len = body2.n;

    store_txn_t *t = s_begin(s, true);
    bool changed = false;
    CHECK_OK(store_put(t, &res, &changed));
    CHECK(changed);
    CHECK(res.seq > 0);
    uint8_t h[STORE_HASH_LEN];
    store_obj_hash(&res, h);
    CHECK_EQ_MEM(res.hash, h, STORE_HASH_LEN);
    changed = false;
    CHECK_OK(store_put(t, &row, &changed));
    CHECK(changed);
    CHECK(row.seq > res.seq);
    store_obj_hash(&row, h);
    CHECK_EQ_MEM(row.hash, h, STORE_HASH_LEN);

    /* visible inside the writing transaction */
    store_obj_t got;
    CHECK_OK(store_get(t, &res.guid, &got));
    CHECK_EQ_INT(got.body_len, body.n);
    CHECK_OK(store_txn_commit(&t));

    t = s_begin(s, false);
    const store_obj_t *want[2] = {&res, &row};
    for (int i = 0; i < 2; i++) {
        memset(&got, 0, sizeof got);
        if (!CHECK_OK(store_get(t, &want[i]->guid, &got)))
            continue;
        CHECK_EQ_MEM(got.guid.b, want[i]->guid.b, 16);
        CHECK_EQ_STR(got.cls, want[i]->cls);
        CHECK_EQ_STR(got.origin, want[i]->origin);
        CHECK_EQ_STR(got.owner, want[i]->owner);
        CHECK_EQ_U64(got.seq, want[i]->seq);
        CHECK_EQ_U64(got.mtime, want[i]->mtime);
        CHECK_EQ_MEM(got.hash, want[i]->hash, STORE_HASH_LEN);
        CHECK_EQ_INT(got.flags, want[i]->flags);
        CHECK_EQ_MEM(got.resource.b, want[i]->resource.b, 16);
        CHECK_EQ_INT(got.keys_len, want[i]->keys_len);
        if (got.keys_len == want[i]->keys_len && got.keys_len)
            CHECK_EQ_MEM(got.keys, want[i]->keys, got.keys_len);
        CHECK_EQ_INT(got.body_len, want[i]->body_len);
        if (got.body_len == want[i]->body_len)
            CHECK_EQ_MEM(got.body, want[i]->body, got.body_len);
    }
    store_guid_t absent = s_guid(99);
    CHECK_ERR(store_get(t, &absent, &got), HS_ENOTFOUND);
    store_txn_abort(&t);
    store_close(&s);
}

TEST(test_put_fills_origin_owner_mtime)
{
    store_t *s = s_new_store("home");
    mp_t body;
    s_body(&body, 1);
    store_obj_t o;
    memset(&o, 0, sizeof o);
    o.guid = s_guid(1);
    o.cls = "item.policy";
    o.body = body.b;
    o.body_len = body.n;
    uint64_t before = s_now_ms();
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(store_put(t, &o, NULL));
    CHECK_EQ_STR(o.origin, "home");
    CHECK_EQ_STR(o.owner, "home");
    CHECK(o.mtime >= before);
    CHECK_OK(store_txn_commit(&t));
    uint64_t after = s_now_ms();
    CHECK(o.mtime <= after);
    t = s_begin(s, false);
    store_obj_t got;
    REQUIRE_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_STR(got.origin, "home");
    CHECK_EQ_STR(got.owner, "home");
    CHECK(got.mtime >= before && got.mtime <= after);
    CHECK_EQ_INT(got.flags, 0);
    CHECK(store_guid_is_zero(&got.resource));
    CHECK_EQ_INT(got.keys_len, 0);
    store_txn_abort(&t);
    store_close(&s);
}

TEST(test_put_validates_input)
{
    store_t *s = s_new_store("n0");
    state_t before = s_state(s);
    mp_t body;
    s_body(&body, 1);
    store_obj_t o;
    store_txn_t *t;
    static const uint8_t unsorted[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x01};
    static const uint8_t keys_int[] = {0x81, 0xa1, 'a', 0x01};

#define FRESH()                                                                                    \
    do {                                                                                           \
        memset(&o, 0, sizeof o);                                                                   \
        o.guid = s_guid(1);                                                                        \
        o.cls = "resource.computer";                                                               \
        o.body = body.b;                                                                           \
        o.body_len = body.n;                                                                       \
        t = s_begin(s, true);                                                                      \
    } while (0)

    FRESH();
    o.cls = "foo.bar";
    CHECK_ERR(store_put(t, &o, NULL), HS_ECLASS);
    store_txn_abort(&t);

    FRESH();
    o.cls = "Item.Policy";
    CHECK_ERR(store_put(t, &o, NULL), HS_ECLASS);
    store_txn_abort(&t);

    FRESH();
    o.body = unsorted;
    o.body_len = sizeof unsorted;
    CHECK_ERR(store_put(t, &o, NULL), HS_EMALF);
    store_txn_abort(&t);

    FRESH();
    o.body_len = body.n - 1; /* truncated */
    CHECK_ERR(store_put(t, &o, NULL), HS_EMALF);
    store_txn_abort(&t);

    FRESH();
    o.keys = keys_int;
    o.keys_len = sizeof keys_int;
    CHECK_ERR(store_put(t, &o, NULL), HS_EMALF);
    store_txn_abort(&t);

    FRESH();
    o.cls = "dataclass.hardware"; /* no resource */
    CHECK_ERR(store_put(t, &o, NULL), HS_EINVAL);
    store_txn_abort(&t);

    /* body over STORE_BODY_MAX: {"s": str32 of STORE_BODY_MAX bytes} */
    size_t big_len = 3 + 5 + STORE_BODY_MAX;
    uint8_t *big = malloc(big_len);
    REQUIRE(big != NULL);
    big[0] = 0x81;
    big[1] = 0xa1;
    big[2] = 's';
    big[3] = 0xdb;
    big[4] = (uint8_t)(STORE_BODY_MAX >> 24);
    big[5] = (uint8_t)(STORE_BODY_MAX >> 16);
    big[6] = (uint8_t)(STORE_BODY_MAX >> 8);
    big[7] = (uint8_t)STORE_BODY_MAX;
    memset(big + 8, 'x', STORE_BODY_MAX);
    FRESH();
    o.body = big;
    o.body_len = big_len;
    CHECK_ERR(store_put(t, &o, NULL), HS_ETOOBIG);
    store_txn_abort(&t);
    free(big);
#undef FRESH

    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    store_close(&s);
}

TEST(test_put_in_read_txn_fails)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, false);
    CHECK(s_put(t, 1, "item.policy", NULL, 1, NULL) != HS_OK);
    CHECK(store_txn_error(t) != HS_OK);
    store_txn_abort(&t);
    state_t st = s_state(s);
    CHECK_EQ_U64(st.count, 0);
    store_close(&s);
}

TEST(test_put_identical_content_is_unchanged)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    bool changed = false;
    CHECK_OK(s_put(t, 1, "resource.computer", "w", 5, &changed));
    CHECK(changed);
    CHECK_OK(s_put(t, 2, "item.policy", "w", 5, &changed));
    CHECK_OK(store_txn_commit(&t));
    state_t before = s_state(s);

    /* same content (mtime differs: put fills "now") */
    t = s_begin(s, true);
    changed = true;
    CHECK_OK(s_put(t, 1, "resource.computer", "w", 5, &changed));
    CHECK(!changed);
    CHECK_OK(store_txn_commit(&t));
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    log_t *l = s_log(s, 0);
    CHECK_EQ_INT(l->n, 2);
    CHECK_EQ_INT(l->id[0], 1);
    CHECK_EQ_INT(l->id[1], 2);

    /* a new owner is a change */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "resource.computer", "other", 5, &changed));
    CHECK(changed);
    CHECK_OK(store_txn_commit(&t));
    after = s_state(s);
    CHECK(after.head > before.head);
    CHECK_EQ_MEM(after.digest, before.digest, STORE_HASH_LEN); /* content unchanged */

    /* so is a new body */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "resource.computer", "other", 6, &changed));
    CHECK(changed);
    CHECK_OK(store_txn_commit(&t));
    state_t after2 = s_state(s);
    CHECK(after2.head > after.head);
    CHECK(memcmp(after2.digest, after.digest, STORE_HASH_LEN) != 0);
    store_close(&s);
}

TEST(test_put_flag_change_is_a_change)
{
    store_t *s = s_new_store("n0");
    mp_t body;
    s_body(&body, 1);
    store_obj_t o;
    memset(&o, 0, sizeof o);
    o.guid = s_guid(1);
    o.cls = "resource.user";
    o.body = body.b;
    o.body_len = body.n;
    store_txn_t *t = s_begin(s, true);
    bool changed;
    CHECK_OK(store_put(t, &o, &changed));
    CHECK(changed);
    uint64_t seq1 = o.seq;
    o.flags = STORE_OBJ_IMPORTED;
    o.seq = 0;
    o.origin = o.owner = NULL;
    o.mtime = 0;
    CHECK_OK(store_put(t, &o, &changed));
    CHECK(changed);
    CHECK(o.seq > seq1);
    store_obj_t got;
    CHECK_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_INT(got.flags, STORE_OBJ_IMPORTED);
    CHECK_OK(store_txn_commit(&t));
    store_close(&s);
}

TEST(test_hash_same_for_same_content_differs_otherwise)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    mp_t body, body_b, body2, keys, keys2;
    s_body(&body, 100);
    s_body(&body_b, 100); /* the same canonical body built again, elsewhere */
    s_body(&body2, 101);
    s_keys(&keys, "SN", NULL);
    s_keys(&keys2, "SN2", NULL);
    struct {
        uint32_t id;
        const char *cls;
        const mp_t *body, *keys;
        uint32_t res;
    } v[] = {
        {1, "resource.computer", &body, &keys, 0},    /* reference */
        {2, "resource.computer", &body_b, &keys, 0},  /* same content: same hash */
        {3, "resource.user", &body, &keys, 0},        /* class differs */
        {4, "resource.computer", &body, &keys2, 0},   /* keys differ */
        {5, "resource.computer", &body2, &keys, 0},   /* body differs */
        {6, "dataclass.hardware", &body, NULL, 50},   /* row of resource 50 */
        {7, "dataclass.hardware", &body_b, NULL, 50}, /* same: same hash */
        {8, "dataclass.hardware", &body, NULL, 51},   /* resource differs */
    };
    uint8_t h[8][STORE_HASH_LEN];
    for (int i = 0; i < 8; i++) {
        store_obj_t o;
        memset(&o, 0, sizeof o);
        o.guid = s_guid(v[i].id);
        o.cls = v[i].cls;
        o.body = v[i].body->b;
        o.body_len = v[i].body->n;
        if (v[i].keys) {
            o.keys = v[i].keys->b;
            o.keys_len = v[i].keys->n;
        }
        if (v[i].res)
            o.resource = s_guid(v[i].res);
        o.mtime = 1000u + (unsigned)i; /* not content */
        o.owner = i % 2 ? "a" : "b";   /* not content */
        CHECK_OK(store_put(t, &o, NULL));
        memcpy(h[i], o.hash, STORE_HASH_LEN);
    }
    CHECK_EQ_MEM(h[0], h[1], STORE_HASH_LEN);
    CHECK(memcmp(h[0], h[2], STORE_HASH_LEN) != 0);
    CHECK(memcmp(h[0], h[3], STORE_HASH_LEN) != 0);
    CHECK(memcmp(h[0], h[4], STORE_HASH_LEN) != 0);
    CHECK_EQ_MEM(h[5], h[6], STORE_HASH_LEN);
    CHECK(memcmp(h[5], h[7], STORE_HASH_LEN) != 0);
    /* the stored hash is the one put reported */
    for (int i = 0; i < 8; i++) {
        store_obj_t got;
        store_guid_t g = s_guid(v[i].id);
        if (CHECK_OK(store_get(t, &g, &got)))
            CHECK_EQ_MEM(got.hash, h[i], STORE_HASH_LEN);
    }
    CHECK_OK(store_txn_commit(&t));
    store_close(&s);
}

/* ---- change log ------------------------------------------------------- */

TEST(test_log_order_and_rewrite_keeps_latest_only)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 3, "item.policy", NULL, 1, NULL)); /* guid order differs from seq order */
    CHECK_OK(s_put(t, 1, "item.task", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 2, "resource.computer", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));

    log_t *l = s_log(s, 0);
    REQUIRE(l->n == 3);
    CHECK_EQ_INT(l->id[0], 3);
    CHECK_EQ_INT(l->id[1], 1);
    CHECK_EQ_INT(l->id[2], 2);
    CHECK(l->seq[0] < l->seq[1] && l->seq[1] < l->seq[2]);
    CHECK_EQ_STR(l->cls[0], "item.policy");
    CHECK_EQ_STR(l->cls[2], "resource.computer");
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(l->op[i], STORE_OP_PUT);
    uint64_t seq_b = l->seq[1], seq_c = l->seq[2];

    t = s_begin(s, false);
    CHECK_EQ_U64(store_log_head(t), seq_c);
    uint64_t n = 99;
    CHECK_OK(store_log_count(t, 0, &n));
    CHECK_EQ_U64(n, 3);
    CHECK_OK(store_log_count(t, seq_b, &n));
    CHECK_EQ_U64(n, 1);
    CHECK_OK(store_log_count(t, seq_c, &n));
    CHECK_EQ_U64(n, 0);
    /* the log's seq and hash are the object's */
    store_obj_t got;
    store_guid_t g3 = s_guid(3);
    REQUIRE_OK(store_get(t, &g3, &got));
    CHECK_EQ_U64(got.seq, l->seq[0]);
    CHECK_EQ_MEM(got.hash, l->hash[0], STORE_HASH_LEN);
    store_txn_abort(&t);

    /* rewrite object 3: its old entry goes, a new one comes last */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 3, "item.policy", NULL, 2, NULL));
    CHECK_OK(store_txn_commit(&t));
    l = s_log(s, 0);
    REQUIRE(l->n == 3);
    CHECK_EQ_INT(l->id[0], 1);
    CHECK_EQ_INT(l->id[1], 2);
    CHECK_EQ_INT(l->id[2], 3);
    CHECK(l->seq[2] > seq_c);
    l = s_log(s, seq_b);
    CHECK_EQ_INT(l->n, 2);
    CHECK_EQ_INT(l->id[0], 2);
    CHECK_EQ_INT(l->id[1], 3);

    /* rewrite twice in one transaction */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.task", NULL, 7, NULL));
    CHECK_OK(s_put(t, 1, "item.task", NULL, 8, NULL));
    CHECK_OK(store_txn_commit(&t));
    l = s_log(s, 0);
    REQUIRE(l->n == 3);
    CHECK_EQ_INT(l->id[2], 1);
    t = s_begin(s, false);
    CHECK_EQ_U64(store_log_head(t), l->seq[2]);
    CHECK_OK(store_log_count(t, 0, &n));
    CHECK_EQ_U64(n, 3);
    store_txn_abort(&t);
    store_close(&s);
}

/* An update or delete leaves the previous entry in the log, superseded: scans
 * and counts skip it, expiry does not take a superseded delete for a live
 * tombstone, and compaction removes it later without moving the floor. */
TEST(test_log_superseded_entries_skipped_then_compacted)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.task", NULL, 1, NULL));
    CHECK_OK(s_put(t, 2, "item.task", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    store_guid_t g1 = s_guid(1), g2 = s_guid(2), g3 = s_guid(3);
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.task", NULL, 2, NULL)); /* supersedes 1's put */
    CHECK_OK(store_delete(t, &g2, 0));                 /* supersedes 2's put */
    CHECK_OK(s_put(t, 3, "item.task", NULL, 1, NULL));
    CHECK_OK(store_delete(t, &g3, 0));
    CHECK_OK(s_put(t, 3, "item.task", NULL, 2, NULL)); /* back after its delete */
    CHECK_OK(store_txn_commit(&t));

    log_t *l = s_log(s, 0);
    REQUIRE(l->n == 3);
    CHECK_EQ_INT(l->id[0], 1);
    CHECK_EQ_INT(l->op[0], STORE_OP_PUT);
    CHECK_EQ_INT(l->id[1], 2);
    CHECK_EQ_INT(l->op[1], STORE_OP_DEL);
    CHECK_EQ_INT(l->id[2], 3);
    CHECK_EQ_INT(l->op[2], STORE_OP_PUT);
    t = s_begin(s, false);
    uint64_t n = 0;
    CHECK_OK(store_log_count(t, 0, &n));
    CHECK_EQ_U64(n, 3);
    store_txn_abort(&t);

    /* every delete is old enough to expire: only 2's tombstone is purged,
     * 3's superseded delete leaves the live 3 alone */
    t = s_begin(s, true);
    size_t expired = 0;
    CHECK_OK(store_tombstones_expire(t, s_now_ms() + 3600000, 1024, &expired));
    CHECK_EQ_U64(expired, 1);
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    store_obj_t got;
    CHECK_ERR(store_get(t, &g2, &got), HS_ENOTFOUND);
    REQUIRE_OK(store_get(t, &g3, &got));
    CHECK_EQ_U64(got.flags & STORE_OBJ_TOMBSTONE, 0);
    REQUIRE_OK(store_get(t, &g1, &got));
    uint64_t floor = store_log_floor(t);
    CHECK(floor > 0);
    store_txn_abort(&t);

    /* superseded: 1's first put, 2's put (2 is gone), 3's first put and its
     * delete. Compaction looking at two entries a call goes through the log
     * in a few calls and removes exactly those four. */
    size_t total = 0, removed = 0;
    uint64_t from = 0;
    for (int i = 0; i < 10; i++) {
        t = s_begin(s, true);
        CHECK_OK(store_log_compact(t, &from, 2, 1024, &removed));
        CHECK_OK(store_txn_commit(&t));
        total += removed;
    }
    CHECK_EQ_U64(total, 4);
    t = s_begin(s, true);
    CHECK_OK(store_log_compact(t, &from, 1000, 1024, &removed));
    CHECK_EQ_U64(removed, 0);
    CHECK_EQ_U64(from, 0);                   /* went through to the end: starts over next time */
    CHECK_EQ_U64(store_log_floor(t), floor); /* compaction does not move the floor */
    CHECK_OK(store_log_count(t, 0, &n));
    CHECK_EQ_U64(n, 2);
    CHECK_OK(store_txn_commit(&t));
    l = s_log(s, 0);
    REQUIRE(l->n == 2);
    CHECK_EQ_INT(l->id[0], 1);
    CHECK_EQ_INT(l->id[1], 3);

    /* trimming everything takes superseded entries too, and no live object */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.task", NULL, 3, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, true);
    size_t trimmed = 0;
    CHECK_OK(store_log_trim(t, store_log_head(t), 1024, &trimmed));
    CHECK_EQ_U64(trimmed, 3);
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    CHECK_OK(store_log_count(t, 0, &n));
    CHECK_EQ_U64(n, 0);
    REQUIRE_OK(store_get(t, &g1, &got));
    REQUIRE_OK(store_get(t, &g3, &got));
    store_txn_abort(&t);
    store_close(&s);
}

typedef struct {
    int wanted_calls, cb_calls, stop_after;
} want_t;

static int s_want_tasks(void *ctx, const store_change_t *c)
{
    want_t *w = ctx;
    if (w->stop_after && w->wanted_calls == w->stop_after)
        return 2;
    w->wanted_calls++;
    return strcmp(c->cls, "item.task") == 0;
}

static int s_want_count(void *ctx, const store_change_t *c)
{
    (void)c;
    ((want_t *)ctx)->cb_calls++;
    return 0;
}

/* store_log_scan_want: want sees every entry (superseded ones too) from what
 * it says; cb only the wanted ones that are their object's latest change */
TEST(test_log_scan_want_filters_before_reading)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.task", NULL, 1, NULL));
    CHECK_OK(s_put(t, 2, "item.policy", NULL, 1, NULL));
    CHECK_OK(s_put(t, 3, "item.task", NULL, 1, NULL));
    CHECK_OK(s_put(t, 1, "item.task", NULL, 2, NULL)); /* supersedes 1's first entry */
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    want_t w = {0, 0, 0};
    CHECK_OK(store_log_scan_want(t, 0, s_want_tasks, s_want_count, &w));
    CHECK_EQ_INT(w.wanted_calls, 4); /* every entry */
    CHECK_EQ_INT(w.cb_calls, 2);     /* 3 and the latest of 1 */
    want_t stop = {0, 0, 1};
    CHECK_OK(store_log_scan_want(t, 0, s_want_tasks, s_want_count, &stop));
    CHECK_EQ_INT(stop.wanted_calls, 1);
    CHECK_EQ_INT(stop.cb_calls, 0); /* 1's first entry: wanted, superseded */
    store_txn_abort(&t);
    store_close(&s);
}

static int s_log_stop_at_two(void *ctx, const store_change_t *c)
{
    (void)c;
    int *n = ctx;
    return ++*n == 2 ? 1 : 0;
}

static int s_log_fail(void *ctx, const store_change_t *c)
{
    (void)c;
    (void)ctx;
    return HS_EPEER;
}

TEST(test_log_scan_callback_stops)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    for (uint32_t i = 1; i <= 5; i++)
        CHECK_OK(s_put(t, i, "event.x", NULL, i, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    int n = 0;
    CHECK_OK(store_log_scan(t, 0, s_log_stop_at_two, &n));
    CHECK_EQ_INT(n, 2);
    CHECK_ERR(store_log_scan(t, 0, s_log_fail, NULL), HS_EPEER);
    store_txn_abort(&t);
    store_close(&s);
}

/* ---- delete / tombstones --------------------------------------------- */

TEST(test_delete_leaves_tombstone_and_put_revives)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "resource.computer", NULL, 1, NULL));
    CHECK_OK(s_put(t, 2, "resource.computer", NULL, 2, NULL));
    CHECK_OK(store_txn_commit(&t));
    state_t st0 = s_state(s);

    store_guid_t g1 = s_guid(1);
    t = s_begin(s, true);
    CHECK_OK(store_delete(t, &g1, 1234567));
    CHECK_OK(store_txn_commit(&t));

    t = s_begin(s, false);
    store_obj_t got;
    REQUIRE_OK(store_get(t, &g1, &got));
    CHECK(got.flags & STORE_OBJ_TOMBSTONE);
    CHECK_EQ_INT(got.body_len, 0);
    CHECK_EQ_STR(got.cls, "resource.computer");
    CHECK_EQ_U64(got.mtime, 1234567);
    CHECK(got.seq > st0.head);
    CHECK_EQ_U64(store_log_head(t), got.seq);
    store_txn_abort(&t);

    log_t *l = s_log(s, 0);
    REQUIRE(l->n == 2); /* one entry per object */
    CHECK_EQ_INT(l->id[1], 1);
    CHECK_EQ_INT(l->op[1], STORE_OP_DEL);
    CHECK_EQ_INT(l->op[0], STORE_OP_PUT);

    state_t st1 = s_state(s);
    CHECK_EQ_U64(st1.count, 1);

    /* delete twice, delete absent */
    t = s_begin(s, true);
    CHECK_ERR(store_delete(t, &g1, 0), HS_ENOTFOUND);
    store_txn_abort(&t);
    store_guid_t g9 = s_guid(9);
    t = s_begin(s, true);
    CHECK_ERR(store_delete(t, &g9, 0), HS_ENOTFOUND);
    store_txn_abort(&t);
    state_t st2 = s_state(s);
    CHECK(s_state_eq(&st1, &st2));

    /* put revives */
    t = s_begin(s, true);
    bool changed = false;
    CHECK_OK(s_put(t, 1, "resource.computer", NULL, 1, &changed));
    CHECK(changed);
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    REQUIRE_OK(store_get(t, &g1, &got));
    CHECK(!(got.flags & STORE_OBJ_TOMBSTONE));
    CHECK(got.body_len > 0);
    store_txn_abort(&t);
    l = s_log(s, 0);
    REQUIRE(l->n == 2);
    CHECK_EQ_INT(l->id[1], 1);
    CHECK_EQ_INT(l->op[1], STORE_OP_PUT);
    state_t st3 = s_state(s);
    CHECK_EQ_U64(st3.count, 2);
    CHECK_EQ_MEM(st3.digest, st0.digest, STORE_HASH_LEN); /* same live set as before */
    store_close(&s);
}

TEST(test_delete_mtime_zero_is_now)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.policy", NULL, 1, NULL));
    uint64_t before = s_now_ms();
    store_guid_t g = s_guid(1);
    CHECK_OK(store_delete(t, &g, 0));
    store_obj_t got;
    REQUIRE_OK(store_get(t, &g, &got));
    CHECK(got.mtime >= before && got.mtime <= s_now_ms());
    CHECK_OK(store_txn_commit(&t));
    store_close(&s);
}

TEST(test_purge_removes_object_completely)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.policy", NULL, 1, NULL));
    CHECK_OK(s_put(t, 2, "item.policy", NULL, 2, NULL));
    store_guid_t g = s_guid(1);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_OK(store_txn_commit(&t));
    state_t before = s_state(s);
    t = s_begin(s, true);
    CHECK_OK(store_purge(t, &g));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    store_obj_t got;
    CHECK_ERR(store_get(t, &g, &got), HS_ENOTFOUND);
    seen_t *v = calloc(1, sizeof *v);
    REQUIRE(v != NULL);
    CHECK_OK(store_scan(t, NULL, NULL, STORE_SCAN_TOMBSTONES, NULL, NULL, s_collect, v));
    CHECK_EQ_INT(v->n, 1);
    free(v);
    store_txn_abort(&t);
    state_t after = s_state(s);
    CHECK_EQ_U64(after.count, before.count);
    CHECK_EQ_MEM(after.digest, before.digest, STORE_HASH_LEN);
    store_close(&s);
}

/* ---- scans ------------------------------------------------------------ */

static const struct {
    uint32_t id;
    const char *cls;
    const char *owner;
} s_mix[] = {
    {7, "resource.computer", "n1"},  {3, "item.policy", "n1"},
    {12, "resource.computer", "n2"}, {1, "resource.computer", "n1"},
    {9, "dataclass.hardware", "n2"}, {4, "item.task", "n2"},
    {5, "resource.user", "n2"},      {2, "dataclass.hardware", "n1"},
    {8, "item.policy", "n2"},        {11, "resource.computer", "n2"},
    {6, "security.role", "n1"},      {10, "resource.computerx", "n1"},
    {13, "package", "n1"},           {14, "event.x", "n2"},
    {15, "system.key", "n1"},
};
#define MIX_N ((int)(sizeof s_mix / sizeof s_mix[0]))

static void s_put_mix(store_t *s, bool reverse)
{
    store_txn_t *t = s_begin(s, true);
    for (int k = 0; k < MIX_N; k++) {
        int i = reverse ? MIX_N - 1 - k : k;
        CHECK_OK(s_put(t, s_mix[i].id, s_mix[i].cls, s_mix[i].owner, s_mix[i].id * 3, NULL));
    }
    CHECK_OK(store_txn_commit(&t));
}

/* The expected scan: s_mix filtered, in (class, guid) order. */
static int s_expect(const char *prefix, const char *owner, uint32_t *ids)
{
    int n = 0;
    for (int i = 0; i < MIX_N; i++) {
        if (prefix && strncmp(s_mix[i].cls, prefix, strlen(prefix)) != 0)
            continue;
        if (owner && strcmp(s_mix[i].owner, owner) != 0)
            continue;
        ids[n++] = (uint32_t)i;
    }
    for (int a = 1; a < n; a++) /* insertion sort by (class, id) */
        for (int b = a; b > 0; b--) {
            int c = strcmp(s_mix[ids[b - 1]].cls, s_mix[ids[b]].cls);
            if (c < 0 || (c == 0 && s_mix[ids[b - 1]].id < s_mix[ids[b]].id))
                break;
            uint32_t x = ids[b];
            ids[b] = ids[b - 1];
            ids[b - 1] = x;
        }
    for (int i = 0; i < n; i++)
        ids[i] = s_mix[ids[i]].id;
    return n;
}

static void s_check_scan(store_txn_t *t, const char *prefix, const char *owner, int page)
{
    uint32_t want[MIX_N];
    int nwant = s_expect(prefix, owner, want);
    seen_t *v = calloc(1, sizeof *v);
    REQUIRE(v != NULL);
    v->stop_after = page;
    const char *after_cls = NULL;
    store_guid_t after_g;
    char last_cls[STORE_CLASS_MAX + 1];
    for (int rounds = 0; rounds < 100; rounds++) {
        int before = v->n;
        if (!CHECK_OK(store_scan(t, prefix, owner, 0, after_cls, after_cls ? &after_g : NULL,
                                 s_collect, v)))
            break;
        if (v->n == before || page == 0 || v->n % page != 0)
            break;
        snprintf(last_cls, sizeof last_cls, "%s", v->cls[v->n - 1]);
        after_cls = last_cls;
        after_g = s_guid(v->id[v->n - 1]);
    }
    bool same = CHECK_EQ_INT(v->n, nwant);
    for (int i = 0; same && i < nwant; i++)
        same = CHECK_EQ_INT(v->id[i], want[i]);
    for (int i = 0; i < v->n; i++) {
        if (prefix)
            CHECK(strncmp(v->cls[i], prefix, strlen(prefix)) == 0);
        if (owner)
            CHECK_EQ_STR(v->owner[i], owner);
    }
    if (!same)
        fprintf(stderr, "  scan prefix=%s owner=%s page=%d\n", prefix ? prefix : "(all)",
                owner ? owner : "(any)", page);
    free(v);
}

TEST(test_scan_prefix_owner_order_and_resume)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    store_txn_t *t = s_begin(s, false);
    static const char *const prefixes[] = {NULL,       "",         "resource.", "resource.computer",
                                           "item.",    "item.pol", "package",   "dataclass.",
                                           "nothing.", "r"};
    static const char *const owners[] = {NULL, "n1", "n2", "n3"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++)
        for (size_t o = 0; o < sizeof owners / sizeof owners[0]; o++)
            for (int page = 0; page <= 3; page++)
                s_check_scan(t, prefixes[p], owners[o], page);
    store_txn_abort(&t);
    store_close(&s);
}

TEST(test_scan_tombstones_only_when_asked)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    store_txn_t *t = s_begin(s, true);
    store_guid_t g = s_guid(7);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    seen_t *v = calloc(1, sizeof *v);
    REQUIRE(v != NULL);
    /* "resource.computer" also matches "resource.computerx" (object 10) */
    CHECK_OK(store_scan(t, "resource.computer", NULL, 0, NULL, NULL, s_collect, v));
    CHECK_EQ_INT(v->n, 4);
    for (int i = 0; i < v->n; i++)
        CHECK(v->id[i] != 7);
    memset(v, 0, sizeof *v);
    CHECK_OK(
        store_scan(t, "resource.computer", NULL, STORE_SCAN_TOMBSTONES, NULL, NULL, s_collect, v));
    REQUIRE(v->n == 5);
    CHECK_EQ_INT(v->id[0], 1);
    CHECK_EQ_INT(v->id[1], 7);
    CHECK(v->flags[1] & STORE_OBJ_TOMBSTONE);
    CHECK(!(v->flags[0] & STORE_OBJ_TOMBSTONE));
    CHECK_EQ_INT(v->id[4], 10);
    /* resume after the tombstone */
    memset(v, 0, sizeof *v);
    store_guid_t g7 = s_guid(7);
    CHECK_OK(store_scan(t, "resource.", NULL, 0, "resource.computer", &g7, s_collect, v));
    REQUIRE(v->n == 4);
    CHECK_EQ_INT(v->id[0], 11);
    CHECK_EQ_INT(v->id[1], 12);
    CHECK_EQ_INT(v->id[2], 10);
    CHECK_EQ_INT(v->id[3], 5);
    free(v);
    store_txn_abort(&t);
    store_close(&s);
}

static int s_scan_fail(void *ctx, const store_obj_t *o)
{
    (void)ctx;
    (void)o;
    return HS_EPEER;
}

TEST(test_scan_callback_error_is_returned)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    store_txn_t *t = s_begin(s, false);
    CHECK_ERR(store_scan(t, NULL, NULL, 0, NULL, NULL, s_scan_fail, NULL), HS_EPEER);
    store_txn_abort(&t);
    store_close(&s);
}

/* ---- key index -------------------------------------------------------- */

static void s_put_res(store_txn_t *t, uint32_t id, const char *serial, const char *mac)
{
    mp_t body, keys;
    s_body(&body, id);
    s_keys(&keys, serial, mac);
    store_obj_t o;
    memset(&o, 0, sizeof o);
    o.guid = s_guid(id);
    o.cls = "resource.computer";
    o.body = body.b;
    o.body_len = body.n;
    o.keys = keys.b;
    o.keys_len = keys.n;
    CHECK_OK(store_put(t, &o, NULL));
}

static int s_find(store_t *s, const char *name, const char *value, seen_t *v)
{
    memset(v, 0, sizeof *v);
    store_txn_t *t = s_begin(s, false);
    int rc = store_find_by_key(t, name, value, s_collect, v);
    store_txn_abort(&t);
    if (rc == HS_ENOTFOUND && v->n == 0)
        rc = HS_OK; /* "no match" may be reported either way */
    return rc;
}

TEST(test_find_by_key)
{
    store_t *s = s_new_store("n0");
    seen_t *v = calloc(1, sizeof *v);
    REQUIRE(v != NULL);
    store_txn_t *t = s_begin(s, true);
    s_put_res(t, 1, "SN1", "aa:aa");
    s_put_res(t, 2, "SN2", "aa:aa"); /* duplicate mac */
    s_put_res(t, 3, "SN3", NULL);
    CHECK_OK(s_put(t, 4, "item.policy", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));

    CHECK_OK(s_find(s, "serial", "SN1", v));
    REQUIRE(v->n == 1);
    CHECK_EQ_INT(v->id[0], 1);
    CHECK_EQ_STR(v->cls[0], "resource.computer");

    CHECK_OK(s_find(s, "mac", "aa:aa", v));
    REQUIRE(v->n == 2);
    CHECK((v->id[0] == 1 && v->id[1] == 2) || (v->id[0] == 2 && v->id[1] == 1));

    CHECK_OK(s_find(s, "serial", "SN9", v));
    CHECK_EQ_INT(v->n, 0);
    CHECK_OK(s_find(s, "serial", "SN", v)); /* exact match, not prefix */
    CHECK_EQ_INT(v->n, 0);
    CHECK_OK(s_find(s, "mac", "SN1", v)); /* value of another key name */
    CHECK_EQ_INT(v->n, 0);

    /* rewrite with other keys: the old ones are gone */
    t = s_begin(s, true);
    s_put_res(t, 1, "SN1b", NULL);
    CHECK_OK(store_txn_commit(&t));
    CHECK_OK(s_find(s, "serial", "SN1", v));
    CHECK_EQ_INT(v->n, 0);
    CHECK_OK(s_find(s, "serial", "SN1b", v));
    CHECK_EQ_INT(v->n, 1);
    CHECK_OK(s_find(s, "mac", "aa:aa", v));
    REQUIRE(v->n == 1);
    CHECK_EQ_INT(v->id[0], 2);

    /* deleted resources are not found; revived ones are */
    store_guid_t g2 = s_guid(2);
    t = s_begin(s, true);
    CHECK_OK(store_delete(t, &g2, 0));
    CHECK_OK(store_txn_commit(&t));
    CHECK_OK(s_find(s, "mac", "aa:aa", v));
    CHECK_EQ_INT(v->n, 0);
    CHECK_OK(s_find(s, "serial", "SN2", v));
    CHECK_EQ_INT(v->n, 0);
    t = s_begin(s, true);
    s_put_res(t, 2, "SN2", "aa:aa");
    CHECK_OK(store_txn_commit(&t));
    CHECK_OK(s_find(s, "serial", "SN2", v));
    CHECK_EQ_INT(v->n, 1);

    /* purge: gone from the index */
    t = s_begin(s, true);
    CHECK_OK(store_delete(t, &g2, 0));
    CHECK_OK(store_purge(t, &g2));
    CHECK_OK(store_txn_commit(&t));
    CHECK_OK(s_find(s, "serial", "SN2", v));
    CHECK_EQ_INT(v->n, 0);
    free(v);
    store_close(&s);
}

/* ---- digests ---------------------------------------------------------- */

typedef struct {
    uint64_t count;
    uint8_t d[STORE_HASH_LEN];
} dig_t;

static dig_t s_digest(store_t *s, const char *prefix, const char *owner)
{
    dig_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    store_txn_t *t = s_begin(s, false);
    CHECK_OK(store_digest(t, prefix, owner, &a.count, a.d));
    CHECK_OK(store_digest_scan(t, prefix, owner, &b.count, b.d));
    store_txn_abort(&t);
    if (!CHECK_EQ_U64(a.count, b.count) || !CHECK_EQ_MEM(a.d, b.d, STORE_HASH_LEN))
        fprintf(stderr, "  store_digest != store_digest_scan for prefix=%s owner=%s\n",
                prefix ? prefix : "(all)", owner ? owner : "(any)");
    return a;
}

static bool s_dig_eq(dig_t a, dig_t b)
{
    return a.count == b.count && memcmp(a.d, b.d, STORE_HASH_LEN) == 0;
}

TEST(test_digest_independent_of_write_order)
{
    store_t *a = s_new_store("a");
    store_t *b = s_new_store("b");
    enum { N = 300 };
    static const char *const cls[] = {"resource.computer", "dataclass.hardware", "item.policy",
                                      "security.role", "event.x"};
    /* a: in order, one transaction; b: reverse, one transaction each, with an
     * earlier version of every third object written first */
    store_txn_t *t = s_begin(a, true);
    for (uint32_t i = 0; i < N; i++)
        CHECK_OK(s_put(t, i + 1, cls[i % 5], i % 2 ? "n1" : "n2", i, NULL));
    CHECK_OK(store_txn_commit(&t));
    for (uint32_t k = 0; k < N; k++) {
        uint32_t i = N - 1 - k;
        t = s_begin(b, true);
        if (i % 3 == 0)
            CHECK_OK(s_put(t, i + 1, cls[i % 5], i % 2 ? "n1" : "n2", i + 1000, NULL));
        CHECK_OK(s_put(t, i + 1, cls[i % 5], i % 2 ? "n1" : "n2", i, NULL));
        CHECK_OK(store_txn_commit(&t));
    }
    dig_t da = s_digest(a, NULL, NULL), db = s_digest(b, NULL, NULL);
    CHECK_EQ_U64(da.count, N);
    CHECK(s_dig_eq(da, db));
    static const char *const prefixes[] = {"resource.", "dataclass.",        "item.",   "security.",
                                           "event.",    "resource.computer", "nothing."};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        CHECK(s_dig_eq(s_digest(a, prefixes[p], NULL), s_digest(b, prefixes[p], NULL)));
        CHECK(s_dig_eq(s_digest(a, prefixes[p], "n1"), s_digest(b, prefixes[p], "n1")));
    }
    /* one differing object: digests differ */
    t = s_begin(b, true);
    CHECK_OK(s_put(t, 5, cls[4], "n1", 77777, NULL));
    CHECK_OK(store_txn_commit(&t));
    db = s_digest(b, NULL, NULL);
    CHECK_EQ_U64(db.count, N);
    CHECK(!s_dig_eq(da, db));
    /* and back */
    t = s_begin(b, true);
    CHECK_OK(s_put(t, 5, cls[4], "n1", 4, NULL));
    CHECK_OK(store_txn_commit(&t));
    CHECK(s_dig_eq(da, s_digest(b, NULL, NULL)));
    store_close(&a);
    store_close(&b);
}

TEST(test_digest_filters_match_a_store_holding_only_that)
{
    store_t *all = s_new_store("all");
    s_put_mix(all, false);
    static const char *const prefixes[] = {NULL,    "resource.",  "resource.computer",
                                           "item.", "dataclass.", "package"};
    static const char *const owners[] = {NULL, "n1", "n2"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++)
        for (size_t o = 0; o < sizeof owners / sizeof owners[0]; o++) {
            store_t *part = s_new_store("part");
            store_txn_t *t = s_begin(part, true);
            uint64_t n = 0;
            for (int i = 0; i < MIX_N; i++) {
                if (prefixes[p] && strncmp(s_mix[i].cls, prefixes[p], strlen(prefixes[p])))
                    continue;
                if (owners[o] && strcmp(s_mix[i].owner, owners[o]))
                    continue;
                CHECK_OK(
                    s_put(t, s_mix[i].id, s_mix[i].cls, s_mix[i].owner, s_mix[i].id * 3, NULL));
                n++;
            }
            CHECK_OK(store_txn_commit(&t));
            dig_t want = s_digest(part, NULL, NULL);
            dig_t got = s_digest(all, prefixes[p], owners[o]);
            CHECK_EQ_U64(want.count, n);
            if (!CHECK(s_dig_eq(want, got)))
                fprintf(stderr, "  prefix=%s owner=%s\n", prefixes[p] ? prefixes[p] : "(all)",
                        owners[o] ? owners[o] : "(any)");
            store_close(&part);
        }
    /* an empty selection digests like an empty store */
    store_t *empty = s_new_store("empty");
    CHECK(s_dig_eq(s_digest(empty, NULL, NULL), s_digest(all, "nothing.", NULL)));
    CHECK(s_dig_eq(s_digest(empty, NULL, NULL), s_digest(all, NULL, "n3")));
    CHECK_EQ_U64(s_digest(empty, NULL, NULL).count, 0);
    store_close(&empty);
    store_close(&all);
}

TEST(test_digest_excludes_tombstones)
{
    store_t *a = s_new_store("a");
    store_t *b = s_new_store("b");
    store_txn_t *t = s_begin(a, true);
    CHECK_OK(s_put(t, 1, "resource.computer", "n1", 1, NULL));
    CHECK_OK(s_put(t, 2, "resource.computer", "n1", 2, NULL));
    CHECK_OK(s_put(t, 3, "item.policy", "n1", 3, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(a, true);
    store_guid_t g2 = s_guid(2), g3 = s_guid(3);
    CHECK_OK(store_delete(t, &g2, 0));
    CHECK_OK(store_delete(t, &g3, 0));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(b, true);
    CHECK_OK(s_put(t, 1, "resource.computer", "n1", 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    CHECK(s_dig_eq(s_digest(a, NULL, NULL), s_digest(b, NULL, NULL)));
    CHECK(s_dig_eq(s_digest(a, "resource.", "n1"), s_digest(b, "resource.", "n1")));
    CHECK(s_dig_eq(s_digest(a, "item.", NULL), s_digest(b, "item.", NULL)));
    CHECK_EQ_U64(s_digest(a, NULL, NULL).count, 1);
    CHECK_EQ_U64(s_digest(a, "item.", NULL).count, 0);
    store_close(&a);
    store_close(&b);
}

typedef struct {
    char cls[64][STORE_CLASS_MAX + 1];
    char owner[64][STORE_NAME_MAX + 1];
    uint64_t count[64];
    int n;
} counts_t;

static int s_count_cb(void *ctx, const char *cls, const char *owner, uint64_t count)
{
    counts_t *c = ctx;
    if (count == 0)
        return 0; /* empty aggregates may or may not be listed */
    if (c->n >= 64)
        return -1;
    snprintf(c->cls[c->n], sizeof c->cls[0], "%s", cls);
    snprintf(c->owner[c->n], sizeof c->owner[0], "%s", owner);
    c->count[c->n] = count;
    c->n++;
    return 0;
}

static uint64_t s_count_of(const counts_t *c, const char *cls, const char *owner)
{
    uint64_t n = 0;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->cls[i], cls) == 0 && strcmp(c->owner[i], owner) == 0)
            n += c->count[i];
    return n;
}

TEST(test_counts_per_class_and_owner)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 100, "resource.computer", "n1", 1, NULL));
    store_guid_t g = s_guid(12);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_OK(s_put(t, 11, "resource.computer", "n1", 33, NULL)); /* owner n2 -> n1 */
    CHECK_OK(store_txn_commit(&t));
    counts_t c;
    memset(&c, 0, sizeof c);
    t = s_begin(s, false);
    CHECK_OK(store_counts(t, s_count_cb, &c));
    store_txn_abort(&t);
    CHECK_EQ_U64(s_count_of(&c, "resource.computer", "n1"), 4); /* 1, 7, 11, 100 */
    CHECK_EQ_U64(s_count_of(&c, "resource.computer", "n2"), 0); /* 12 deleted, 11 moved */
    CHECK_EQ_U64(s_count_of(&c, "item.policy", "n1"), 1);
    CHECK_EQ_U64(s_count_of(&c, "item.policy", "n2"), 1);
    CHECK_EQ_U64(s_count_of(&c, "dataclass.hardware", "n2"), 1);
    CHECK_EQ_U64(s_count_of(&c, "resource.computerx", "n1"), 1);
    uint64_t total = 0;
    for (int i = 0; i < c.n; i++)
        total += c.count[i];
    CHECK_EQ_U64(total, MIX_N); /* 15 + 1 new - 1 deleted */
    CHECK_EQ_U64(s_digest(s, NULL, NULL).count, total);
    store_close(&s);
}

/* ---- small tables ----------------------------------------------------- */

typedef struct {
    char keys[16][64];
    char vals[16][64];
    int n;
} kvseen_t;

static int s_kv_collect(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    kvseen_t *k = ctx;
    if (k->n >= 16 || klen >= 64 || vlen >= 64)
        return -1;
    memcpy(k->keys[k->n], key, klen);
    k->keys[k->n][klen] = '\0';
    memcpy(k->vals[k->n], val, vlen);
    k->vals[k->n][vlen] = '\0';
    k->n++;
    return 0;
}

TEST(test_kv_tables_put_get_del_scan)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(store_kv_put(t, STORE_T_PEERS, "child/b", 7, "B", 1));
    CHECK_OK(store_kv_put(t, STORE_T_PEERS, "child/a", 7, "A", 1));
    CHECK_OK(store_kv_put(t, STORE_T_PEERS, "parent", 6, "P", 1));
    CHECK_OK(store_kv_put(t, STORE_T_PEERS, "child/c", 7, "C", 1));
    CHECK_OK(store_kv_put(t, STORE_T_RULES, "child/a", 7, "rule", 4)); /* other table */
    CHECK_OK(store_kv_put(t, STORE_T_PEERS, "child/c", 7, "C2", 2));   /* overwrite */
    static const uint8_t bk[] = {0x00, 0x01, 0x00}, bv[] = {0xff, 0x00};
    CHECK_OK(store_kv_put(t, STORE_T_MARKS, bk, sizeof bk, bv, sizeof bv));
    CHECK_OK(store_kv_put(t, STORE_T_OUTBOX, "empty", 5, "", 0));
    CHECK_OK(store_txn_commit(&t));

    t = s_begin(s, false);
    const void *v;
    size_t vlen;
    REQUIRE_OK(store_kv_get(t, STORE_T_PEERS, "child/a", 7, &v, &vlen));
    CHECK_EQ_INT(vlen, 1);
    CHECK_EQ_MEM(v, "A", 1);
    REQUIRE_OK(store_kv_get(t, STORE_T_RULES, "child/a", 7, &v, &vlen));
    CHECK_EQ_INT(vlen, 4);
    CHECK_EQ_MEM(v, "rule", 4);
    REQUIRE_OK(store_kv_get(t, STORE_T_PEERS, "child/c", 7, &v, &vlen));
    CHECK_EQ_INT(vlen, 2);
    CHECK_EQ_MEM(v, "C2", 2);
    REQUIRE_OK(store_kv_get(t, STORE_T_MARKS, bk, sizeof bk, &v, &vlen));
    CHECK_EQ_INT(vlen, sizeof bv);
    CHECK_EQ_MEM(v, bv, sizeof bv);
    CHECK_ERR(store_kv_get(t, STORE_T_MARKS, bk, 2, &v, &vlen), HS_ENOTFOUND);
    REQUIRE_OK(store_kv_get(t, STORE_T_OUTBOX, "empty", 5, &v, &vlen));
    CHECK_EQ_INT(vlen, 0);
    CHECK_ERR(store_kv_get(t, STORE_T_TRUST, "child/a", 7, &v, &vlen), HS_ENOTFOUND);
    CHECK_ERR(store_kv_get(t, STORE_T_PEERS, "child", 5, &v, &vlen), HS_ENOTFOUND);

    kvseen_t k;
    memset(&k, 0, sizeof k);
    CHECK_OK(store_kv_scan(t, STORE_T_PEERS, "child/", 6, s_kv_collect, &k));
    REQUIRE(k.n == 3);
    CHECK_EQ_STR(k.keys[0], "child/a");
    CHECK_EQ_STR(k.keys[1], "child/b");
    CHECK_EQ_STR(k.keys[2], "child/c");
    CHECK_EQ_STR(k.vals[2], "C2");
    memset(&k, 0, sizeof k);
    CHECK_OK(store_kv_scan(t, STORE_T_PEERS, NULL, 0, s_kv_collect, &k));
    REQUIRE(k.n == 4);
    CHECK_EQ_STR(k.keys[3], "parent");
    memset(&k, 0, sizeof k);
    CHECK_OK(store_kv_scan(t, STORE_T_PEERS, "zzz", 3, s_kv_collect, &k));
    CHECK_EQ_INT(k.n, 0);
    memset(&k, 0, sizeof k);
    CHECK_OK(store_kv_scan(t, STORE_T_HEP, NULL, 0, s_kv_collect, &k));
    CHECK_EQ_INT(k.n, 0);
    store_txn_abort(&t);

    t = s_begin(s, true);
    CHECK_OK(store_kv_del(t, STORE_T_PEERS, "child/b", 7));
    CHECK_ERR(store_kv_del(t, STORE_T_PEERS, "child/b", 7), HS_ENOTFOUND);
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, true);
    CHECK_ERR(store_kv_del(t, STORE_T_HISTORY, "nope", 4), HS_ENOTFOUND);
    store_txn_abort(&t);
    t = s_begin(s, false);
    CHECK_ERR(store_kv_get(t, STORE_T_PEERS, "child/b", 7, &v, &vlen), HS_ENOTFOUND);
    memset(&k, 0, sizeof k);
    CHECK_OK(store_kv_scan(t, STORE_T_PEERS, "child/", 6, s_kv_collect, &k));
    CHECK_EQ_INT(k.n, 2);
    store_txn_abort(&t);

    /* small tables do not touch objects, log or digest */
    state_t st = s_state(s);
    CHECK_EQ_U64(st.count, 0);
    CHECK_EQ_U64(st.head, 0);
    store_close(&s);
}

TEST(test_meta_get_put)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(store_meta_put(t, "listen", "tcp://127.0.0.1:7000"));
    CHECK_OK(store_meta_put(t, "http", "127.0.0.1:7001"));
    CHECK_OK(store_meta_put(t, "http", "127.0.0.1:7002"));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    char out[64];
    CHECK_OK(store_meta_get(t, "listen", out, sizeof out));
    CHECK_EQ_STR(out, "tcp://127.0.0.1:7000");
    CHECK_OK(store_meta_get(t, "http", out, sizeof out));
    CHECK_EQ_STR(out, "127.0.0.1:7002");
    CHECK_OK(store_meta_get(t, "name", out, sizeof out));
    CHECK_EQ_STR(out, "n0");
    CHECK_ERR(store_meta_get(t, "absent", out, sizeof out), HS_ENOTFOUND);
    /* "127.0.0.1:7002" is 14 bytes: 15 fit, 14 do not */
    char small[15];
    CHECK_OK(store_meta_get(t, "http", small, 15));
    CHECK_EQ_STR(small, "127.0.0.1:7002");
    CHECK_ERR(store_meta_get(t, "http", small, 14), HS_ETOOBIG);
    /* meta is visible to the kv interface too */
    const void *v;
    size_t vlen;
    CHECK_OK(store_kv_get(t, STORE_T_META, "listen", 6, &v, &vlen));
    store_txn_abort(&t);
    store_close(&s);
}

/* ---- transactions ----------------------------------------------------- */

TEST(test_abort_discards_everything)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    state_t before = s_state(s);
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 500, "item.policy", NULL, 1, NULL));
    store_guid_t g = s_guid(7);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_OK(store_kv_put(t, STORE_T_RULES, "r", 1, "x", 1));
    store_txn_abort(&t);
    CHECK(t == NULL);
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    t = s_begin(s, false);
    const void *v;
    size_t vlen;
    CHECK_ERR(store_kv_get(t, STORE_T_RULES, "r", 1, &v, &vlen), HS_ENOTFOUND);
    store_txn_abort(&t);
    store_close(&s);
}

TEST(test_failed_put_leaves_store_as_before)
{
    store_t *s = s_new_store("n0");
    s_put_mix(s, false);
    state_t before = s_state(s);
    dig_t d_res = s_digest(s, "resource.", NULL);

    /* a good put, a delete and a bad one in the same transaction, then abort */
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 600, "resource.computer", "n1", 1, NULL));
    CHECK_OK(s_put(t, 7, "resource.computer", "n1", 999, NULL));
    store_guid_t g = s_guid(1);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_ERR(s_put(t, 601, "foo.bar", NULL, 1, NULL), HS_ECLASS);
    store_txn_abort(&t);
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    CHECK(s_dig_eq(d_res, s_digest(s, "resource.", NULL)));
    /* commit after the failure also refuses and leaves nothing */
    t = s_begin(s, true);
    CHECK_OK(s_put(t, 600, "resource.computer", "n1", 1, NULL));
    CHECK_ERR(s_put(t, 601, "Item.Policy", NULL, 1, NULL), HS_ECLASS);
    CHECK_ERR(store_txn_commit(&t), HS_ECLASS);
    CHECK(t == NULL);
    after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    t = s_begin(s, false);
    store_obj_t got;
    store_guid_t g600 = s_guid(600);
    CHECK_ERR(store_get(t, &g600, &got), HS_ENOTFOUND);
    store_txn_abort(&t);
    store_close(&s);
}

static int s_fn_good_then_bad(store_txn_t *t, void *ctx)
{
    (void)ctx;
    int rc = s_put(t, 700, "item.policy", NULL, 1, NULL);
    if (rc)
        return rc;
    return s_put(t, 701, "item.", NULL, 1, NULL);
}

static int s_fn_good(store_txn_t *t, void *ctx)
{
    (void)ctx;
    return s_put(t, 702, "item.policy", NULL, 1, NULL);
}

static int s_fn_read(store_txn_t *t, void *ctx)
{
    store_obj_t o;
    store_guid_t g = s_guid(702);
    int rc = store_get(t, &g, &o);
    if (rc == HS_OK)
        *(int *)ctx = 1;
    return rc;
}

TEST(test_store_write_and_read)
{
    store_t *s = s_new_store("n0");
    state_t before = s_state(s);
    CHECK_ERR(store_write(s, s_fn_good_then_bad, NULL), HS_ECLASS);
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    CHECK_OK(store_write(s, s_fn_good, NULL));
    int found = 0;
    CHECK_OK(store_read(s, s_fn_read, &found));
    CHECK_EQ_INT(found, 1);
    CHECK_EQ_U64(s_state(s).count, 1);
    store_close(&s);
}

TEST(test_sticky_error)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.policy", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    state_t before = s_state(s);

    t = s_begin(s, true);
    CHECK_EQ_INT(store_txn_error(t), HS_OK);
    CHECK_ERR(s_put(t, 2, "foo.bar", NULL, 1, NULL), HS_ECLASS);
    CHECK_ERR(store_txn_error(t), HS_ECLASS);
    /* every later call does nothing and returns the same error */
    CHECK_ERR(s_put(t, 3, "item.policy", NULL, 1, NULL), HS_ECLASS);
    store_obj_t o;
    store_guid_t g1 = s_guid(1);
    CHECK_ERR(store_get(t, &g1, &o), HS_ECLASS);
    CHECK_ERR(store_delete(t, &g1, 0), HS_ECLASS);
    CHECK_ERR(store_kv_put(t, STORE_T_RULES, "r", 1, "x", 1), HS_ECLASS);
    CHECK_ERR(store_meta_put(t, "k", "v"), HS_ECLASS);
    seen_t *v = calloc(1, sizeof *v);
    REQUIRE(v != NULL);
    CHECK_ERR(store_scan(t, NULL, NULL, 0, NULL, NULL, s_collect, v), HS_ECLASS);
    CHECK_EQ_INT(v->n, 0);
    free(v);
    uint64_t n;
    uint8_t d[STORE_HASH_LEN];
    CHECK_ERR(store_digest(t, NULL, NULL, &n, d), HS_ECLASS);
    CHECK_ERR(store_txn_error(t), HS_ECLASS);
    CHECK_ERR(store_txn_commit(&t), HS_ECLASS);
    CHECK(t == NULL);
    state_t after = s_state(s);
    CHECK(s_state_eq(&before, &after));
    t = s_begin(s, false);
    store_guid_t g3 = s_guid(3);
    CHECK_ERR(store_get(t, &g3, &o), HS_ENOTFOUND);
    store_txn_abort(&t);

    /* a not-found answer is no failure of the transaction */
    t = s_begin(s, true);
    CHECK_ERR(store_get(t, &g3, &o), HS_ENOTFOUND);
    CHECK_EQ_INT(store_txn_error(t), HS_OK);
    CHECK_OK(s_put(t, 3, "item.policy", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    CHECK_EQ_U64(s_state(s).count, 2);
    store_close(&s);
}

TEST(test_sticky_error_after_store_failure)
{
    /* the mechanism alone: a write in a read transaction fails, and so does
     * everything after it */
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    CHECK_OK(s_put(t, 1, "item.policy", NULL, 1, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    int err = store_kv_put(t, STORE_T_RULES, "r", 1, "x", 1);
    CHECK(err != HS_OK);
    CHECK_EQ_INT(store_txn_error(t), err);
    store_obj_t o;
    store_guid_t g1 = s_guid(1);
    CHECK_EQ_INT(store_get(t, &g1, &o), err);
    uint64_t n;
    uint8_t d[STORE_HASH_LEN];
    CHECK_EQ_INT(store_digest(t, NULL, NULL, &n, d), err);
    CHECK_EQ_INT(store_txn_commit(&t), err);
    CHECK(t == NULL);
    store_close(&s);
}

/* ---- map growth ------------------------------------------------------- */

typedef struct {
    uint32_t first, n;
} batch_t;

/* {"n": id, "pad": <~1000 bytes>} */
static int s_fn_batch(store_txn_t *t, void *ctx)
{
    const batch_t *b = ctx;
    static char pad[1000];
    memset(pad, 'p', sizeof pad);
    mp_t body;
    for (uint32_t i = b->first; i < b->first + b->n; i++) {
        body.n = 0;
        s_mp_map(&body, 2);
        s_mp_str(&body, "n");
        s_mp_uint(&body, i);
        s_mp_str(&body, "pad");
        snprintf(pad, 16, "%010u", i);
        pad[10] = 'p';
        s_mp_strn(&body, pad, sizeof pad);
        store_obj_t o;
        memset(&o, 0, sizeof o);
        o.guid = s_guid(i);
        o.cls = i % 2 ? "dataclass.hardware" : "resource.computer";
        if (i % 2)
            o.resource = s_guid(i - 1);
        o.body = body.b;
        o.body_len = body.n;
        int rc = store_put(t, &o, NULL);
        if (rc)
            return rc;
    }
    return HS_OK;
}

static int s_count_obj(void *ctx, const store_obj_t *o)
{
    uint64_t *n = ctx;
    (*n)++;
    return o->body_len > 1000 ? 0 : HS_EMALF;
}

TEST(test_map_grows_when_full)
{
    REQUIRE(setenv("HSYNC_MAP_SIZE", "1048576", 1) == 0);
    store_t *s = s_new_store("n0");
    enum { BATCH = 100, BATCHES = 100 }; /* 10,000 objects of ~1 KB */
    for (uint32_t k = 0; k < BATCHES; k++) {
        batch_t b = {1 + k * BATCH, BATCH};
        if (!CHECK_OK(store_write(s, s_fn_batch, &b))) {
            fprintf(stderr, "  batch %u of %u\n", k, BATCHES);
            break;
        }
    }
    /* one big transaction too (several MB at once) */
    batch_t big = {1 + BATCHES * BATCH, 5000};
    CHECK_OK(store_write(s, s_fn_batch, &big));
    uint64_t total = BATCH * BATCHES + 5000;
    CHECK_EQ_U64(s_digest(s, NULL, NULL).count, total);

    store_txn_t *t = s_begin(s, false);
    uint64_t n = 0;
    CHECK_OK(store_scan(t, NULL, NULL, 0, NULL, NULL, s_count_obj, &n));
    CHECK_EQ_U64(n, total);
    int missing = 0;
    for (uint32_t i = 1; i <= total; i++) {
        store_obj_t o;
        store_guid_t g = s_guid(i);
        if (store_get(t, &g, &o) != HS_OK || o.body_len < 1000)
            missing++;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_U64(store_log_head(t) >= total, 1);
    store_txn_abort(&t);

    /* reopen with the same small initial size: everything is there */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", store_dir(s));
    store_close(&s);
    REQUIRE_OK(store_open(dir, 0, &s));
    CHECK_EQ_U64(s_digest(s, NULL, NULL).count, total);
    batch_t more = {(uint32_t)total + 1, 500};
    CHECK_OK(store_write(s, s_fn_batch, &more));
    CHECK_EQ_U64(s_digest(s, NULL, NULL).count, total + 500);
    store_close(&s);
}

/* ---- cursor paths: many classes and owners, any order, in one txn ------- */

static const char *const s_cp_cls[] = {"dataclass.hardware", "item.policy",   "resource.computer",
                                       "resource.user",      "security.role", "system.key"};
static const char *const s_cp_own[] = {"n1", "n2"};
#define CP_N 1200

/* Object i's class and owner: 12 (class, owner) places, more than a
 * transaction keeps cursors for, visited in an interleaved order. */
static const char *s_cp_class_of(uint32_t i, unsigned gen)
{
    return s_cp_cls[(i * 7 + gen) % 6];
}

static const char *s_cp_owner_of(uint32_t i, unsigned gen)
{
    return s_cp_own[(i / 3 + gen) % 2];
}

/* Run the same history on s: generation 0 puts 1..CP_N in the order given by
 * order (0 ascending, 1 descending, 2 scattered), generation 1 rewrites every
 * third object with a new class, owner and body, then deletes every fifth,
 * purges every seventh and revives every eleventh. every: commit after that
 * many operations (0: one transaction for all). */
static uint32_t s_cp_id(uint32_t k, int order)
{
    if (order == 0)
        return k + 1;
    if (order == 1)
        return CP_N - k;
    return (uint32_t)((k * 577u) % CP_N) + 1; /* 577 is prime to 1200 */
}

static void s_cp_history(store_t *s, int order, unsigned every)
{
    store_txn_t *t = s_begin(s, true);
    unsigned ops = 0;
#define CP_STEP()                                                                                  \
    do {                                                                                           \
        if (every && ++ops % every == 0) {                                                         \
            REQUIRE_OK(store_txn_commit(&t));                                                      \
            t = s_begin(s, true);                                                                  \
        }                                                                                          \
    } while (0)
    for (uint32_t k = 0; k < CP_N; k++) {
        uint32_t i = s_cp_id(k, order);
        REQUIRE_OK(s_put(t, i, s_cp_class_of(i, 0), s_cp_owner_of(i, 0), i, NULL));
        CP_STEP();
    }
    for (uint32_t k = 0; k < CP_N; k++) {
        uint32_t i = s_cp_id(k, order);
        if (i % 3 == 0) {
            bool changed = false;
            REQUIRE_OK(s_put(t, i, s_cp_class_of(i, 1), s_cp_owner_of(i, 1), i + 1, &changed));
            CHECK(changed);
            CP_STEP();
        }
    }
    for (uint32_t k = 0; k < CP_N; k++) {
        uint32_t i = s_cp_id(k, order);
        store_guid_t g = s_guid(i);
        if (i % 5 == 0) {
            CHECK_OK(store_delete(t, &g, 1000));
            CP_STEP();
        }
        if (i % 7 == 0) {
            CHECK_OK(store_purge(t, &g));
            CP_STEP();
        }
        if (i % 11 == 0 && i % 7 != 0) {
            REQUIRE_OK(s_put(t, i, s_cp_class_of(i, 1), s_cp_owner_of(i, 1), i + 2, NULL));
            CP_STEP();
        }
    }
#undef CP_STEP
    REQUIRE_OK(store_txn_commit(&t));
}

static int s_cp_count(void *ctx, const store_obj_t *o)
{
    uint64_t *acc = ctx;
    acc[0]++;
    acc[1] += s_guid_num(&o->guid) * 31u + strlen(o->cls) + (uint64_t)o->owner[1];
    return 0;
}

/* What the history leaves, per (class prefix, owner): count and a checksum of
 * the ids, computed without the store. */
static void s_cp_expect(const char *prefix, const char *owner, uint64_t acc[2])
{
    acc[0] = acc[1] = 0;
    for (uint32_t i = 1; i <= CP_N; i++) {
        if (i % 7 == 0 || (i % 5 == 0 && i % 11 != 0))
            continue; /* purged, or deleted and not revived */
        unsigned gen = (i % 3 == 0 || i % 11 == 0) ? 1 : 0;
        const char *cls = s_cp_class_of(i, gen), *own = s_cp_owner_of(i, gen);
        if (prefix && strncmp(cls, prefix, strlen(prefix)) != 0)
            continue;
        if (owner && strcmp(own, owner) != 0)
            continue;
        acc[0]++;
        acc[1] += i * 31u + strlen(cls) + (uint64_t)own[1];
    }
}

TEST(test_cursor_paths_any_order_one_txn)
{
    store_t *ref = s_new_store("n0");
    s_cp_history(ref, 1, 37); /* descending, many small transactions */
    dig_t want = s_digest(ref, NULL, NULL);
    for (int order = 0; order < 3; order++) {
        store_t *s = s_new_store("n0");
        s_cp_history(s, order, 0);
        store_txn_t *t = s_begin(s, false);
        static const char *const prefixes[] = {NULL, "resource.", "dataclass.hardware", "s"};
        static const char *const owners[] = {NULL, "n1", "n2"};
        for (size_t p = 0; p < 4; p++) {
            for (size_t w = 0; w < 3; w++) {
                uint64_t got[2] = {0, 0}, exp[2];
                s_cp_expect(prefixes[p], owners[w], exp);
                CHECK_OK(store_scan(t, prefixes[p], owners[w], 0, NULL, NULL, s_cp_count, got));
                if (!CHECK_EQ_U64(got[0], exp[0]) || !CHECK_EQ_U64(got[1], exp[1]))
                    fprintf(stderr, "  order %d prefix %s owner %s\n", order,
                            prefixes[p] ? prefixes[p] : "(all)", owners[w] ? owners[w] : "(any)");
                uint64_t dn = 0, sn = 0;
                uint8_t d1[STORE_HASH_LEN], d2[STORE_HASH_LEN];
                CHECK_OK(store_digest(t, prefixes[p], owners[w], &dn, d1));
                CHECK_OK(store_digest_scan(t, prefixes[p], owners[w], &sn, d2));
                CHECK_EQ_U64(dn, exp[0]);
                CHECK_EQ_U64(sn, exp[0]);
                CHECK(memcmp(d1, d2, STORE_HASH_LEN) == 0);
            }
        }
        /* the key index: live resources only, under their latest serial */
        int found = 0, expect = 0;
        for (uint32_t i = 1; i <= CP_N; i += 13) {
            char serial[32];
            snprintf(serial, sizeof serial, "SN%u", i);
            uint64_t got[2] = {0, 0}, exp[2] = {0, 0};
            bool live = !(i % 7 == 0 || (i % 5 == 0 && i % 11 != 0));
            unsigned gen = (i % 3 == 0 || i % 11 == 0) ? 1 : 0;
            if (live && strncmp(s_cp_class_of(i, gen), "resource.", 9) == 0)
                exp[0] = 1;
            CHECK_OK(store_find_by_key(t, "serial", serial, s_cp_count, got));
            CHECK_EQ_U64(got[0], exp[0]);
            found += (int)got[0];
            expect += (int)exp[0];
        }
        CHECK(expect > 0);
        CHECK_EQ_INT(found, expect);
        /* the log holds one entry per surviving object (purged ones leave none) */
        uint64_t nlog = 0, nall[2] = {0, 0};
        CHECK_OK(store_log_count(t, 0, &nlog));
        CHECK_OK(store_scan(t, NULL, NULL, STORE_SCAN_TOMBSTONES, NULL, NULL, s_cp_count, nall));
        CHECK_EQ_U64(nlog, nall[0]);
        store_txn_abort(&t);
        dig_t got = s_digest(s, NULL, NULL);
        CHECK(s_dig_eq(got, want));
        store_close(&s);
    }
    store_close(&ref);
}

/* An object put, then updated, deleted and put again in the transaction
 * that created it: the cursors must follow every change. */
TEST(test_cursor_update_after_append_same_txn)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    for (uint32_t i = 1; i <= 500; i++)
        REQUIRE_OK(s_put(t, i, "resource.computer", NULL, i, NULL));
    bool changed = true;
    CHECK_OK(s_put(t, 250, "resource.computer", NULL, 250, &changed)); /* same content */
    CHECK(!changed);
    CHECK_OK(s_put(t, 250, "resource.user", "n9", 7, &changed)); /* moves class and owner */
    CHECK(changed);
    store_guid_t g = s_guid(500);
    CHECK_OK(store_delete(t, &g, 0));
    CHECK_OK(s_put(t, 500, "resource.computer", NULL, 1, &changed)); /* revive the last one */
    CHECK(changed);
    CHECK_OK(s_put(t, 501, "resource.computer", NULL, 1, NULL)); /* append after it */
    store_obj_t o;
    CHECK_OK(store_get(t, &g, &o));
    CHECK(!(o.flags & STORE_OBJ_TOMBSTONE));
    g = s_guid(250);
    CHECK_OK(store_get(t, &g, &o));
    CHECK_EQ_STR(o.cls, "resource.user");
    CHECK_EQ_STR(o.owner, "n9");
    uint64_t n = 0;
    uint8_t d1[STORE_HASH_LEN], d2[STORE_HASH_LEN];
    CHECK_OK(store_digest(t, "resource.computer", "n0", &n, d1));
    CHECK_EQ_U64(n, 500);
    CHECK_OK(store_digest_scan(t, "resource.computer", "n0", &n, d2));
    CHECK_EQ_U64(n, 500);
    CHECK(memcmp(d1, d2, STORE_HASH_LEN) == 0);
    CHECK_OK(store_txn_commit(&t));
    CHECK_EQ_U64(s_digest(s, "resource.user", "n9").count, 1);
    store_close(&s);
}

/* ---- store_put_ex --------------------------------------------------------- */

static int s_put_ex(store_txn_t *t, uint32_t id, uint64_t val, uint64_t mtime, unsigned flags,
                    bool *changed)
{
    mp_t body;
    store_obj_t o;
    memset(&o, 0, sizeof o);
    o.guid = s_guid(id);
    o.cls = "item.policy";
    o.mtime = mtime;
    s_body(&body, val);
    o.body = body.b;
    o.body_len = body.n;
    if (flags & STORE_PUT_CHECKED)
        REQUIRE_OK(store_obj_check(&o));
    return store_put_ex(t, &o, flags, changed);
}

TEST(test_put_ex_newer_and_checked)
{
    store_t *s = s_new_store("n0");
    store_txn_t *t = s_begin(s, true);
    bool changed = false;
    const unsigned both = STORE_PUT_NEWER | STORE_PUT_CHECKED;
    CHECK_OK(s_put_ex(t, 1, 10, 5000, both, &changed)); /* new: written */
    CHECK(changed);
    CHECK_OK(s_put_ex(t, 1, 11, 4000, both, &changed)); /* older: the stored one wins */
    CHECK(!changed);
    store_obj_t o;
    store_guid_t g = s_guid(1);
    CHECK_OK(store_get(t, &g, &o));
    CHECK_EQ_U64(o.mtime, 5000);
    uint64_t seq = o.seq;
    CHECK_OK(s_put_ex(t, 1, 10, 5000, both, &changed)); /* same mtime, same content */
    CHECK(!changed);
    CHECK_OK(s_put_ex(t, 1, 12, 5000, both, &changed)); /* same mtime, new content */
    CHECK(changed);
    CHECK_OK(s_put_ex(t, 1, 11, 4000, 0, &changed)); /* without NEWER: written */
    CHECK(changed);
    CHECK_OK(store_get(t, &g, &o));
    CHECK_EQ_U64(o.mtime, 4000);
    CHECK(o.seq > seq);
    /* a tombstone with a later mtime beats an older live object */
    CHECK_OK(store_delete(t, &g, 9000));
    CHECK_OK(s_put_ex(t, 1, 13, 8000, both, &changed));
    CHECK(!changed);
    CHECK_OK(store_get(t, &g, &o));
    CHECK(o.flags & STORE_OBJ_TOMBSTONE);
    CHECK_OK(s_put_ex(t, 1, 13, 9500, STORE_PUT_NEWER, &changed)); /* newer: revives */
    CHECK(changed);
    CHECK_OK(store_get(t, &g, &o));
    CHECK(!(o.flags & STORE_OBJ_TOMBSTONE));
    /* mtime 0 means now: later than anything stored here */
    CHECK_OK(s_put_ex(t, 1, 14, 0, STORE_PUT_NEWER, &changed));
    CHECK(changed);
    /* without CHECKED, bad input is still refused (and poisons the txn) */
    store_obj_t bad;
    memset(&bad, 0, sizeof bad);
    bad.guid = s_guid(2);
    bad.cls = "Not A Class";
    bad.body = (const uint8_t *)"\x80";
    bad.body_len = 1;
    CHECK_EQ_INT(store_put_ex(t, &bad, STORE_PUT_NEWER, &changed), HS_ECLASS);
    CHECK(!changed);
    store_txn_abort(&t);
    /* the digest agrees with a scan after NEWER skips and writes */
    t = s_begin(s, true);
    for (uint32_t i = 10; i < 40; i++)
        CHECK_OK(s_put_ex(t, i, i, 1000 + i, both, NULL));
    for (uint32_t i = 10; i < 40; i++)
        CHECK_OK(s_put_ex(t, i, i + 1, i % 2 ? 900 : 2000 + i, both, NULL));
    CHECK_OK(store_txn_commit(&t));
    t = s_begin(s, false);
    uint64_t n1 = 0, n2 = 0;
    uint8_t d1[STORE_HASH_LEN], d2[STORE_HASH_LEN];
    CHECK_OK(store_digest(t, NULL, NULL, &n1, d1));
    CHECK_OK(store_digest_scan(t, NULL, NULL, &n2, d2));
    CHECK_EQ_U64(n1, 30);
    CHECK_EQ_U64(n2, 30);
    CHECK(memcmp(d1, d2, STORE_HASH_LEN) == 0);
    g = s_guid(11);
    CHECK_OK(store_get(t, &g, &o));
    CHECK_EQ_U64(o.mtime, 1011); /* odd: the older update was skipped */
    g = s_guid(12);
    CHECK_OK(store_get(t, &g, &o));
    CHECK_EQ_U64(o.mtime, 2012);
    store_txn_abort(&t);
    store_close(&s);
}

/* The registration time: set by the first put, the earliest kept after,
 * meta not content (a later time never replaces it; an earlier one does,
 * even over the same content); version-1 records read as unknown (0). */
TEST(test_registration_time_kept_earliest)
{
    store_t *s = s_new_store("n1");
    store_txn_t *t = s_begin(s, true);
    mp_t body;
    s_body(&body, 1);
    store_obj_t o = {.guid = s_guid(7), .cls = "resource.computer", .mtime = 5000};
    o.body = body.b;
    o.body_len = body.n;
    bool changed = false;
    CHECK_OK(store_put(t, &o, &changed));
    CHECK(changed);
    CHECK_EQ_U64(o.rtime, 5000); /* a new guid registers when it was put */
    store_obj_t got;
    CHECK_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_U64(got.rtime, 5000);
    /* a later change keeps it */
    mp_t body2;
    s_body(&body2, 2);
    store_obj_t o2 = {.guid = s_guid(7), .cls = "resource.computer", .mtime = 9000};
    o2.body = body2.b;
    o2.body_len = body2.n;
    CHECK_OK(store_put(t, &o2, &changed));
    CHECK_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_U64(got.rtime, 5000);
    CHECK_EQ_U64(got.mtime, 9000);
    /* a copy registered later does not move it; one registered earlier does,
     * the same content notwithstanding */
    o2.rtime = 7000;
    o2.mtime = 9000;
    CHECK_OK(store_put(t, &o2, &changed));
    CHECK(!changed);
    o2.rtime = 3000;
    CHECK_OK(store_put(t, &o2, &changed));
    CHECK(changed);
    CHECK_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_U64(got.rtime, 3000);
    /* a tombstone keeps it */
    CHECK_OK(store_delete(t, &o.guid, 0));
    CHECK_OK(store_get(t, &o.guid, &got));
    CHECK_EQ_U64(got.rtime, 3000);
    /* a version-1 record (before hsync 0.10): the same fields, no time */
    o2.origin = o2.owner = "n1";
    o2.seq = 4;
    size_t n = store_record_size(&o2);
    uint8_t *v2 = malloc(n), *v1 = malloc(n);
    if (CHECK(v2 && v1)) {
        CHECK_EQ_U64(store_record_encode(&o2, v2), n);
        memcpy(v1, v2, 80);
        v1[0] = 1;
        memcpy(v1 + 80, v2 + 88, n - 88);
        CHECK_OK(store_record_decode(v1, n - 8, &got));
        CHECK_EQ_U64(got.rtime, 0);
        CHECK_EQ_U64(got.mtime, 9000);
        CHECK_EQ_U64(got.seq, 4);
        CHECK(got.body_len == body2.n && !memcmp(got.body, body2.b, body2.n));
        CHECK_OK(store_record_decode(v2, n, &got));
        CHECK_EQ_U64(got.rtime, 3000);
        CHECK_ERR(store_record_decode(v1, n, &got), HS_EMALF); /* length must match */
    }
    free(v1);
    free(v2);
    store_txn_abort(&t);
    store_close(&s);
}
