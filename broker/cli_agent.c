/*
 * cli_agent.c - hsync agent: agent registration requests and this node's
 * agent trust summary.
 *
 *   hsync agent request -d DIR NAME
 *   hsync agent approve|reject -d DIR ID
 *   hsync agent ls -d DIR [--json]
 *
 * An agent registration request is an object of class system.agent, body
 * {"name": NAME, "state": "pending"|"approved"|"rejected", "requested": ms
 * [, "decided": ms]}; its guid is the request id. system.agent objects never
 * leave the node (rules/rules.c): only the node an agent registered with may
 * decide on it.
 *
 * Every change of a request recomputes, in the same write transaction, the
 * node's trust summary: one object of class system.trust whose guid is
 * derived from the node name (store_guid_derive), origin and owner this node,
 * body
 *   {"node": NAME, "pending": n, "approved": n, "rejected": n,
 *    "trusted": n (= approved), "pending_agents": [{"id":..,"name":..}...]}
 * (at most S_PENDING_MAX pending agents listed, oldest first). The "system"
 * rule carries system.trust up only, so every ancestor ends up with the
 * summaries of its whole subtree. The same transaction raises a trust event
 * (payload: node, pending, approved, rejected, trusted) that goes up at once.
 *
 * A parent shows its children's summaries (`hsync status`) but cannot
 * approve or reject a child's agents: an id found only in another node's
 * summary is refused with a sentence naming that node.
 */
#include "broker/cli.h"
#include "broker/ctl.h"
#include "broker/json.h"
#include "replication/events.h"

#include "store/hs_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CLASS_REQUEST "system.agent"
#define S_CLASS_TRUST "system.trust"
#define S_PENDING_MAX 50
#define S_NAME_MAX 255 /* bytes in an agent name */

enum { S_PENDING, S_APPROVED, S_REJECTED, S_NSTATES };
static const char *const s_state_names[S_NSTATES] = {"pending", "approved", "rejected"};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int s_state_parse(const char *s)
{
    for (int i = 0; s && i < S_NSTATES; i++)
        if (!strcmp(s, s_state_names[i]))
            return i;
    return -1;
}

static json_t *s_guid_json(const store_guid_t *g)
{
    char s[STORE_GUID_STRLEN + 1];
    store_guid_format(g, s);
    return json_string(s);
}

/* json_object_set_new that remembers a failure in *ok. */
static void s_set(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        *ok = false;
}

/* Body of o as JSON (owned), or NULL if it does not decode. */
static json_t *s_body(const store_obj_t *o)
{
    json_t *j = NULL;
    if (!o->body_len || broker_json_from_msgpack(o->body, o->body_len, &j))
        return NULL;
    return j;
}

/* Encode j as a canonical body and put it as object (cls, guid). */
static int s_put_json(store_txn_t *t, const char *cls, const store_guid_t *g, const json_t *j,
                      uint64_t mtime)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int err = broker_json_to_body(j, &buf, &len);
    if (err)
        return err;
    store_obj_t o = {.guid = *g, .cls = cls, .mtime = mtime, .body = buf, .body_len = len};
    err = store_put(t, &o, NULL);
    free(buf);
    return err;
}

/* "hsync: agent VERB: <message>" on stderr; returns BROKER_CLI_FAIL. */
static int s_fail(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_fail(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "hsync: agent %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BROKER_CLI_FAIL;
}

/* ---- the summary --------------------------------------------------------- */

typedef struct s_sum {
    json_int_t n[S_NSTATES];
    json_t *pending; /* [{"id","name"}...], at most S_PENDING_MAX */
    int err;
} s_sum_t;

static int s_sum_one(void *ctx, const store_obj_t *o)
{
    s_sum_t *sm = ctx;
    if (strcmp(o->cls, S_CLASS_REQUEST) != 0)
        return 0;
    json_t *b = s_body(o);
    int st = s_state_parse(json_string_value(json_object_get(b, "state")));
    if (st >= 0) {
        sm->n[st]++;
        if (st == S_PENDING && json_array_size(sm->pending) < S_PENDING_MAX) {
            json_t *name = json_object_get(b, "name");
            json_t *e = json_pack("{s:o,s:o}", "id", s_guid_json(&o->guid), "name",
                                  json_is_string(name) ? json_incref(name) : json_string(""));
            if (!e || json_array_append_new(sm->pending, e)) {
                json_decref(b);
                return HS_ENOMEM;
            }
        }
    }
    json_decref(b);
    return 0;
}

/* Recompute this node's trust summary from its requests, store it and raise
 * a trust event (same transaction). */
static int s_summary_update(store_txn_t *t, uint64_t now)
{
    const char *node = store_node_name(store_txn_store(t));
    s_sum_t sm = {.pending = json_array()};
    if (!sm.pending)
        return HS_ENOMEM;
    int err = store_scan(t, S_CLASS_REQUEST, NULL, 0, NULL, NULL, s_sum_one, &sm);
    if (err) {
        json_decref(sm.pending);
        return err;
    }
    json_t *sum = json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "node", node, "pending", sm.n[S_PENDING],
                            "approved", sm.n[S_APPROVED], "rejected", sm.n[S_REJECTED], "trusted",
                            sm.n[S_APPROVED], "pending_agents", sm.pending);
    json_t *ev =
        json_pack("{s:s,s:I,s:I,s:I,s:I}", "node", node, "pending", sm.n[S_PENDING], "approved",
                  sm.n[S_APPROVED], "rejected", sm.n[S_REJECTED], "trusted", sm.n[S_APPROVED]);
    store_guid_t g;
    err = store_guid_derive("trust", node, &g); /* one summary per node */
    if (!err)
        err = sum && ev ? s_put_json(t, S_CLASS_TRUST, &g, sum, now) : HS_ENOMEM;
    if (!err) {
        uint8_t *buf = NULL;
        size_t len = 0;
        err = broker_json_to_body(ev, &buf, &len);
        if (!err)
            err = repl_event_raise(t, REPL_EV_TRUST, buf, len, NULL);
        free(buf);
    }
    json_decref(sum);
    json_decref(ev);
    return err;
}

/* ---- request, approve, reject -------------------------------------------- */

typedef struct s_change {
    store_guid_t guid;
    const char *name; /* request: the agent's name */
    int state;        /* approve/reject: the new state; -1 for a request */
    uint64_t now;
    /* out */
    int old_state;
    char agent[S_NAME_MAX + 1];
    char cls[STORE_CLASS_MAX + 1];  /* HS_ECLASS: the object's class */
    char owner[STORE_NAME_MAX + 1]; /* HS_ENOTFOUND: node whose summary lists it */
    bool deleted;                   /* HS_ENOTFOUND: a deleted request */
} s_change_t;

typedef struct s_find {
    const char *me, *id;
    char *node; /* STORE_NAME_MAX + 1 */
} s_find_t;

/* Is the id among the pending agents of another node's summary? */
static int s_find_one(void *ctx, const store_obj_t *o)
{
    s_find_t *f = ctx;
    if (strcmp(o->cls, S_CLASS_TRUST) != 0 || !strcmp(o->origin, f->me))
        return 0;
    json_t *b = s_body(o), *a = json_object_get(b, "pending_agents"), *e;
    size_t i;
    int found = 0;
    json_array_foreach(a, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        if (id && !strcmp(id, f->id)) {
            found = 1;
            break;
        }
    }
    json_decref(b);
    if (found)
        snprintf(f->node, STORE_NAME_MAX + 1, "%s", o->origin);
    return found;
}

static int s_request_txn(store_txn_t *t, void *ctx)
{
    s_change_t *ch = ctx;
    json_t *b = json_pack("{s:s,s:s,s:I}", "name", ch->name, "state", s_state_names[S_PENDING],
                          "requested", (json_int_t)ch->now);
    int err = b ? s_put_json(t, S_CLASS_REQUEST, &ch->guid, b, ch->now) : HS_ENOMEM;
    json_decref(b);
    return err ? err : s_summary_update(t, ch->now);
}

static int s_decide_txn(store_txn_t *t, void *ctx)
{
    s_change_t *ch = ctx;
    store_obj_t o;
    ch->owner[0] = ch->cls[0] = '\0';
    ch->deleted = false;
    int err = store_get(t, &ch->guid, &o);
    if (err == HS_ENOTFOUND || (!err && (o.flags & STORE_OBJ_TOMBSTONE))) {
        ch->deleted = !err;
        char id[STORE_GUID_STRLEN + 1];
        store_guid_format(&ch->guid, id);
        s_find_t f = {store_node_name(store_txn_store(t)), id, ch->owner};
        err = store_scan(t, S_CLASS_TRUST, NULL, 0, NULL, NULL, s_find_one, &f);
        return err ? err : HS_ENOTFOUND;
    }
    if (err)
        return err;
    if (strcmp(o.cls, S_CLASS_REQUEST) != 0) {
        snprintf(ch->cls, sizeof(ch->cls), "%s", o.cls);
        return HS_ECLASS;
    }
    json_t *b = s_body(&o);
    if (!json_is_object(b)) {
        json_decref(b);
        return HS_EMALF;
    }
    const char *name = json_string_value(json_object_get(b, "name"));
    snprintf(ch->agent, sizeof(ch->agent), "%s", name ? name : "");
    ch->old_state = s_state_parse(json_string_value(json_object_get(b, "state")));
    if (ch->old_state == ch->state) {
        json_decref(b);
        return HS_OK; /* nothing to change */
    }
    bool ok = true;
    s_set(b, "state", json_string(s_state_names[ch->state]), &ok);
    s_set(b, "decided", json_integer((json_int_t)ch->now), &ok);
    err = ok ? s_put_json(t, S_CLASS_REQUEST, &ch->guid, b, ch->now) : HS_ENOMEM;
    json_decref(b);
    return err ? err : s_summary_update(t, ch->now);
}

/* ---- ls ------------------------------------------------------------------ */

typedef struct s_ls {
    json_t *all;
} s_ls_t;

static int s_ls_one(void *ctx, const store_obj_t *o)
{
    s_ls_t *l = ctx;
    if (strcmp(o->cls, S_CLASS_REQUEST) != 0)
        return 0;
    json_t *b = s_body(o);
    json_t *name = json_object_get(b, "name"), *state = json_object_get(b, "state");
    json_t *req = json_object_get(b, "requested"), *dec = json_object_get(b, "decided");
    json_t *e = json_pack("{s:o,s:O,s:O,s:O,s:O}", "id", s_guid_json(&o->guid), "name",
                          json_is_string(name) ? name : json_null(), "state",
                          json_is_string(state) ? state : json_null(), "requested",
                          json_is_integer(req) ? req : json_null(), "decided",
                          json_is_integer(dec) ? dec : json_null());
    json_decref(b);
    if (!e || json_array_append_new(l->all, e))
        return HS_ENOMEM;
    return 0;
}

static int s_ls_txn(store_txn_t *t, void *ctx)
{
    s_ls_t *l = ctx;
    json_array_clear(l->all);
    return store_scan(t, S_CLASS_REQUEST, NULL, 0, NULL, NULL, s_ls_one, l);
}

static void s_time(const json_t *ms, char out[32])
{
    if (json_is_integer(ms))
        broker_cli_time_format((uint64_t)json_integer_value(ms), out);
    else
        snprintf(out, 32, "-");
}

static int s_ls(broker_cli_t *c, store_t *s)
{
    s_ls_t l = {json_array()};
    if (!l.all)
        return s_fail("ls", "out of memory");
    int err = store_read(s, s_ls_txn, &l), rc = BROKER_CLI_OK;
    if (err) {
        rc = s_fail("ls", "cannot list the agent requests: %s", broker_cli_why(err));
    } else if (c->cli_json) {
        rc = broker_cli_print_json(c, l.all, false);
    } else {
        size_t i;
        json_t *e;
        printf("%-36s  %-24s %-9s %-24s %s\n", "ID", "NAME", "STATE", "REQUESTED", "DECIDED");
        json_array_foreach(l.all, i, e)
        {
            char req[32], dec[32];
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *state = json_string_value(json_object_get(e, "state"));
            s_time(json_object_get(e, "requested"), req);
            s_time(json_object_get(e, "decided"), dec);
            printf("%-36s  %-24s %-9s %-24s %s\n", json_string_value(json_object_get(e, "id")),
                   name ? name : "?", state ? state : "?", req, dec);
        }
    }
    json_decref(l.all);
    return rc;
}

/* ---- the command ----------------------------------------------------------- */

static int s_request(broker_cli_t *c, store_t *s, const char *name)
{
    size_t len = strlen(name);
    json_t *probe = json_string(name); /* NULL unless valid UTF-8 */
    json_decref(probe);
    if (len == 0 || len > S_NAME_MAX || !probe)
        return s_fail("request", "agent name '%s' is not usable (give 1 to %d bytes of UTF-8 text)",
                      name, S_NAME_MAX);
    s_change_t ch = {.name = name, .state = -1, .now = s_now_ms()};
    if (store_guid_new(&ch.guid))
        return s_fail("request", "cannot make a request id: %s", broker_cli_why(HS_ECRYPTO));
    int err = store_write(s, s_request_txn, &ch);
    if (err)
        return s_fail("request", "cannot record the request: %s", broker_cli_why(err));
    broker_ctl_poke(c->cli_dir); /* the trust event goes out now */
    char id[STORE_GUID_STRLEN + 1];
    store_guid_format(&ch.guid, id);
    if (c->cli_json) {
        json_t *j = json_pack("{s:s,s:s,s:s}", "id", id, "name", name, "state", "pending");
        int rc = j ? broker_cli_print_json(c, j, false) : broker_cli_fail(c, "out of memory");
        json_decref(j);
        return rc;
    }
    printf("%s\n", id);
    return BROKER_CLI_OK;
}

static int s_decide(broker_cli_t *c, store_t *s, const char *verb, const char *id)
{
    s_change_t ch = {.state = !strcmp(verb, "approve") ? S_APPROVED : S_REJECTED,
                     .now = s_now_ms()};
    if (store_guid_parse(id, &ch.guid))
        return s_fail(verb, "'%s': %s", id, broker_cli_why(HS_EGUID));
    int err = store_write(s, s_decide_txn, &ch);
    if (err == HS_ENOTFOUND && ch.owner[0])
        return s_fail(verb,
                      "agent request %s belongs to %s; a parent cannot "
                      "approve or reject a child's agents: do it on %s",
                      id, ch.owner, ch.owner);
    if (err == HS_ENOTFOUND)
        return s_fail(verb,
                      "no agent request %s on this node%s (see 'hsync "
                      "agent ls -d %s')",
                      id, ch.deleted ? " (it was deleted)" : "", c->cli_dir);
    if (err == HS_ECLASS)
        return s_fail(verb,
                      "%s is of class %s, not an agent request (see 'hsync "
                      "agent ls -d %s')",
                      id, ch.cls, c->cli_dir);
    if (err == HS_EMALF)
        return s_fail(verb,
                      "agent request %s is stored damaged (its body does "
                      "not decode); delete it with 'hsync rm' and request again",
                      id);
    if (err)
        return s_fail(verb, "%s", broker_cli_why(err));
    bool same = ch.old_state == ch.state;
    if (!same)
        broker_ctl_poke(c->cli_dir);
    const char *state = s_state_names[ch.state];
    if (c->cli_json) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:b}", "id", id, "name", ch.agent, "state", state,
                              "changed", !same);
        int rc = j ? broker_cli_print_json(c, j, false) : broker_cli_fail(c, "out of memory");
        json_decref(j);
        return rc;
    }
    if (same)
        printf("agent %s (%s) was already %s\n", id, ch.agent, state);
    else
        printf("agent %s (%s): %s\n", id, ch.agent, state);
    return BROKER_CLI_OK;
}

int broker_cli_agent(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind >= argc)
        return broker_cli_usage(c, "which one: request, approve, reject or ls?");
    const char *sub = argv[optind++];
    int want;
    if (!strcmp(sub, "ls"))
        want = 0;
    else if (!strcmp(sub, "request") || !strcmp(sub, "approve") || !strcmp(sub, "reject"))
        want = 1;
    else
        return broker_cli_usage(c, "unknown agent command '%s' (request, approve, reject, ls)",
                                sub);
    if (argc - optind < want)
        return broker_cli_usage(c, "'agent %s' needs %s", sub,
                                !strcmp(sub, "request") ? "the agent's NAME" : "a request ID");
    if (argc - optind > want)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind + want]);
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    if (!strcmp(sub, "ls"))
        rc = s_ls(c, s);
    else if (!strcmp(sub, "request"))
        rc = s_request(c, s, argv[optind]);
    else
        rc = s_decide(c, s, sub, argv[optind]);
    store_close(&s);
    return rc;
}

/* ---- status: the summaries known here --------------------------------------- */

typedef struct s_rows {
    const char *me;
    json_t *mine, *others;
} s_rows_t;

static int s_row_one(void *ctx, const store_obj_t *o)
{
    s_rows_t *r = ctx;
    if (strcmp(o->cls, S_CLASS_TRUST) != 0)
        return 0;
    json_t *b = s_body(o);
    if (!json_is_object(b)) {
        json_decref(b);
        return 0; /* a damaged summary: shown by nothing, replaced by the next one */
    }
    json_t *pa = json_object_get(b, "pending_agents");
    json_t *row = json_pack("{s:s,s:I,s:I,s:I,s:I,s:o,s:I}", "node", o->origin, "pending",
                            json_integer_value(json_object_get(b, "pending")), "approved",
                            json_integer_value(json_object_get(b, "approved")), "rejected",
                            json_integer_value(json_object_get(b, "rejected")), "trusted",
                            json_integer_value(json_object_get(b, "trusted")), "pending_agents",
                            json_is_array(pa) ? json_incref(pa) : json_array(), "updated",
                            (json_int_t)o->mtime);
    json_decref(b);
    if (!row)
        return HS_ENOMEM;
    if (!strcmp(o->origin, r->me)) {
        json_decref(r->mine);
        r->mine = row;
        return 0;
    }
    return json_array_append_new(r->others, row) ? HS_ENOMEM : 0;
}

static int s_rows_txn(store_txn_t *t, void *ctx)
{
    s_rows_t *r = ctx;
    json_decref(r->mine);
    r->mine = NULL;
    json_array_clear(r->others);
    return store_scan(t, S_CLASS_TRUST, NULL, 0, NULL, NULL, s_row_one, r);
}

static int s_row_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "node")),
                  json_string_value(json_object_get(y, "node")));
}

int broker_cli_agent_trust(store_t *s, json_t **out)
{
    s_rows_t r = {store_node_name(s), NULL, json_array()};
    json_t *rows = json_array();
    *out = NULL;
    int err = r.others && rows ? store_read(s, s_rows_txn, &r) : HS_ENOMEM;
    if (!err && !r.mine) /* no request yet: this node trusts nobody */
        r.mine = json_pack("{s:s,s:i,s:i,s:i,s:i,s:[],s:n}", "node", r.me, "pending", 0, "approved",
                           0, "rejected", 0, "trusted", 0, "pending_agents", "updated");
    if (!err && (!r.mine || json_array_append(rows, r.mine)))
        err = HS_ENOMEM;
    size_t n = json_array_size(r.others);
    json_t **v = n ? malloc(n * sizeof(*v)) : NULL;
    if (!err && n && !v)
        err = HS_ENOMEM;
    for (size_t i = 0; !err && i < n; i++)
        v[i] = json_array_get(r.others, i);
    if (!err && n)
        qsort(v, n, sizeof(*v), s_row_cmp);
    for (size_t i = 0; !err && i < n; i++)
        if (json_array_append(rows, v[i]))
            err = HS_ENOMEM;
    free(v);
    json_decref(r.mine);
    json_decref(r.others);
    if (err) {
        json_decref(rows);
        return err;
    }
    *out = rows;
    return HS_OK;
}

void broker_cli_agent_trust_print(const json_t *rows)
{
    size_t i;
    json_t *r;
    printf("agent trust (this node and the nodes below it)\n");
    printf("  %-20s %8s %8s %8s %8s  %s\n", "NODE", "PENDING", "APPROVED", "REJECTED", "TRUSTED",
           "UPDATED");
    json_array_foreach(rows, i, r)
    {
        char when[32];
        s_time(json_object_get(r, "updated"), when);
        printf("  %-20s %8lld %8lld %8lld %8lld  %s\n",
               json_string_value(json_object_get(r, "node")),
               (long long)json_integer_value(json_object_get(r, "pending")),
               (long long)json_integer_value(json_object_get(r, "approved")),
               (long long)json_integer_value(json_object_get(r, "rejected")),
               (long long)json_integer_value(json_object_get(r, "trusted")), when);
    }
}
