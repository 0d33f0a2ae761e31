/*
 * test.h - the unit test harness of hsync (header-only, one test file each).
 *
 * A suite is one .c file that includes this header and defines its tests:
 *
 *     TEST(test_put_get_round_trip)
 *     {
 *         store_t *s = test_store_open();   // suites write their own helpers
 *         CHECK_OK(store_txn_begin(s, true, &t));
 *         CHECK_EQ_INT(count, 3);
 *         CHECK_ERR(store_delete(t, &g, 0), HS_ENOTFOUND);
 *     }
 *
 * TEST registers the function at load time (constructor) in file order; the
 * main() defined here runs every test and prints one line per test, then
 * exactly "N passed, M failed", and exits 1 if M > 0.
 *
 * CHECK* macros report "file:line: expression" and the values on failure, mark
 * the running test failed and go on; they evaluate to true when the check
 * held, so `if (!CHECK_OK(x)) return;` stops a test whose later steps depend
 * on x. REQUIRE* macros stop the running test at once (longjmp back into the
 * runner; the test's resources are not released, which is fine in a child).
 *
 * Each test runs in its own child process (fork) so a crash, an abort, an
 * ASan report or a setenv() in one test cannot affect the others; a test that
 * runs longer than TEST_TIMEOUT_S seconds is killed and counts as failed.
 * HSYNC_TEST_NOFORK=1 runs tests in-process (for gdb). Arguments select tests
 * whose name contains any of them.
 *
 * Scratch folders: test_tmpdir() returns a fresh empty folder under
 * $HSYNC_TEST_TMP (fallback /tmp), inside a folder unique to this run
 * (<program>.<pid>.XXXXXX). The run's folder is removed when every test passed
 * and kept (its path printed) otherwise.
 */
#ifndef HSYNC_TESTS_TEST_H
#define HSYNC_TESTS_TEST_H

#include "store/hs_error.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 60
#endif
#define TEST_MAX 256

typedef void (*test_fn)(void);

static struct {
    const char *name;
    test_fn fn;
} test_list_[TEST_MAX];
static int test_count_;
static int test_failed_;          /* checks failed in the running test */
static const char *test_current_; /* name of the running test */
static jmp_buf test_jmp_;
static char test_rundir_[4096]; /* this run's scratch folder, "" until used */
static unsigned test_tmpseq_;
static const char *test_prog_ = "test"; /* argv[0] */

static inline void test_register_(const char *name, test_fn fn)
{
    if (test_count_ >= TEST_MAX) {
        fprintf(stderr, "test.h: more than %d tests; raise TEST_MAX\n", TEST_MAX);
        abort();
    }
    test_list_[test_count_].name = name;
    test_list_[test_count_].fn = fn;
    test_count_++;
}

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register_(void)                                \
    {                                                                                              \
        test_register_(#name, name);                                                               \
    }                                                                                              \
    static void name(void)

/* ---- checks ----------------------------------------------------------- */

static inline bool test_fail_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline bool test_fail_(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: %s: ", file, line, test_current_ ? test_current_ : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    test_failed_++;
    return false;
}

static inline bool test_check_(bool ok, const char *file, int line, const char *expr)
{
    return ok ? true : test_fail_(file, line, "CHECK(%s) failed", expr);
}

static inline bool test_check_int_(long long a, long long b, const char *file, int line,
                                   const char *ea, const char *eb)
{
    if (a == b)
        return true;
    return test_fail_(file, line, "CHECK_EQ_INT(%s, %s) failed: %lld != %lld", ea, eb, a, b);
}

static inline bool test_check_u64_(uint64_t a, uint64_t b, const char *file, int line,
                                   const char *ea, const char *eb)
{
    if (a == b)
        return true;
    return test_fail_(file, line, "CHECK_EQ_U64(%s, %s) failed: %" PRIu64 " != %" PRIu64, ea, eb, a,
                      b);
}

static inline bool test_check_str_(const char *a, const char *b, const char *file, int line,
                                   const char *ea, const char *eb)
{
    if (a && b && strcmp(a, b) == 0)
        return true;
    return test_fail_(file, line, "CHECK_EQ_STR(%s, %s) failed: \"%s\" != \"%s\"", ea, eb,
                      a ? a : "(null)", b ? b : "(null)");
}

static inline bool test_check_mem_(const void *a, const void *b, size_t n, const char *file,
                                   int line, const char *ea, const char *eb)
{
    if (n == 0 || (a && b && memcmp(a, b, n) == 0))
        return true;
    return test_fail_(file, line, "CHECK_EQ_MEM(%s, %s, %zu) failed: contents differ", ea, eb, n);
}

static inline bool test_check_ok_(int rc, const char *file, int line, const char *expr)
{
    if (rc == HS_OK)
        return true;
    return test_fail_(file, line, "CHECK_OK(%s) failed: %d (%s)", expr, rc, hs_strerror(rc));
}

static inline bool test_check_err_(int rc, int want, const char *file, int line, const char *expr,
                                   const char *ewant)
{
    if (rc == want)
        return true;
    return test_fail_(file, line, "CHECK_ERR(%s, %s) failed: got %d (%s), want %d (%s)", expr,
                      ewant, rc, hs_strerror(rc), want, hs_strerror(want));
}

#define CHECK(cond) test_check_(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b)                                                                         \
    test_check_int_((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_U64(a, b) test_check_u64_((uint64_t)(a), (uint64_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_STR(a, b) test_check_str_((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_MEM(a, b, n) test_check_mem_((a), (b), (n), __FILE__, __LINE__, #a, #b)
#define CHECK_OK(expr) test_check_ok_((expr), __FILE__, __LINE__, #expr)
#define CHECK_ERR(expr, code) test_check_err_((expr), (code), __FILE__, __LINE__, #expr, #code)

/* Stop the running test at once when the check fails. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!CHECK(cond))                                                                          \
            longjmp(test_jmp_, 1);                                                                 \
    } while (0)
#define REQUIRE_OK(expr)                                                                           \
    do {                                                                                           \
        if (!CHECK_OK(expr))                                                                       \
            longjmp(test_jmp_, 1);                                                                 \
    } while (0)

/* ---- scratch folders -------------------------------------------------- */

static inline int test_mkdirs_(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* This run's scratch folder, created on first use (in the parent, before the
 * tests fork, so every test shares it). Aborts when it cannot be made. */
static inline const char *test_rundir(void)
{
    if (test_rundir_[0])
        return test_rundir_;
    const char *base = getenv("HSYNC_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    if (test_mkdirs_(base) != 0) {
        fprintf(stderr, "test.h: cannot create %s: %s\n", base, strerror(errno));
        abort();
    }
    const char *prog = strrchr(test_prog_, '/') ? strrchr(test_prog_, '/') + 1 : test_prog_;
    int n =
        snprintf(test_rundir_, sizeof test_rundir_, "%s/%s.%ld.XXXXXX", base, prog, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof test_rundir_ || !mkdtemp(test_rundir_)) {
        fprintf(stderr, "test.h: cannot create a scratch folder under %s: %s\n", base,
                strerror(errno));
        abort();
    }
    return test_rundir_;
}

/* A fresh, empty folder for the running test; the string is static storage
 * owned by the harness (a new call returns a new folder; copy to keep). */
static inline const char *test_tmpdir(void)
{
    static char dirs[16][4096];
    char *out = dirs[test_tmpseq_ % 16];
    int n = snprintf(out, 4096, "%s/%s.%u", test_rundir(), test_current_ ? test_current_ : "t",
                     test_tmpseq_);
    test_tmpseq_++;
    if (n < 0 || n >= 4096 || test_mkdirs_(out) != 0) {
        fprintf(stderr, "test.h: cannot create %s: %s\n", out, strerror(errno));
        abort();
    }
    return out;
}

static inline int test_rm_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void test_rmrf(const char *path)
{
    nftw(path, test_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

/* Monotonic milliseconds, for deadlines in polling loops. */
static inline uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- runner ----------------------------------------------------------- */

/* Run one test in this process; returns true if it passed. */
static inline bool test_run_here_(int i)
{
    test_current_ = test_list_[i].name;
    test_failed_ = 0;
    if (setjmp(test_jmp_) == 0)
        test_list_[i].fn();
    else
        fprintf(stderr, "  (%s stopped at a failed REQUIRE)\n", test_current_);
    return test_failed_ == 0;
}

static inline bool test_run_child_(int i)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "test.h: fork: %s\n", strerror(errno));
        return false;
    }
    if (pid == 0) {
        alarm(TEST_TIMEOUT_S);
        bool ok = test_run_here_(i);
        fflush(stdout);
        fflush(stderr);
        exit(ok ? 0 : 1); /* exit, not _exit: ASan's leak check runs at exit */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "test.h: waitpid: %s\n", strerror(errno));
            return false;
        }
    }
    if (WIFEXITED(st)) {
        if (WEXITSTATUS(st) > 1)
            fprintf(stderr, "  (%s: child exited with status %d)\n", test_list_[i].name,
                    WEXITSTATUS(st));
        return WEXITSTATUS(st) == 0;
    }
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        fprintf(stderr, "  (%s: killed by signal %d%s)\n", test_list_[i].name, sig,
                sig == SIGALRM ? ", timeout" : "");
    }
    return false;
}

static inline bool test_selected_(const char *name, int argc, char **argv)
{
    if (argc <= 1)
        return true;
    for (int a = 1; a < argc; a++)
        if (strstr(name, argv[a]))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *nofork = getenv("HSYNC_TEST_NOFORK");
    bool fork_each = !(nofork && *nofork && strcmp(nofork, "0") != 0);
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 0 && argv[0])
        test_prog_ = argv[0];
    (void)test_rundir(); /* shared by all children */
    for (int i = 0; i < test_count_; i++) {
        if (!test_selected_(test_list_[i].name, argc, argv))
            continue;
        uint64_t t0 = test_now_ms();
        bool ok = fork_each ? test_run_child_(i) : test_run_here_(i);
        printf("%-50s %s (%" PRIu64 " ms)\n", test_list_[i].name, ok ? "ok" : "FAIL",
               test_now_ms() - t0);
        if (ok)
            passed++;
        else
            failed++;
    }
    if (failed == 0)
        test_rmrf(test_rundir_);
    else
        printf("scratch kept in %s\n", test_rundir_);
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0 ? 1 : 0;
}

#endif
