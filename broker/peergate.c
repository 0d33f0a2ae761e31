#include "broker/peergate.h"

#include "broker/log.h"
#include "store/hs_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#define S_LIMIT_MAX 256
#define S_LIMIT_MIN 16
#define S_FD_RESERVE 512  /* HTTP (broker/http.h: up to 256), ctl, store, links */
#define S_EVENTS_MAX 4096 /* read per call, so the loop yields */
#define S_LOG_EVERY_MS 10000

enum { S_NONE, S_PENDING, S_SEEN, S_SHUT };

struct broker_peergate {
    void *router;  /* watched */
    void *mon;     /* PAIR connected to the ROUTER's monitor */
    unsigned port; /* the listen port, to recognise our connections */
    size_t limit;  /* pending connections at most */
    size_t npending;
    uint64_t *since; /* per descriptor: accept time (monotonic ms) */
    uint8_t *state;  /* per descriptor: S_* */
    size_t cap;      /* entries in since and state */
    uint64_t accepted, closed_full, closed_slow;
    broker_log_throttle_t log;
};

static size_t s_limit(void)
{
    struct rlimit rl;
    size_t n = S_LIMIT_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > S_FD_RESERVE ? (rl.rlim_cur - S_FD_RESERVE) / 2 : 0;
        if (room < (rlim_t)n)
            n = (size_t)room;
    }
    return n < S_LIMIT_MIN ? S_LIMIT_MIN : n;
}

int broker_peergate_open(void *zctx, void *router, unsigned port, broker_peergate_t **out)
{
    *out = NULL;
    broker_peergate_t *g = calloc(1, sizeof(*g));
    if (!g)
        return HS_ENOMEM;
    g->router = router;
    g->port = port;
    g->limit = s_limit();
    g->log.blt_interval_ms = S_LOG_EVERY_MS;
    int ivl = BROKER_PEERGATE_HANDSHAKE_MS, zero = 0;
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://hsync-peergate-%p", (void *)g);
    if (zmq_setsockopt(router, ZMQ_HANDSHAKE_IVL, &ivl, sizeof(ivl)) ||
        zmq_socket_monitor(router, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)) {
        free(g);
        return HS_ETRANSPORT;
    }
    g->mon = zmq_socket(zctx, ZMQ_PAIR);
    if (!g->mon || zmq_setsockopt(g->mon, ZMQ_LINGER, &zero, sizeof(zero)) ||
        zmq_setsockopt(g->mon, ZMQ_RCVHWM, &zero, sizeof(zero)) || zmq_connect(g->mon, ep)) {
        if (g->mon)
            zmq_close(g->mon);
        zmq_socket_monitor(router, NULL, 0);
        free(g);
        return HS_ETRANSPORT;
    }
    *out = g;
    return HS_OK;
}

void *broker_peergate_socket(broker_peergate_t *g)
{
    return g ? g->mon : NULL;
}

static bool s_grow(broker_peergate_t *g, size_t fd)
{
    if (fd < g->cap)
        return true;
    size_t n = g->cap ? g->cap : 1024;
    while (n <= fd)
        n *= 2;
    uint64_t *since = realloc(g->since, n * sizeof(*since));
    if (!since)
        return false;
    g->since = since;
    uint8_t *state = realloc(g->state, n);
    if (!state)
        return false;
    g->state = state;
    memset(g->since + g->cap, 0, (n - g->cap) * sizeof(*since));
    memset(g->state + g->cap, 0, n - g->cap);
    g->cap = n;
    return true;
}

static void s_forget(broker_peergate_t *g, int fd)
{
    if (fd < 0 || (size_t)fd >= g->cap)
        return;
    if (g->state[fd] == S_PENDING)
        g->npending--;
    g->state[fd] = S_NONE;
}

/* Is fd still a TCP connection accepted on our port? Descriptors are reused:
 * the one libzmq accepted may be gone, and its number someone else's. */
static bool s_ours(const broker_peergate_t *g, int fd)
{
    int type = 0;
    socklen_t tl = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
        return false;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return false;
    if (ss.ss_family == AF_INET && sl >= sizeof(struct sockaddr_in))
        return ntohs(((struct sockaddr_in *)&ss)->sin_port) == g->port;
    if (ss.ss_family == AF_INET6 && sl >= sizeof(struct sockaddr_in6))
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == g->port;
    return false;
}

static void s_shut(broker_peergate_t *g, int fd, bool slow, uint64_t now_ms)
{
    uint64_t age = now_ms - g->since[fd];
    s_forget(g, fd);
    if (!s_ours(g, fd))
        return;
    g->state[fd] = S_SHUT; /* until libzmq reports it closed */
    shutdown(fd, SHUT_RDWR);
    if (slow)
        g->closed_slow++;
    else
        g->closed_full++;
    broker_log_throttled(&g->log, BROKER_LOG_WARN, NULL, "peer-flood",
                         "closed a connection to the peer port that sent no handshake after "
                         "%" PRIu64 " ms (%s; %zu pending, limit %zu; %" PRIu64
                         " closed since the start): someone opens connections and sends nothing",
                         age, slow ? "too slow" : "too many pending", g->npending, g->limit,
                         g->closed_slow + g->closed_full);
}

/* Shut down the oldest pending connections until they are within the limit. */
static void s_enforce(broker_peergate_t *g, uint64_t now_ms)
{
    while (g->npending > g->limit) {
        int oldest = -1;
        for (size_t i = 0; i < g->cap; i++)
            if (g->state[i] == S_PENDING && (oldest < 0 || g->since[i] < g->since[oldest]))
                oldest = (int)i;
        if (oldest < 0) {
            g->npending = 0; /* cannot happen: the count and the table agree */
            break;
        }
        s_shut(g, oldest, false, now_ms);
    }
}

int broker_peergate_events(broker_peergate_t *g, uint64_t now_ms)
{
    if (!g)
        return 0;
    int n = 0;
    while (n < S_EVENTS_MAX) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, g->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        /* frame 1: uint16 event, uint32 value (native order); frame 2: the endpoint */
        uint16_t ev = 0;
        uint32_t val = 0;
        bool ok = zmq_msg_size(&m) == 6;
        if (ok) {
            memcpy(&ev, zmq_msg_data(&m), 2);
            memcpy(&val, (const uint8_t *)zmq_msg_data(&m) + 2, 4);
        }
        while (zmq_msg_more(&m)) {
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, g->mon, ZMQ_DONTWAIT) < 0)
                break;
        }
        zmq_msg_close(&m);
        n++;
        int fd = (int)val;
        if (!ok || fd < 0)
            continue;
        if (ev == ZMQ_EVENT_ACCEPTED) {
            s_forget(g, fd);
            g->accepted++;
            if (s_grow(g, (size_t)fd)) {
                g->state[fd] = S_PENDING;
                g->since[fd] = now_ms;
                g->npending++;
            }
        } else if (ev == ZMQ_EVENT_DISCONNECTED) {
            s_forget(g, fd);
        }
    }
    s_enforce(g, now_ms);
    return n;
}

void broker_peergate_seen(broker_peergate_t *g, int fd)
{
    if (!g || fd < 0 || (size_t)fd >= g->cap || g->state[fd] != S_PENDING)
        return;
    g->npending--;
    g->state[fd] = S_SEEN;
}

void broker_peergate_tick(broker_peergate_t *g, uint64_t now_ms)
{
    if (!g)
        return;
    broker_peergate_events(g, now_ms);
    for (size_t i = 0; i < g->cap; i++)
        if (g->state[i] == S_PENDING && now_ms - g->since[i] > BROKER_PEERGATE_PENDING_MS)
            s_shut(g, (int)i, true, now_ms);
    broker_log_throttle_flush(&g->log);
}

void broker_peergate_security(const broker_peergate_t *g, json_t *sec)
{
    if (!g || !sec)
        return;
    json_object_set_new(sec, "peer_connections_pending", json_integer((json_int_t)g->npending));
    json_object_set_new(sec, "peer_connection_limit", json_integer((json_int_t)g->limit));
    json_object_set_new(sec, "peer_accepted", json_integer((json_int_t)g->accepted));
    json_object_set_new(sec, "peer_closed_full", json_integer((json_int_t)g->closed_full));
    json_object_set_new(sec, "peer_closed_slow", json_integer((json_int_t)g->closed_slow));
}

void broker_peergate_destroy(broker_peergate_t **g)
{
    if (!g || !*g)
        return;
    /* stop the monitor first: libzmq must not wait on a PAIR nobody reads */
    zmq_socket_monitor((*g)->router, NULL, 0);
    if ((*g)->mon)
        zmq_close((*g)->mon);
    free((*g)->since);
    free((*g)->state);
    free(*g);
    *g = NULL;
}
