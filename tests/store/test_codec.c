/*
 * test_codec.c - store/store.h pure functions: canonical msgpack checks,
 * class names, the object record codec and the content hash.
 *
 * Bodies are written out as msgpack bytes by hand so every case says exactly
 * which encoding it is about.
 */
#include "tests/test.h"

#include "store/store.h"

#define BODY_OK(...)                                                                               \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        CHECK_OK(store_body_check(b_, sizeof b_));                                                 \
    } while (0)
#define BODY_BAD(...)                                                                              \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        CHECK_ERR(store_body_check(b_, sizeof b_), HS_EMALF);                                      \
    } while (0)
#define KEYS_OK(...)                                                                               \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        CHECK_OK(store_keys_check(b_, sizeof b_));                                                 \
    } while (0)
#define KEYS_BAD(...)                                                                              \
    do {                                                                                           \
        static const uint8_t b_[] = {__VA_ARGS__};                                                 \
        CHECK_ERR(store_keys_check(b_, sizeof b_), HS_EMALF);                                      \
    } while (0)

/* {"a":1,"b":"x"} */
#define FIX_A_B 0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xa1, 'x'

/* ---- store_body_check: accepted --------------------------------------- */

TEST(test_body_accepts_canonical_maps)
{
    BODY_OK(0x80);                                          /* {} */
    BODY_OK(0x81, 0xa1, 'a', 0x01);                         /* {"a":1} */
    BODY_OK(FIX_A_B);                                       /* {"a":1,"b":"x"} */
    BODY_OK(0x82, 0xa1, 'a', 0xc0, 0xa2, 'a', 'b', 0xc3);   /* shorter first: {"a":nil,"ab":true} */
    BODY_OK(0x82, 0xa1, 'Z', 0xc2, 0xa1, 'a', 0xc2);        /* bytewise: "Z" < "a" */
    BODY_OK(0x82, 0xa1, 'z', 0x00, 0xa2, 0xc3, 0xa9, 0x00); /* unsigned bytes: "z" < "\xc3\xa9" */
    BODY_OK(0x81, 0xa0, 0x00);                              /* empty key */
    /* {"a":{"b":[1,"x",nil,false,{}]}} */
    BODY_OK(0x81, 0xa1, 'a', 0x81, 0xa1, 'b', 0x95, 0x01, 0xa1, 'x', 0xc0, 0xc2, 0x80);
    /* floats */
    BODY_OK(0x81, 0xa1, 'f', 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    BODY_OK(0x81, 0xa1, 'f', 0xca, 0x3f, 0x80, 0, 0);
    /* bin */
    BODY_OK(0x81, 0xa1, 'b', 0xc4, 0x02, 0x00, 0xff);
    BODY_OK(0x81, 0xa1, 'b', 0xc4, 0x00);
}

TEST(test_body_accepts_shortest_ints)
{
    BODY_OK(0x81, 0xa1, 'i', 0x7f);                         /* 127 fixint */
    BODY_OK(0x81, 0xa1, 'i', 0xcc, 0x80);                   /* 128 uint8 */
    BODY_OK(0x81, 0xa1, 'i', 0xcc, 0xff);                   /* 255 uint8 */
    BODY_OK(0x81, 0xa1, 'i', 0xcd, 0x01, 0x00);             /* 256 uint16 */
    BODY_OK(0x81, 0xa1, 'i', 0xcd, 0xff, 0xff);             /* 65535 */
    BODY_OK(0x81, 0xa1, 'i', 0xce, 0x00, 0x01, 0x00, 0x00); /* 65536 uint32 */
    BODY_OK(0x81, 0xa1, 'i', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0); /* 2^32 uint64 */
    BODY_OK(0x81, 0xa1, 'i', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    BODY_OK(0x81, 0xa1, 'i', 0xff);                         /* -1 */
    BODY_OK(0x81, 0xa1, 'i', 0xe0);                         /* -32 */
    BODY_OK(0x81, 0xa1, 'i', 0xd0, 0xdf);                   /* -33 int8 */
    BODY_OK(0x81, 0xa1, 'i', 0xd0, 0x80);                   /* -128 int8 */
    BODY_OK(0x81, 0xa1, 'i', 0xd1, 0xff, 0x7f);             /* -129 int16 */
    BODY_OK(0x81, 0xa1, 'i', 0xd2, 0xff, 0xff, 0x7f, 0xff); /* -32769 int32 */
    BODY_OK(0x81, 0xa1, 'i', 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff); /* -2^31-1 */
    BODY_OK(0x81, 0xa1, 'i', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);                      /* INT64_MIN */
}

TEST(test_body_accepts_shortest_lengths)
{
    /* 31-byte string is the longest fixstr; 32 needs str8. */
    uint8_t b[3 + 3 + 300];
    size_t n;
    for (size_t len = 0; len <= 300; len++) {
        n = 0;
        b[n++] = 0x81;
        b[n++] = 0xa1;
        b[n++] = 's';
        if (len < 32) {
            b[n++] = (uint8_t)(0xa0 | len);
        } else if (len < 256) {
            b[n++] = 0xd9;
            b[n++] = (uint8_t)len;
        } else {
            b[n++] = 0xda;
            b[n++] = (uint8_t)(len >> 8);
            b[n++] = (uint8_t)len;
        }
        memset(b + n, 'x', len);
        n += len;
        if (!CHECK_OK(store_body_check(b, n)))
            fprintf(stderr, "  string length %zu\n", len);
    }
    /* array of 15 (fixarray) and 16 (array16) elements */
    uint8_t a[4 + 3 + 16];
    n = 0;
    a[n++] = 0x81;
    a[n++] = 0xa1;
    a[n++] = 'a';
    a[n++] = 0x9f;
    memset(a + n, 0x01, 15);
    CHECK_OK(store_body_check(a, n + 15));
    n = 3;
    a[n++] = 0xdc;
    a[n++] = 0x00;
    a[n++] = 0x10;
    memset(a + n, 0x01, 16);
    CHECK_OK(store_body_check(a, n + 16));
}

TEST(test_body_accepts_map16_with_16_keys)
{
    uint8_t b[3 + 16 * 3];
    size_t n = 0;
    b[n++] = 0xde;
    b[n++] = 0x00;
    b[n++] = 0x10;
    for (int i = 0; i < 16; i++) {
        b[n++] = 0xa1;
        b[n++] = (uint8_t)('a' + i);
        b[n++] = 0x00;
    }
    CHECK_OK(store_body_check(b, n));
    b[0] = 0xdf; /* map32 header would be longer: not canonical (and now truncated) */
    CHECK_ERR(store_body_check(b, n), HS_EMALF);
}

/* ---- store_body_check: rejected --------------------------------------- */

TEST(test_body_rejects_non_map_top_level)
{
    BODY_BAD(0x90);             /* [] */
    BODY_BAD(0x91, 0x01);       /* [1] */
    BODY_BAD(0x01);             /* 1 */
    BODY_BAD(0xc0);             /* nil */
    BODY_BAD(0xa1, 'a');        /* "a" */
    BODY_BAD(0xc4, 0x01, 0x00); /* bin */
    BODY_BAD(0xc3);             /* true */
}

TEST(test_body_rejects_unsorted_keys)
{
    BODY_BAD(0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x01);
    BODY_BAD(0x82, 0xa2, 'a', 'b', 0x01, 0xa1, 'a', 0x01); /* longer before its prefix */
    BODY_BAD(0x82, 0xa1, 'a', 0xc2, 0xa1, 'Z', 0xc2);
    BODY_BAD(0x82, 0xa2, 0xc3, 0xa9, 0x00, 0xa1, 'z', 0x00); /* bytes compare unsigned */
    BODY_BAD(0x83, 0xa1, 'a', 0x01, 0xa1, 'c', 0x01, 0xa1, 'b', 0x01);
    /* nested: {"a":{"b":1,"a":1}} */
    BODY_BAD(0x81, 0xa1, 'a', 0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x01);
    /* map inside an array: {"a":[{"b":1,"a":1}]} */
    BODY_BAD(0x81, 0xa1, 'a', 0x91, 0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x01);
}

TEST(test_body_rejects_duplicate_keys)
{
    BODY_BAD(0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02);
    BODY_BAD(0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x01);
    BODY_BAD(0x82, 0xa0, 0x01, 0xa0, 0x01);
    BODY_BAD(0x81, 0xa1, 'x', 0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02);
}

TEST(test_body_rejects_non_string_keys)
{
    BODY_BAD(0x81, 0x01, 0x01);                  /* int key */
    BODY_BAD(0x81, 0xc0, 0x01);                  /* nil key */
    BODY_BAD(0x81, 0xc4, 0x01, 'a', 0x01);       /* bin key */
    BODY_BAD(0x81, 0x90, 0x01);                  /* array key */
    BODY_BAD(0x81, 0x80, 0x01);                  /* map key */
    BODY_BAD(0x81, 0xa1, 'a', 0x81, 0x05, 0x01); /* nested int key */
    BODY_BAD(0x82, 0xa1, 'a', 0x01, 0xc3, 0x01); /* second key bool */
}

TEST(test_body_rejects_non_shortest_ints)
{
    BODY_BAD(0x81, 0xa1, 'i', 0xcc, 0x05);                                  /* 5 as uint8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xcc, 0x7f);                                  /* 127 as uint8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xcd, 0x00, 0x80);                            /* 128 as uint16 */
    BODY_BAD(0x81, 0xa1, 'i', 0xcd, 0x00, 0xff);                            /* 255 as uint16 */
    BODY_BAD(0x81, 0xa1, 'i', 0xce, 0x00, 0x00, 0xff, 0xff);                /* 65535 as uint32 */
    BODY_BAD(0x81, 0xa1, 'i', 0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff);    /* 2^32-1 as uint64 */
    BODY_BAD(0x81, 0xa1, 'i', 0xcf, 0, 0, 0, 0, 0, 0, 0, 0);                /* 0 as uint64 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd0, 0x05);                                  /* 5 as int8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd0, 0x7f);                                  /* 127 as int8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd0, 0xe0);                                  /* -32 as int8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd0, 0xff);                                  /* -1 as int8 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd1, 0xff, 0x80);                            /* -128 as int16 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd1, 0x00, 0xff);                            /* 255 as int16 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd2, 0xff, 0xff, 0x80, 0x00);                /* -32768 as int32 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd2, 0x00, 0x00, 0x01, 0x00);                /* 256 as int32 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd3, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0); /* INT32_MIN */
    BODY_BAD(0x81, 0xa1, 'i', 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x01);             /* 1 as int64 */
    BODY_BAD(0x81, 0xa1, 'i', 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
             0xff); /* INT64_MAX: shortest is uint64 */
    /* nested in an array */
    BODY_BAD(0x81, 0xa1, 'a', 0x92, 0x01, 0xcc, 0x01);
}

TEST(test_body_rejects_non_shortest_lengths)
{
    BODY_BAD(0x81, 0xa1, 's', 0xd9, 0x03, 'a', 'b', 'c');         /* str8 for 3 bytes */
    BODY_BAD(0x81, 0xa1, 's', 0xd9, 0x00);                        /* str8 for "" */
    BODY_BAD(0x81, 0xa1, 's', 0xda, 0x00, 0x01, 'a');             /* str16 for 1 byte */
    BODY_BAD(0x81, 0xa1, 's', 0xdb, 0x00, 0x00, 0x00, 0x01, 'a'); /* str32 for 1 byte */
    BODY_BAD(0x81, 0xd9, 0x01, 'a', 0x01);                        /* str8 key */
    BODY_BAD(0x81, 0xa1, 'a', 0xdc, 0x00, 0x01, 0x01);            /* array16 of 1 */
    BODY_BAD(0x81, 0xa1, 'a', 0xdd, 0x00, 0x00, 0x00, 0x00);      /* array32 of 0 */
    BODY_BAD(0xde, 0x00, 0x01, 0xa1, 'a', 0x01);                  /* map16 of 1 */
    BODY_BAD(0xdf, 0x00, 0x00, 0x00, 0x00);                       /* map32 of 0 */
    BODY_BAD(0x81, 0xa1, 'a', 0xc5, 0x00, 0x01, 0x00);            /* bin16 of 1 */
}

TEST(test_body_rejects_invalid_bytes)
{
    BODY_BAD(0x81, 0xa1, 'a', 0xc1); /* 0xc1 is never used */
    BODY_BAD(0xc1);
}

TEST(test_body_rejects_truncated_input)
{
    static const uint8_t full[] = {
        0x84, 0xa1, 'a',  0xcd, 0x01, 0x00,                               /* "a": 256 */
        0xa1, 'b',  0x92, 0xa2, 'h',  'i',  0xc3,                         /* "b": ["hi", true] */
        0xa1, 'c',  0x81, 0xa1, 'd',  0xc4, 0x02, 1,    2,                /* "c": {"d": bin} */
        0xa1, 'e',  0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, /* "e": pi */
    };
    CHECK_OK(store_body_check(full, sizeof full));
    for (size_t n = 0; n < sizeof full; n++) {
        /* copy so ASan sees a read past the prefix */
        uint8_t *p = malloc(n ? n : 1);
        REQUIRE(p != NULL);
        memcpy(p, full, n);
        if (!CHECK_ERR(store_body_check(p, n), HS_EMALF))
            fprintf(stderr, "  prefix of %zu bytes accepted\n", n);
        free(p);
    }
}

TEST(test_body_rejects_lengths_past_the_end)
{
    BODY_BAD(0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x');  /* str32 of 4G */
    BODY_BAD(0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01); /* array32 of 4G */
    BODY_BAD(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01);       /* map32 of 4G */
    BODY_BAD(0x81, 0xa1, 'a', 0xc6, 0xff, 0xff, 0xff, 0xf0, 0x00); /* bin32 */
    BODY_BAD(0x81, 0xa1, 'a', 0xc7, 0xff, 0x01, 0x00);             /* ext8 */
    BODY_BAD(0x8f, 0xa1, 'a', 0x01);                               /* 15 entries, 1 given */
    BODY_BAD(0x81, 0xbf, 'a');                                     /* fixstr 31, 1 given */
}

TEST(test_body_rejects_trailing_bytes)
{
    BODY_BAD(0x80, 0x00);
    BODY_BAD(0x80, 0x80);
    BODY_BAD(FIX_A_B, 0xc0);
    BODY_BAD(0x81, 0xa1, 'a', 0x01, 0x00);
}

/* {"a":[[[...]]]}: the map plus depth-1 arrays, depth containers in all. */
static size_t s_nested(uint8_t *b, int depth)
{
    size_t n = 0;
    b[n++] = 0x81;
    b[n++] = 0xa1;
    b[n++] = 'a';
    for (int i = 1; i < depth - 1; i++)
        b[n++] = 0x91;
    b[n++] = 0x90;
    return n;
}

TEST(test_body_nesting_limit)
{
    /* "Nesting at most 32": the top-level map is level 0 and at most 32
     * levels of containers nest below it (33 containers in all). */
    uint8_t b[200000];
    CHECK_OK(store_body_check(b, s_nested(b, 2)));
    CHECK_OK(store_body_check(b, s_nested(b, 32)));
    if (!CHECK_OK(store_body_check(b, s_nested(b, 33))))
        fprintf(stderr, "  top map + 32 nested levels must be accepted\n");
    if (!CHECK_ERR(store_body_check(b, s_nested(b, 34)), HS_EMALF))
        fprintf(stderr, "  top map + 33 nested levels must be refused\n");
    CHECK_ERR(store_body_check(b, s_nested(b, 1000)), HS_EMALF);
    CHECK_ERR(store_body_check(b, s_nested(b, 199000)), HS_EMALF); /* no stack overflow */
    /* nested maps */
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        b[n++] = 0x81;
        b[n++] = 0xa1;
        b[n++] = 'k';
    }
    b[n++] = 0x80;
    CHECK_ERR(store_body_check(b, n), HS_EMALF);
}

TEST(test_body_over_size_limit_refused)
{
    /* {"s": str32 of STORE_BODY_MAX bytes}: well formed, too big */
    size_t len = 3 + 5 + STORE_BODY_MAX;
    uint8_t *b = malloc(len);
    REQUIRE(b != NULL);
    memcpy(b, (const uint8_t[]){0x81, 0xa1, 's', 0xdb}, 4);
    b[4] = (uint8_t)(STORE_BODY_MAX >> 24);
    b[5] = (uint8_t)(STORE_BODY_MAX >> 16);
    b[6] = (uint8_t)(STORE_BODY_MAX >> 8);
    b[7] = (uint8_t)STORE_BODY_MAX;
    memset(b + 8, 'x', STORE_BODY_MAX);
    int rc = store_body_check(b, len);
    CHECK(rc == HS_ETOOBIG || rc == HS_EMALF);
    /* just under the limit is fine */
    size_t slen = STORE_BODY_MAX - 8;
    b[4] = (uint8_t)(slen >> 24);
    b[5] = (uint8_t)(slen >> 16);
    b[6] = (uint8_t)(slen >> 8);
    b[7] = (uint8_t)slen;
    CHECK_OK(store_body_check(b, 8 + slen));
    free(b);
}

TEST(test_body_rejects_empty_input)
{
    static const uint8_t one = 0x80;
    CHECK_ERR(store_body_check(&one, 0), HS_EMALF);
}

/* ---- store_keys_check ------------------------------------------------- */

TEST(test_keys_check)
{
    KEYS_OK(0x80);
    KEYS_OK(0x81, 0xa6, 's', 'e', 'r', 'i', 'a', 'l', 0xa3, 'S', 'N', '1');
    KEYS_OK(0x82, 0xa3, 'm', 'a', 'c', 0xa1, 'm', 0xa6, 's', 'e', 'r', 'i', 'a', 'l', 0xa1, 's');
    KEYS_BAD(0x82, 0xa6, 's', 'e', 'r', 'i', 'a', 'l', 0xa1, 's', 0xa3, 'm', 'a', 'c', 0xa1,
             'm');                                              /* unsorted */
    KEYS_BAD(0x82, 0xa1, 'a', 0xa1, 'x', 0xa1, 'a', 0xa1, 'y'); /* duplicate */
    KEYS_BAD(0x81, 0xa1, 'a', 0x01);                            /* int value */
    KEYS_BAD(0x81, 0xa1, 'a', 0xc0);                            /* nil value */
    KEYS_BAD(0x81, 0xa1, 'a', 0x80);                            /* map value */
    KEYS_BAD(0x81, 0xa1, 'a', 0x91, 0xa1, 'x');                 /* array value */
    KEYS_BAD(0x81, 0xa1, 'a', 0xc4, 0x01, 'x');                 /* bin value */
    KEYS_BAD(0x81, 0x01, 0xa1, 'x');                            /* int key */
    KEYS_BAD(0x91, 0xa1, 'x');                                  /* not a map */
    KEYS_BAD(0x81, 0xa1, 'a', 0xd9, 0x01, 'x');                 /* non-shortest string */
    KEYS_BAD(0x81, 0xa1, 'a', 0xa1, 'x', 0x00);                 /* trailing byte */
    KEYS_BAD(0x81, 0xa1, 'a', 0xa2, 'x');                       /* truncated */
}

/* ---- store_class_check ------------------------------------------------ */

TEST(test_class_check_accepts_known_families)
{
    static const char *const good[] = {
        "item.policy",
        "item.task",
        "item.server_job",
        "security.role",
        "security.privilege",
        "resource.computer",
        "resource.user",
        "dataclass.hardware",
        "package",
        "package.x",
        "event.x",
        "system.key",
        "item.a1",
        "event.x.y",
        "dataclass.os_2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!CHECK_OK(store_class_check(good[i])))
            fprintf(stderr, "  refused: \"%s\"\n", good[i]);
}

TEST(test_class_check_rejects_bad_names)
{
    static const char *const bad[] = {
        "",         "foo.bar",  "Item.Policy", "item.Policy", "ITEM.POLICY", "item.",
        ".x",       "item..x",  "item",        "resource",    "event",       "system",
        "items.x",  "packages", "package.",    "x",           ".",           "item.x.",
        "item.a-b", "item.a b", " item.x",     "item.x ",     "item/x",      "item.\xc3\xa9",
        "foo",      "itemx.y",  "item.x\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!CHECK_ERR(store_class_check(bad[i]), HS_ECLASS))
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
    CHECK_ERR(store_class_check(NULL), HS_ECLASS);
}

TEST(test_class_check_length_limit)
{
    char c[STORE_CLASS_MAX + 2];
    /* exactly STORE_CLASS_MAX bytes: accepted */
    memcpy(c, "item.", 5);
    memset(c + 5, 'a', STORE_CLASS_MAX - 5);
    c[STORE_CLASS_MAX] = '\0';
    CHECK_EQ_INT(strlen(c), STORE_CLASS_MAX);
    if (!CHECK_OK(store_class_check(c)))
        fprintf(stderr, "  a class of exactly STORE_CLASS_MAX bytes must be accepted\n");
    /* one more: refused */
    c[STORE_CLASS_MAX] = 'a';
    c[STORE_CLASS_MAX + 1] = '\0';
    CHECK_ERR(store_class_check(c), HS_ECLASS);
    char big[4096];
    memcpy(big, "event.", 6);
    memset(big + 6, 'x', sizeof big - 7);
    big[sizeof big - 1] = '\0';
    CHECK_ERR(store_class_check(big), HS_ECLASS);
}

TEST(test_class_family)
{
    char f[STORE_CLASS_MAX + 1];
    store_class_family("resource.computer", f, sizeof f);
    CHECK_EQ_STR(f, "resource");
    store_class_family("package", f, sizeof f);
    CHECK_EQ_STR(f, "package");
    store_class_family("event.x.y", f, sizeof f);
    CHECK_EQ_STR(f, "event");
    store_class_family("dataclass.hardware", f, sizeof f);
    CHECK_EQ_STR(f, "dataclass");
}

/* ---- record codec ----------------------------------------------------- */

static const uint8_t s_keys[] = {0x82, 0xa3, 'm', 'a', 'c', 0xa1, 'm',  0xa6,
                                 's',  'e',  'r', 'i', 'a', 'l',  0xa1, 's'};
static const uint8_t s_body[] = {FIX_A_B};

static void s_fill(store_obj_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < 16; i++) {
        o->guid.b[i] = (uint8_t)(0x10 + i);
        o->resource.b[i] = (uint8_t)(0xf0 - i);
    }
    o->cls = "dataclass.hardware";
    o->origin = "origin-node";
    o->owner = "owner-node";
    o->seq = 0x0102030405060708ull;
    o->mtime = 1700000000123ull;
    for (int i = 0; i < STORE_HASH_LEN; i++)
        o->hash[i] = (uint8_t)(i * 7 + 1);
    o->flags = STORE_OBJ_IMPORTED;
    o->keys = s_keys;
    o->keys_len = sizeof s_keys;
    o->body = s_body;
    o->body_len = sizeof s_body;
}

static void s_check_same(const store_obj_t *a, const store_obj_t *b, bool with_guid)
{
    if (with_guid)
        CHECK_EQ_MEM(a->guid.b, b->guid.b, 16);
    CHECK_EQ_STR(a->cls, b->cls);
    CHECK_EQ_STR(a->origin, b->origin);
    CHECK_EQ_STR(a->owner, b->owner);
    CHECK_EQ_U64(a->seq, b->seq);
    CHECK_EQ_U64(a->mtime, b->mtime);
    CHECK_EQ_MEM(a->hash, b->hash, STORE_HASH_LEN);
    CHECK_EQ_INT(a->flags, b->flags);
    CHECK_EQ_MEM(a->resource.b, b->resource.b, 16);
    CHECK_EQ_INT(a->keys_len, b->keys_len);
    if (a->keys_len == b->keys_len)
        CHECK_EQ_MEM(a->keys, b->keys, a->keys_len);
    CHECK_EQ_INT(a->body_len, b->body_len);
    if (a->body_len == b->body_len)
        CHECK_EQ_MEM(a->body, b->body, a->body_len);
}

static bool s_round_trip(const store_obj_t *o, store_obj_t *back, uint8_t **buf, size_t *len)
{
    size_t n = store_record_size(o);
    *buf = malloc(n ? n : 1);
    *len = n;
    if (!CHECK(*buf != NULL) || !CHECK(n > 0))
        return false;
    CHECK_EQ_INT(store_record_encode(o, *buf), n);
    memset(back, 0, sizeof *back);
    memcpy(back->guid.b, o->guid.b, 16); /* the guid is the key, not in the record */
    return CHECK_OK(store_record_decode(*buf, n, back));
}

TEST(test_record_round_trip_every_field)
{
    store_obj_t o, back;
    uint8_t *buf;
    size_t n;
    s_fill(&o);
    if (s_round_trip(&o, &back, &buf, &n))
        s_check_same(&o, &back, false);
    free(buf);
}

TEST(test_record_round_trip_tombstone_and_minimal)
{
    store_obj_t o, back;
    uint8_t *buf;
    size_t n;
    static const uint8_t empty[] = {0x80};

    s_fill(&o); /* tombstone: no body */
    o.flags = STORE_OBJ_TOMBSTONE;
    o.body = NULL;
    o.body_len = 0;
    o.keys = NULL;
    o.keys_len = 0;
    memset(&o.resource, 0, sizeof o.resource);
    o.cls = "item.policy";
    if (s_round_trip(&o, &back, &buf, &n))
        s_check_same(&o, &back, false);
    free(buf);

    s_fill(&o); /* smallest live object */
    o.cls = "package";
    o.origin = "n";
    o.owner = "n";
    o.seq = 0;
    o.mtime = 0;
    o.flags = 0;
    o.keys = NULL;
    o.keys_len = 0;
    memset(&o.resource, 0, sizeof o.resource);
    o.body = empty;
    o.body_len = sizeof empty;
    if (s_round_trip(&o, &back, &buf, &n))
        s_check_same(&o, &back, false);
    free(buf);
}

TEST(test_record_round_trip_large_body)
{
    /* {"s": <100000-byte str32 ... str16 is enough: 0xda len16> } */
    size_t blen = 3 + 3 + 60000;
    uint8_t *body = malloc(blen);
    REQUIRE(body != NULL);
    body[0] = 0x81;
    body[1] = 0xa1;
    body[2] = 's';
    body[3] = 0xda;
    body[4] = (uint8_t)(60000 >> 8);
    body[5] = (uint8_t)(60000 & 0xff);
    memset(body + 6, 'q', 60000);
    CHECK_OK(store_body_check(body, blen));
    store_obj_t o, back;
    uint8_t *buf;
    size_t n;
    s_fill(&o);
    o.body = body;
    o.body_len = blen;
    o.origin = "a-rather-long-node-name-of-many-bytes-0123456789012345678901";
    if (s_round_trip(&o, &back, &buf, &n))
        s_check_same(&o, &back, false);
    free(buf);
    free(body);
}

TEST(test_record_decode_rejects_truncated_and_garbage)
{
    store_obj_t o, back;
    uint8_t *buf;
    size_t n;
    s_fill(&o);
    if (!s_round_trip(&o, &back, &buf, &n)) {
        free(buf);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = malloc(k ? k : 1);
        REQUIRE(p != NULL);
        memcpy(p, buf, k);
        if (!CHECK_ERR(store_record_decode(p, k, &back), HS_EMALF))
            fprintf(stderr, "  prefix of %zu of %zu bytes decoded\n", k, n);
        free(p);
    }
    /* trailing garbage */
    uint8_t *longer = malloc(n + 1);
    REQUIRE(longer != NULL);
    memcpy(longer, buf, n);
    longer[n] = 0;
    CHECK_ERR(store_record_decode(longer, n + 1, &back), HS_EMALF);
    free(longer);
    /* garbage of every length and byte: never crashes (result not checked) */
    uint8_t g[64];
    uint32_t x = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 64);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            g[i] = (uint8_t)(x >> 16);
        }
        uint8_t *p = malloc(len ? len : 1);
        REQUIRE(p != NULL);
        memcpy(p, g, len);
        int rc = store_record_decode(p, len, &back);
        CHECK(rc == HS_OK || rc == HS_EMALF);
        free(p);
    }
    free(buf);
}

/* ---- content hash ----------------------------------------------------- */

TEST(test_obj_hash_covers_class_resource_keys_body_only)
{
    store_obj_t a, b;
    uint8_t ha[STORE_HASH_LEN], hb[STORE_HASH_LEN];
    s_fill(&a);
    store_obj_hash(&a, ha);

    /* guid, origin, owner, seq, mtime, stored hash and flags are not content */
    b = a;
    b.guid.b[0] ^= 1;
    b.origin = "x";
    b.owner = "y";
    b.seq = 1;
    b.mtime = 2;
    memset(b.hash, 0, sizeof b.hash);
    store_obj_hash(&b, hb);
    CHECK_EQ_MEM(ha, hb, STORE_HASH_LEN);

    /* equal content in other buffers: equal hash */
    uint8_t body2[sizeof s_body], keys2[sizeof s_keys];
    memcpy(body2, s_body, sizeof body2);
    memcpy(keys2, s_keys, sizeof keys2);
    b = a;
    b.body = body2;
    b.keys = keys2;
    b.cls = (const char[]){"dataclass.hardware"};
    store_obj_hash(&b, hb);
    CHECK_EQ_MEM(ha, hb, STORE_HASH_LEN);

    b = a;
    b.cls = "dataclass.software";
    store_obj_hash(&b, hb);
    CHECK(memcmp(ha, hb, STORE_HASH_LEN) != 0);

    b = a;
    b.resource.b[15] ^= 1;
    store_obj_hash(&b, hb);
    CHECK(memcmp(ha, hb, STORE_HASH_LEN) != 0);

    static const uint8_t keys3[] = {0x81, 0xa3, 'm', 'a', 'c', 0xa1, 'm'};
    b = a;
    b.keys = keys3;
    b.keys_len = sizeof keys3;
    store_obj_hash(&b, hb);
    CHECK(memcmp(ha, hb, STORE_HASH_LEN) != 0);

    static const uint8_t body3[] = {0x82, 0xa1, 'a', 0x02, 0xa1, 'b', 0xa1, 'x'};
    b = a;
    b.body = body3;
    b.body_len = sizeof body3;
    store_obj_hash(&b, hb);
    CHECK(memcmp(ha, hb, STORE_HASH_LEN) != 0);
}
