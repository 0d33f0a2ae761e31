/*
 * http.h - the operator view: a status page, its JSON and Prometheus metrics,
 * served by the broker on its http address (meta "http", HOST:PORT; set by
 * `hsync init --http`, default the listen host and listen port + 1).
 *
 * libevent's evhttp runs in the broker's own event loop: a request is
 * answered in one go from the live broker state (a callback into broker.c,
 * the same data `hsync status` and `hsync hierarchy show` get over the ctl
 * socket) and one read transaction of the store. Plain HTTP, no TLS: the
 * default address is loopback; put a TLS proxy in front to expose it.
 *
 *   GET /             self-contained page (inline HTML/CSS/JS) that fetches
 *                     /api/status every 2 s and draws the hierarchy, links,
 *                     rules, recent runs and events
 *   GET /api/status   the same data as JSON
 *   GET /metrics      Prometheus text exposition format 0.0.4
 *   other paths 404, other methods than GET/HEAD 405, a malformed request
 *   target 400, a Host header that is not an IP literal, "localhost" or
 *   the configured http host 421 (broker_http_host_ok: a web page that
 *   rebinds its own DNS name to this address cannot read the status).
 *
 * Requests are bounded: headers 8 KiB, no body, request target
 * BROKER_HTTP_TARGET_MAX bytes, 10 s per connection.
 *
 * The port is open to anyone who can reach it, so connections are bounded
 * too (nginx's worker_connections, Redis's maxclients): at most 256 at once
 * (fewer when the descriptor limit leaves under 256 descriptors for peers,
 * the ctl socket and the store); a new connection over the limit closes the
 * one idle longest; a connection that has not sent a whole request within
 * 5 s of its accept or of its last request is closed (slow clients, idle
 * keep-alive); accept() failing for want of descriptors pauses the port for
 * 250 ms instead of spinning. Each of these is logged once per 10 s with a
 * count (broker_log_throttled) and counted in /metrics.
 */
#ifndef BROKER_HTTP_H
#define BROKER_HTTP_H

#include "replication/repl.h"
#include "store/store.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#define BROKER_HTTP_TARGET_MAX 2048

typedef struct broker_http broker_http_t;

/* The live view of the broker: an owned JSON object with at least "node",
 * "links" and "replication" (the ctl "status" reply), or NULL. */
typedef json_t *(*broker_http_status_fn)(void *ctx);

/*
 * Serve the node's http address on base. store and ctx are borrowed and must
 * outlive the server. addr (256 bytes) receives the address tried, for the
 * caller's log line. Returns HS_OK and an owned *out; HS_ENOTFOUND if the
 * node has no http address (older folder); HS_EINVAL if it is not
 * HOST:PORT; HS_ETRANSPORT if it cannot be bound (port busy); HS_ENOMEM.
 */
int broker_http_open(struct event_base *base, store_t *store, broker_http_status_fn status,
                     void *ctx, broker_http_t **out, char addr[256]);

/* Stop serving; accepts NULL and nulls *h. */
void broker_http_destroy(broker_http_t **h);

/* Add the HTTP port's connection counters to sec (the broker's "security"
 * status object, which /metrics reads): http_connections,
 * http_connection_limit, http_accepted, http_closed_slow, http_closed_full,
 * http_accept_errors. h may be NULL (nothing added). */
void broker_http_security(broker_http_t *h, json_t *sec);

/* Count one finished run for /metrics (counters since the broker started).
 * h may be NULL (nothing served, nothing counted). */
void broker_http_run_done(broker_http_t *h, const repl_summary_t *su);

/* May a request with Host header host (NULL: none, as HTTP/1.0 may send) be
 * answered? True for no header, an IPv4 literal, a bracketed IPv6 literal,
 * "localhost" or configured (the host of the http address), each with an
 * optional :PORT, compared without case. Anything else is a name the
 * browser resolved for a page of someone else's (DNS rebinding): false.
 * Pure; fed untrusted bytes. */
bool broker_http_host_ok(const char *host, const char *configured);

/* What a request target asks for. Pure; fed untrusted bytes (fuzzed). */
enum broker_http_route {
    BROKER_HTTP_BAD = -1,    /* malformed: 400 */
    BROKER_HTTP_UNKNOWN = 0, /* well formed, no such page: 404 */
    BROKER_HTTP_PAGE,        /* "/" or "/index.html" */
    BROKER_HTTP_STATUS,      /* "/api/status" */
    BROKER_HTTP_METRICS,     /* "/metrics" */
};

/* Route the request target target[0..len): origin form only ("/path" and an
 * optional "?query", ignored), printable ASCII, at most
 * BROKER_HTTP_TARGET_MAX bytes; NUL bytes are malformed. */
int broker_http_route(const char *target, size_t len);

#endif
