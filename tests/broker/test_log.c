/*
 * test_log.c - broker/log.h: every field of a log line is escaped, so text
 * from a peer (a node name in a JOIN, a reason) cannot end the line, forge a
 * field or reach a terminal as an escape sequence.
 */
#include "tests/test.h"

#include "broker/log.h"

TEST(test_escape_msg_quotes_backslash_controls)
{
    char out[256];
    broker_log_escape(out, sizeof(out), "x\"y peer=parent event=child-added", true);
    CHECK_EQ_STR(out, "x\\\"y peer=parent event=child-added");
    broker_log_escape(out, sizeof(out), "a\\b\nc\rd\x1b[31mRED\x7f", true);
    CHECK_EQ_STR(out, "a\\\\b\\x0ac\\x0dd\\x1b[31mRED\\x7f");
    broker_log_escape(out, sizeof(out), "caf\xc3\xa9 'ok'", true);
    CHECK_EQ_STR(out, "caf\\xc3\\xa9 'ok'");
}

TEST(test_escape_field_no_space_or_quote)
{
    char out[256];
    broker_log_escape(out, sizeof(out), "x\"y peer=parent event=child-added", false);
    CHECK_EQ_STR(out, "x\\x22y\\x20peer=parent\\x20event=child-added");
    /* a Z85 key goes through unchanged */
    const char *key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    broker_log_escape(out, sizeof(out), key, false);
    CHECK_EQ_STR(out, key);
}

TEST(test_escape_cut_never_splits_an_escape)
{
    char out[6];
    CHECK_EQ_INT(broker_log_escape(out, sizeof(out), "ab\x01zz", true), 2);
    CHECK_EQ_STR(out, "ab");
    CHECK_EQ_INT(broker_log_escape(out, sizeof(out), "abcdefgh", true), 5);
    CHECK_EQ_STR(out, "abcde");
    char one[1];
    CHECK_EQ_INT(broker_log_escape(one, sizeof(one), "abc", true), 0);
    CHECK_EQ_STR(one, "");
}

/* A whole line, as the broker writes it to stderr: one line, fields intact. */
TEST(test_line_cannot_be_forged)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/log", test_tmpdir());
    REQUIRE(freopen(path, "w", stderr) != NULL);
    broker_log(BROKER_LOG_WARN, "x\"y peer=parent event=child-added", "join-refused",
               "refused '%s': %s", "evil\n2026-12-03T00:00:00.000Z level=error peer=p event=FORGED",
               "\x1b[31mRED\x1b[0m \"q\"");
    fflush(stderr);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char line[4096];
    int lines = 0;
    char first[4096] = "";
    while (fgets(line, sizeof(line), f))
        if (lines++ == 0)
            snprintf(first, sizeof(first), "%s", line);
    fclose(f);
    CHECK_EQ_INT(lines, 1);
    CHECK(
        strstr(first, " peer=x\\x22y\\x20peer=parent\\x20event=child-added event=join-refused ") !=
        NULL);
    CHECK(strstr(first, "msg=\"refused 'evil\\x0a2026-12-03T00:00:00.000Z level=error peer=p "
                        "event=FORGED': \\x1b[31mRED\\x1b[0m \\\"q\\\"\"\n") != NULL);
    CHECK(strchr(first, '\x1b') == NULL);
}
