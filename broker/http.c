/*
 * http.c - the operator view: status page, /api/status and /metrics
 * (broker/http.h).
 */
#include "broker/http.h"

#include "replication/events.h"
#include "replication/marks.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http_page.inc"

#define S_HISTORY_SHOWN 20
#define S_EVENTS_SHOWN 20
#define S_COUNTERS_MAX 1024 /* (peer, rule, role) rows counted for /metrics */

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
};

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

static void s_on_request(struct evhttp_request *req, void *arg)
{
    broker_http_t *h = arg;
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
    h->status = status;
    h->ctx = ctx;
    evhttp_set_allowed_methods(h->eh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                          EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(h->eh, 8192);
    evhttp_set_max_body_size(h->eh, 4096);
    evhttp_set_timeout(h->eh, 10);
    evhttp_set_gencb(h->eh, s_on_request, h);
    if (!evhttp_bind_socket_with_handle(h->eh, host, port)) {
        broker_http_destroy(&h);
        return HS_ETRANSPORT;
    }
    *out = h;
    return HS_OK;
}

void broker_http_destroy(broker_http_t **hp)
{
    if (!hp || !*hp)
        return;
    broker_http_t *h = *hp;
    if (h->eh)
        evhttp_free(h->eh);
    free(h->ctr);
    free(h);
    *hp = NULL;
}
