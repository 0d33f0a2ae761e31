/*
 * cli_sync.c - hsync sync and hsync history.
 */
#include "broker/cli.h"
#include "broker/ctl.h"
#include "replication/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void s_bytes(uint64_t b, char *out, size_t n)
{
    if (b >= 10u << 20)
        snprintf(out, n, "%.1f MB", (double)b / (1 << 20));
    else if (b >= 10u << 10)
        snprintf(out, n, "%.1f KB", (double)b / 1024);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

static json_int_t s_int(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* One row per run. Disabled rules are summed up in one line below the table
 * unless the user named the rule (then its rows say why nothing ran). */
static void s_print_runs(const json_t *runs, bool dry, bool rows_for_disabled)
{
    char disabled[256] = "";
    printf("%-14s %-12s %-10s %-9s %-12s %8s %8s %8s %8s %10s %8s  %s\n", "PEER", "RULE", "DIR",
           "ROLE", "MODE", dry ? "WOULD" : "SENT", "APPLIED", "SKIPPED", "DELETED",
           dry ? "EST.BYTES" : "BYTES", "TIME", "RESULT");
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        char bytes[32];
        s_bytes((uint64_t)(dry ? s_int(r, "estimated_bytes") : s_int(r, "bytes")), bytes,
                sizeof(bytes));
        bool skipped = json_is_true(json_object_get(r, "skipped"));
        if (skipped && !rows_for_disabled && !strcmp(s_str(r, "why"), "rule disabled")) {
            /* listed once below, not once per peer and direction */
            const char *rule = s_str(r, "rule");
            if (!strstr(disabled, rule) && strlen(disabled) + strlen(rule) + 3 < sizeof(disabled))
                snprintf(disabled + strlen(disabled), sizeof(disabled) - strlen(disabled), "%s%s",
                         disabled[0] ? ", " : "", rule);
            continue;
        }
        char result[300];
        if (skipped)
            snprintf(result, sizeof(result), "skipped: %s", s_str(r, "why"));
        else if (json_is_true(json_object_get(r, "ok")))
            snprintf(result, sizeof(result), "ok (%s)", s_str(r, "why"));
        else
            snprintf(result, sizeof(result), "FAILED: %s", s_str(r, "error"));
        printf("%-14s %-12s %-10s %-9s %-12s %8lld %8lld %8lld %8lld %10s %7.2fs  %s\n",
               s_str(r, "peer"), s_str(r, "rule"), s_str(r, "direction"),
               skipped ? "-" : s_str(r, "role"), skipped ? "-" : s_str(r, "mode"),
               (long long)s_int(r, "sent"), (long long)s_int(r, "applied"),
               (long long)s_int(r, "skipped"), (long long)s_int(r, "deleted"), bytes,
               (double)s_int(r, "ms") / 1000.0, result);
    }
    if (disabled[0])
        printf("(disabled rules, not run: %s; 'hsync rule enable NAME' turns one on)\n", disabled);
}

/* ---- progress on a terminal --------------------------------------------- */

/* One line on stderr, rewritten as each run ends (the broker sends a
 * progress message per finished run): runs, objects and bytes done, rate
 * and an estimate of the time left. Only when stderr is a terminal. */
typedef struct s_progress {
    bool shown;
} s_progress_t;

static void s_on_progress(void *ctx, const json_t *p)
{
    s_progress_t *pr = ctx;
    json_int_t done = s_int(p, "runs_done"), total = s_int(p, "runs_total");
    json_int_t objs = s_int(p, "objects"), objs_total = s_int(p, "objects_total");
    double secs = (double)s_int(p, "ms") / 1000.0;
    char bytes[32], left[32] = "", of[48] = "";
    s_bytes((uint64_t)s_int(p, "bytes"), bytes, sizeof(bytes));
    double est = -1;
    if (objs > 0 && objs_total > objs && secs > 0) /* by objects, when the runs say how many */
        est = secs / (double)objs * (double)(objs_total - objs);
    else if (done > 0 && total > done && secs > 0)
        est = secs / (double)done * (double)(total - done);
    if (est >= 1)
        snprintf(left, sizeof(left), ", ~%.0fs left", est);
    else if (est >= 0)
        snprintf(left, sizeof(left), ", <1s left");
    if (objs_total > objs)
        snprintf(of, sizeof(of), " of ~%lld", (long long)objs_total);
    const json_t *run = json_object_get(p, "run");
    fprintf(stderr, "\r\033[Ksync: %lld/%lld runs, %lld%s objects, %s, %.0f objects/s%s%s%s%s%s%s",
            (long long)done, (long long)total, (long long)objs, of, bytes,
            secs > 0 ? (double)objs / secs : 0.0, left, json_is_object(run) ? " (last: " : "",
            s_str(run, "peer"), json_is_object(run) ? " " : "", s_str(run, "rule"),
            json_is_object(run) ? (json_is_true(json_object_get(run, "ok")) ? " ok)" : " FAILED)")
                                : "");
    fflush(stderr);
    pr->shown = true;
}

int broker_cli_sync(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {
        {"peer", required_argument, NULL, 'p'},      {"rule", required_argument, NULL, 'r'},
        {"complete", no_argument, NULL, 'C'},        {"reconcile", no_argument, NULL, 'R'},
        {"dry-run", no_argument, NULL, 'n'},         {"timeout", required_argument, NULL, 't'},
        {"direction", required_argument, NULL, 'D'}, BROKER_CLI_COMMON_OPTIONS};
    const char *peer = NULL, *rule = NULL, *direction = NULL;
    bool complete = false, dry = false, reconcile = false;
    long timeout = 3600;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'p')
            peer = optarg;
        else if (o == 'r')
            rule = optarg;
        else if (o == 'C')
            complete = true;
        else if (o == 'R')
            reconcile = true;
        else if (o == 'n')
            dry = true;
        else if (o == 'D') {
            if (strcmp(optarg, "up") != 0 && strcmp(optarg, "down") != 0)
                return broker_cli_usage(c, "--direction takes up or down");
            direction = optarg;
        } else if (o == 't') {
            long long v;
            if (broker_cli_number(optarg, 1, 86400, &v))
                return broker_cli_usage(c, "--timeout takes seconds, 1 to 86400");
            timeout = (long)v;
        }
    }
    if (optind != argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    if (complete && reconcile)
        return broker_cli_usage(c, "--complete and --reconcile exclude each other");
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    json_t *req = json_pack("{s:s,s:b,s:b}", "cmd", "sync", "complete", complete, "dry_run", dry);
    if (peer)
        json_object_set_new(req, "peer", json_string(peer));
    if (rule)
        json_object_set_new(req, "rule", json_string(rule));
    if (reconcile)
        json_object_set_new(req, "reconcile", json_true());
    if (direction)
        json_object_set_new(req, "direction", json_string(direction));
    json_t *resp = NULL;
    s_progress_t pr = {false};
    bool tty = !c->cli_json && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    int err = broker_ctl_call(c->cli_dir, req, (int)timeout * 1000, &resp,
                              tty ? s_on_progress : NULL, &pr);
    if (pr.shown)
        fprintf(stderr, "\r\033[K");
    json_decref(req);
    if (err == HS_ENOBROKER)
        return broker_cli_fail(c, "no broker is running for %s (start it with 'hsync serve -d %s')",
                               c->cli_dir, c->cli_dir);
    if (err == HS_ETIMEDOUT)
        return broker_cli_fail(c,
                               "the runs did not finish within %ld s; they go on in the broker "
                               "('hsync status' shows them)",
                               timeout);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (!json_is_true(json_object_get(resp, "ok"))) {
        rc = broker_cli_fail(c, "%s", s_str(resp, "error"));
        json_decref(resp);
        return rc;
    }
    json_t *runs = json_object_get(resp, "runs");
    if (c->cli_json) {
        rc = broker_cli_print_json(c, resp, false);
    } else if (json_array_size(runs) == 0) {
        printf("nothing to replicate: this node has no parent or children (see 'hsync hierarchy "
               "show')\n");
    } else {
        s_print_runs(runs, dry, rule != NULL);
        printf("%zu run%s in %.2fs\n", json_array_size(runs), json_array_size(runs) == 1 ? "" : "s",
               (double)s_int(resp, "ms") / 1000.0);
    }
    bool all_ok = json_is_true(json_object_get(resp, "all_ok"));
    json_decref(resp);
    if (!all_ok && rc == BROKER_CLI_OK)
        return broker_cli_fail(c, "some runs failed (see RESULT above); they are retried "
                                  "with backoff");
    return rc;
}

typedef struct s_hist {
    broker_cli_t *c;
    json_t *all;
    size_t n, max;
} s_hist_t;

static int s_hist_one(void *ctx, const repl_hist_t *h)
{
    s_hist_t *s = ctx;
    if (s->n++ >= s->max)
        return 1;
    if (s->c->cli_json) {
        json_t *j =
            json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "when",
                      (json_int_t)h->h_when_ms, "peer", h->h_peer, "rule", h->h_rule, "role",
                      h->h_role, "mode", repl_mode_name(h->h_mode), "why", h->h_why, "sent",
                      (json_int_t)h->h_sent, "applied", (json_int_t)h->h_applied, "skipped",
                      (json_int_t)h->h_skipped, "deleted", (json_int_t)h->h_deleted, "bytes",
                      (json_int_t)h->h_bytes, "ms", (json_int_t)h->h_ms, "ok", h->h_ok);
        if (!h->h_ok)
            json_object_set_new(j, "error", json_string(h->h_error));
        if (h->h_mode == REPL_RECOVER && !strcmp(h->h_role, "received"))
            json_object_set_new(j, "recovered", json_integer((json_int_t)h->h_applied));
        json_array_append_new(s->all, j);
        return 0;
    }
    char when[32], bytes[32], recovered[48] = "";
    broker_cli_time_format(h->h_when_ms, when);
    s_bytes(h->h_bytes, bytes, sizeof(bytes));
    if (h->h_ok && h->h_mode == REPL_RECOVER && !strcmp(h->h_role, "received"))
        snprintf(recovered, sizeof(recovered),
                 "recovered %llu: ", (unsigned long long)h->h_applied);
    printf("%-24s %-12s %-12s %-10s %-12s %8llu %8llu %8llu %8llu %10s %7.2fs  %s%s%s\n", when,
           h->h_peer, h->h_rule, h->h_role, repl_mode_name(h->h_mode),
           (unsigned long long)h->h_sent, (unsigned long long)h->h_applied,
           (unsigned long long)h->h_skipped, (unsigned long long)h->h_deleted, bytes,
           (double)h->h_ms / 1000.0, h->h_ok ? "ok: " : "FAILED: ", recovered,
           h->h_ok ? h->h_why : h->h_error);
    return 0;
}

int broker_cli_history(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"limit", required_argument, NULL, 'l'},
                                       BROKER_CLI_COMMON_OPTIONS};
    size_t max = 50;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'l') {
            long long v;
            if (broker_cli_number(optarg, 1, 1000000000, &v))
                return broker_cli_usage(c, "--limit takes a positive number");
            max = (size_t)v;
        }
    }
    if (optind != argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    s_hist_t h = {c, json_array(), 0, max};
    if (!c->cli_json)
        printf("%-24s %-12s %-12s %-10s %-12s %8s %8s %8s %8s %10s %8s  %s\n", "WHEN", "PEER",
               "RULE", "ROLE", "MODE", "SENT", "APPLIED", "SKIPPED", "DELETED", "BYTES", "TIME",
               "RESULT");
    store_txn_t *t;
    int err = store_txn_begin(s, false, &t);
    if (!err) {
        err = repl_hist_each(t, s_hist_one, &h);
        store_txn_abort(&t);
    }
    store_close(&s);
    if (!err && c->cli_json)
        rc = broker_cli_print_json(c, h.all, false);
    json_decref(h.all);
    return err ? broker_cli_fail(c, "%s", broker_cli_why(err)) : rc;
}

/* ---- status table ------------------------------------------------------- */

/* The link of peer in links (the status "links" array), or NULL. */
static const json_t *s_link_of(const json_t *links, const char *peer)
{
    size_t i;
    const json_t *l;
    json_array_foreach(links, i, l)
    {
        if (!strcmp(s_str(l, "name"), peer))
            return l;
    }
    return NULL;
}

/* "up", "down", "up/degraded"...: the link's state and, when not ok, health. */
static void s_link_text(const json_t *l, char *out, size_t n)
{
    if (!l) {
        snprintf(out, n, "-");
        return;
    }
    const char *health = s_str(l, "health");
    snprintf(out, n, "%s%s%s", s_str(l, "state"), *health && strcmp(health, "ok") ? "/" : "",
             *health && strcmp(health, "ok") ? health : "");
}

static bool s_link_bad(const json_t *l)
{
    const char *health = l ? s_str(l, "health") : "";
    return l && (strcmp(s_str(l, "state"), "up") || (*health && strcmp(health, "ok")));
}

static const json_t *s_links; /* for s_rank: set while printing */

static int s_rank(const json_t *p)
{
    if (!json_is_true(json_object_get(p, "enabled")))
        return 3; /* disabled as asked: last */
    if (s_links && s_link_bad(s_link_of(s_links, s_str(p, "peer"))))
        return 0; /* a link in trouble is a problem too */
    const json_t *last = json_object_get(p, "last_run");
    if (json_is_object(last) && !json_is_true(json_object_get(last, "ok")))
        return 0; /* failing first */
    if (json_is_true(json_object_get(p, "running")))
        return 1;
    if (!json_is_true(json_object_get(p, "enabled")))
        return 3;
    return 2;
}

static void s_ago(uint64_t when, uint64_t now, char *out, size_t n)
{
    if (!when) {
        snprintf(out, n, "never");
        return;
    }
    bool future = when > now;
    uint64_t d = (future ? when - now : now - when) / 1000;
    const char *unit = "s";
    if (d >= 2 * 86400) {
        d /= 86400;
        unit = "d";
    } else if (d >= 7200) {
        d /= 3600;
        unit = "h";
    } else if (d >= 120) {
        d /= 60;
        unit = "m";
    }
    snprintf(out, n, future ? "in %llu%s" : "%llu%s ago", (unsigned long long)d, unit);
}

/* Colour only on a terminal, and never when NO_COLOR is set (no-color.org). */
static bool s_colour(void)
{
    const char *no = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(no && *no);
}

void broker_cli_repl_print(json_t *pairs, const json_t *links, size_t extra)
{
    s_links = links;
    uint64_t now = repl_now_ms();
    bool colour = s_colour();
    static const char *const tint[] = {"\033[1;31m", "\033[33m", "\033[32m", "\033[2m"};
    size_t failing = 0, i0;
    json_t *p0;
    json_array_foreach(pairs, i0, p0)
    {
        failing += s_rank(p0) == 0;
    }
    failing += extra;
    if (failing)
        printf("%s%zu problem%s (listed first; 'hsync history' has the runs)%s\n",
               colour ? tint[0] : "", failing, failing == 1 ? "" : "s", colour ? "\033[0m" : "");
    else
        printf("%sno problems%s\n", colour ? tint[2] : "", colour ? "\033[0m" : "");
    printf("%-14s %-12s %-12s %-10s %-8s %-10s %-22s %-18s %-9s %s\n", "PEER", "LINK", "RULE",
           "DIR", "ROLE", "STATE", "LAST RUN", "NEXT RUN", "BACKLOG", "LAST ERROR");
    /* links with no rule rows (a standalone source) still get a row */
    size_t li;
    const json_t *l;
    json_array_foreach(links, li, l)
    {
        bool any = false;
        size_t i;
        json_t *p;
        json_array_foreach(pairs, i, p)
        {
            any = any || !strcmp(s_str(p, "peer"), s_str(l, "name"));
        }
        if (!any) {
            char lt[32];
            s_link_text(l, lt, sizeof(lt));
            printf("%-14s %s%-12s%s %-12s %-10s %-8s\n", s_str(l, "name"),
                   colour && s_link_bad(l) ? tint[0] : "", lt,
                   colour && s_link_bad(l) ? "\033[0m" : "", "-", s_str(l, "role"), "-");
        }
    }
    for (int rank = 0; rank < 4; rank++) {
        size_t i;
        json_t *p;
        json_array_foreach(pairs, i, p)
        {
            if (s_rank(p) != rank)
                continue;
            const json_t *last = json_object_get(p, "last_run");
            char lastbuf[64] = "never", next[32] = "-", backlog[32] = "-";
            if (json_is_object(last)) {
                char ago[32];
                s_ago((uint64_t)s_int(last, "when"), now, ago, sizeof(ago));
                snprintf(lastbuf, sizeof(lastbuf), "%s %s%s", ago, s_str(last, "mode"),
                         json_is_true(json_object_get(last, "ok")) ? "" : " FAILED");
            }
            if (json_is_integer(json_object_get(p, "next_run"))) {
                uint64_t nx = (uint64_t)s_int(p, "next_run");
                if (nx <= now)
                    snprintf(next, sizeof(next), "due (%s)", s_str(p, "next_mode"));
                else
                    s_ago(nx, now, next, sizeof(next));
            }
            if (json_object_get(p, "backlog"))
                snprintf(backlog, sizeof(backlog), "%lld", (long long)s_int(p, "backlog"));
            const json_t *link = s_link_of(links, s_str(p, "peer"));
            bool run_failed = json_is_object(last) && !json_is_true(json_object_get(last, "ok"));
            const char *state = json_is_true(json_object_get(p, "running"))    ? "running"
                                : !json_is_true(json_object_get(p, "enabled")) ? "disabled"
                                : run_failed                                   ? "failing"
                                : s_link_bad(link) ? "waiting" /* for its link */
                                                   : "ok";
            char lt[32];
            s_link_text(link, lt, sizeof(lt));
            printf("%-14s %-12s %-12s %-10s %-8s %s%-10s%s %-22s %-18s %-9s %s\n", s_str(p, "peer"),
                   lt, s_str(p, "rule"), s_str(p, "direction"), s_str(p, "role"),
                   colour ? tint[rank] : "", state, colour ? "\033[0m" : "", lastbuf, next, backlog,
                   json_is_object(last) ? s_str(last, "error") : "");
        }
    }
}

/* ---- replicate-now, emergency ------------------------------------------- */

static int s_push(broker_cli_t *c, int argc, char **argv, bool emergency)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind + 1 != argc)
        return broker_cli_usage(c, "takes one GUID");
    store_guid_t g;
    if (store_guid_parse(argv[optind], &g))
        return broker_cli_fail(c, "'%s' is not a guid (expected 8-4-4-4-12 hex digits)",
                               argv[optind]);
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    json_t *req = json_pack("{s:s,s:s}", "cmd", emergency ? "emergency" : "replicate-now", "guid",
                            argv[optind]);
    json_t *resp = NULL;
    int err = broker_ctl_call(c->cli_dir, req, 30000, &resp, NULL, NULL);
    json_decref(req);
    if (err == HS_ENOBROKER)
        return broker_cli_fail(c, "no broker is running for %s (start it with 'hsync serve -d %s')",
                               c->cli_dir, c->cli_dir);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (!json_is_true(json_object_get(resp, "ok"))) {
        rc = broker_cli_fail(c, "%s", s_str(resp, "error"));
        json_decref(resp);
        return rc;
    }
    json_t *runs = json_object_get(resp, "runs");
    bool all_ok = json_is_true(json_object_get(resp, "all_ok"));
    if (c->cli_json) {
        rc = broker_cli_print_json(c, resp, false);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r)
        {
            bool ok = json_is_true(json_object_get(r, "ok"));
            printf("%-14s %-4s %lld object%s sent, %lld applied  %s%s\n", s_str(r, "peer"),
                   s_str(r, "direction"), (long long)s_int(r, "sent"),
                   s_int(r, "sent") == 1 ? "" : "s", (long long)s_int(r, "applied"),
                   ok ? "acknowledged; " : "FAILED: ", ok ? s_str(r, "why") : s_str(r, "error"));
        }
        if (emergency) {
            json_t *re = json_object_get(resp, "reached"),
                   *un = json_object_get(resp, "not_reached");
            printf("reached (%zu):", json_array_size(re));
            json_array_foreach(re, i, r) printf(" %s", json_string_value(r));
            printf("\nnot reached (%zu):", json_array_size(un));
            json_array_foreach(un, i, r) printf(" %s", json_string_value(r));
            printf("\n");
        }
    }
    size_t unreached = json_array_size(json_object_get(resp, "not_reached"));
    json_decref(resp);
    if (!all_ok && rc == BROKER_CLI_OK && emergency && unreached)
        return broker_cli_fail(c,
                               "%zu node%s below did not acknowledge (down, or no answer in "
                               "time); their scheduled runs will carry it when they are back",
                               unreached, unreached == 1 ? "" : "s");
    if (!all_ok && rc == BROKER_CLI_OK)
        return broker_cli_fail(c, "not every peer acknowledged; the scheduled runs will carry it");
    return rc;
}

int broker_cli_replicate_now(broker_cli_t *c, int argc, char **argv)
{
    return s_push(c, argc, argv, false);
}

int broker_cli_emergency(broker_cli_t *c, int argc, char **argv)
{
    return s_push(c, argc, argv, true);
}
