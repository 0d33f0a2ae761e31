/*
 * test_guid.c - store/guid.h: parsing, formatting, new time-ordered guids.
 */
#include "tests/test.h"

#include "store/guid.h"

static const char *const s_good = "0123abcd-4567-89ef-0a1b-2c3d4e5f6789";

TEST(test_guid_parse_format_round_trip)
{
    store_guid_t g;
    char out[STORE_GUID_STRLEN + 1];
    CHECK_OK(store_guid_parse(s_good, &g));
    static const uint8_t want[16] = {0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef,
                                     0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x67, 0x89};
    CHECK_EQ_MEM(g.b, want, 16);
    store_guid_format(&g, out);
    CHECK_EQ_STR(out, s_good);
    CHECK_EQ_INT(strlen(out), STORE_GUID_STRLEN);
}

TEST(test_guid_parse_accepts_uppercase_formats_lowercase)
{
    store_guid_t g, h;
    char out[STORE_GUID_STRLEN + 1];
    CHECK_OK(store_guid_parse("0123ABCD-4567-89EF-0A1B-2C3D4E5F6789", &g));
    CHECK_OK(store_guid_parse(s_good, &h));
    CHECK_EQ_MEM(g.b, h.b, 16);
    store_guid_format(&g, out);
    CHECK_EQ_STR(out, s_good);
}

TEST(test_guid_round_trip_of_every_byte_value)
{
    store_guid_t g, h;
    char out[STORE_GUID_STRLEN + 1];
    for (int v = 0; v < 256; v++) {
        for (int i = 0; i < 16; i++)
            g.b[i] = (uint8_t)(v + i * 17);
        store_guid_format(&g, out);
        memset(&h, 0xaa, sizeof h);
        CHECK_OK(store_guid_parse(out, &h));
        CHECK_EQ_MEM(g.b, h.b, 16);
    }
}

TEST(test_guid_bad_guids_rejected)
{
    static const char *const bad[] = {
        "",
        "0123abcd-4567-89ef-0a1b-2c3d4e5f678",    /* 35: too short */
        "0123abcd-4567-89ef-0a1b-2c3d4e5f67890",  /* 37: too long */
        "0123abcd-4567-89ef-0a1b-2c3d4e5f6789 ",  /* trailing space */
        " 0123abcd-4567-89ef-0a1b-2c3d4e5f6789",  /* leading space */
        "0123abcd45678-9ef-0a1b-2c3d4e5f6789",    /* 36 chars, misplaced dash */
        "0123abc-d4567-89ef-0a1b-2c3d4e5f6789",   /* misplaced dash */
        "0123abcd-4567-89ef-0a1b2-c3d4e5f6789",   /* misplaced dash */
        "0123abcd-4567-89ef-0a1b-2c3d-4e5f6789",  /* extra dash, 37 */
        "0123abcd-4567-89ef-0a1b-2c3d4e5f-789",   /* dash in the last group */
        "0123abcd:4567:89ef:0a1b:2c3d4e5f6789",   /* wrong separator */
        "0123abcdx4567-89ef-0a1b-2c3d4e5f6789",   /* wrong separator */
        "0123abcd0456708:ef-0a1b-2c3d4e5f6789",   /* nonsense */
        "0123abcg-4567-89ef-0a1b-2c3d4e5f6789",   /* bad hex g */
        "0123abcd-4567-89ef-0a1b-2c3d4e5f678z",   /* bad hex z at the end */
        "0123abcd-4567-89ef-0a1b-2c3d4e5f67+9",   /* bad hex + */
        "0x23abcd-4567-89ef-0a1b-2c3d4e5f6789",   /* 0x prefix */
        "{123abcd-4567-89ef-0a1b-2c3d4e5f6789",   /* brace */
        "------------------------------------",   /* all dashes */
        "0123abcd045670089ef00a1b02c3d4e5f6789",  /* no dashes, 37 */
        "0123abcd456789ef0a1b2c3d4e5f6789",       /* no dashes, 32 */
        "{0123abcd-4567-89ef-0a1b-2c3d4e5f6789}", /* braced */
        /* split in two, or \xa9 would take "89" as hex digits */
        ("0123abcd-4567-89ef-0a1b-2c3d4e5f\xc3\xa9"
         "89"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        store_guid_t g;
        if (!CHECK_ERR(store_guid_parse(bad[i], &g), HS_EGUID))
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
    }
    store_guid_t g;
    CHECK_ERR(store_guid_parse(NULL, &g), HS_EGUID);
}

TEST(test_guid_embedded_nul_rejected)
{
    char s[STORE_GUID_STRLEN + 1];
    memcpy(s, s_good, sizeof s);
    s[20] = '\0';
    store_guid_t g;
    CHECK_ERR(store_guid_parse(s, &g), HS_EGUID);
}

TEST(test_guid_is_zero)
{
    store_guid_t g;
    memset(&g, 0, sizeof g);
    CHECK(store_guid_is_zero(&g));
    for (int i = 0; i < 16; i++) {
        memset(&g, 0, sizeof g);
        g.b[i] = 1;
        CHECK(!store_guid_is_zero(&g));
    }
    CHECK_OK(store_guid_new(&g));
    CHECK(!store_guid_is_zero(&g));
}

TEST(test_hex)
{
    static const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof in + 1];
    memset(out, 'x', sizeof out);
    store_hex(in, sizeof in, out);
    CHECK_EQ_STR(out, "00017f80abff");
    store_hex(in, 0, out);
    CHECK_EQ_STR(out, "");
}

static int s_cmp_guid(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(store_guid_t));
}

TEST(test_guid_new_unique_and_uuid7_layout)
{
    enum { N = 20000 };
    store_guid_t *g = calloc(N, sizeof *g);
    REQUIRE(g != NULL);
    for (int i = 0; i < N; i++) {
        if (!CHECK_OK(store_guid_new(&g[i])))
            break;
        CHECK_EQ_INT(g[i].b[6] >> 4, 7);      /* version 7 */
        CHECK_EQ_INT(g[i].b[8] & 0xc0, 0x80); /* RFC 4122 variant */
    }
    qsort(g, N, sizeof *g, s_cmp_guid);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += memcmp(&g[i - 1], &g[i], sizeof *g) == 0;
    CHECK_EQ_INT(dups, 0);
    free(g);
}

static uint64_t s_guid_ms(const store_guid_t *g)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | g->b[i];
    return ms;
}

TEST(test_guid_new_carries_wall_clock_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t before = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    store_guid_t g;
    CHECK_OK(store_guid_new(&g));
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t after = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    CHECK(s_guid_ms(&g) >= before);
    CHECK(s_guid_ms(&g) <= after);
}

TEST(test_guid_new_increasing_over_time)
{
    /* Guids made in a later millisecond sort after earlier ones. Poll (with a
     * deadline) until the clock has moved on, several times. */
    for (int round = 0; round < 5; round++) {
        store_guid_t a, b;
        REQUIRE_OK(store_guid_new(&a));
        uint64_t deadline = test_now_ms() + 2000;
        do {
            REQUIRE_OK(store_guid_new(&b));
        } while (s_guid_ms(&b) == s_guid_ms(&a) && test_now_ms() < deadline);
        CHECK(s_guid_ms(&b) > s_guid_ms(&a));
        CHECK(memcmp(b.b, a.b, 16) > 0);
        char sa[STORE_GUID_STRLEN + 1], sb[STORE_GUID_STRLEN + 1];
        store_guid_format(&a, sa);
        store_guid_format(&b, sb);
        CHECK(strcmp(sb, sa) > 0); /* the text form sorts the same way */
    }
}
