/*
 * cli_events.c - hsync events and hsync event raise.
 */
#include "broker/cli.h"
#include "broker/ctl.h"
#include "broker/json.h"
#include "replication/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_list {
    broker_cli_t *c;
    json_t *all;
} s_list_t;

static int s_event_one(void *ctx, const repl_event_t *ev, const repl_delivery_rec_t *dl, size_t ndl)
{
    s_list_t *l = ctx;
    char id[33];
    store_hex(ev->ev_id, 16, id);
    json_t *payload = NULL;
    if (broker_json_from_msgpack(ev->ev_payload, ev->ev_payload_len, &payload))
        payload = json_null();
    if (l->c->cli_json) {
        json_t *d = json_array();
        for (size_t i = 0; i < ndl; i++)
            json_array_append_new(d, json_pack("{s:s,s:s,s:I,s:i,s:s}", "peer", dl[i].dl_peer,
                                               "state", repl_delivery_name(dl[i].dl_state), "at",
                                               (json_int_t)dl[i].dl_at_ms, "attempts",
                                               (int)dl[i].dl_attempts, "error", dl[i].dl_error));
        json_array_append_new(
            l->all, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:o,s:o}", "id", id, "kind",
                              repl_event_kind_name(ev->ev_kind), "origin", ev->ev_origin, "created",
                              (json_int_t)ev->ev_created_ms, "direction",
                              ev->ev_from[0] ? "received" : "raised", "from", ev->ev_from, "at",
                              (json_int_t)ev->ev_at_ms, "payload", payload, "delivery", d));
        return 0;
    }
    char when[32];
    broker_cli_time_format(ev->ev_at_ms, when);
    /* a decision's reason on a line of its own, for the admin who asks why */
    json_t *reason = json_incref(json_object_get(payload, "reason"));
    if (reason && json_is_object(payload))
        json_object_del(payload, "reason");
    char *ptxt = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s  %-12s %-9s origin %-12s %s%s  %s\n", when, repl_event_kind_name(ev->ev_kind),
           ev->ev_from[0] ? "received" : "raised", ev->ev_origin, ev->ev_from[0] ? "from " : "",
           ev->ev_from, ptxt ? ptxt : "");
    if (json_is_string(reason))
        printf("      why: %s\n", json_string_value(reason));
    json_decref(reason);
    for (size_t i = 0; i < ndl; i++)
        printf("      -> %-14s %s (%u attempt%s)%s%s\n", dl[i].dl_peer,
               repl_delivery_name(dl[i].dl_state), dl[i].dl_attempts,
               dl[i].dl_attempts == 1 ? "" : "s", dl[i].dl_error[0] ? ": " : "", dl[i].dl_error);
    free(ptxt);
    json_decref(payload);
    return 0;
}

int broker_cli_events(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"limit", required_argument, NULL, 'l'},
                                       BROKER_CLI_COMMON_OPTIONS};
    size_t limit = 100;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'l') {
            long long v;
            if (broker_cli_number(optarg, 1, 1000000000, &v))
                return broker_cli_usage(c, "--limit takes a positive number");
            limit = (size_t)v;
        }
    }
    if (optind != argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    s_list_t l = {c, json_array()};
    store_txn_t *t;
    int err = store_txn_begin(s, false, &t);
    if (!err) {
        err = repl_events_each(t, limit, s_event_one, &l);
        store_txn_abort(&t);
    }
    store_close(&s);
    if (!err && c->cli_json)
        rc = broker_cli_print_json(c, l.all, false);
    json_decref(l.all);
    return err ? broker_cli_fail(c, "%s", broker_cli_why(err)) : rc;
}

typedef struct s_raise {
    int kind;
    const uint8_t *payload;
    size_t len;
    uint8_t id[16];
} s_raise_t;

static int s_raise_txn(store_txn_t *t, void *ctx)
{
    s_raise_t *r = ctx;
    return repl_event_raise(t, r->kind, r->payload, r->len, r->id);
}

int broker_cli_event(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind >= argc || strcmp(argv[optind], "raise") != 0)
        return broker_cli_usage(c, "only 'event raise KIND [JSON]' exists");
    optind++;
    if (optind >= argc || optind + 2 < argc)
        return broker_cli_usage(c, "event raise takes KIND and an optional JSON payload");
    s_raise_t r = {.kind = repl_event_kind_parse(argv[optind])};
    if (!r.kind)
        return broker_cli_fail(c,
                               "unknown event kind '%s' (merge, moved, purged, trust, key, "
                               "alert, sync-problem)",
                               argv[optind]);
    const char *text = optind + 1 < argc ? argv[optind + 1] : "{}";
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return broker_cli_fail(c, "the payload must be a JSON object (line %d column %d: %s)",
                               je.line, je.column, je.text);
    }
    uint8_t *body = NULL;
    size_t blen = 0;
    int err = broker_json_to_body(j, &body, &blen);
    json_decref(j);
    if (err)
        return broker_cli_fail(c, "payload: %s", broker_cli_why(err));
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s))) {
        free(body);
        return rc;
    }
    r.payload = body;
    r.len = blen;
    err = store_write(s, s_raise_txn, &r);
    store_close(&s);
    free(body);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    broker_ctl_poke(c->cli_dir);
    char id[33];
    store_hex(r.id, 16, id);
    printf("%s\n", id);
    return BROKER_CLI_OK;
}
