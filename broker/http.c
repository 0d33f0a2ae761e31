/*
 * http.c - the operator view: status page, /api/status and /metrics
 * (broker/http.h).
 */
#include "broker/http.h"

#include "broker/log.h"
#include "replication/events.h"
#include "replication/marks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "broker/http_page.inc"

#define S_HISTORY_SHOWN 20
#define S_EVENTS_SHOWN 20
#define S_COUNTERS_MAX 1024 /* (peer, rule, role) rows counted for /metrics */

/* Connection limits (see http.h): at most S_CONN_MAX connections, fewer when
 * the descriptor limit leaves less than S_FD_RESERVE for everything else. */
#define S_CONN_MAX 256
#define S_CONN_MIN 8
#define S_FD_RESERVE 256
#define S_REQUEST_MS 5000     /* a whole request within this of accept or the last request */
#define S_SWEEP_MS 250        /* how often slow connections are looked for */
#define S_ACCEPT_PAUSE_MS 250 /* accept() failed for want of descriptors: pause this long */
#define S_LOG_EVERY_MS 10000  /* one line per cause per interval */

/* One connection evhttp serves: its bufferevent (we create it, evhttp_set_bevcb,
 * and hold a reference, so it stays valid after evhttp frees it: evhttp has
 * done so when its callbacks are gone) and when it last started waiting for
 * a request. */
typedef struct s_conn {
    struct bufferevent *bev;
    uint64_t since_ms;
} s_conn_t;

/* Runs finished since the broker started, per (peer, rule, role). */
typedef struct s_ctr {
    char peer[STORE_NAME_MAX + 1];
    char rule[RULES_NAME_MAX + 1];
    char role[12];
    uint64_t ok, failed, objects, bytes, ms;
} s_ctr_t;

struct broker_http {
    struct evhttp *eh;
    store_t *store;
    broker_http_status_fn status;
    void *ctx;
    s_ctr_t *ctr;
    size_t nctr, capctr;
    struct evconnlistener *lev; /* evhttp's, borrowed */
    struct event *ev_sweep, *ev_resume;
    s_conn_t *conn; /* conn_max entries */
    size_t nconn, conn_max;
    uint64_t accepted, closed_slow, closed_full, accept_failed;
    broker_log_throttle_t log_slow, log_full, log_accept;
    char host[256];             /* of the http address: a Host header naming it is answered */
    broker_http_t *next_served; /* s_served */
};

/* Every server open in this process: a listener's error callback gets the
 * argument evhttp gave the listener (its struct evhttp), not ours, so it
 * finds its server here by listener. */
static broker_http_t *s_served;

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- request target ----------------------------------------------------- */

int broker_http_route(const char *target, size_t len)
{
    if (!target || len == 0 || len > BROKER_HTTP_TARGET_MAX || target[0] != '/')
        return BROKER_HTTP_BAD;
    size_t path = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)target[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return BROKER_HTTP_BAD; /* controls, spaces, NUL, non-ASCII */
        if ((ch == '?' || ch == '#') && path == len)
            path = i;
    }
    static const struct {
        const char *path;
        int route;
    } routes[] = {
        {"/", BROKER_HTTP_PAGE},
        {"/index.html", BROKER_HTTP_PAGE},
        {"/api/status", BROKER_HTTP_STATUS},
        {"/metrics", BROKER_HTTP_METRICS},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strlen(routes[i].path) == path && !memcmp(routes[i].path, target, path))
            return routes[i].route;
    return BROKER_HTTP_UNKNOWN;
}

/* ---- counters ----------------------------------------------------------- */

void broker_http_run_done(broker_http_t *h, const repl_summary_t *su)
{
    if (!h || !su->su_role || su->su_dry_run)
        return;
    s_ctr_t *c = NULL;
    for (size_t i = 0; i < h->nctr && !c; i++)
        if (!strcmp(h->ctr[i].peer, su->su_peer) && !strcmp(h->ctr[i].rule, su->su_rule) &&
            !strcmp(h->ctr[i].role, su->su_role))
            c = &h->ctr[i];
    if (!c) {
        if (h->nctr == h->capctr) {
            size_t cap = h->capctr ? h->capctr * 2 : 32;
            if (cap > S_COUNTERS_MAX)
                return; /* bounded: further pairs go uncounted */
            s_ctr_t *n = realloc(h->ctr, cap * sizeof(*n));
            if (!n)
                return;
            h->ctr = n;
            h->capctr = cap;
        }
        c = &h->ctr[h->nctr++];
        memset(c, 0, sizeof(*c));
        snprintf(c->peer, sizeof(c->peer), "%s", su->su_peer);
        snprintf(c->rule, sizeof(c->rule), "%s", su->su_rule);
        snprintf(c->role, sizeof(c->role), "%s", su->su_role);
    }
    if (su->su_ok)
        c->ok++;
    else
        c->failed++;
    c->objects += strcmp(su->su_role, "sent") ? su->su_applied : su->su_sent;
    c->bytes += su->su_bytes;
    c->ms += su->su_ms;
}

/* ---- the data ----------------------------------------------------------- */

typedef struct s_gather {
    json_t *fam, *hist, *events;
    uint64_t total;
    size_t nhist;
} s_gather_t;

static int s_count_one(void *ctx, const char *cls, const char *owner, uint64_t count)
{
    s_gather_t *g = ctx;
    char fam[STORE_CLASS_MAX + 1];
    (void)owner;
    store_class_family(cls, fam, sizeof(fam));
    json_int_t had = json_integer_value(json_object_get(g->fam, fam));
    json_object_set_new(g->fam, fam, json_integer(had + (json_int_t)count));
    g->total += count;
    return 0;
}

static int s_hist_one(void *ctx, const repl_hist_t *h)
{
    s_gather_t *g = ctx;
    if (g->nhist++ >= S_HISTORY_SHOWN)
        return 1;
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "when",
                          (json_int_t)h->h_when_ms, "peer", h->h_peer, "rule", h->h_rule, "role",
                          h->h_role, "mode", repl_mode_name(h->h_mode), "why", h->h_why, "sent",
                          (json_int_t)h->h_sent, "applied", (json_int_t)h->h_applied, "skipped",
                          (json_int_t)h->h_skipped, "deleted", (json_int_t)h->h_deleted, "bytes",
                          (json_int_t)h->h_bytes, "ms", (json_int_t)h->h_ms, "ok", h->h_ok);
    if (j && !h->h_ok)
        json_object_set_new(j, "error", json_string(h->h_error));
    json_array_append_new(g->hist, j);
    return 0;
}

static int s_event_one(void *ctx, const repl_event_t *ev, const repl_delivery_rec_t *dl, size_t ndl)
{
    s_gather_t *g = ctx;
    char id[33];
    store_hex(ev->ev_id, 16, id);
    json_t *d = json_array();
    for (size_t i = 0; i < ndl; i++)
        json_array_append_new(d, json_pack("{s:s,s:s,s:i}", "peer", dl[i].dl_peer, "state",
                                           repl_delivery_name(dl[i].dl_state), "attempts",
                                           (int)dl[i].dl_attempts));
    json_array_append_new(g->events, json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "id", id, "kind",
                                               repl_event_kind_name(ev->ev_kind), "origin",
                                               ev->ev_origin, "from", ev->ev_from, "at",
                                               (json_int_t)ev->ev_at_ms, "delivery", d));
    return 0;
}

/* Live view plus what the store says: families, log head, history, events,
 * event outbox depth per linked peer. Owned result, NULL when out of memory
 * or when the store cannot be read (*err says which). */
static json_t *s_status_json(broker_http_t *h, int *err)
{
    json_t *st = h->status ? h->status(h->ctx) : NULL;
    if (!st)
        st = json_object();
    s_gather_t g = {json_object(), json_array(), json_array(), 0, 0};
    json_t *outbox = json_object();
    store_txn_t *t = NULL;
    *err = (st && g.fam && g.hist && g.events && outbox) ? store_txn_begin(h->store, false, &t)
                                                         : HS_ENOMEM;
    if (!*err)
        *err = store_counts(t, s_count_one, &g);
    if (!*err)
        *err = repl_hist_each(t, s_hist_one, &g);
    if (!*err)
        *err = repl_events_each(t, S_EVENTS_SHOWN, s_event_one, &g);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(st, "links"), i, l)
    {
        const char *name = json_string_value(json_object_get(l, "name"));
        uint64_t n = 0;
        if (!*err && name && repl_outbox_count(t, name, &n) == HS_OK)
            json_object_set_new(outbox, name, json_integer((json_int_t)n));
    }
    uint64_t head = t ? store_log_head(t) : 0, entries = t ? store_log_entries(t) : 0;
    if (t)
        store_txn_abort(&t);
    if (*err) {
        json_decref(st);
        json_decref(g.fam);
        json_decref(g.hist);
        json_decref(g.events);
        json_decref(outbox);
        return NULL;
    }
    json_object_del(st, "ok");
    json_object_set_new(st, "now", json_integer((json_int_t)repl_now_ms()));
    json_object_set_new(st, "objects", json_integer((json_int_t)g.total));
    json_object_set_new(st, "families", g.fam);
    json_object_set_new(st, "log_head", json_integer((json_int_t)head));
    json_object_set_new(st, "log_entries", json_integer((json_int_t)entries));
    json_object_set_new(st, "outbox", outbox);
    store_disk_t disk;
    if (store_disk(store_dir(h->store), &disk) == HS_OK) {
        json_object_set_new(st, "store_bytes", json_integer((json_int_t)disk.sd_store_bytes));
        json_object_set_new(st, "disk_free_bytes", json_integer((json_int_t)disk.sd_free_bytes));
        json_object_set_new(st, "disk_total_bytes", json_integer((json_int_t)disk.sd_total_bytes));
        json_object_set_new(st, "disk_low", json_boolean(disk.sd_low));
    }
    json_object_set_new(st, "history", g.hist);
    json_object_set_new(st, "events", g.events);
    return st;
}

/* ---- /metrics ----------------------------------------------------------- */

/* A label value: \ " and newline escaped (text format 0.0.4). */
static void s_label(struct evbuffer *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

static void s_help(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"} value; labels are NULL-terminated key/value pairs. */
static void s_sample(struct evbuffer *b, const char *name, const char *const *labels, double v)
{
    evbuffer_add_printf(b, "%s", name);
    for (size_t i = 0; labels && labels[i]; i += 2) {
        evbuffer_add_printf(b, "%s%s=\"", i ? "," : "{", labels[i]);
        s_label(b, labels[i + 1]);
        evbuffer_add(b, "\"", 1);
    }
    if (labels && labels[0])
        evbuffer_add(b, "}", 1);
    evbuffer_add_printf(b, " %.17g\n", v);
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void s_metrics(broker_http_t *h, const json_t *st, struct evbuffer *b)
{
    const char *node = s_str(st, "node");
    s_help(b, "hsync_up", "gauge", "1 while the broker serves this node");
    s_sample(b, "hsync_up", (const char *[]){"node", node, NULL}, 1);

    s_help(b, "hsync_objects", "gauge", "live objects in the store, per family");
    const char *fam;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(st, "families"), fam, v) s_sample(
        b, "hsync_objects", (const char *[]){"family", fam, NULL}, (double)json_integer_value(v));

    s_help(b, "hsync_log_head", "gauge", "highest change-log sequence committed");
    s_sample(b, "hsync_log_head", NULL,
             (double)json_integer_value(json_object_get(st, "log_head")));
    s_help(b, "hsync_log_entries", "gauge",
           "change-log entries kept (superseded ones until housekeeping removes them)");
    s_sample(b, "hsync_log_entries", NULL,
             (double)json_integer_value(json_object_get(st, "log_entries")));

    s_help(b, "hsync_store_bytes", "gauge", "bytes the store takes on disk");
    s_sample(b, "hsync_store_bytes", NULL,
             (double)json_integer_value(json_object_get(st, "store_bytes")));
    s_help(b, "hsync_disk_free_bytes", "gauge",
           "bytes left on the file system holding the node folder");
    s_sample(b, "hsync_disk_free_bytes", NULL,
             (double)json_integer_value(json_object_get(st, "disk_free_bytes")));

    size_t i;
    json_t *l;
    s_help(b, "hsync_link_up", "gauge", "1 when the link to the peer is up");
    json_array_foreach(json_object_get(st, "links"), i, l)
        s_sample(b, "hsync_link_up",
                 (const char *[]){"peer", s_str(l, "name"), "role", s_str(l, "role"), NULL},
                 !strcmp(s_str(l, "state"), "up"));
    s_help(b, "hsync_link_failures", "gauge", "consecutive failed runs on the link");
    json_array_foreach(json_object_get(st, "links"), i, l)
        s_sample(b, "hsync_link_failures", (const char *[]){"peer", s_str(l, "name"), NULL},
                 (double)json_integer_value(json_object_get(l, "failures")));

    s_help(b, "hsync_event_outbox", "gauge",
           "hierarchy events queued for the peer, not yet "
           "acknowledged");
    json_object_foreach((json_t *)json_object_get(st, "outbox"), fam, v)
        s_sample(b, "hsync_event_outbox", (const char *[]){"peer", fam, NULL},
                 (double)json_integer_value(v));

    json_t *pairs = json_object_get(st, "replication");
    json_t *p;
    s_help(b, "hsync_backlog", "gauge", "changes not yet acknowledged by the peer, per rule");
    json_array_foreach(pairs, i, p) if (json_is_integer(json_object_get(p, "backlog")))
        s_sample(b, "hsync_backlog",
                 (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), NULL},
                 (double)json_integer_value(json_object_get(p, "backlog")));
    s_help(b, "hsync_backlog_age_seconds", "gauge", "age of the oldest unacknowledged change");
    json_array_foreach(pairs, i, p) if (json_is_integer(json_object_get(p, "backlog_age_ms")))
        s_sample(b, "hsync_backlog_age_seconds",
                 (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), NULL},
                 (double)json_integer_value(json_object_get(p, "backlog_age_ms")) / 1000.0);
    s_help(b, "hsync_rule_last_run_timestamp_seconds", "gauge",
           "when the rule last ran with the peer (0 = never)");
    json_array_foreach(pairs, i, p)
    {
        const json_t *last = json_object_get(p, "last_run");
        s_sample(b, "hsync_rule_last_run_timestamp_seconds",
                 (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), "role",
                                  s_str(p, "role"), NULL},
                 (double)json_integer_value(json_object_get(last, "when")) / 1000.0);
    }
    s_help(b, "hsync_rule_last_run_ok", "gauge", "1 if the last run succeeded, 0 if it failed");
    json_array_foreach(pairs, i, p)
    {
        const json_t *last = json_object_get(p, "last_run");
        if (json_is_object(last))
            s_sample(b, "hsync_rule_last_run_ok",
                     (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), "role",
                                      s_str(p, "role"), NULL},
                     json_is_true(json_object_get(last, "ok")));
    }
    s_help(b, "hsync_rule_next_run_timestamp_seconds", "gauge", "when the rule runs next");
    json_array_foreach(pairs, i, p) if (json_is_integer(json_object_get(p, "next_run")))
        s_sample(b, "hsync_rule_next_run_timestamp_seconds",
                 (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), NULL},
                 (double)json_integer_value(json_object_get(p, "next_run")) / 1000.0);
    s_help(b, "hsync_rule_failures", "gauge", "consecutive failed runs of the rule with the peer");
    json_array_foreach(pairs, i, p) if (json_is_integer(json_object_get(p, "failures")))
        s_sample(b, "hsync_rule_failures",
                 (const char *[]){"peer", s_str(p, "peer"), "rule", s_str(p, "rule"), NULL},
                 (double)json_integer_value(json_object_get(p, "failures")));

    const json_t *sec = json_object_get(st, "security");
    s_help(b, "hsync_handshakes_refused_total", "counter",
           "peer handshakes refused (a key neither linked nor allowed to present an invite) since "
           "the broker started");
    s_sample(b, "hsync_handshakes_refused_total", NULL,
             (double)json_integer_value(json_object_get(sec, "handshakes_refused")));
    s_help(b, "hsync_http_connections", "gauge", "HTTP connections open on this port");
    s_sample(b, "hsync_http_connections", NULL,
             (double)json_integer_value(json_object_get(sec, "http_connections")));
    s_help(b, "hsync_http_connection_limit", "gauge", "most HTTP connections open at once");
    s_sample(b, "hsync_http_connection_limit", NULL,
             (double)json_integer_value(json_object_get(sec, "http_connection_limit")));
    s_help(b, "hsync_http_connections_closed_total", "counter",
           "HTTP connections the broker closed: slow (no whole request in time) or full (room "
           "made for a new one)");
    s_sample(b, "hsync_http_connections_closed_total", (const char *[]){"reason", "slow", NULL},
             (double)json_integer_value(json_object_get(sec, "http_closed_slow")));
    s_sample(b, "hsync_http_connections_closed_total", (const char *[]){"reason", "full", NULL},
             (double)json_integer_value(json_object_get(sec, "http_closed_full")));
    s_help(b, "hsync_http_accept_errors_total", "counter",
           "times accept() failed on this port (out of descriptors)");
    s_sample(b, "hsync_http_accept_errors_total", NULL,
             (double)json_integer_value(json_object_get(sec, "http_accept_errors")));

    s_help(b, "hsync_peer_connections_pending", "gauge",
           "connections to the peer port that have not finished their handshake");
    s_sample(b, "hsync_peer_connections_pending", NULL,
             (double)json_integer_value(json_object_get(sec, "peer_connections_pending")));
    s_help(b, "hsync_peer_connection_limit", "gauge",
           "most connections to the peer port left in their handshake at once");
    s_sample(b, "hsync_peer_connection_limit", NULL,
             (double)json_integer_value(json_object_get(sec, "peer_connection_limit")));
    s_help(b, "hsync_peer_connections_accepted_total", "counter",
           "connections the peer port accepted since the broker started");
    s_sample(b, "hsync_peer_connections_accepted_total", NULL,
             (double)json_integer_value(json_object_get(sec, "peer_accepted")));
    s_help(b, "hsync_peer_connections_closed_total", "counter",
           "connections to the peer port the broker closed before their handshake: slow (none "
           "within 10 s) or full (room made, over the limit)");
    s_sample(b, "hsync_peer_connections_closed_total", (const char *[]){"reason", "slow", NULL},
             (double)json_integer_value(json_object_get(sec, "peer_closed_slow")));
    s_sample(b, "hsync_peer_connections_closed_total", (const char *[]){"reason", "full", NULL},
             (double)json_integer_value(json_object_get(sec, "peer_closed_full")));

    s_help(b, "hsync_runs_total", "counter", "replication runs finished since the broker started");
    for (size_t k = 0; k < h->nctr; k++) {
        const s_ctr_t *c = &h->ctr[k];
        s_sample(b, "hsync_runs_total",
                 (const char *[]){"peer", c->peer, "rule", c->rule, "role", c->role, "result", "ok",
                                  NULL},
                 (double)c->ok);
        s_sample(b, "hsync_runs_total",
                 (const char *[]){"peer", c->peer, "rule", c->rule, "role", c->role, "result",
                                  "failed", NULL},
                 (double)c->failed);
    }
    s_help(b, "hsync_run_errors_total", "counter",
           "failed replication runs since the broker "
           "started");
    for (size_t k = 0; k < h->nctr; k++)
        s_sample(b, "hsync_run_errors_total",
                 (const char *[]){"peer", h->ctr[k].peer, "rule", h->ctr[k].rule, "role",
                                  h->ctr[k].role, NULL},
                 (double)h->ctr[k].failed);
    s_help(b, "hsync_run_duration_seconds", "summary", "time spent in replication runs");
    for (size_t k = 0; k < h->nctr; k++) {
        const s_ctr_t *c = &h->ctr[k];
        const char *const lab[] = {"peer", c->peer, "rule", c->rule, "role", c->role, NULL};
        s_sample(b, "hsync_run_duration_seconds_sum", lab, (double)c->ms / 1000.0);
        s_sample(b, "hsync_run_duration_seconds_count", lab, (double)(c->ok + c->failed));
    }
    s_help(b, "hsync_run_objects_total", "counter",
           "objects sent (role sent) or applied (role received) by runs");
    for (size_t k = 0; k < h->nctr; k++)
        s_sample(b, "hsync_run_objects_total",
                 (const char *[]){"peer", h->ctr[k].peer, "rule", h->ctr[k].rule, "role",
                                  h->ctr[k].role, NULL},
                 (double)h->ctr[k].objects);
    s_help(b, "hsync_run_bytes_total", "counter", "bytes carried by runs");
    for (size_t k = 0; k < h->nctr; k++)
        s_sample(b, "hsync_run_bytes_total",
                 (const char *[]){"peer", h->ctr[k].peer, "rule", h->ctr[k].rule, "role",
                                  h->ctr[k].role, NULL},
                 (double)h->ctr[k].bytes);
}

/* ---- connections ---------------------------------------------------------- */

/* evhttp is done with c's connection: it freed it (bufferevent_free clears
 * the callbacks), or never took it. */
static bool s_conn_gone(const s_conn_t *c)
{
    bufferevent_data_cb rcb = NULL;
    bufferevent_getcb(c->bev, &rcb, NULL, NULL, NULL);
    return rcb == NULL;
}

/* Let go of a connection evhttp has freed. Its descriptor is closed now:
 * libevent would close it only when it finalises the bufferevent, later in
 * the loop, and one accept callback can take hundreds of connections (each
 * closing another, s_conn_evict) before that. */
static void s_conn_release(broker_http_t *h, size_t i)
{
    struct bufferevent *bev = h->conn[i].bev;
    evutil_socket_t fd = bufferevent_getfd(bev);
    bufferevent_setfd(bev, -1); /* its events off */
    if (fd >= 0)
        evutil_closesocket(fd);
    bufferevent_decref(bev);
    h->conn[i] = h->conn[--h->nconn];
}

/* Let go of every connection evhttp has freed. */
static void s_conn_reap(broker_http_t *h)
{
    for (size_t i = 0; i < h->nconn;) {
        if (s_conn_gone(&h->conn[i])) {
            s_conn_release(h, i);
        } else {
            i++;
        }
    }
}

/* Close connection i as evhttp's own timeout would (it frees the connection
 * and any request in it). Returns true if entry i was removed (another
 * entry, or none, is at i now). */
static bool s_conn_close(broker_http_t *h, size_t i)
{
    bufferevent_trigger_event(h->conn[i].bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
    if (!s_conn_gone(&h->conn[i])) {
        h->conn[i].since_ms = s_mono_ms(); /* not yet: the sweep looks again later */
        return false;
    }
    s_conn_release(h, i);
    return true;
}

static bool s_conn_idle(const s_conn_t *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

/* At the limit: close the connection idle longest (any, if none is idle) to
 * make room for a new one. */
static void s_conn_evict(broker_http_t *h)
{
    size_t pick = h->nconn;
    for (int pass = 0; pass < 2 && pick == h->nconn; pass++)
        for (size_t i = 0; i < h->nconn; i++)
            if ((pass || s_conn_idle(&h->conn[i])) &&
                (pick == h->nconn || h->conn[i].since_ms < h->conn[pick].since_ms))
                pick = i;
    if (pick == h->nconn)
        return;
    h->closed_full++;
    broker_log_throttled(&h->log_full, BROKER_LOG_WARN, NULL, "http-full",
                         "%zu HTTP connections open, the most allowed: closed the one idle "
                         "longest for a new one (%" PRIu64 " closed since the start)",
                         h->conn_max, h->closed_full);
    s_conn_close(h, pick);
}

/* evhttp_set_bevcb: evhttp accepted a connection and asks for its
 * bufferevent. */
static struct bufferevent *s_on_conn(struct event_base *base, void *arg)
{
    broker_http_t *h = arg;
    s_conn_reap(h);
    if (h->nconn >= h->conn_max)
        s_conn_evict(h);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp makes one itself */
    h->accepted++;
    if (h->nconn < h->conn_max) {
        bufferevent_incref(bev);
        h->conn[h->nconn].bev = bev;
        h->conn[h->nconn++].since_ms = s_mono_ms();
    }
    return bev;
}

/* A whole request arrived on req's connection: its clock starts again. */
static void s_conn_request(broker_http_t *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (size_t i = 0; bev && i < h->nconn; i++)
        if (h->conn[i].bev == bev)
            h->conn[i].since_ms = s_mono_ms();
}

/* Every S_SWEEP_MS: close connections that sent no whole request within
 * S_REQUEST_MS of their accept or their last request (slow or idle
 * clients), and write what the throttled log lines left out. */
static void s_on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    broker_http_t *h = arg;
    s_conn_reap(h);
    uint64_t now = s_mono_ms();
    for (size_t i = 0; i < h->nconn;) {
        s_conn_t *c = &h->conn[i];
        if (now - c->since_ms < S_REQUEST_MS || !s_conn_idle(c)) {
            i++;
            continue;
        }
        h->closed_slow++;
        broker_log_throttled(&h->log_slow, BROKER_LOG_INFO, NULL, "http-slow",
                             "closed an HTTP connection that sent no whole request within %d s "
                             "(%" PRIu64 " closed since the start)",
                             S_REQUEST_MS / 1000, h->closed_slow);
        if (!s_conn_close(h, i))
            i++;
    }
    broker_log_throttle_flush(&h->log_slow);
    broker_log_throttle_flush(&h->log_full);
    broker_log_throttle_flush(&h->log_accept);
}

static void s_on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    broker_http_t *h = arg;
    evconnlistener_enable(h->lev);
}

/* accept() failed other than for a retriable reason: out of descriptors,
 * most likely. libevent would try again at once, in a loop; pause instead. */
static void s_on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg; /* evhttp's */
    int err = EVUTIL_SOCKET_ERROR();
    broker_http_t *h = s_served;
    while (h && h->lev != lev)
        h = h->next_served;
    if (!h)
        return;
    h->accept_failed++;
    broker_log_throttled(&h->log_accept, BROKER_LOG_WARN, NULL, "http-accept",
                         "cannot accept HTTP connections: %s; the port pauses %d ms (%" PRIu64
                         " times since the start; raise the descriptor limit, ulimit -n)",
                         evutil_socket_error_to_string(err), S_ACCEPT_PAUSE_MS, h->accept_failed);
    evconnlistener_disable(lev);
    static const struct timeval pause = {0, S_ACCEPT_PAUSE_MS * 1000};
    event_add(h->ev_resume, &pause);
}

/* How many connections at once: S_CONN_MAX, or fewer when the descriptor
 * limit leaves less than S_FD_RESERVE for peers, the ctl socket and the
 * store. */
static size_t s_conn_limit(void)
{
    struct rlimit rl;
    size_t n = S_CONN_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > S_FD_RESERVE ? rl.rlim_cur - S_FD_RESERVE : 0;
        if (room < (rlim_t)n)
            n = (size_t)room;
    }
    return n < S_CONN_MIN ? S_CONN_MIN : n;
}

void broker_http_security(broker_http_t *h, json_t *sec)
{
    if (!h || !sec)
        return;
    s_conn_reap(h);
    json_object_set_new(sec, "http_connections", json_integer((json_int_t)h->nconn));
    json_object_set_new(sec, "http_connection_limit", json_integer((json_int_t)h->conn_max));
    json_object_set_new(sec, "http_accepted", json_integer((json_int_t)h->accepted));
    json_object_set_new(sec, "http_closed_slow", json_integer((json_int_t)h->closed_slow));
    json_object_set_new(sec, "http_closed_full", json_integer((json_int_t)h->closed_full));
    json_object_set_new(sec, "http_accept_errors", json_integer((json_int_t)h->accept_failed));
}

/* ---- requests ----------------------------------------------------------- */

static void s_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                    struct evbuffer *body)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", type);
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_add_header(hd, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, reason, body);
}

static void s_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add_printf(b, "%s\n", text);
    s_reply(req, code, reason, "text/plain; charset=utf-8", b);
    if (b)
        evbuffer_free(b);
}

bool broker_http_host_ok(const char *host, const char *configured)
{
    if (!host)
        return true;
    size_t len = strnlen(host, 300);
    if (len == 0 || len >= 300)
        return false;
    char name[300];
    const char *end = host + len;
    bool v6 = host[0] == '[';
    const char *close = v6 ? memchr(host, ']', len) : NULL;
    const char *colon = v6 ? (close && close + 1 < end ? close + 1 : NULL) : memchr(host, ':', len);
    if (v6 && !close)
        return false;
    if (colon) { /* ":PORT", digits only, once */
        if (*colon != ':' || colon + 1 == end || colon + 6 < end)
            return false;
        for (const char *p = colon + 1; p < end; p++)
            if (*p < '0' || *p > '9')
                return false;
        end = colon;
    }
    const char *h0 = v6 ? host + 1 : host, *h1 = v6 ? close : end;
    if (v6 && close + 1 != end)
        return false;
    if (h1 <= h0)
        return false;
    memcpy(name, h0, (size_t)(h1 - h0));
    name[h1 - h0] = '\0';
    unsigned char addr[16];
    if (v6)
        return inet_pton(AF_INET6, name, addr) == 1;
    return inet_pton(AF_INET, name, addr) == 1 || !strcasecmp(name, "localhost") ||
           (configured && configured[0] && !strcasecmp(name, configured));
}

static void s_on_request(struct evhttp_request *req, void *arg)
{
    broker_http_t *h = arg;
    s_conn_request(h, req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        s_text(req, 405, "Method Not Allowed", "only GET is served here");
        return;
    }
    const char *target = evhttp_request_get_uri(req);
    int route = broker_http_route(target, target ? strnlen(target, BROKER_HTTP_TARGET_MAX + 1) : 0);
    if (route == BROKER_HTTP_BAD) {
        s_text(req, 400, "Bad Request", "malformed request target");
        return;
    }
    const char *hosthdr = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!broker_http_host_ok(hosthdr, h->host)) {
        s_text(req, 421, "Misdirected Request",
               "this status port answers only requests addressed to an IP address, localhost or "
               "its configured host name (see hsync init --http)");
        return;
    }
    if (route == BROKER_HTTP_UNKNOWN) {
        s_text(req, 404, "Not Found", "no such page: try /, /api/status or /metrics");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        s_text(req, 503, "Service Unavailable", "out of memory");
        return;
    }
    if (route == BROKER_HTTP_PAGE) {
        evbuffer_add_reference(b, broker_http_page, sizeof(broker_http_page) - 1, NULL, NULL);
        s_reply(req, 200, "OK", "text/html; charset=utf-8", b);
        evbuffer_free(b);
        return;
    }
    int err;
    json_t *st = s_status_json(h, &err);
    if (!st) {
        evbuffer_free(b);
        char why[160];
        snprintf(why, sizeof(why), "cannot read the node's store: %s", hs_strerror(err));
        s_text(req, 503, "Service Unavailable", why);
        return;
    }
    if (route == BROKER_HTTP_STATUS) {
        char *text = json_dumps(st, JSON_COMPACT);
        if (text) {
            evbuffer_add(b, text, strlen(text));
            evbuffer_add(b, "\n", 1);
            free(text);
        }
        s_reply(req, text ? 200 : 503, text ? "OK" : "Service Unavailable", "application/json", b);
    } else {
        s_metrics(h, st, b);
        s_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    }
    json_decref(st);
    evbuffer_free(b);
}

/* ---- open, destroy ------------------------------------------------------ */

/* "HOST:PORT" or "[V6]:PORT" -> host, port. */
static int s_split(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return HS_EINVAL;
    const char *h0 = addr, *h1 = colon;
    if (*h0 == '[' && h1[-1] == ']') {
        h0++;
        h1--;
    }
    if ((size_t)(h1 - h0) >= hostlen || h1 <= h0)
        return HS_EINVAL;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p == 0 || p > 65535)
        return HS_EINVAL;
    memcpy(host, h0, (size_t)(h1 - h0));
    host[h1 - h0] = '\0';
    *port = (uint16_t)p;
    return HS_OK;
}

int broker_http_open(struct event_base *base, store_t *store, broker_http_status_fn status,
                     void *ctx, broker_http_t **out, char addr[256])
{
    *out = NULL;
    addr[0] = '\0';
    store_txn_t *t;
    int err = store_txn_begin(store, false, &t);
    if (err)
        return err;
    err = store_meta_get(t, "http", addr, 256);
    store_txn_abort(&t);
    if (err) {
        addr[0] = '\0';
        return err == HS_ETOOBIG ? HS_EINVAL : err;
    }
    char host[256];
    uint16_t port;
    if (s_split(addr, host, sizeof(host), &port))
        return HS_EINVAL;
    broker_http_t *h = calloc(1, sizeof(*h));
    if (!h || !(h->eh = evhttp_new(base))) {
        free(h);
        return HS_ENOMEM;
    }
    h->store = store;
    snprintf(h->host, sizeof(h->host), "%s", host);
    h->status = status;
    h->ctx = ctx;
    h->conn_max = s_conn_limit();
    h->log_slow.blt_interval_ms = S_LOG_EVERY_MS;
    h->log_full.blt_interval_ms = S_LOG_EVERY_MS;
    h->log_accept.blt_interval_ms = S_LOG_EVERY_MS;
    h->conn = calloc(h->conn_max, sizeof(*h->conn));
    h->ev_sweep = event_new(base, -1, EV_PERSIST, s_on_sweep, h);
    h->ev_resume = evtimer_new(base, s_on_resume, h);
    static const struct timeval sweep = {0, S_SWEEP_MS * 1000};
    if (!h->conn || !h->ev_sweep || !h->ev_resume || event_add(h->ev_sweep, &sweep)) {
        broker_http_destroy(&h);
        return HS_ENOMEM;
    }
    evhttp_set_bevcb(h->eh, s_on_conn, h);
    evhttp_set_allowed_methods(h->eh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                          EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(h->eh, 8192);
    evhttp_set_max_body_size(h->eh, 4096);
    evhttp_set_timeout(h->eh, 10);
    evhttp_set_gencb(h->eh, s_on_request, h);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(h->eh, host, port);
    if (!bound) {
        broker_http_destroy(&h);
        return HS_ETRANSPORT;
    }
    h->lev = evhttp_bound_socket_get_listener(bound);
    h->next_served = s_served;
    s_served = h;
    evconnlistener_set_error_cb(h->lev, s_on_accept_error);
    *out = h;
    return HS_OK;
}

void broker_http_destroy(broker_http_t **hp)
{
    if (!hp || !*hp)
        return;
    broker_http_t *h = *hp;
    for (broker_http_t **p = &s_served; *p; p = &(*p)->next_served) {
        if (*p == h) {
            *p = h->next_served;
            break;
        }
    }
    if (h->ev_sweep)
        event_free(h->ev_sweep);
    if (h->ev_resume)
        event_free(h->ev_resume);
    if (h->eh)
        evhttp_free(h->eh); /* frees its connections; ours follow */
    for (size_t i = 0; i < h->nconn; i++)
        bufferevent_decref(h->conn[i].bev);
    free(h->conn);
    free(h->ctr);
    free(h);
    *hp = NULL;
}
