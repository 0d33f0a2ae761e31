#include "broker/broker.h"

#include "broker/ctl.h"
#include "broker/http.h"
#include "broker/log.h"
#include "broker/peergate.h"
#include "replication/events.h"
#include "replication/repl.h"
#include "store/epoch.h"
#include "rules/rules.h"
#include "store/mp.h"
#include "topology/identity.h"
#include "topology/peers.h"
#include "topology/token.h"
#include "topology/wire.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define B_TICK_MS 250
/* How long after its start a broker holds a `hsync sync` for links that have
 * not come up yet (connecting), instead of reporting them down. */
#define B_SYNC_GRACE_MS 10000
#define B_HB_MS 1000
#define B_DOWN_MS 3000
#define B_JOIN_MS 10000
#define B_DRAIN_SLICE_MS 20  /* longest stretch of socket work before timers run */
#define B_ROUTE_MAX 255      /* a ZeroMQ routing id is 1 to 255 bytes */
#define B_RID_LEN 16         /* the random routing id each DEALER we dial presents */
#define B_LOG_EVERY_MS 10000 /* one line per flood cause per interval (broker_log_throttled) */

/* The ZAP User-Id of a connection admitted only to present an invite: this
 * prefix and the client's key. Its frames never count as a linked peer's. */
#define B_INVITE_UID "invite-only:"

enum b_state {
    B_JOINING, /* JOIN sent, waiting for JOINED */
    B_DOWN,    /* established link, no sign of life for B_DOWN_MS */
    B_UP,      /* a frame arrived within B_DOWN_MS */
};

static const char *const s_state_names[] = {"joining", "down", "up"};

/* Link health from consecutive failed replication runs (any rule, either
 * way): degraded after HSYNC_DEGRADED_AFTER (3), failed after
 * HSYNC_FAILED_AFTER (10); one successful run makes it ok again. */
enum b_health { B_HEALTH_OK, B_HEALTH_DEGRADED, B_HEALTH_FAILED };
static const char *const s_health_names[] = {"ok", "degraded", "failed"};

typedef struct b_link b_link_t;
struct b_link {
    b_link_t *next;
    int role; /* TOPO_ROLE_* */
    char name[STORE_NAME_MAX + 1];
    char key[TOPO_KEY_LEN + 1];
    char endpoint[TOPO_ENDPOINT_MAX];
    void *sock; /* DEALER we dial (children); NULL when reached via the router */
    struct event *ev;
    int state;
    uint64_t since;   /* link recorded (ms, wall clock) */
    uint64_t last_rx; /* monotonic ms */
    uint64_t last_tx;
    uint64_t up_since;  /* wall clock ms */
    uint64_t last_seen; /* wall clock ms of the last frame */
    size_t nrel;
    topo_rel_t *rel;              /* path (parent) or subtree (child), as the peer told us */
    int health;                   /* B_HEALTH_*, from consecutive failed runs */
    char session[TOPO_TOKEN_MAX]; /* the peer's session id, from its heartbeats */
    uint32_t failures;
    /* Reached through our ROUTER (parent, standalone source): the routing id
     * of the connection that last sent a heartbeat authenticated (ZAP User-Id)
     * with this peer's key (while there is none, of any frame so
     * authenticated). Frames to the peer go there and nowhere else; empty
     * until the peer's first frame, and again when that connection is gone. */
    uint8_t route[B_ROUTE_MAX];
    size_t route_len;
    /* while JOINING */
    uint64_t join_deadline;
    char nameq[33];   /* JOINED; waiting for the root to confirm the names (NAMEQ id) */
    char version[64]; /* the child's software version, from JOINED */
    uint8_t ctl_rid[256];
    size_t ctl_rid_len;
};

typedef struct broker {
    char dir[4096];
    store_t *store;
    topo_identity_t id;
    char listen[TOPO_ENDPOINT_MAX];
    struct event_base *base;
    void *zctx, *zap, *router, *ctl;
    struct event *ev_zap, *ev_router, *ev_ctl, *ev_tick, *ev_int, *ev_term, *ev_drain;
    b_link_t *links;
    int lockfd;
    store_mpw_t w;
    repl_t *repl;
    char epoch[STORE_EPOCH_LEN + 1];
    uint64_t epoch_marked;
    uint64_t busy_ms; /* s_mono_ms when a long computation last held the loop */
    uint32_t degraded_after, failed_after;
    uint64_t tombstone_lifetime_ms; /* HSYNC_TOMBSTONE_LIFETIME, default 30d */
    unsigned ticks_since_keep;
    uint64_t readers_warned_ms; /* last "reader table nearly full" warning */
    uint64_t ctl_refused_ms;    /* last ctl-refused log line (monotonic) */
    unsigned ctl_refused_quiet; /* refusals since, not logged */
    uint64_t last_expire_ms;
    char session[33]; /* random per start: peers notice a restart */
    /* scratch for repl_io: names handed to the engine */
    const char **names;
    size_t names_cap;
    struct b_job *jobs;     /* sync requests waiting for their runs */
    json_t *verify_last;    /* the last `hsync verify` verdict per node (status), or NULL */
    struct b_nameq *nameqs; /* name queries passed up, names held at the root */
    struct b_dsync *dsyncs; /* sync requests waiting for links still connecting after start */
    uint64_t boot_ms;       /* s_mono_ms when the broker started */
    uint64_t next_job;
    broker_http_t *http;                 /* status page and metrics; NULL when not served */
    uint64_t refused_total;              /* handshakes ZAP refused since the start */
    broker_log_throttle_t log_refused;   /* refused handshakes */
    broker_log_throttle_t log_untrusted; /* frames dropped from unlinked connections */
    broker_peergate_t *gate;             /* the peer port's accept gate (peergate.h) */
    struct event *ev_gate;
    broker_log_throttle_t log_badframe;  /* malformed frames from unlinked connections */
    broker_log_throttle_t log_peerbad;   /* malformed or unexpected frames from linked peers */
    broker_log_throttle_t log_join;      /* refused JOINs presented with an invite */
} broker_t;

/* A `hsync sync` waiting for its runs: replied to when all have ended. */
typedef struct b_job {
    struct b_job *next;
    uint64_t id;
    uint8_t rid[256];
    size_t rid_len;
    size_t pending;
    json_t *runs;
    json_t *inflight;                 /* "peer/rule" -> [sent, total, bytes] of runs under way */
    uint64_t started_ms, progress_ms; /* s_mono_ms */
    bool emergency;                   /* the reply lists the nodes below reached and not reached */
    bool verify;                      /* `hsync verify`: answered by s_io_verify_done */
    bool repair;
} b_job_t;

/* A `hsync sync` asked right after the broker started, while a link it
 * covers has not come up yet (the peers are still connecting): started by
 * s_dsync_pump once those links are up or B_SYNC_GRACE_MS after the start. */
typedef struct b_dsync {
    struct b_dsync *next;
    uint8_t rid[256];
    size_t rid_len;
    json_t *req; /* owned */
} b_dsync_t;

/* A name query (topology/wire.h NAMEQ) this node passed up for a child, or,
 * at the root, names it confirmed and holds for a join under way (so two
 * joins of one name at once cannot both be confirmed). */
typedef struct b_nameq {
    struct b_nameq *next;
    char id[33];
    char child[STORE_NAME_MAX + 1]; /* passed up for this child ("" when held) */
    uint64_t deadline;              /* mono ms */
    size_t nnames;
    topo_rel_t *names; /* held names (root) */
} b_nameq_t;

/* ---- time --------------------------------------------------------------- */

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t s_env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n = v && *v ? strtoul(v, &end, 10) : 0;
    return v && *v && !*end && n > 0 && n < 1000000 ? (uint32_t)n : dflt;
}

/* ---- links -------------------------------------------------------------- */

static void s_drain(broker_t *b);
static void s_on_sock(evutil_socket_t fd, short what, void *arg);

static b_link_t *s_link_find(broker_t *b, int role, const char *name, const char *key)
{
    for (b_link_t *l = b->links; l; l = l->next) {
        if (role && l->role != role)
            continue;
        if (name && strcmp(l->name, name) != 0)
            continue;
        if (key && strcmp(l->key, key) != 0)
            continue;
        return l;
    }
    return NULL;
}

static void s_link_free(broker_t *b, b_link_t *l)
{
    for (b_link_t **p = &b->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    if (l->ev)
        event_free(l->ev);
    if (l->sock)
        zmq_close(l->sock);
    free(l->rel);
    free(l);
}

static void s_link_set_rel(b_link_t *l, const topo_rel_t *rel, size_t n)
{
    free(l->rel);
    l->rel = NULL;
    l->nrel = 0;
    if (n && (l->rel = malloc(n * sizeof(*rel)))) {
        memcpy(l->rel, rel, n * sizeof(*rel));
        l->nrel = n;
    }
}

/* A DEALER that dials a peer we trust by its server key. */
static int s_dial(broker_t *b, b_link_t *l)
{
    void *s = zmq_socket(b->zctx, ZMQ_DEALER);
    if (!s)
        return HS_ETRANSPORT;
    int linger = 0, ivl = 100, ivlmax = 2000, one = 1;
    int hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivlmax, sizeof(ivlmax));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    (void)one;
    /* A fresh random routing id, not our (public) key: the peer's ROUTER
     * routes to the connection it authenticated, and nobody can guess this
     * id to collide with it (see s_router_one). */
    uint8_t rid[B_RID_LEN];
    if (RAND_bytes(rid, sizeof(rid)) != 1) {
        zmq_close(s);
        return HS_ETRANSPORT;
    }
    rid[0] |= 0x80; /* never 0x00: libzmq's own ids for anonymous peers start so */
    zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof(rid));
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, l->key, TOPO_KEY_LEN) ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, b->id.id_public, TOPO_KEY_LEN) ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, b->id.id_secret, TOPO_KEY_LEN) ||
        zmq_connect(s, l->endpoint)) {
        broker_log(BROKER_LOG_ERROR, l->name, "dial-failed", "cannot dial %s: %s", l->endpoint,
                   zmq_strerror(zmq_errno()));
        zmq_close(s);
        return HS_ETRANSPORT;
    }
    int fd;
    size_t fdl = sizeof(fd);
    zmq_getsockopt(s, ZMQ_FD, &fd, &fdl);
    l->sock = s;
    l->ev = event_new(b->base, fd, EV_READ | EV_PERSIST, s_on_sock, b);
    event_add(l->ev, NULL);
    return HS_OK;
}

static b_link_t *s_link_new(broker_t *b, const topo_peer_t *p, int state)
{
    b_link_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->role = p->pe_role;
    snprintf(l->name, sizeof(l->name), "%s", p->pe_name);
    snprintf(l->key, sizeof(l->key), "%s", p->pe_key);
    snprintf(l->endpoint, sizeof(l->endpoint), "%s", p->pe_endpoint);
    l->since = p->pe_since;
    l->state = state;
    s_link_set_rel(l, p->pe_rel, p->pe_nrel);
    if (l->role == TOPO_ROLE_CHILD || l->role == TOPO_ROLE_DEST) {
        if (s_dial(b, l)) {
            free(l->rel);
            free(l);
            return NULL;
        }
    }
    l->next = b->links;
    b->links = l;
    return l;
}

/* ---- sending ------------------------------------------------------------ */

static int s_send(broker_t *b, b_link_t *l, const void *buf, size_t len)
{
    int rc;
    if (l->sock) {
        rc = zmq_send(l->sock, buf, len, ZMQ_DONTWAIT);
    } else if (!l->route_len) {
        rc = -1; /* no authenticated connection from the peer yet */
    } else {
        rc = zmq_send(b->router, l->route, l->route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (rc < 0 && zmq_errno() == EHOSTUNREACH)
            l->route_len = 0; /* that connection is gone: wait for the peer's next */
        if (rc >= 0)
            rc = zmq_send(b->router, buf, len, ZMQ_DONTWAIT);
    }
    if (rc < 0)
        return HS_ETRANSPORT; /* peer away or queue full: heartbeats and acks recover */
    l->last_tx = s_mono_ms();
    return HS_OK;
}

/* What this node tells a peer about the rest of the tree. */
static size_t s_tree_for(broker_t *b, b_link_t *to, topo_rel_t **out)
{
    size_t n = 0, cap = 1;
    for (b_link_t *l = b->links; l; l = l->next)
        cap += 1 + l->nrel;
    topo_rel_t *rel = calloc(cap, sizeof(*rel));
    if (!rel) {
        *out = NULL;
        return 0;
    }
    if (to->role == TOPO_ROLE_DEST || to->role == TOPO_ROLE_SOURCE) {
        *out = rel; /* a standalone peer learns nothing of the hierarchy */
        return 0;
    }
    if (to->role == TOPO_ROLE_CHILD) {
        /* path from the root down to this node: the parent's path, then us */
        b_link_t *p = s_link_find(b, TOPO_ROLE_PARENT, NULL, NULL);
        if (p) {
            if (p->nrel)
                memcpy(rel, p->rel, p->nrel * sizeof(*rel));
            n = p->nrel;
        }
        snprintf(rel[n].rel_name, sizeof(rel[n].rel_name), "%s", b->id.id_name);
        snprintf(rel[n].rel_key, sizeof(rel[n].rel_key), "%s", b->id.id_public);
        snprintf(rel[n].rel_parent, sizeof(rel[n].rel_parent), "%s", p ? p->name : "");
        n++;
    } else {
        /* our subtree: each child and what it reported below it */
        for (b_link_t *c = b->links; c; c = c->next) {
            if (c->role != TOPO_ROLE_CHILD || c->state == B_JOINING)
                continue;
            snprintf(rel[n].rel_name, sizeof(rel[n].rel_name), "%s", c->name);
            snprintf(rel[n].rel_key, sizeof(rel[n].rel_key), "%s", c->key);
            snprintf(rel[n].rel_parent, sizeof(rel[n].rel_parent), "%s", b->id.id_name);
            n++;
            if (c->nrel) /* c->rel is NULL without relatives */
                memcpy(rel + n, c->rel, c->nrel * sizeof(*rel));
            n += c->nrel;
        }
    }
    if (n > TOPO_REL_MAX)
        n = TOPO_REL_MAX;
    *out = rel;
    return n;
}

static int s_send_msg(broker_t *b, b_link_t *l, topo_msg_t *m)
{
    store_mpw_reset(&b->w);
    snprintf(m->m_name, sizeof(m->m_name), "%s", b->id.id_name);
    int err = topo_msg_encode(m, &b->w);
    if (!err)
        err = s_send(b, l, b->w.mpw_buf, b->w.mpw_len);
    return err;
}

static void s_send_hb(broker_t *b, b_link_t *l)
{
    topo_msg_t m = {.m_type = TOPO_MSG_HB};
    snprintf(m.m_token, sizeof(m.m_token), "%s", b->session);
    m.m_nrel = s_tree_for(b, l, &m.m_rel);
    s_send_msg(b, l, &m);
    free(m.m_rel);
}

/* A heartbeat on l if none went out for B_HB_MS (the timer; io_keepalive). */
static void s_hb_if_due(broker_t *b, b_link_t *l, uint64_t now)
{
    if (now - l->last_tx >= B_HB_MS)
        s_send_hb(b, l);
}

/* ---- ctl replies -------------------------------------------------------- */

static void s_ctl_reply(broker_t *b, const uint8_t *rid, size_t rlen, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return;
    if (zmq_send(b->ctl, rid, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(b->ctl, text, strlen(text), ZMQ_DONTWAIT);
    free(text);
}

static void s_ctl_error(broker_t *b, const uint8_t *rid, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_ctl_error(broker_t *b, const uint8_t *rid, size_t rlen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s_ctl_reply(b, rid, rlen, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

/* ---- persistence of links ------------------------------------------------ */

typedef struct s_linkop {
    const topo_peer_t *peer; /* put this peer and trust its key */
    int del_role;            /* or delete this link and revoke its key */
    const char *del_name;
    const char *del_key;
    const topo_token_t *redeem; /* and redeem this token first */
    const topo_rel_t *path;     /* check the parent before accepting */
    size_t npath;
    const topo_identity_t *me;
    bool feed; /* a standalone source: no hierarchy checks */
    const char *why;
    /* names that left this node's subtree with this change: what is held
     * only because of them is dropped in the same transaction */
    const topo_rel_t *lost;
    size_t nlost;
    uint64_t dropped; /* out: objects dropped */
} s_linkop_t;

/* ---- a branch that left ---------------------------------------------------- */

/* Is node `name` still known here: this node, an ancestor, a child or in a
 * child's subtree (the link `skip` not counted)? */
static bool s_name_here(broker_t *b, const char *name, const b_link_t *skip)
{
    if (!strcmp(name, b->id.id_name))
        return true;
    for (b_link_t *l = b->links; l; l = l->next) {
        if (l == skip || l->state == B_JOINING ||
            (l->role != TOPO_ROLE_PARENT && l->role != TOPO_ROLE_CHILD))
            continue;
        if (!strcmp(l->name, name))
            return true;
        for (size_t i = 0; i < l->nrel; i++)
            if (!strcmp(l->rel[i].rel_name, name))
                return true;
    }
    return false;
}

/* Keep in lost (n entries) the names no longer known here; returns how many. */
static size_t s_lost_filter(broker_t *b, topo_rel_t *lost, size_t n, const b_link_t *skip)
{
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        if (s_name_here(b, lost[i].rel_name, skip))
            continue;
        bool dup = false;
        for (size_t j = 0; j < keep && !dup; j++)
            dup = !strcmp(lost[j].rel_name, lost[i].rel_name);
        if (!dup)
            lost[keep++] = lost[i];
    }
    return keep;
}

typedef struct s_victims {
    const char *origin; /* NULL: every object the scan visits */
    store_obj_t *o;
    size_t n, cap;
    int err;
} s_victims_t;

static int s_victim(void *ctx, const store_obj_t *o)
{
    s_victims_t *v = ctx;
    if (v->origin && strcmp(o->origin, v->origin) != 0)
        return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        store_obj_t *no = realloc(v->o, cap * sizeof(*no));
        if (!no)
            return HS_ENOMEM;
        v->o = no;
        v->cap = cap;
    }
    v->o[v->n++] = *o; /* guid, class and mtime are all that is used */
    return 0;
}

/* Drop what this node held only because `name` was in its subtree: the
 * resources and data-class rows it owns and its agent trust summary (what
 * its branch sent up). Each becomes a tombstone dated with the object's own
 * last change, so the same copy arriving again through another parent (the
 * node moved) is taken, not refused as older than the delete. */
static int s_drop_owner(store_txn_t *t, const char *name, uint64_t *dropped)
{
    static const char *const owned[] = {"resource.", "dataclass."};
    s_victims_t v = {0};
    int err = HS_OK;
    for (size_t i = 0; !err && i < 2; i++)
        err = store_scan(t, owned[i], name, 0, NULL, NULL, s_victim, &v);
    v.origin = name;
    if (!err)
        err = store_scan(t, "system.trust", NULL, 0, NULL, NULL, s_victim, &v);
    for (size_t i = 0; !err && i < v.n; i++) {
        err = store_delete(t, &v.o[i].guid, v.o[i].mtime);
        if (err == HS_ENOTFOUND) /* a row that went with its resource */
            err = HS_OK;
        else if (!err)
            (*dropped)++;
    }
    free(v.o);
    return err;
}

/* This node's subtree changed (a child joined, left, or reported another
 * subtree): the parent hears of it now, not at the next heartbeat, so it
 * knows where a node is before any run claims it, and drops what it held
 * for a branch that left as soon as it left. */
static void s_subtree_changed(broker_t *b)
{
    for (b_link_t *l = b->links; l; l = l->next)
        if (l->role == TOPO_ROLE_PARENT && l->state != B_JOINING)
            s_send_hb(b, l);
}

/* Names left this node's subtree through the link to `via`: runs under way
 * stop counting them as the sender's, and the log says what was dropped. */
static void s_branch_left(broker_t *b, const char *via, const topo_rel_t *lost, size_t nlost,
                          uint64_t dropped)
{
    char names[512];
    size_t off = 0;
    names[0] = '\0';
    for (size_t i = 0; i < nlost; i++) {
        repl_branch_left(b->repl, lost[i].rel_name);
        int n = snprintf(names + off, sizeof(names) - off, "%s%s", i ? ", " : "", lost[i].rel_name);
        if (n > 0 && off + (size_t)n < sizeof(names))
            off += (size_t)n;
    }
    broker_log(BROKER_LOG_INFO, via, "branch-dropped",
               "%s left this node's subtree: dropped %llu objects held only for %s (they "
               "come back through the node's new parent, if any)",
               names, (unsigned long long)dropped, nlost == 1 ? "it" : "them");
}

static int s_linkop_txn(store_txn_t *t, void *ctx)
{
    s_linkop_t *op = ctx;
    int err;
    op->why = NULL;
    if (op->redeem) {
        err = topo_token_redeem(t, op->redeem, (uint64_t)time(NULL), &op->why);
        if (err)
            return err;
        if (!op->feed)
            err = topo_check_accept_parent(t, op->me, op->peer->pe_name, op->peer->pe_key, op->path,
                                           op->npath, &op->why);
        if (err)
            return err;
    }
    op->dropped = 0;
    for (size_t i = 0; i < op->nlost; i++) {
        err = s_drop_owner(t, op->lost[i].rel_name, &op->dropped);
        if (err)
            return err;
    }
    if (op->peer) {
        topo_trust_t tr = {.tr_role = op->peer->pe_role, .tr_since = op->peer->pe_since};
        snprintf(tr.tr_name, sizeof(tr.tr_name), "%s", op->peer->pe_name);
        err = topo_peer_put(t, op->peer);
        if (!err)
            err = topo_trust_put(t, op->peer->pe_key, &tr);
        return err;
    }
    err = topo_peer_del(t, op->del_role, op->del_name);
    if (err && err != HS_ENOTFOUND)
        return err;
    if (op->del_role == TOPO_ROLE_CHILD || op->del_role == TOPO_ROLE_PARENT) {
        /* linked again later (a node moved back): complete runs first, so
         * what the other side no longer gives is removed */
        err = repl_marks_forget(t, op->del_name);
        if (err)
            return err;
    }
    err = topo_trust_del(t, op->del_key);
    return err == HS_ENOTFOUND ? HS_OK : err;
}

static void s_peer_from_link(const b_link_t *l, topo_peer_t *p)
{
    memset(p, 0, sizeof(*p));
    p->pe_role = l->role;
    snprintf(p->pe_name, sizeof(p->pe_name), "%s", l->name);
    snprintf(p->pe_key, sizeof(p->pe_key), "%s", l->key);
    snprintf(p->pe_endpoint, sizeof(p->pe_endpoint), "%s", l->endpoint);
    p->pe_since = l->since;
    p->pe_rel = l->rel;
    p->pe_nrel = l->nrel;
}

/* Record l; lost (already filtered by s_lost_filter) are the names that
 * left this node's subtree with the change: their objects go in the same
 * transaction, and the engine forgets them in runs under way. */
static int s_link_save_lost(broker_t *b, const b_link_t *l, const topo_rel_t *lost, size_t nlost)
{
    topo_peer_t p;
    s_peer_from_link(l, &p);
    if (nlost)
        repl_group_flush(b->repl); /* batches received before the change first */
    s_linkop_t op = {.peer = &p, .lost = lost, .nlost = nlost};
    int err = store_write(b->store, s_linkop_txn, &op);
    if (!err && nlost)
        s_branch_left(b, l->name, lost, nlost, op.dropped);
    return err;
}

static int s_link_save(broker_t *b, const b_link_t *l)
{
    return s_link_save_lost(b, l, NULL, 0);
}

static void s_repl_peer_gone(broker_t *b, const char *name);

static int s_link_forget(broker_t *b, b_link_t *l)
{
    s_repl_peer_gone(b, l->name);
    /* a child's link: its branch leaves this node's subtree */
    topo_rel_t *lost = NULL;
    size_t nlost = 0;
    if (l->role == TOPO_ROLE_CHILD && l->state != B_JOINING &&
        (lost = calloc(l->nrel + 1, sizeof(*lost)))) {
        snprintf(lost[0].rel_name, sizeof(lost[0].rel_name), "%s", l->name);
        if (l->nrel)
            memcpy(lost + 1, l->rel, l->nrel * sizeof(*lost));
        nlost = s_lost_filter(b, lost, l->nrel + 1, l);
        if (nlost)
            repl_group_flush(b->repl);
    }
    s_linkop_t op = {
        .del_role = l->role, .del_name = l->name, .del_key = l->key, .lost = lost, .nlost = nlost};
    int err = store_write(b->store, s_linkop_txn, &op);
    if (err)
        broker_log(BROKER_LOG_ERROR, l->name, "forget-failed", "could not remove the link: %s",
                   hs_strerror(err));
    bool child = l->role == TOPO_ROLE_CHILD;
    char gone[STORE_NAME_MAX + 1];
    snprintf(gone, sizeof(gone), "%s", l->name);
    s_link_free(b, l);
    if (!err && nlost)
        s_branch_left(b, gone, lost, nlost, op.dropped);
    free(lost);
    if (child)
        s_subtree_changed(b);
    return err;
}

static void s_repl_peer_gone(broker_t *b, const char *name)
{
    if (b->repl)
        repl_peer_down(b->repl, name);
}

/* ---- link frames -------------------------------------------------------- */

static bool s_rel_equal(const b_link_t *l, const topo_msg_t *m)
{
    return l->nrel == m->m_nrel &&
           (l->nrel == 0 || memcmp(l->rel, m->m_rel, l->nrel * sizeof(*l->rel)) == 0);
}

/* A frame arrived on l. Only a heartbeat (or the join itself) brings a link
 * that is down back up: the heartbeat carries the peer's session id, so runs
 * started on the link always know which incarnation of the peer they talk
 * to, and a restart seen later fails only runs of the old one. */
static void s_alive(broker_t *b, b_link_t *l, bool may_raise)
{
    l->last_rx = s_mono_ms();
    l->last_seen = s_wall_ms();
    if (l->state == B_DOWN && may_raise) {
        l->state = B_UP;
        l->up_since = l->last_seen;
        broker_log(BROKER_LOG_INFO, l->name, "link-up", "%s link is up", topo_role_name(l->role));
        repl_tick(b->repl); /* due runs start now, not at the next tick */
    }
}

static void s_nameq_free(broker_t *b, struct b_nameq *q);

/* Child l reported its subtree: names the root held for a join under way
 * that are now in it need no holding any more. */
static void s_names_arrived(broker_t *b, const b_link_t *l)
{
    for (b_nameq_t *q = b->nameqs, *next; q; q = next) {
        next = q->next;
        bool in = false;
        for (size_t i = 0; i < q->nnames && !in; i++)
            for (size_t j = 0; j < l->nrel && !in; j++)
                in = !strcmp(q->names[i].rel_name, l->rel[j].rel_name);
        if (!q->child[0] && in)
            s_nameq_free(b, q);
    }
}

/* A heartbeat on l; rid[0..rlen) is the connection it came on when l is
 * reached through our ROUTER (s_router_one checked that it authenticated
 * with l's key), NULL on a DEALER we dialled. */
static void s_on_hb(broker_t *b, b_link_t *l, const topo_msg_t *m, const uint8_t *rid, size_t rlen)
{
    if (strcmp(m->m_name, l->name) != 0) {
        broker_log(BROKER_LOG_WARN, l->name, "name-mismatch",
                   "peer with the key of '%s' claims to be '%s': frame dropped", l->name,
                   m->m_name);
        return;
    }
    if (!l->sock && rid && rlen && rlen <= sizeof(l->route)) {
        /* frames to l go to the connection of its latest good heartbeat: a
         * restarted peer gets its link back with its first one */
        memcpy(l->route, rid, rlen);
        l->route_len = rlen;
    }
    if (m->m_token[0] && strcmp(l->session, m->m_token) != 0) {
        if (l->session[0]) {
            /* the peer restarted: what was in flight to it is gone; fail those
             * runs now (they resume) instead of waiting for their timeout */
            broker_log(BROKER_LOG_INFO, l->name, "peer-restarted",
                       "the peer restarted (new session)");
            repl_peer_down(b->repl, l->name);
        }
        snprintf(l->session, sizeof(l->session), "%s", m->m_token);
    }
    s_alive(b, l, true);
    if (!s_rel_equal(l, m)) {
        /* a child's subtree lost names: what we held for them goes, unless
         * they are still below us elsewhere (a list cut at TOPO_REL_MAX
         * proves nothing) */
        topo_rel_t *lost = NULL;
        size_t nlost = 0;
        if (l->role == TOPO_ROLE_CHILD && l->nrel && m->m_nrel < TOPO_REL_MAX &&
            (lost = malloc(l->nrel * sizeof(*lost)))) {
            for (size_t i = 0; i < l->nrel; i++) {
                bool kept = false;
                for (size_t j = 0; j < m->m_nrel && !kept; j++)
                    kept = !strcmp(l->rel[i].rel_name, m->m_rel[j].rel_name);
                if (!kept)
                    lost[nlost++] = l->rel[i];
            }
        }
        s_link_set_rel(l, m->m_rel, m->m_nrel);
        if (l->role == TOPO_ROLE_CHILD)
            s_names_arrived(b, l);
        nlost = nlost ? s_lost_filter(b, lost, nlost, NULL) : 0;
        int err = s_link_save_lost(b, l, lost, nlost);
        free(lost);
        if (err)
            broker_log(BROKER_LOG_ERROR, l->name, "save-failed", "%s", hs_strerror(err));
        if (l->role == TOPO_ROLE_CHILD)
            s_subtree_changed(b);
    }
}

static void s_on_leave(broker_t *b, b_link_t *l)
{
    broker_log(BROKER_LOG_INFO, l->name, "link-removed",
               "the %s removed the link; its key is revoked", topo_role_name(l->role));
    s_link_forget(b, l);
}

/* JOIN from a not-yet-trusted key: the would-be parent presents our invite. */
static void s_on_join(broker_t *b, const uint8_t *rid, size_t rlen, const char *key,
                      const topo_msg_t *m)
{
    topo_msg_t reply = {.m_type = TOPO_MSG_JOINED};
    topo_token_t tok;
    topo_peer_t p = {.pe_role = TOPO_ROLE_PARENT, .pe_since = s_wall_ms()};
    snprintf(p.pe_name, sizeof(p.pe_name), "%s", m->m_name);
    snprintf(p.pe_key, sizeof(p.pe_key), "%s", key);
    p.pe_rel = m->m_rel;
    p.pe_nrel = m->m_nrel;
    s_linkop_t op = {
        .peer = &p, .redeem = &tok, .path = m->m_rel, .npath = m->m_nrel, .me = &b->id};
    int err = topo_token_decode(m->m_token, &tok);
    if (err) {
        op.why = "the token is not an hsync invite";
    } else if (strcmp(m->m_key, key) != 0) {
        err = HS_ETRUST;
        op.why = "the key in the request is not the key the connection was made with";
    } else {
        err = store_write(b->store, s_linkop_txn, &op);
    }
    if (err) {
        const char *why = op.why ? op.why : hs_strerror(err);
        /* anyone holding a copy of a JOIN can replay it at will */
        broker_log_throttled(&b->log_join, BROKER_LOG_WARN, m->m_name, "join-refused",
                             "refused '%s' as parent: %s", m->m_name, why);
        snprintf(reply.m_why, sizeof(reply.m_why), "%s", why);
    } else {
        reply.m_ok = true;
        b_link_t *l = s_link_new(b, &p, B_DOWN);
        if (l)
            broker_log(BROKER_LOG_INFO, l->name, "parent-added", "'%s' is now this node's parent",
                       l->name);
    }
    /* Reply on the connection the JOIN came in on (the link may not exist). */
    b_link_t *parent = s_link_find(b, TOPO_ROLE_PARENT, NULL, key);
    b_link_t tmp = {.role = TOPO_ROLE_PARENT};
    if (reply.m_ok) /* a refused peer learns nothing about the tree */
        reply.m_nrel = s_tree_for(b, parent ? parent : &tmp, &reply.m_rel);
    snprintf(reply.m_name, sizeof(reply.m_name), "%s", b->id.id_name);
    store_mpw_reset(&b->w);
    if (topo_msg_encode(&reply, &b->w) == HS_OK &&
        zmq_send(b->router, rid, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(b->router, b->w.mpw_buf, b->w.mpw_len, ZMQ_DONTWAIT);
    free(reply.m_rel);
    /* The link comes up with the parent's first heartbeat, which it sends
     * once it has accepted us (it may first ask its root whether our names
     * are unused, and would drop runs of ours until then), on the connection
     * it makes with its now trusted key (s_on_joined): this one was admitted
     * only to present the invite, and gets nothing more. */
    if (parent)
        s_alive(b, parent, false);
}

/* FEED from a not-yet-trusted key: a standalone source presents our invite.
 * It becomes a source of this node: it sends, we never send back. */
static void s_on_feed(broker_t *b, const uint8_t *rid, size_t rlen, const char *key,
                      const topo_msg_t *m)
{
    topo_msg_t reply = {.m_type = TOPO_MSG_JOINED};
    topo_token_t tok;
    topo_peer_t p = {.pe_role = TOPO_ROLE_SOURCE, .pe_since = s_wall_ms()};
    snprintf(p.pe_name, sizeof(p.pe_name), "%s", m->m_name);
    snprintf(p.pe_key, sizeof(p.pe_key), "%s", key);
    s_linkop_t op = {.peer = &p, .redeem = &tok, .me = &b->id, .feed = true};
    int err = topo_token_decode(m->m_token, &tok);
    if (err) {
        op.why = "the token is not an hsync invite";
    } else if (strcmp(m->m_key, key) != 0) {
        err = HS_ETRUST;
        op.why = "the key in the request is not the key the connection was made with";
    } else if (!topo_name_ok(m->m_name) || !strcmp(m->m_name, b->id.id_name)) {
        err = HS_ETOPO;
        op.why = "the source's name is not a valid node name, or is this node's own";
    } else if (s_link_find(b, 0, m->m_name, NULL)) {
        err = HS_ETOPO;
        op.why = "a node of that name is already linked to this one";
    } else {
        err = store_write(b->store, s_linkop_txn, &op);
    }
    b_link_t *l = NULL;
    if (err) {
        const char *why = op.why ? op.why : hs_strerror(err);
        broker_log_throttled(&b->log_join, BROKER_LOG_WARN, m->m_name, "feed-refused",
                             "refused '%s' as a source: %s", m->m_name, why);
        snprintf(reply.m_why, sizeof(reply.m_why), "%s", why);
    } else {
        reply.m_ok = true;
        l = s_link_new(b, &p, B_DOWN);
        if (l)
            broker_log(BROKER_LOG_INFO, l->name, "source-added",
                       "'%s' now feeds this node (standalone replication, one way)", l->name);
        snprintf(reply.m_token, sizeof(reply.m_token), "%s", TOPO_SOFTWARE_VERSION);
    }
    snprintf(reply.m_name, sizeof(reply.m_name), "%s", b->id.id_name);
    store_mpw_reset(&b->w);
    if (topo_msg_encode(&reply, &b->w) == HS_OK &&
        zmq_send(b->router, rid, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(b->router, b->w.mpw_buf, b->w.mpw_len, ZMQ_DONTWAIT);
    /* up with the source's first heartbeat on its trusted connection */
}

static void s_join_accept(broker_t *b, b_link_t *l);
static void s_names_check(broker_t *b, b_link_t *l);

static void s_on_joined(broker_t *b, b_link_t *l, const topo_msg_t *m)
{
    if (l->state != B_JOINING)
        return;
    if (!m->m_ok) {
        broker_log(BROKER_LOG_WARN, l->name, "join-refused", "'%s' refused the link: %s", l->name,
                   m->m_why);
        s_ctl_error(b, l->ctl_rid, l->ctl_rid_len, "'%s' refused the link: %s", l->name, m->m_why);
        s_link_free(b, l);
        return;
    }
    if (strcmp(m->m_name, l->name) != 0) {
        s_ctl_error(b, l->ctl_rid, l->ctl_rid_len,
                    "the node at %s answered as '%s', but the token names '%s'", l->endpoint,
                    m->m_name, l->name);
        s_link_free(b, l);
        return;
    }
    s_link_set_rel(l, m->m_rel, m->m_nrel);
    snprintf(l->version, sizeof(l->version), "%s", m->m_token);
    if (l->role == TOPO_ROLE_CHILD)
        s_names_check(b, l); /* accepts or refuses, now or when the root answers */
    else
        s_join_accept(b, l);
}

/* A child or destination that answered JOINED and whose names are unique:
 * record the link. */
static void s_join_accept(broker_t *b, b_link_t *l)
{
    l->nameq[0] = '\0';
    l->state = B_DOWN;
    l->since = s_wall_ms();
    int err = s_link_save(b, l);
    if (!err) {
        /* The peer admitted that connection only to take the invite: dial
         * again, now as a trusted key, for everything else. */
        event_free(l->ev);
        l->ev = NULL;
        zmq_close(l->sock);
        l->sock = NULL;
        if (s_dial(b, l)) /* logged; recorded all the same: a restart dials it */
            broker_log(BROKER_LOG_ERROR, l->name, "dial-failed",
                       "the link is recorded but cannot be dialled now: restart the broker");
    }
    if (err) {
        s_ctl_error(b, l->ctl_rid, l->ctl_rid_len, "could not record the link: %s",
                    hs_strerror(err));
        s_link_free(b, l);
        return;
    }
    /* The heartbeat first: the peer routes its answers to this connection
     * from its first heartbeat on, so runs started now must follow it. */
    s_send_hb(b, l);
    s_alive(b, l, true);
    bool dest = l->role == TOPO_ROLE_DEST;
    if (dest)
        broker_log(BROKER_LOG_INFO, l->name, "destination-added",
                   "'%s' is now a standalone destination of this node", l->name);
    else
        broker_log(BROKER_LOG_INFO, l->name, "child-added", "'%s' is now a child of this node",
                   l->name);
    char fp[20];
    topo_fingerprint(l->key, fp);
    s_ctl_reply(b, l->ctl_rid, l->ctl_rid_len,
                json_pack("{s:b,s:s,s:s,s:s,s:s}", "ok", 1, dest ? "destination" : "child", l->name,
                          "endpoint", l->endpoint, "fingerprint", fp, "version", l->version));
    if (!dest)
        s_subtree_changed(b);
}

/* ---- unique node names ---------------------------------------------------- */

/* Where node `name` is, as this node knows the tree (the link `skip` not
 * counted): false if nowhere; else true with the place in words. */
static bool s_name_where(broker_t *b, const char *name, const b_link_t *skip, char *out,
                         size_t outlen)
{
    if (!strcmp(name, b->id.id_name)) {
        snprintf(out, outlen, "it is the name of node '%s'", b->id.id_name);
        return true;
    }
    for (b_link_t *l = b->links; l; l = l->next) {
        if (l == skip || l->state == B_JOINING ||
            (l->role != TOPO_ROLE_PARENT && l->role != TOPO_ROLE_CHILD))
            continue;
        if (!strcmp(l->name, name)) {
            snprintf(out, outlen, "'%s' is the %s of node '%s'", name, topo_role_name(l->role),
                     b->id.id_name);
            return true;
        }
        for (size_t i = 0; i < l->nrel; i++) {
            if (strcmp(l->rel[i].rel_name, name) != 0)
                continue;
            if (l->role == TOPO_ROLE_PARENT)
                snprintf(out, outlen, "'%s' is an ancestor of node '%s'", name, b->id.id_name);
            else
                snprintf(out, outlen, "'%s' is a node under '%s', in the branch of '%s' below '%s'",
                         name, l->rel[i].rel_parent, l->name, b->id.id_name);
            return true;
        }
    }
    return false;
}

/* Is any of names[n] taken here (or, at the root, held for another join
 * under way)? Says which and where in why. */
static bool s_names_taken(broker_t *b, const topo_rel_t *names, size_t n, const b_link_t *skip,
                          const char *id, char *why, size_t whylen)
{
    char where[300];
    uint64_t now = s_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i].rel_name;
        if (s_name_where(b, name, skip, where, sizeof(where))) {
            snprintf(why, whylen,
                     "the name '%s' is already used in this hierarchy (%s): node names must be "
                     "unique across the hierarchy",
                     name, where);
            return true;
        }
        for (b_nameq_t *q = b->nameqs; q; q = q->next) {
            if (q->child[0] || q->deadline <= now || (id && !strcmp(q->id, id)))
                continue;
            for (size_t j = 0; j < q->nnames; j++) {
                if (!strcmp(q->names[j].rel_name, name)) {
                    snprintf(why, whylen,
                             "a node named '%s' is joining elsewhere in this hierarchy right now: "
                             "node names must be unique across the hierarchy",
                             name);
                    return true;
                }
            }
        }
    }
    return false;
}

static void s_nameq_free(broker_t *b, b_nameq_t *q)
{
    for (b_nameq_t **p = &b->nameqs; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            break;
        }
    }
    free(q->names);
    free(q);
}

/* Name queries remembered at once (a child sending them in a loop cannot
 * make this node hold more). */
#define B_NAMEQ_MAX 64

/* Remember a query: passed up for child (names NULL), or names held at the
 * root until the join can have completed. false: too many under way (or no
 * memory); the query is then refused. */
static bool s_nameq_add(broker_t *b, const char *id, const char *child, const topo_rel_t *names,
                        size_t n)
{
    size_t count = 0;
    for (b_nameq_t *q = b->nameqs; q; q = q->next)
        count++;
    b_nameq_t *q = count < B_NAMEQ_MAX ? calloc(1, sizeof(*q)) : NULL;
    if (!q)
        return false;
    snprintf(q->id, sizeof(q->id), "%s", id);
    snprintf(q->child, sizeof(q->child), "%s", child ? child : "");
    q->deadline = s_mono_ms() + B_JOIN_MS;
    if (names && n && (q->names = malloc(n * sizeof(*names)))) {
        memcpy(q->names, names, n * sizeof(*names));
        q->nnames = n;
    }
    q->next = b->nameqs;
    b->nameqs = q;
    return true;
}

static void s_send_names(broker_t *b, b_link_t *to, int type, const char *id,
                         const topo_rel_t *names, size_t n, bool ok, const char *why)
{
    topo_msg_t m = {.m_type = type, .m_ok = ok, .m_nrel = n, .m_rel = (topo_rel_t *)names};
    snprintf(m.m_token, sizeof(m.m_token), "%s", id);
    size_t wl = why ? strnlen(why, sizeof(m.m_why) - 1) : 0; /* cut at the field's size */
    if (wl)
        memcpy(m.m_why, why, wl);
    m.m_why[wl] = '\0';
    s_send_msg(b, to, &m);
}

/* The names of a would-be child l: it is refused, so the link it recorded
 * on its side goes too. */
static void s_join_refuse(broker_t *b, b_link_t *l, const char *why)
{
    topo_msg_t m = {.m_type = TOPO_MSG_LEAVE};
    s_send_msg(b, l, &m);
    broker_log(BROKER_LOG_WARN, l->name, "join-refused", "refused '%s' as a child: %s", l->name,
               why);
    s_ctl_error(b, l->ctl_rid, l->ctl_rid_len, "'%s' cannot join here: %s", l->name, why);
    s_link_free(b, l);
}

/* Child l answered JOINED with its subtree (l->rel): check it and every
 * name below it here, then with the root, which alone knows every name. */
static void s_names_check(broker_t *b, b_link_t *l)
{
    topo_rel_t *names = calloc(l->nrel + 1, sizeof(*names));
    if (!names) {
        s_join_refuse(b, l, "out of memory");
        return;
    }
    snprintf(names[0].rel_name, sizeof(names[0].rel_name), "%s", l->name);
    snprintf(names[0].rel_key, sizeof(names[0].rel_key), "%s", l->key);
    snprintf(names[0].rel_parent, sizeof(names[0].rel_parent), "%s", b->id.id_name);
    if (l->nrel)
        memcpy(names + 1, l->rel, l->nrel * sizeof(*names));
    size_t n = l->nrel + 1 > TOPO_REL_MAX ? TOPO_REL_MAX : l->nrel + 1;
    uint8_t raw[16];
    RAND_bytes(raw, sizeof(raw));
    store_hex(raw, sizeof(raw), l->nameq);
    char why[512];
    b_link_t *parent = s_link_find(b, TOPO_ROLE_PARENT, NULL, NULL);
    if (s_names_taken(b, names, n, l, l->nameq, why, sizeof(why))) {
        s_join_refuse(b, l, why);
    } else if (parent && parent->state != B_JOINING) {
        /* held as JOINING until the answer (s_on_namea) or the deadline */
        l->join_deadline = s_mono_ms() + B_JOIN_MS;
        s_send_names(b, parent, TOPO_MSG_NAMEQ, l->nameq, names, n, false, NULL);
        broker_log(BROKER_LOG_INFO, l->name, "names-asked",
                   "asking the root of the hierarchy whether %zu name%s may join", n,
                   n == 1 ? "" : "s");
    } else {
        s_join_accept(b, l); /* the root: the link itself holds the names now */
    }
    free(names);
}

/* NAMEQ from child l: answer from here if a name is taken here or this is
 * the root, else pass it up and remember the way back. */
static void s_on_nameq(broker_t *b, b_link_t *l, const topo_msg_t *m)
{
    if (l->role != TOPO_ROLE_CHILD || strlen(m->m_token) != 32)
        return;
    char why[512];
    b_link_t *parent = s_link_find(b, TOPO_ROLE_PARENT, NULL, NULL);
    bool root = !parent || parent->state == B_JOINING;
    if (s_names_taken(b, m->m_rel, m->m_nrel, NULL, m->m_token, why, sizeof(why))) {
        s_send_names(b, l, TOPO_MSG_NAMEA, m->m_token, NULL, 0, false, why);
    } else if (!s_nameq_add(b, m->m_token, root ? NULL : l->name, root ? m->m_rel : NULL,
                            root ? m->m_nrel : 0)) {
        s_send_names(b, l, TOPO_MSG_NAMEA, m->m_token, NULL, 0, false,
                     "too many joins are being checked in this hierarchy right now; try again");
    } else if (!root) {
        s_send_names(b, parent, TOPO_MSG_NAMEQ, m->m_token, m->m_rel, m->m_nrel, false, NULL);
    } else {
        s_send_names(b, l, TOPO_MSG_NAMEA, m->m_token, NULL, 0, true, NULL);
    }
}

/* NAMEA from the parent: pass it down the way its query came, or settle
 * the join it was asked for. */
static void s_on_namea(broker_t *b, b_link_t *l, const topo_msg_t *m)
{
    if (l->role != TOPO_ROLE_PARENT || !m->m_token[0])
        return;
    for (b_nameq_t *q = b->nameqs; q; q = q->next) {
        if (!q->child[0] || strcmp(q->id, m->m_token) != 0)
            continue;
        b_link_t *c = s_link_find(b, TOPO_ROLE_CHILD, q->child, NULL);
        if (c && c->state != B_JOINING)
            s_send_names(b, c, TOPO_MSG_NAMEA, m->m_token, NULL, 0, m->m_ok, m->m_why);
        s_nameq_free(b, q);
        return;
    }
    for (b_link_t *c = b->links; c; c = c->next) {
        if (c->state != B_JOINING || strcmp(c->nameq, m->m_token) != 0)
            continue;
        if (m->m_ok)
            s_join_accept(b, c);
        else
            s_join_refuse(b, c, m->m_why[0] ? m->m_why : "the root refused the names");
        return;
    }
}

static void s_handle_frame(broker_t *b, b_link_t *l, const uint8_t *rid, size_t rlen,
                           const char *key, const void *buf, size_t len)
{
    int type;
    int err = topo_frame_type(buf, len, &type);
    const char *who = l ? l->name : key;
    /* every line here can be repeated at will by the sender: a stranger's
     * (or an invite-only connection's) go through one throttle, a linked
     * peer's through another, so neither can flood the log */
    broker_log_throttle_t *bad = l && l->state != B_JOINING ? &b->log_peerbad : &b->log_badframe;
    if (err) {
        broker_log_throttled(bad, BROKER_LOG_WARN, who, "bad-frame", "rejected a %zu-byte frame: %s", len,
                   err == HS_EPROTO ? "unsupported protocol version" : "malformed");
        return;
    }
    if (type >= 16) {
        if (!l || l->state == B_JOINING) {
            broker_log_throttled(&b->log_untrusted, BROKER_LOG_WARN, who, "untrusted",
                                 "dropped a replication frame from a peer that is not linked");
            return;
        }
        s_alive(b, l, false);
        err = repl_on_frame(b->repl, l->name, buf, len);
        if (err)
            broker_log_throttled(bad, BROKER_LOG_WARN, l->name, "bad-frame",
                                 "rejected a malformed replication frame (type %d, %zu bytes)", type,
                                 len);
        return;
    }
    topo_msg_t m;
    err = topo_msg_decode(buf, len, &m);
    if (err) {
        broker_log_throttled(bad, BROKER_LOG_WARN, who, "bad-frame",
                             "rejected a malformed link frame (%zu bytes)", len);
        return;
    }
    if (!l) {
        if (m.m_type == TOPO_MSG_JOIN)
            s_on_join(b, rid, rlen, key, &m);
        else if (m.m_type == TOPO_MSG_FEED)
            s_on_feed(b, rid, rlen, key, &m);
        else if (m.m_type == TOPO_MSG_LEAVE && (l = s_link_find(b, 0, NULL, key)) && !l->sock)
            /* a would-be parent whose root refused our names undoes the JOIN
             * on the connection that presented the invite: CURVE proved its
             * key there, and a LEAVE is all such a connection may send after */
            s_on_leave(b, l);
        else
            broker_log_throttled(&b->log_untrusted, BROKER_LOG_WARN, key, "untrusted",
                                 "dropped a frame from an untrusted key");
        topo_msg_clear(&m);
        return;
    }
    switch (m.m_type) {
    case TOPO_MSG_HB:
        s_on_hb(b, l, &m, rid, rlen);
        break;
    case TOPO_MSG_JOINED:
        s_on_joined(b, l, &m);
        break;
    case TOPO_MSG_LEAVE:
        s_on_leave(b, l);
        break;
    case TOPO_MSG_NAMEQ:
        s_on_nameq(b, l, &m);
        break;
    case TOPO_MSG_NAMEA:
        s_on_namea(b, l, &m);
        break;
    default:
        broker_log_throttled(bad, BROKER_LOG_WARN, l->name, "bad-frame", "unexpected frame type %d",
                             m.m_type);
    }
    topo_msg_clear(&m);
}

/* ---- sockets ------------------------------------------------------------ */

static bool s_readable(void *sock)
{
    int ev = 0;
    size_t l = sizeof(ev);
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &l) != 0)
        return false;
    return ev & ZMQ_POLLIN;
}

/* Read a whole multipart message into up to n parts. Returns part count or -1. */
static int s_recv_parts(void *sock, zmq_msg_t *parts, int n)
{
    int got = 0;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *m = got < n ? &parts[got] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            for (int i = 0; i < got && i < n; i++)
                zmq_msg_close(&parts[i]);
            return -1;
        }
        int more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(&tmp);
        got++;
        if (!more)
            break;
    }
    return got;
}

static void s_close_parts(zmq_msg_t *parts, int got, int n)
{
    for (int i = 0; i < got && i < n; i++)
        zmq_msg_close(&parts[i]);
}

static int s_zap_one(broker_t *b);

/* ---- the replication engine's view of the links -------------------------- */

static b_link_t *s_peer(broker_t *b, const char *name)
{
    for (b_link_t *l = b->links; l; l = l->next)
        if (l->state != B_JOINING && !strcmp(l->name, name))
            return l; /* parent, child, standalone destination or source */
    return NULL;
}

static int s_io_send(void *ctx, const char *peer, const void *buf, size_t len)
{
    broker_t *b = ctx;
    b_link_t *l = s_peer(b, peer);
    return l ? s_send(b, l, buf, len) : HS_ENOTFOUND;
}

/* The way data travels to (or from) a peer of this role: down to a child,
 * up to the parent, aside to a standalone destination; 0 if never. */
static unsigned s_role_dir(int role, bool from)
{
    switch (role) {
    case TOPO_ROLE_CHILD:
        return from ? RULES_UP : RULES_DOWN;
    case TOPO_ROLE_PARENT:
        return from ? RULES_DOWN : RULES_UP;
    case TOPO_ROLE_DEST:
        return from ? 0 : RULES_SIDE;
    case TOPO_ROLE_SOURCE:
        return from ? RULES_SIDE : 0;
    default:
        return 0;
    }
}

static unsigned s_io_dir_to(void *ctx, const char *peer)
{
    b_link_t *l = s_peer(ctx, peer);
    return l ? s_role_dir(l->role, false) : 0;
}

static unsigned s_io_dir_from(void *ctx, const char *peer)
{
    b_link_t *l = s_peer(ctx, peer);
    return l ? s_role_dir(l->role, true) : 0;
}

/* Inside a long computation on the loop (repl io_keepalive): heartbeats
 * that are due go out now, so peers do not take this node for gone; and the
 * loop is marked busy, so the frames it could not read meanwhile are not
 * counted as a silent peer (s_on_timer gives them B_DOWN_MS to be read). */
static void s_io_keepalive(void *ctx)
{
    broker_t *b = ctx;
    uint64_t now = s_mono_ms();
    for (b_link_t *l = b->links; l; l = l->next)
        if (l->state != B_JOINING)
            s_hb_if_due(b, l, now);
    b->busy_ms = now;
}

static bool s_io_peer_up(void *ctx, const char *peer)
{
    b_link_t *l = s_peer(ctx, peer);
    return l && l->state == B_UP;
}

static bool s_names_room(broker_t *b, size_t n)
{
    if (n <= b->names_cap)
        return true;
    const char **nn = realloc(b->names, n * sizeof(*nn));
    if (!nn)
        return false;
    b->names = nn;
    b->names_cap = n;
    return true;
}

static size_t s_io_branch(void *ctx, const char *peer, const char *const **out)
{
    broker_t *b = ctx;
    size_t need = 1;
    for (b_link_t *l = b->links; l; l = l->next)
        need += 1 + l->nrel;
    size_t n = 0;
    *out = NULL;
    if (!s_names_room(b, need))
        return 0;
    if (peer) { /* a child's branch: the child and what it reported below it */
        b_link_t *l = s_peer(b, peer);
        if (!l)
            return 0;
        b->names[n++] = l->name;
        for (size_t i = 0; i < l->nrel; i++)
            b->names[n++] = l->rel[i].rel_name;
    } else { /* ours: this node first, then every child's branch */
        b->names[n++] = b->id.id_name;
        for (b_link_t *l = b->links; l; l = l->next) {
            if (l->role != TOPO_ROLE_CHILD || l->state == B_JOINING)
                continue;
            b->names[n++] = l->name;
            for (size_t i = 0; i < l->nrel; i++)
                b->names[n++] = l->rel[i].rel_name;
        }
    }
    *out = b->names;
    return n;
}

static size_t s_io_peers(void *ctx, const char *const **out)
{
    broker_t *b = ctx;
    size_t n = 0, need = 0;
    for (b_link_t *l = b->links; l; l = l->next)
        need++;
    *out = NULL;
    if (!s_names_room(b, need + 1))
        return 0;
    for (b_link_t *l = b->links; l; l = l->next)
        if (l->state != B_JOINING)
            b->names[n++] = l->name;
    *out = b->names;
    return n;
}

static bool s_io_elsewhere(void *ctx, const char *peer, const char *name)
{
    broker_t *b = ctx;
    if (!strcmp(name, b->id.id_name))
        return true;
    for (b_link_t *l = b->links; l; l = l->next) {
        if (l->state == B_JOINING || !strcmp(l->name, peer))
            continue;
        if (l->role == TOPO_ROLE_CHILD && !strcmp(l->name, name))
            return true;
        if (l->role != TOPO_ROLE_PARENT && l->role != TOPO_ROLE_CHILD)
            continue;
        for (size_t i = 0; i < l->nrel; i++) /* the parent's path, another child's subtree */
            if (!strcmp(l->rel[i].rel_name, name))
                return true;
    }
    return false;
}

static void s_io_log(void *ctx, int level, const char *peer, const char *event, const char *msg)
{
    (void)ctx;
    broker_log(level, peer, event, "%s", msg);
}

static json_t *s_summary_json(const repl_summary_t *su)
{
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "peer", su->su_peer,
                  "rule", su->su_rule, "role", su->su_role ? su->su_role : "", "direction",
                  su->su_direction ? su->su_direction : "", "mode",
                  su->su_mode ? repl_mode_name(su->su_mode) : "none", "why", su->su_why, "sent",
                  (json_int_t)su->su_sent, "applied", (json_int_t)su->su_applied, "skipped",
                  (json_int_t)su->su_skipped, "deleted", (json_int_t)su->su_deleted, "bytes",
                  (json_int_t)su->su_bytes, "ms", (json_int_t)su->su_ms, "ok", su->su_ok);
    if (!su->su_ok)
        json_object_set_new(j, "error", json_string(su->su_error));
    if (su->su_dry_run)
        json_object_set_new(j, "estimated_bytes", json_integer((json_int_t)su->su_estimate_bytes));
    if (su->su_role && !strcmp(su->su_role, "emergency")) {
        json_t *re = json_array(), *un = json_array();
        for (size_t i = 0; i < su->su_nreached; i++)
            json_array_append_new(re, json_string(su->su_reached[i]));
        for (size_t i = 0; i < su->su_nunreached; i++)
            json_array_append_new(un, json_string(su->su_unreached[i]));
        json_object_set_new(j, "reached", re);
        json_object_set_new(j, "not_reached", un);
    }
    return j;
}

static void s_job_unlink(broker_t *b, b_job_t *job)
{
    for (b_job_t **p = &b->jobs; *p; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            break;
        }
    }
}

/* Forget a job without answering (the caller answers with an error). */
static void s_job_drop(broker_t *b, b_job_t *job)
{
    s_job_unlink(b, job);
    json_decref(job->runs);
    json_decref(job->inflight);
    free(job);
}

/* An emergency's reach: every node below this one (as the hierarchy told
 * us) that acknowledged it, hop by hop, and every one that did not. */
static json_t *s_emergency_reach(broker_t *b, const json_t *runs)
{
    json_t *reached = json_array(), *seen = json_object(), *not_reached = json_array();
    size_t i, k;
    json_t *r, *x;
    json_array_foreach(runs, i, r)
    {
        json_array_foreach(json_object_get(r, "reached"), k, x)
        {
            const char *n = json_string_value(x);
            if (n && !json_object_get(seen, n)) {
                json_object_set_new(seen, n, json_true());
                json_array_append_new(reached, json_string(n));
            }
        }
    }
    const char *const *names = NULL;
    size_t n = s_io_branch(b, NULL, &names);
    for (i = 1; i < n; i++) /* names[0] is this node */
        if (!json_object_get(seen, names[i])) {
            json_object_set_new(seen, names[i], json_false());
            json_array_append_new(not_reached, json_string(names[i]));
        }
    json_array_foreach(runs, i, r)
    {
        json_array_foreach(json_object_get(r, "not_reached"), k, x)
        {
            const char *nm = json_string_value(x);
            if (nm && !json_object_get(seen, nm)) {
                json_object_set_new(seen, nm, json_false());
                json_array_append_new(not_reached, json_string(nm));
            }
        }
    }
    json_decref(seen);
    return json_pack("{s:o,s:o}", "reached", reached, "not_reached", not_reached);
}

static void s_job_reply(broker_t *b, b_job_t *job)
{
    s_job_unlink(b, job);
    bool ok = true;
    size_t i;
    json_t *r;
    json_array_foreach(job->runs, i, r)
    {
        ok = ok && json_is_true(json_object_get(r, "ok"));
    }
    json_t *reach = job->emergency ? s_emergency_reach(b, job->runs) : NULL;
    if (reach && json_array_size(json_object_get(reach, "not_reached")))
        ok = false;
    json_t *reply = json_pack("{s:b,s:b,s:I,s:o}", "ok", 1, "all_ok", ok, "ms",
                              (json_int_t)(s_mono_ms() - job->started_ms), "runs", job->runs);
    if (reach) {
        json_object_update(reply, reach);
        json_decref(reach);
    }
    s_ctl_reply(b, job->rid, job->rid_len, reply);
    json_decref(job->inflight);
    free(job);
}

/* Tell a waiting `hsync sync` how far its runs are: one progress message
 * per finished run (broker/ctl.h), before the reply. */
static void s_job_progress(broker_t *b, b_job_t *job)
{
    json_int_t objects = 0, bytes = 0, total = 0;
    size_t i;
    json_t *r;
    json_array_foreach(job->runs, i, r)
    {
        const char *role = json_string_value(json_object_get(r, "role"));
        objects += json_integer_value(
            json_object_get(r, role && !strcmp(role, "received") ? "applied" : "sent"));
        bytes += json_integer_value(json_object_get(r, "bytes"));
    }
    total = objects;
    const char *k;
    json_t *v;
    json_object_foreach(job->inflight, k, v)
    { /* runs under way: what is acknowledged, of their estimated size */
        objects += json_integer_value(json_array_get(v, 0));
        total += json_integer_value(json_array_get(v, 1));
        bytes += json_integer_value(json_array_get(v, 2));
    }
    size_t done = json_array_size(job->runs);
    json_t *last = done ? json_array_get(job->runs, done - 1) : json_null();
    job->progress_ms = s_mono_ms();
    s_ctl_reply(b, job->rid, job->rid_len,
                json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:O}}", "progress", "runs_done",
                          (json_int_t)done, "runs_total", (json_int_t)(done + job->pending),
                          "objects", objects, "objects_total", total, "bytes", bytes, "ms",
                          (json_int_t)(s_mono_ms() - job->started_ms), "run", last));
}

/* A batch of a waited-for run was acknowledged: progress, at most 5 a second. */
static void s_io_run_progress(void *ctx, uint64_t req, const char *peer, const char *rule,
                              uint64_t sent, uint64_t total, uint64_t bytes)
{
    broker_t *b = ctx;
    for (b_job_t *job = b->jobs; job; job = job->next) {
        if (job->id != req)
            continue;
        char key[STORE_NAME_MAX + RULES_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", peer, rule);
        json_object_set_new(
            job->inflight, key,
            json_pack("[I,I,I]", (json_int_t)sent, (json_int_t)total, (json_int_t)bytes));
        if (s_mono_ms() - job->progress_ms >= 200)
            s_job_progress(b, job);
        return;
    }
}

static void s_io_run_done(void *ctx, const repl_summary_t *su)
{
    broker_t *b = ctx;
    broker_http_run_done(b->http, su);
    if (!su->su_req)
        return;
    for (b_job_t *job = b->jobs; job; job = job->next) {
        if (job->id != su->su_req)
            continue;
        json_array_append_new(job->runs, s_summary_json(su));
        char key[STORE_NAME_MAX + RULES_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", su->su_peer, su->su_rule);
        json_object_del(job->inflight, key);
        if (--job->pending == 0)
            s_job_reply(b, job);
        else
            s_job_progress(b, job);
        return;
    }
}

/* A command-line request waiting for runs: answered by s_job_reply when its
 * last run ends. NULL (and the error answered) when out of memory. */
static b_job_t *s_job_new(broker_t *b, const uint8_t *rid, size_t rlen)
{
    b_job_t *job = calloc(1, sizeof(*job));
    if (!job || !(job->runs = json_array()) || !(job->inflight = json_object())) {
        if (job)
            json_decref(job->runs);
        free(job);
        s_ctl_error(b, rid, rlen, "out of memory");
        return NULL;
    }
    job->id = ++b->next_job;
    job->rid_len = rlen < sizeof(job->rid) ? rlen : sizeof(job->rid);
    memcpy(job->rid, rid, job->rid_len);
    job->started_ms = s_mono_ms();
    job->next = b->jobs;
    b->jobs = job;
    return job;
}

/* `hsync sync`: every (peer, rule) pair in scope runs now; this node sends
 * where it is the source and asks the peer to send where it receives. */
typedef struct s_sync {
    broker_t *b;
    b_job_t *job;
    const char *peer_filter, *rule_filter;
    unsigned dir_filter; /* RULES_UP, RULES_DOWN or both */
    bool complete, dry_run, reconcile;
    json_t *skipped;
    size_t matched_rules;
} s_sync_t;

static int s_sync_rule(void *ctx, const rules_rule_t *ru)
{
    s_sync_t *sy = ctx;
    broker_t *b = sy->b;
    if (sy->rule_filter && strcmp(sy->rule_filter, ru->ru_name) != 0)
        return 0;
    sy->matched_rules++;
    for (b_link_t *l = b->links; l; l = l->next) {
        if (l->state == B_JOINING || l->role == TOPO_ROLE_SOURCE)
            continue; /* a standalone source sends on its own schedule */
        if (sy->peer_filter && strcmp(sy->peer_filter, l->name) != 0)
            continue;
        if (!rules_applies_to(ru, l->name))
            continue;
        unsigned to = s_role_dir(l->role, false), from = s_role_dir(l->role, true);
        const char *why = NULL;
        if (!ru->ru_enabled)
            why = "rule disabled";
        else if (l->state != B_UP)
            why = "link down";
        for (int pass = 0; pass < 2; pass++) {
            unsigned dir = pass ? from : to;
            if (!dir || !(ru->ru_dirs & dir) || !(sy->dir_filter & dir))
                continue;
            if (pass && sy->dry_run)
                continue; /* a dry run covers what this node would send */
            int err = HS_OK;
            if (!why) {
                int mode = sy->complete ? REPL_COMPLETE : sy->reconcile ? REPL_RECONCILE : 0;
                size_t queued = 0;
                if (pass) {
                    err = repl_request(b->repl, l->name, ru->ru_name, mode, sy->job->id);
                    queued = err ? 0 : 1;
                } else if (sy->dry_run) {
                    /* a dry run reports during the call: count it first */
                    sy->job->pending++;
                    err =
                        repl_start(b->repl, l->name, ru->ru_name, mode, true, sy->job->id, &queued);
                    if (err)
                        sy->job->pending--;
                    queued = 0;
                } else {
                    err = repl_start(b->repl, l->name, ru->ru_name, mode, false, sy->job->id,
                                     &queued);
                }
                sy->job->pending += queued;
            }
            if (why || err)
                json_array_append_new(sy->skipped, json_pack("{s:s,s:s,s:s,s:s}", "peer", l->name,
                                                             "rule", ru->ru_name, "direction",
                                                             dir == RULES_UP     ? "up"
                                                             : dir == RULES_DOWN ? "down"
                                                                                 : "standalone",
                                                             "why", why ? why : hs_strerror(err)));
        }
    }
    return 0;
}

/* Must a sync of peer (NULL: every peer) wait for links still connecting?
 * Only within B_SYNC_GRACE_MS of the start, for links not up since it: a
 * node just (re)started, restored ones first of all (their recovery runs
 * before their first run up), syncs what its peers hold, not "link down". */
static bool s_sync_wait_links(const broker_t *b, const char *peer)
{
    if (s_mono_ms() - b->boot_ms >= B_SYNC_GRACE_MS)
        return false;
    for (const b_link_t *l = b->links; l; l = l->next) {
        if (l->state == B_JOINING || l->role == TOPO_ROLE_SOURCE)
            continue;
        if (peer && strcmp(peer, l->name) != 0)
            continue;
        if (l->state != B_UP && l->up_since == 0)
            return true;
    }
    return false;
}

static void s_cmd_sync_now(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req);

static void s_cmd_sync(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req)
{
    if (!s_sync_wait_links(b, json_string_value(json_object_get(req, "peer")))) {
        s_cmd_sync_now(b, rid, rlen, req);
        return;
    }
    b_dsync_t *d = calloc(1, sizeof(*d));
    if (!d) {
        s_ctl_error(b, rid, rlen, "out of memory");
        return;
    }
    d->rid_len = rlen < sizeof(d->rid) ? rlen : sizeof(d->rid);
    memcpy(d->rid, rid, d->rid_len);
    d->req = json_incref(req);
    d->next = b->dsyncs;
    b->dsyncs = d;
}

/* Start the held syncs whose links came up (or whose grace ended). */
static void s_dsync_pump(broker_t *b)
{
    for (b_dsync_t **p = &b->dsyncs; *p;) {
        b_dsync_t *d = *p;
        if (s_sync_wait_links(b, json_string_value(json_object_get(d->req, "peer")))) {
            p = &d->next;
            continue;
        }
        *p = d->next;
        s_cmd_sync_now(b, d->rid, d->rid_len, d->req);
        json_decref(d->req);
        free(d);
    }
}

static void s_cmd_sync_now(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req)
{
    b_job_t *job = s_job_new(b, rid, rlen);
    if (!job)
        return;
    s_sync_t sy = {.b = b,
                   .job = job,
                   .peer_filter = json_string_value(json_object_get(req, "peer")),
                   .rule_filter = json_string_value(json_object_get(req, "rule")),
                   .dir_filter = RULES_UP | RULES_DOWN | RULES_SIDE,
                   .complete = json_is_true(json_object_get(req, "complete")),
                   .dry_run = json_is_true(json_object_get(req, "dry_run")),
                   .skipped = json_array()};
    sy.reconcile = json_is_true(json_object_get(req, "reconcile"));
    const char *dirs = json_string_value(json_object_get(req, "direction"));
    if (dirs)
        sy.dir_filter = !strcmp(dirs, "up") ? RULES_UP : RULES_DOWN;
    if (sy.peer_filter && !s_peer(b, sy.peer_filter)) {
        json_decref(sy.skipped);
        s_job_drop(b, job);
        s_ctl_error(b, rid, rlen, "'%s' is neither this node's parent nor one of its children",
                    sy.peer_filter);
        return;
    }
    store_txn_t *t;
    int err = store_txn_begin(b->store, false, &t);
    if (err) {
        json_decref(sy.skipped);
        s_job_drop(b, job);
        broker_log(BROKER_LOG_ERROR, NULL, "sync-failed", "cannot read the store: %s",
                   hs_strerror(err));
        s_ctl_error(b, rid, rlen, "cannot read the store: %s", hs_strerror(err));
        return;
    }
    job->pending++; /* hold the job open while starting runs */
    err = rules_each(t, s_sync_rule, &sy);
    store_txn_abort(&t);
    job->pending--;
    json_array_extend(job->runs, sy.skipped);
    json_t *skipped = sy.skipped;
    if (!err && sy.rule_filter && !sy.matched_rules) {
        json_decref(skipped);
        s_job_drop(b, job);
        s_ctl_error(b, rid, rlen, "no rule named '%s' (see 'hsync rule ls')", sy.rule_filter);
        return;
    }
    size_t i;
    json_t *x;
    json_array_foreach(skipped, i, x)
    {
        /* a disabled rule is skipped as asked; anything else is a failure */
        const char *why = json_string_value(json_object_get(x, "why"));
        bool disabled = !strcmp(why, "rule disabled");
        json_object_set_new(x, "skipped", json_true());
        json_object_set_new(x, "ok", json_boolean(disabled));
        if (!disabled)
            json_object_set_new(x, "error", json_string(why));
    }
    json_decref(skipped);
    if (job->pending == 0)
        s_job_reply(b, job);
    else
        repl_tick(b->repl); /* start them now */
}

/* ---- hsync verify --------------------------------------------------------- */

/* STORE_T_META: the last verdict (JSON, as status shows it), kept over restarts */
#define S_VERIFY_KEY "verify/last"

static int s_verify_save_txn(store_txn_t *t, void *ctx)
{
    const char *text = ctx;
    return store_kv_put(t, STORE_T_META, S_VERIFY_KEY, strlen(S_VERIFY_KEY), text, strlen(text));
}

static const char *s_dir_word(unsigned dir)
{
    return dir == RULES_UP ? "up" : "down";
}

/* The verdicts as the command line gets them, and the summary status keeps. */
static json_t *s_verify_json(broker_t *b, const repl_vnode_t *nodes, size_t n, bool repair,
                             json_t **summary)
{
    json_t *jn = json_array(), *differ = json_array(), *unreached = json_array();
    json_t *brief = json_array();
    for (size_t i = 0; i < n; i++) {
        const repl_vnode_t *nd = &nodes[i];
        json_t *rules = json_array(), *bad = json_array();
        bool in_sync = nd->vn_reached && !nd->vn_why[0];
        for (size_t k = 0; k < nd->vn_nverdict; k++) {
            const repl_vverdict_t *v = &nd->vn_verdicts[k];
            json_t *owners = json_array();
            for (size_t o = 0; o < v->vv_owners.n; o++)
                json_array_append_new(owners, json_string(v->vv_owners.v[o]));
            json_array_append_new(
                rules, json_pack("{s:s,s:s,s:b,s:I,s:I,s:O,s:s}", "rule", v->vv_rule, "direction",
                                 s_dir_word(v->vv_dir), "in_sync", v->vv_ok, "parent_count",
                                 (json_int_t)v->vv_parent_count, "count", (json_int_t)v->vv_count,
                                 "owners", owners, "repair", v->vv_repair));
            if (!v->vv_ok) {
                in_sync = false;
                json_array_append_new(differ, json_pack("{s:s,s:s,s:s,s:s,s:O}", "node",
                                                        nd->vn_name, "parent", nd->vn_parent,
                                                        "rule", v->vv_rule, "direction",
                                                        s_dir_word(v->vv_dir), "owners", owners));
                json_array_append_new(bad,
                                      json_pack("{s:s,s:s,s:O}", "rule", v->vv_rule, "direction",
                                                s_dir_word(v->vv_dir), "owners", owners));
            }
            json_decref(owners);
        }
        if (!nd->vn_reached)
            json_array_append_new(unreached, json_string(nd->vn_name));
        const char *verdict = !nd->vn_reached ? "not reached" : in_sync ? "in sync" : "differs";
        json_array_append_new(jn, json_pack("{s:s,s:s,s:b,s:s,s:b,s:s,s:o}", "node", nd->vn_name,
                                            "parent", nd->vn_parent, "reached", nd->vn_reached,
                                            "why", nd->vn_why, "in_sync", in_sync, "verdict",
                                            verdict, "rules", rules));
        json_array_append_new(brief, json_pack("{s:s,s:s,s:s,s:o}", "node", nd->vn_name, "verdict",
                                               verdict, "why", nd->vn_why, "differs", bad));
    }
    bool all = !json_array_size(differ) && !json_array_size(unreached);
    for (size_t i = 0; all && i < n; i++)
        all = !nodes[i].vn_why[0];
    *summary = json_pack("{s:I,s:s,s:b,s:b,s:o}", "when", (json_int_t)s_wall_ms(), "from",
                         b->id.id_name, "repair", repair, "all_in_sync", all, "nodes", brief);
    return json_pack("{s:b,s:s,s:b,s:b,s:o,s:o,s:o}", "ok", 1, "from", b->id.id_name, "repair",
                     repair, "all_in_sync", all, "nodes", jn, "differ", differ, "not_reached",
                     unreached);
}

static void s_io_verify_done(void *ctx, uint64_t req, const repl_vnode_t *nodes, size_t n)
{
    broker_t *b = ctx;
    for (b_job_t *job = b->jobs; job; job = job->next) {
        if (job->id != req || !job->verify)
            continue;
        s_job_unlink(b, job);
        json_t *summary = NULL;
        json_t *reply = s_verify_json(b, nodes, n, job->repair, &summary);
        json_object_set_new(reply, "ms", json_integer((json_int_t)(s_mono_ms() - job->started_ms)));
        json_decref(b->verify_last);
        b->verify_last = summary;
        char *text = json_dumps(summary, JSON_COMPACT);
        int err = text ? store_write(b->store, s_verify_save_txn, text) : HS_ENOMEM;
        if (err)
            broker_log(BROKER_LOG_WARN, NULL, "verify", "could not keep the verdict for status: %s",
                       hs_strerror(err));
        free(text);
        broker_log(json_is_true(json_object_get(reply, "all_in_sync")) ? BROKER_LOG_INFO
                                                                       : BROKER_LOG_WARN,
                   NULL, "verify", "%zu node%s below: %zu differ, %zu not reached%s", n,
                   n == 1 ? "" : "s", json_array_size(json_object_get(reply, "differ")),
                   json_array_size(json_object_get(reply, "not_reached")),
                   job->repair ? " (repair asked)" : "");
        s_ctl_reply(b, job->rid, job->rid_len, reply);
        json_decref(job->runs);
        json_decref(job->inflight);
        free(job);
        return;
    }
}

/* `hsync verify`: replied to by s_io_verify_done, within the budget. */
static void s_cmd_verify(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req)
{
    json_int_t budget = json_integer_value(json_object_get(req, "timeout_ms"));
    if (budget < 1000 || budget > 3600000)
        budget = 10000;
    b_job_t *job = s_job_new(b, rid, rlen);
    if (!job)
        return;
    job->verify = true;
    job->repair = json_is_true(json_object_get(req, "repair"));
    int err = repl_verify(b->repl, job->id, job->repair, (uint64_t)budget);
    if (err) {
        s_job_drop(b, job);
        s_ctl_error(b, rid, rlen, "%s", hs_strerror(err));
    }
}

/* `hsync replicate-now` and `hsync emergency`: one push per peer, replied to
 * when every peer acknowledged (or failed). */
static void s_cmd_push(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req, bool emergency)
{
    store_guid_t g;
    const char *gs = json_string_value(json_object_get(req, "guid"));
    if (!gs || store_guid_parse(gs, &g)) {
        s_ctl_error(b, rid, rlen, "not a guid (expected 8-4-4-4-12 hex digits)");
        return;
    }
    b_job_t *job = s_job_new(b, rid, rlen);
    if (!job)
        return;
    job->emergency = emergency;
    size_t peers = 0;
    job->pending++; /* acknowledgements cannot arrive during the call, but be safe */
    int err = repl_push(b->repl, &g, emergency, job->id, &peers);
    job->pending--;
    if (err) {
        s_job_drop(b, job);
        s_ctl_error(b, rid, rlen, "%s",
                    err == HS_ENOTFOUND ? "no live object with that guid on this node"
                                        : hs_strerror(err));
        return;
    }
    if (!peers && emergency) {
        /* every child is down: say which nodes it did not reach */
        const char *const *names = NULL;
        if (s_io_branch(b, NULL, &names) > 1) {
            s_job_reply(b, job);
            return;
        }
    }
    if (!peers) {
        s_job_drop(b, job);
        s_ctl_error(b, rid, rlen,
                    emergency ? "no child is up to receive it (or the rules do not carry it down)"
                              : "no adjacent node is up that its class may flow to (see 'hsync "
                                "rule ls' and 'hsync hierarchy show')");
        return;
    }
    job->pending += peers;
}

static int s_pair_json(void *ctx, const repl_pair_t *p)
{
    json_t *a = ctx;
    const repl_mark_t *m = p->pr_mark;
    char every[24], full[24];
    rules_format_duration(p->pr_rule->ru_every_ms, every, sizeof(every));
    rules_format_duration(p->pr_rule->ru_complete_every_ms, full, sizeof(full));
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:s,s:s}", "peer", p->pr_peer, "rule",
                          p->pr_rule->ru_name, "role", p->pr_role, "direction", p->pr_direction,
                          "enabled", p->pr_rule->ru_enabled, "running", p->pr_running, "every",
                          every, "complete_every", full);
    json_object_set_new(j, "mode",
                        json_string(p->pr_rule->ru_always_complete ? "complete" : "differential"));
    if (m->mk_last_run_ms) {
        json_object_set_new(j, "last_run",
                            json_pack("{s:I,s:s,s:b,s:s}", "when", (json_int_t)m->mk_last_run_ms,
                                      "mode", repl_mode_name(m->mk_last_mode), "ok", m->mk_last_ok,
                                      "error", m->mk_last_error));
    } else {
        json_object_set_new(j, "last_run", json_null());
    }
    if (!strcmp(p->pr_role, "sends")) {
        json_object_set_new(j, "next_run",
                            p->pr_rule->ru_enabled ? json_integer((json_int_t)p->pr_next_ms)
                                                   : json_null());
        json_object_set_new(j, "next_mode", json_string(repl_mode_name(p->pr_next_mode)));
        json_object_set_new(j, "watermark", json_integer((json_int_t)m->mk_diff_seq));
        json_object_set_new(j, "backlog", json_integer((json_int_t)p->pr_backlog));
        json_object_set_new(j, "backlog_age_ms", json_integer((json_int_t)p->pr_backlog_age_ms));
        json_object_set_new(j, "failures", json_integer((json_int_t)m->mk_failures));
    }
    json_array_append_new(a, j);
    return 0;
}

static int s_ctl_one(broker_t *b);

static int s_router_one(broker_t *b)
{
    zmq_msg_t parts[2];
    int got = s_recv_parts(b->router, parts, 2);
    if (got < 0)
        return 0;
    if (got != 2) {
        broker_log_throttled(&b->log_badframe, BROKER_LOG_WARN, NULL, "bad-frame",
                             "rejected a %d-part message", got - 1);
        s_close_parts(parts, got, 2);
        return 1;
    }
    /* Who sent it is what ZAP decided at the handshake (s_zap_one), carried
     * on every frame: the peer's key, or B_INVITE_UID and the key for a
     * connection that may only present an invite. The routing id is the
     * client's choice and proves nothing. */
    const char *uid = zmq_msg_gets(&parts[1], "User-Id");
    bool invite = uid && strlen(uid) == strlen(B_INVITE_UID) + TOPO_KEY_LEN &&
                  !strncmp(uid, B_INVITE_UID, strlen(B_INVITE_UID));
    if (invite)
        uid += strlen(B_INVITE_UID);
    char key[TOPO_KEY_LEN + 1] = "";
    if (uid && strlen(uid) == TOPO_KEY_LEN)
        memcpy(key, uid, TOPO_KEY_LEN + 1);
    b_link_t *l = key[0] && !invite ? s_link_find(b, 0, NULL, key) : NULL;
    if (l && l->sock) /* a child's key must arrive on the DEALER we dialled */
        l = NULL;
    /* a frame: this connection's handshake is over, the gate leaves it be */
    broker_peergate_seen(b->gate, zmq_msg_get(&parts[1], ZMQ_SRCFD));
    const uint8_t *rid = zmq_msg_data(&parts[0]);
    size_t rlen = zmq_msg_size(&parts[0]);
    for (b_link_t *o = b->links; o; o = o->next) {
        if (o == l || o->route_len != rlen || memcmp(o->route, rid, rlen) != 0)
            continue;
        o->route_len = 0; /* that routing id is no longer o's connection */
        broker_log(BROKER_LOG_WARN, o->name, "route-dropped",
                   "another connection now has the routing id of '%s': nothing more goes "
                   "there until '%s' sends its next heartbeat",
                   o->name, o->name);
    }
    if (l && !l->route_len && rlen <= sizeof(l->route)) {
        /* no live route to l (none yet, or its connection went away): any
         * frame authenticated with l's key gives one; a heartbeat always
         * does (s_on_hb) */
        memcpy(l->route, rid, rlen);
        l->route_len = rlen;
    }
    s_handle_frame(b, l, rid, rlen, key[0] ? key : "?", zmq_msg_data(&parts[1]),
                   zmq_msg_size(&parts[1]));
    s_close_parts(parts, got, 2);
    return 1;
}

static int s_link_one(broker_t *b, b_link_t *l)
{
    zmq_msg_t part;
    int got = s_recv_parts(l->sock, &part, 1);
    if (got < 0)
        return 0;
    if (got == 1)
        s_handle_frame(b, l, NULL, 0, l->key, zmq_msg_data(&part), zmq_msg_size(&part));
    s_close_parts(&part, got, 1);
    return 1;
}

/* ZeroMQ signals readiness edge-triggered through ZMQ_FD: after any send or
 * receive, every socket has to be checked again until none has input. Each
 * pass takes at most one message from every socket, so six children sending
 * at once are served in turn; after B_DRAIN_SLICE_MS the loop yields (the
 * drain event is made active again) so timers and heartbeats are never
 * starved by a flood of batches. */
static void s_drain(broker_t *b)
{
    uint64_t start = s_mono_ms();
    /* batches that arrive in one pass are committed together, once, and
     * acknowledged after that commit (repl_group) */
    repl_group(b->repl, true);
    for (;;) {
        int handled = 0;
        if (s_readable(b->zap))
            handled += s_zap_one(b);
        if (s_readable(b->ctl))
            handled += s_ctl_one(b);
        if (s_readable(b->router))
            handled += s_router_one(b);
        if (s_readable(broker_peergate_socket(b->gate)))
            handled += broker_peergate_events(b->gate, s_mono_ms()) > 0;
        for (b_link_t *l = b->links, *next; l; l = next) {
            next = l->next; /* a handler may free l */
            if (l->sock && s_readable(l->sock))
                handled += s_link_one(b, l);
        }
        repl_group_flush(b->repl);
        if (!handled)
            break;
        if (s_mono_ms() - start >= B_DRAIN_SLICE_MS) {
            /* Come back after the next poll, as a zero timeout. Not
             * event_active(): libevent runs an event activated from a
             * callback in the same pass, so a steady stream of batches
             * kept the loop in here and never polled again — heartbeat
             * timers and SIGTERM waited until the whole run had arrived
             * (tests/faults/test_stall.sh stops a receiver mid-run). */
            static const struct timeval now = {0, 0};
            event_add(b->ev_drain, &now);
            break;
        }
    }
    repl_group(b->repl, false);
}

static void s_on_sock(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s_drain(arg);
}

/* ---- ZAP: who may connect ------------------------------------------------ */

static int s_zap_one(broker_t *b)
{
    zmq_msg_t parts[8];
    int got = s_recv_parts(b->zap, parts, 8);
    if (got < 0)
        return 0;
    const char *status = "400", *text = "untrusted key";
    char key[TOPO_KEY_LEN + 1] = "";
    char uid[sizeof(B_INVITE_UID) + TOPO_KEY_LEN] = "";
    char addr[64] = "?";
    if (got >= 7 && zmq_msg_size(&parts[6]) == 32 && zmq_msg_size(&parts[5]) == 5 &&
        !memcmp(zmq_msg_data(&parts[5]), "CURVE", 5)) {
        zmq_z85_encode(key, zmq_msg_data(&parts[6]), 32);
        snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&parts[3]),
                 (const char *)zmq_msg_data(&parts[3]));
        if (s_link_find(b, 0, NULL, key)) {
            status = "200";
            text = "OK";
            snprintf(uid, sizeof(uid), "%s", key);
        } else {
            store_txn_t *t;
            if (store_txn_begin(b->store, false, &t) == HS_OK) {
                if (topo_token_outstanding(t, (uint64_t)time(NULL))) {
                    status = "200";
                    text = "OK (may present an invite)";
                    snprintf(uid, sizeof(uid), "%s%s", B_INVITE_UID, key);
                }
                store_txn_abort(&t);
            }
        }
    }
    if (status[0] != '2') {
        char fp[20] = "?";
        if (key[0])
            topo_fingerprint(key, fp);
        b->refused_total++;
        broker_log_throttled(&b->log_refused, BROKER_LOG_WARN, NULL, "refused",
                             "refused a connection from %s with key %s (%" PRIu64
                             " refused since the start)",
                             addr, fp, b->refused_total);
    }
    if (got >= 2) {
        zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(b->zap, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), ZMQ_SNDMORE);
        zmq_send(b->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(b->zap, uid, strlen(uid), ZMQ_SNDMORE); /* User-Id of every frame */
        zmq_send(b->zap, "", 0, 0);
    }
    s_close_parts(parts, got, 8);
    return 1;
}

/* ---- command line requests --------------------------------------------- */

static json_t *s_rel_json(const topo_rel_t *rel, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:s,s:s}", "name", rel[i].rel_name, "parent", rel[i].rel_parent));
    return a;
}

static json_t *s_status_json(broker_t *b)
{
    json_t *links = json_array();
    uint64_t now = s_mono_ms();
    for (b_link_t *l = b->links; l; l = l->next) {
        char fp[20];
        topo_fingerprint(l->key, fp);
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "role", topo_role_name(l->role), "name",
                              l->name, "endpoint", l->endpoint, "state", s_state_names[l->state],
                              "fingerprint", fp, "since", (json_int_t)l->since);
        if (l->last_rx)
            json_object_set_new(j, "last_seen_ms_ago",
                                json_integer((json_int_t)(now - l->last_rx)));
        else
            json_object_set_new(j, "last_seen_ms_ago", json_null());
        if (l->state == B_UP)
            json_object_set_new(j, "up_since", json_integer((json_int_t)l->up_since));
        json_object_set_new(j, "health", json_string(s_health_names[l->health]));
        json_object_set_new(j, "failures", json_integer((json_int_t)l->failures));
        json_object_set_new(j, l->role == TOPO_ROLE_PARENT ? "path" : "subtree",
                            s_rel_json(l->rel, l->nrel));
        json_array_append_new(links, j);
    }
    char fp[20];
    topo_fingerprint(b->id.id_public, fp);
    json_t *pairs = json_array();
    repl_pairs(b->repl, s_pair_json, pairs);
    json_t *sec = json_pack("{s:I}", "handshakes_refused", (json_int_t)b->refused_total);
    if (sec) {
        broker_http_security(b->http, sec);
        broker_peergate_security(b->gate, sec);
    }
    return json_pack("{s:b,s:s,s:s,s:s,s:o,s:o,s:O?,s:o*}", "ok", 1, "node", b->id.id_name,
                     "listen", b->listen, "fingerprint", fp, "links", links, "replication", pairs,
                     "verify", b->verify_last, "security", sec);
}

/* Dial the node an invite names, as a child (JOIN, with what we know of the
 * tree) or a standalone destination (FEED); the ctl request rid is answered
 * when it replies (JOINED) or at the join deadline. NULL (answered) if the
 * link cannot be made. */
static b_link_t *s_dial_invite(broker_t *b, const uint8_t *rid, size_t rlen,
                               const topo_token_t *tok, const char *text, int role)
{
    topo_peer_t p = {.pe_role = role};
    snprintf(p.pe_name, sizeof(p.pe_name), "%s", tok->tok_node);
    snprintf(p.pe_key, sizeof(p.pe_key), "%s", tok->tok_key);
    snprintf(p.pe_endpoint, sizeof(p.pe_endpoint), "%s", tok->tok_endpoint);
    b_link_t *l = s_link_new(b, &p, B_JOINING);
    if (!l) {
        s_ctl_error(b, rid, rlen, "cannot dial %s", tok->tok_endpoint);
        return NULL;
    }
    memcpy(l->ctl_rid, rid, rlen < sizeof(l->ctl_rid) ? rlen : sizeof(l->ctl_rid));
    l->ctl_rid_len = rlen < sizeof(l->ctl_rid) ? rlen : sizeof(l->ctl_rid);
    l->join_deadline = s_mono_ms() + B_JOIN_MS;
    topo_msg_t m = {.m_type = role == TOPO_ROLE_DEST ? TOPO_MSG_FEED : TOPO_MSG_JOIN};
    snprintf(m.m_key, sizeof(m.m_key), "%s", b->id.id_public);
    snprintf(m.m_token, sizeof(m.m_token), "%s", text);
    m.m_nrel = s_tree_for(b, l, &m.m_rel); /* nothing for a destination */
    s_send_msg(b, l, &m);
    free(m.m_rel);
    return l;
}

/* `hsync standalone add`: link to a destination with its invite (FEED).
 * Already linked: the reply says so at once. */
static void s_cmd_link_dest(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req)
{
    const char *text = json_string_value(json_object_get(req, "token"));
    topo_token_t tok;
    if (!text || topo_token_decode(text, &tok)) {
        s_ctl_error(b, rid, rlen,
                    "the token is not an hsync invite (copy it whole from 'hsync invite' on the "
                    "destination)");
        return;
    }
    if (!strcmp(tok.tok_node, b->id.id_name)) {
        s_ctl_error(b, rid, rlen, "the token is this node's own invite");
        return;
    }
    b_link_t *have = s_link_find(b, 0, NULL, tok.tok_key);
    if (have && have->role == TOPO_ROLE_DEST && have->state != B_JOINING) {
        s_ctl_reply(b, rid, rlen,
                    json_pack("{s:b,s:s,s:b}", "ok", 1, "destination", have->name, "already", 1));
        return;
    }
    if (have || s_link_find(b, 0, tok.tok_node, NULL)) {
        s_ctl_error(b, rid, rlen, "'%s' is already linked to this node as its %s", tok.tok_node,
                    topo_role_name(have ? have->role : TOPO_ROLE_CHILD));
        return;
    }
    b_link_t *l = s_dial_invite(b, rid, rlen, &tok, text, TOPO_ROLE_DEST);
    if (!l)
        return;
    broker_log(BROKER_LOG_INFO, l->name, "feed-sent",
               "asking '%s' at %s to take standalone replication from this node", l->name,
               l->endpoint);
}

/* The status page's live view: the same data as the ctl "status" reply. */
static json_t *s_http_status(void *ctx)
{
    return s_status_json(ctx);
}

static void s_cmd_add_child(broker_t *b, const uint8_t *rid, size_t rlen, json_t *req)
{
    const char *text = json_string_value(json_object_get(req, "token"));
    bool allow_more = json_is_true(json_object_get(req, "allow_more"));
    topo_token_t tok;
    if (!text || topo_token_decode(text, &tok)) {
        s_ctl_error(b, rid, rlen,
                    "the token is not an hsync invite (copy it whole from 'hsync invite')");
        return;
    }

    store_txn_t *t;
    const char *why = NULL;
    int err = store_txn_begin(b->store, false, &t);
    if (!err) {
        err = topo_check_add_child(t, &b->id, tok.tok_node, tok.tok_key, allow_more, &why);
        store_txn_abort(&t);
    }
    if (!err && s_link_find(b, 0, NULL, tok.tok_key)) {
        err = HS_ETOPO;
        why = "that node is already linked to this one";
    }
    char where[300], taken[512];
    if (!err && s_name_where(b, tok.tok_node, NULL, where, sizeof(where))) {
        /* the rest of the tree (and the names below the child) is checked
         * with the root once the child has answered */
        snprintf(taken, sizeof(taken),
                 "the name '%s' is already used in this hierarchy (%s): node names must be "
                 "unique across the hierarchy",
                 tok.tok_node, where);
        err = HS_ETOPO;
        why = taken;
    }
    if (err) {
        s_ctl_error(b, rid, rlen, "%s", why ? why : hs_strerror(err));
        return;
    }
    if (allow_more) {
        size_t n = 0;
        for (b_link_t *l = b->links; l; l = l->next)
            n += l->role == TOPO_ROLE_CHILD;
        if (n >= TOPO_MAX_CHILDREN)
            broker_log(BROKER_LOG_WARN, tok.tok_node, "many-children",
                       "adding child %zu, above the recommended maximum of %d", n + 1,
                       TOPO_MAX_CHILDREN);
    }
    b_link_t *l = s_dial_invite(b, rid, rlen, &tok, text, TOPO_ROLE_CHILD);
    if (!l)
        return;
    broker_log(BROKER_LOG_INFO, l->name, "join-sent", "asking '%s' at %s to become a child",
               l->name, l->endpoint);
}

static void s_cmd_remove(broker_t *b, const uint8_t *rid, size_t rlen, int role, const char *name)
{
    b_link_t *l = s_link_find(b, role, name, NULL);
    if (!l || l->state == B_JOINING) {
        if (role == TOPO_ROLE_PARENT)
            s_ctl_error(b, rid, rlen, "this node has no parent");
        else
            s_ctl_error(b, rid, rlen, "'%s' is not a %s of this node (see 'hsync hierarchy show')",
                        name ? name : "", topo_role_name(role));
        return;
    }
    topo_msg_t m = {.m_type = TOPO_MSG_LEAVE};
    s_send_msg(b, l, &m);
    char gone[STORE_NAME_MAX + 1];
    snprintf(gone, sizeof(gone), "%s", l->name);
    broker_log(BROKER_LOG_INFO, gone, "link-removed", "removed the %s link; its key is revoked",
               topo_role_name(role));
    int err = s_link_forget(b, l);
    if (err)
        s_ctl_error(b, rid, rlen, "could not remove the link: %s", hs_strerror(err));
    else
        s_ctl_reply(b, rid, rlen, json_pack("{s:b,s:s}", "ok", 1, "removed", gone));
}

/*
 * Who sent a ctl message: libzmq puts the peer's SO_PEERCRED into the
 * "Peer-Address" property of every message received over ipc://, as
 * "ADDRESS:UID:GID:PID" (stream_engine_base.cpp, ZMQ_HAVE_SO_PEERCRED; taken
 * by the kernel when the peer connected, so the peer cannot choose it).
 * False when the property is missing or malformed: the message is refused.
 */
static bool s_ctl_cred(zmq_msg_t *m, unsigned long *uid, unsigned long *pid)
{
    const char *pa = zmq_msg_gets(m, "Peer-Address");
    if (!pa)
        return false;
    size_t n = strnlen(pa, 512);
    if (n == 0 || n >= 512)
        return false;
    /* the last three ':'-separated fields, each 1 to 10 decimal digits */
    unsigned long v[3];
    size_t end = n;
    for (int f = 2; f >= 0; f--) {
        size_t start = end;
        while (start > 0 && pa[start - 1] >= '0' && pa[start - 1] <= '9')
            start--;
        if (start == end || end - start > 10 || start == 0 || pa[start - 1] != ':')
            return false;
        unsigned long x = 0;
        for (size_t i = start; i < end; i++)
            x = x * 10 + (unsigned long)(pa[i] - '0');
        v[f] = x;
        end = start - 1;
    }
    *uid = v[0];
    *pid = v[2];
    return true;
}

/* Only the broker's own user and root may command it (PostgreSQL's peer
 * authentication, OpenSSH's privilege checks): anyone else is refused with a
 * logged reason (at most one line a second, with a count of the rest). */
static bool s_ctl_allowed(broker_t *b, zmq_msg_t *m, const uint8_t *rid, size_t rlen)
{
    unsigned long uid = 0, pid = 0;
    unsigned long me = (unsigned long)geteuid();
    bool known = s_ctl_cred(m, &uid, &pid);
    if (known && (uid == me || uid == 0))
        return true;
    uint64_t now = s_mono_ms();
    if (now - b->ctl_refused_ms >= 1000) {
        char who[64] = "an unknown user (no peer credentials on the ipc connection)";
        if (known)
            snprintf(who, sizeof(who), "uid %lu (pid %lu)", uid, pid);
        char more[64] = "";
        if (b->ctl_refused_quiet)
            snprintf(more, sizeof(more), " (and %u more refused since the last such line)",
                     b->ctl_refused_quiet);
        broker_log(BROKER_LOG_WARN, NULL, "ctl-refused",
                   "refused a command from %s: only uid %lu (the broker's user) and root may "
                   "command this broker%s",
                   who, me, more);
        b->ctl_refused_ms = now;
        b->ctl_refused_quiet = 0;
    } else {
        b->ctl_refused_quiet++;
    }
    s_ctl_error(b, rid, rlen,
                "refused: this broker takes commands only from uid %lu (its own user) and root; "
                "run hsync as that user",
                me);
    return false;
}

static int s_ctl_one(broker_t *b)
{
    zmq_msg_t parts[2];
    int got = s_recv_parts(b->ctl, parts, 2);
    if (got < 0)
        return 0;
    if (got != 2) {
        s_close_parts(parts, got, 2);
        return 1;
    }
    const uint8_t *rid = zmq_msg_data(&parts[0]);
    size_t rlen = zmq_msg_size(&parts[0]);
    if (!s_ctl_allowed(b, &parts[1], rid, rlen)) {
        s_close_parts(parts, got, 2);
        return 1;
    }
    json_error_t je;
    json_t *req = json_loadb(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), 0, &je);
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!cmd)
        s_ctl_error(b, rid, rlen, "bad request");
    else if (!strcmp(cmd, "status") || !strcmp(cmd, "show"))
        s_ctl_reply(b, rid, rlen, s_status_json(b));
    else if (!strcmp(cmd, "add-child"))
        s_cmd_add_child(b, rid, rlen, req);
    else if (!strcmp(cmd, "link-destination"))
        s_cmd_link_dest(b, rid, rlen, req);
    else if (!strcmp(cmd, "remove-destination"))
        s_cmd_remove(b, rid, rlen, TOPO_ROLE_DEST, json_string_value(json_object_get(req, "name")));
    else if (!strcmp(cmd, "remove-child"))
        s_cmd_remove(b, rid, rlen, TOPO_ROLE_CHILD,
                     json_string_value(json_object_get(req, "name")));
    else if (!strcmp(cmd, "leave"))
        s_cmd_remove(b, rid, rlen, TOPO_ROLE_PARENT, NULL);
    else if (!strcmp(cmd, "sync"))
        s_cmd_sync(b, rid, rlen, req);
    else if (!strcmp(cmd, "replicate-now"))
        s_cmd_push(b, rid, rlen, req, false);
    else if (!strcmp(cmd, "emergency"))
        s_cmd_push(b, rid, rlen, req, true);
    else if (!strcmp(cmd, "verify"))
        s_cmd_verify(b, rid, rlen, req);
    else if (!strcmp(cmd, "poke"))
        repl_events_pump(b->repl); /* a local write: urgent work goes out now */
    else
        s_ctl_error(b, rid, rlen, "unknown request '%s' (is the broker older than the CLI?)", cmd);
    json_decref(req);
    s_close_parts(parts, got, 2);
    return 1;
}

/* ---- timer and signals -------------------------------------------------- */

/* A link's health changed: tell the hierarchy (a sync-problem event goes up
 * to the root, where operators look). */
typedef struct s_problem {
    const uint8_t *payload;
    size_t len;
} s_problem_t;

static int s_problem_txn(store_txn_t *t, void *ctx)
{
    s_problem_t *p = ctx;
    return repl_event_raise(t, REPL_EV_SYNC_PROBLEM, p->payload, p->len, NULL);
}

static void s_raise_sync_problem(broker_t *b, const b_link_t *l, const char *from, const char *to)
{
    store_mpw_t w;
    store_mpw_init(&w);
    /* canonical: keys in byte order */
    store_mpw_map(&w, 5);
    store_mpw_str(&w, "failures");
    store_mpw_uint(&w, l->failures);
    store_mpw_str(&w, "health");
    store_mpw_str(&w, to);
    store_mpw_str(&w, "node");
    store_mpw_str(&w, b->id.id_name);
    store_mpw_str(&w, "peer");
    store_mpw_str(&w, l->name);
    store_mpw_str(&w, "was");
    store_mpw_str(&w, from);
    s_problem_t p = {w.mpw_buf, w.mpw_len};
    int err = store_mpw_error(&w);
    if (!err)
        err = store_write(b->store, s_problem_txn, &p);
    if (err)
        broker_log(BROKER_LOG_ERROR, l->name, "event-failed", "cannot raise sync-problem: %s",
                   hs_strerror(err));
    store_mpw_free(&w);
    repl_events_pump(b->repl);
}

static void s_health(broker_t *b)
{
    for (b_link_t *l = b->links; l; l = l->next) {
        if (l->state == B_JOINING)
            continue;
        l->failures = repl_link_failures(b->repl, l->name);
        int h = l->failures >= b->failed_after     ? B_HEALTH_FAILED
                : l->failures >= b->degraded_after ? B_HEALTH_DEGRADED
                                                   : B_HEALTH_OK;
        if (h == l->health)
            continue;
        broker_log(h == B_HEALTH_OK ? BROKER_LOG_INFO : BROKER_LOG_WARN, l->name, "link-health",
                   "link health %s -> %s (%u consecutive failed runs)", s_health_names[l->health],
                   s_health_names[h], l->failures);
        s_raise_sync_problem(b, l, s_health_names[l->health], s_health_names[h]);
        l->health = h;
    }
}

/* Free the reader slots of processes killed while reading the store (at
 * start and in housekeeping), and say so when the table is nearly full of
 * live readers anyway (at most once a minute). */
static void s_readers(broker_t *b)
{
    unsigned cleared = 0, used = 0, max = 0;
    if (store_readers_check(b->store, &cleared) != HS_OK) {
        broker_log(BROKER_LOG_WARN, NULL, "readers", "cannot check the store's reader table");
        return;
    }
    if (cleared)
        broker_log(BROKER_LOG_INFO, NULL, "stale-readers",
                   "freed %u reader slot%s left by processes that ended while reading the store "
                   "(killed commands)",
                   cleared, cleared == 1 ? "" : "s");
    uint64_t now = s_mono_ms();
    if (store_readers_info(b->store, &used, &max) == HS_OK && max && used >= max - max / 8 &&
        now - b->readers_warned_ms >= 60000) {
        b->readers_warned_ms = now;
        broker_log(BROKER_LOG_WARN, NULL, "readers-full",
                   "the store's reader table is nearly full: %u of %u slots held by running "
                   "processes (too many hsync commands reading at once); new reads fail when it "
                   "is full: let them finish or stop them",
                   used, max);
    }
}

static void s_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    broker_t *b = arg;
    uint64_t now = s_mono_ms();
    for (b_nameq_t *q = b->nameqs, *qn; q; q = qn) {
        qn = q->next;
        if (now >= q->deadline)
            s_nameq_free(b, q);
    }
    for (b_link_t *l = b->links, *next; l; l = next) {
        next = l->next;
        if (l->state == B_JOINING) {
            if (now >= l->join_deadline && l->nameq[0]) {
                s_join_refuse(b, l,
                              "the root of the hierarchy did not confirm in time that its name "
                              "and the names below it are unused (is the link to the parent up?); "
                              "try again");
            } else if (now >= l->join_deadline) {
                broker_log(BROKER_LOG_WARN, l->name, "join-timeout", "no answer from %s",
                           l->endpoint);
                s_ctl_error(b, l->ctl_rid, l->ctl_rid_len,
                            "'%s' did not answer at %s within %d s: either its broker is not "
                            "running, or it refused the connection because it has no invite "
                            "outstanding (the token was already used or has expired: ask for a "
                            "new 'hsync invite' there)",
                            l->name, l->endpoint, B_JOIN_MS / 1000);
                s_link_free(b, l);
            }
            continue;
        }
        s_hb_if_due(b, l, now);
        if (l->state == B_UP && now - l->last_rx > B_DOWN_MS && now - b->busy_ms > B_DOWN_MS) {
            l->state = B_DOWN;
            broker_log(BROKER_LOG_WARN, l->name, "link-down", "no heartbeat for %d s",
                       B_DOWN_MS / 1000);
            repl_peer_down(b->repl, l->name);
        }
    }
    s_dsync_pump(b);
    repl_tick(b->repl);
    broker_log_throttle_flush(&b->log_refused);
    broker_log_throttle_flush(&b->log_untrusted);
    broker_peergate_tick(b->gate, now);
    broker_log_throttle_flush(&b->log_badframe);
    broker_log_throttle_flush(&b->log_peerbad);
    broker_log_throttle_flush(&b->log_join);
    if (now - b->epoch_marked >= 1000) {
        b->epoch_marked = now;
        store_epoch_mark(b->store);
        s_health(b);
        if (++b->ticks_since_keep >= 5) {
            /* trimming the acknowledged prefix is cheap; expiring tombstones
             * scans the log: at most once a minute (sooner for short
             * lifetimes) */
            b->ticks_since_keep = 0;
            uint64_t every = b->tombstone_lifetime_ms / 2;
            every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
            bool expire = now - b->last_expire_ms >= every;
            if (expire)
                b->last_expire_ms = now;
            repl_housekeep(b->repl, expire ? b->tombstone_lifetime_ms : 0);
            s_readers(b);
        }
    }
    s_drain(b);
}

static void s_on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    broker_t *b = arg;
    broker_log(BROKER_LOG_INFO, NULL, "stopping", "signal %d: stopping cleanly", (int)sig);
    event_base_loopexit(b->base, NULL);
}

static void s_on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s_drain(arg);
}

/* ---- start and stop ----------------------------------------------------- */

static int s_load_link(void *ctx, const topo_peer_t *p)
{
    broker_t *b = ctx;
    if (p->pe_role < TOPO_ROLE_PARENT || p->pe_role > TOPO_ROLE_SOURCE)
        return 0;
    if (!s_link_new(b, p, B_DOWN))
        broker_log(BROKER_LOG_ERROR, p->pe_name, "load-failed", "cannot restore the link");
    return 0;
}

static int s_boot_txn(store_txn_t *t, void *ctx)
{
    broker_t *b = ctx;
    int err = topo_identity_ensure(t);
    if (!err)
        err = topo_identity_load(t, &b->id);
    if (!err)
        err = store_meta_get(t, "listen", b->listen, sizeof(b->listen));
    if (!err)
        err = rules_ensure_defaults(t);
    const void *v;
    size_t vl;
    if (!err && store_kv_get(t, STORE_T_META, S_VERIFY_KEY, strlen(S_VERIFY_KEY), &v, &vl) == HS_OK)
        b->verify_last = json_loadb(v, vl, 0, NULL); /* NULL if unreadable: none shown */
    return err;
}

/* Arm the recovery of what this node owns from its parent (restored store). */
static int s_recover_arm_txn(store_txn_t *t, void *ctx)
{
    (void)ctx;
    topo_peer_t parent;
    int err = topo_peer_parent(t, &parent);
    if (err == HS_ENOTFOUND)
        return HS_OK; /* the top of its hierarchy: nobody holds its objects above */
    topo_peer_clear(&parent);
    return err ? err : repl_recover_arm(t);
}

static int s_copied_txn(store_txn_t *t, void *ctx)
{
    return store_meta_put(t, "identity_copied", ctx);
}

/* The store's epoch: a restored or copied store takes a new one (and every
 * watermark acknowledged under the old one is reconciled). A copy also
 * carries the node's identity with it (the folder's keys): two live nodes
 * with one key would take each other's links, so say so, in the log and in
 * `hsync status` (meta "identity_copied": "MS WHY", until --ack-copy). */
static int s_epoch(broker_t *b)
{
    const char *why = NULL;
    int err = store_epoch_check(b->store, b->epoch, &why);
    if (err)
        broker_log(BROKER_LOG_ERROR, NULL, "epoch-failed", "cannot check the store epoch: %s",
                   hs_strerror(err));
    else if (why)
        broker_log(strcmp(why, "new store") ? BROKER_LOG_WARN : BROKER_LOG_INFO, NULL, "new-epoch",
                   "store epoch %s: %s", b->epoch, why);
    if (!err && why && strcmp(why, "new store") != 0) {
        /* restored or copied: take back from the parent what this node owns
         * and lost before the first reconcile up (non-authoritative restore) */
        err = store_write(b->store, s_recover_arm_txn, NULL);
        if (err)
            broker_log(BROKER_LOG_ERROR, NULL, "epoch-failed",
                       "cannot arm the recovery of this node's objects: %s", hs_strerror(err));
        if (!err) {
            char fp[20], rec[512];
            topo_fingerprint(b->id.id_public, fp);
            broker_log(BROKER_LOG_WARN, NULL, "identity-copied",
                       "this node's folder was copied or restored (%s): if the node it was copied "
                       "from still runs, two nodes now share one identity (key %s) and take each "
                       "other's links; stop one of them, or give this copy its own identity (hsync "
                       "init a new folder, import an export of this one, link it anew). 'hsync "
                       "status' shows this until 'hsync status --ack-copy'",
                       why, fp);
            snprintf(rec, sizeof(rec), "%llu %s", (unsigned long long)repl_now_ms(), why);
            int werr = store_write(b->store, s_copied_txn, rec);
            if (werr)
                broker_log(BROKER_LOG_ERROR, NULL, "identity-copied",
                           "cannot record the warning for 'hsync status': %s", hs_strerror(werr));
        }
    }
    return err;
}

static int s_socket_event(broker_t *b, void *sock, struct event **ev)
{
    int fd;
    size_t fdl = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &fdl))
        return HS_ETRANSPORT;
    *ev = event_new(b->base, fd, EV_READ | EV_PERSIST, s_on_sock, b);
    return *ev && event_add(*ev, NULL) == 0 ? HS_OK : HS_ENOMEM;
}

/*
 * The node folder must be safe before anything in it is trusted (OpenSSH's
 * StrictModes): owned by the user that runs the broker, and writable by no
 * one else (nor its store/ folder), or another local user could swap the
 * store, the keys or the control socket. Read access of others is removed
 * (mode 0700). Logs the reason and returns HS_EACCES when it is not safe.
 */
static int s_dir_check(broker_t *b)
{
    char path[4200];
    const char *const subs[] = {"", "/store"};
    uid_t me = geteuid();
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s%s", b->dir, subs[i]);
        struct stat st;
        if (stat(path, &st) != 0) {
            if (i > 0 && errno == ENOENT)
                continue;
            broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot check %s: %s", path,
                       strerror(errno));
            return HS_EACCES;
        }
        if (st.st_uid != me) {
            broker_log(BROKER_LOG_ERROR, NULL, "unsafe-folder",
                       "%s belongs to uid %lu, not to uid %lu that runs the broker: other users "
                       "must not control a node folder (chown -R %lu %s, or run the broker as "
                       "uid %lu)",
                       path, (unsigned long)st.st_uid, (unsigned long)me, (unsigned long)me, b->dir,
                       (unsigned long)st.st_uid);
            return HS_EACCES;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            broker_log(BROKER_LOG_ERROR, NULL, "unsafe-folder",
                       "%s is writable by %s (mode %04o): other local users could replace the "
                       "store, the keys or the control socket; run 'chmod 700 %s' and check "
                       "what is in it",
                       path, (st.st_mode & S_IWOTH) ? "every user" : "its group",
                       (unsigned)(st.st_mode & 07777), path);
            return HS_EACCES;
        }
        if ((st.st_mode & 077) && chmod(path, 0700) != 0) {
            broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot make %s mode 0700: %s", path,
                       strerror(errno));
            return HS_EACCES;
        }
    }
    return HS_OK;
}

static int s_start(broker_t *b)
{
    char path[4200];
    int derr = s_dir_check(b);
    if (derr)
        return derr;
    snprintf(path, sizeof(path), "%s/broker.lock", b->dir);
    b->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (b->lockfd < 0 || flock(b->lockfd, LOCK_EX | LOCK_NB) != 0) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed",
                   "another broker already runs for %s (stop it first)", b->dir);
        return HS_EEXIST;
    }
    int err = store_open(b->dir, 0, &b->store);
    if (!err)
        s_readers(b);
    if (!err)
        err = store_write(b->store, s_boot_txn, b);
    if (!err)
        err = s_epoch(b);
    if (err) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot open the node at %s: %s", b->dir,
                   hs_strerror(err));
        return err;
    }
    repl_io_t io = {.io_ctx = b,
                    .io_send = s_io_send,
                    .io_dir_to = s_io_dir_to,
                    .io_dir_from = s_io_dir_from,
                    .io_run_progress = s_io_run_progress,
                    .io_peer_up = s_io_peer_up,
                    .io_keepalive = s_io_keepalive,
                    .io_branch = s_io_branch,
                    .io_peers = s_io_peers,
                    .io_elsewhere = s_io_elsewhere,
                    .io_run_done = s_io_run_done,
                    .io_verify_done = s_io_verify_done,
                    .io_log = s_io_log};
    b->repl = repl_new(b->store, &io);
    b->zctx = zmq_ctx_new();
    if (b->zctx) /* shutdown never waits on unsent messages (linger 0 everywhere) */
        zmq_ctx_set(b->zctx, ZMQ_BLOCKY, 0);
    b->base = event_base_new();
    if (!b->repl || !b->zctx || !b->base)
        return HS_ENOMEM;
    int linger = 0, one = 1;
    b->zap = zmq_socket(b->zctx, ZMQ_REP);
    if (b->zap)
        zmq_setsockopt(b->zap, ZMQ_LINGER, &linger, sizeof(linger));
    if (!b->zap || zmq_bind(b->zap, "inproc://zeromq.zap.01"))
        return HS_ETRANSPORT;
    b->router = zmq_socket(b->zctx, ZMQ_ROUTER);
    zmq_setsockopt(b->router, ZMQ_LINGER, &linger, sizeof(linger));
    /* No ROUTER_HANDOVER: a second connection presenting a routing id in use
     * is ignored by libzmq, never given the first one's traffic. Our peers'
     * ids are random (s_dial) and routes follow ZAP's User-Id (s_router_one). */
    zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(b->router, ZMQ_CURVE_SERVER, &one, sizeof(one));
    zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, b->id.id_secret, TOPO_KEY_LEN);
    zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, "hsync", 5);
    int maxmsg = (int)TOPO_FRAME_MAX;
    int64_t maxmsg64 = maxmsg;
    zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg64, sizeof(maxmsg64));
    char ep_tcp[TOPO_ENDPOINT_MAX + 64];
    if (zmq_bind(b->router, b->listen)) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot listen on %s: %s", b->listen,
                   zmq_strerror(zmq_errno()));
        return HS_ETRANSPORT;
    }
    /* the accept gate: before the ctl socket, whose accept libzmq asserts on
     * when descriptors run out */
    size_t lplen = sizeof(ep_tcp);
    unsigned lport = 0;
    if (!zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, ep_tcp, &lplen)) {
        const char *colon = strrchr(ep_tcp, ':');
        lport = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    }
    err = broker_peergate_open(b->zctx, b->router, lport, &b->gate);
    if (err) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot watch connections to %s: %s",
                   b->listen, hs_strerror(err));
        return err;
    }
    char ep[4200];
    err = broker_ctl_endpoint(b->dir, ep, sizeof(ep));
    if (err)
        return err;
    unlink(ep + 6); /* a stale socket file from a killed broker */
    b->ctl = zmq_socket(b->zctx, ZMQ_ROUTER);
    zmq_setsockopt(b->ctl, ZMQ_LINGER, &linger, sizeof(linger));
    /* libzmq binds ipc:// in this thread: the socket file is born 0600
     * whatever the umask, and chmod makes sure of it */
    mode_t um = umask(077);
    int brc = zmq_bind(b->ctl, ep);
    umask(um);
    if (brc) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot bind %s: %s", ep,
                   zmq_strerror(zmq_errno()));
        return HS_ETRANSPORT;
    }
    if (chmod(ep + 6, 0600) != 0) {
        broker_log(BROKER_LOG_ERROR, NULL, "start-failed", "cannot make %s mode 0600: %s", ep + 6,
                   strerror(errno));
        return HS_EACCES;
    }
    if (s_socket_event(b, b->zap, &b->ev_zap) || s_socket_event(b, b->router, &b->ev_router) ||
        s_socket_event(b, b->ctl, &b->ev_ctl) ||
        s_socket_event(b, broker_peergate_socket(b->gate), &b->ev_gate))
        return HS_ENOMEM;
    char http[256];
    int herr = broker_http_open(b->base, b->store, s_http_status, b, &b->http, http);
    if (herr == HS_ETRANSPORT)
        broker_log(BROKER_LOG_ERROR, NULL, "http-failed",
                   "cannot serve the status page on %s: the port is in use or the address "
                   "is not this machine's (free the port and restart the broker); replication "
                   "goes on without it",
                   http);
    else if (herr && herr != HS_ENOTFOUND)
        broker_log(BROKER_LOG_ERROR, NULL, "http-failed",
                   "cannot serve the status page on '%s': %s; replication goes on without it", http,
                   hs_strerror(herr));
    else if (!herr)
        broker_log(BROKER_LOG_INFO, NULL, "http", "status page on http://%s/", http);
    b->boot_ms = s_mono_ms();
    b->ev_drain = event_new(b->base, -1, 0, s_on_drain, b);
    b->ev_tick = event_new(b->base, -1, EV_PERSIST, s_on_tick, b);
    b->ev_int = evsignal_new(b->base, SIGINT, s_on_signal, b);
    b->ev_term = evsignal_new(b->base, SIGTERM, s_on_signal, b);
    struct timeval tick = {0, B_TICK_MS * 1000};
    if (!b->ev_drain || !b->ev_tick || !b->ev_int || !b->ev_term || event_add(b->ev_tick, &tick) ||
        event_add(b->ev_int, NULL) || event_add(b->ev_term, NULL))
        return HS_ENOMEM;
    store_txn_t *t;
    err = store_txn_begin(b->store, false, &t);
    if (!err) {
        err = topo_peer_each(t, 0, s_load_link, b);
        store_txn_abort(&t);
    }
    return err;
}

static void s_stop(broker_t *b)
{
    broker_http_destroy(&b->http);
    repl_destroy(&b->repl);
    while (b->jobs) {
        b_job_t *j = b->jobs;
        b->jobs = j->next;
        json_decref(j->runs);
        free(j);
    }
    while (b->dsyncs) {
        b_dsync_t *d = b->dsyncs;
        b->dsyncs = d->next;
        json_decref(d->req);
        free(d);
    }
    free(b->names);
    json_decref(b->verify_last);
    while (b->links)
        s_link_free(b, b->links);
    while (b->nameqs)
        s_nameq_free(b, b->nameqs);
    struct event **evs[] = {&b->ev_zap, &b->ev_router, &b->ev_ctl,   &b->ev_tick,
                            &b->ev_int, &b->ev_term,   &b->ev_drain, &b->ev_gate};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i])
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
    broker_peergate_destroy(&b->gate);
    void **socks[] = {&b->router, &b->ctl, &b->zap};
    for (size_t i = 0; i < 3; i++) {
        if (*socks[i])
            zmq_close(*socks[i]);
        *socks[i] = NULL;
    }
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    if (b->base)
        event_base_free(b->base);
    char ep[4200];
    if (b->lockfd >= 0 && b->store && broker_ctl_endpoint(b->dir, ep, sizeof(ep)) == HS_OK)
        unlink(ep + 6);
    store_close(&b->store);
    store_mpw_free(&b->w);
    memset(&b->id, 0, sizeof(b->id));
    if (b->lockfd >= 0)
        close(b->lockfd);
}

/* Raise the soft descriptor limit to the hard one: the HTTP port takes up to
 * its connection limit (broker/http.h) and peers, the ctl socket and the
 * store need the rest. Logged either way, so an operator sees the figure. */
static void s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    broker_log(BROKER_LOG_INFO, NULL, "descriptors",
               "up to %llu open descriptors (hard limit %llu)", (unsigned long long)rl.rlim_cur,
               (unsigned long long)rl.rlim_max);
}

int broker_serve(const char *dir)
{
    broker_t *b = calloc(1, sizeof(*b));
    if (!b)
        return HS_ENOMEM;
    b->lockfd = -1;
    uint8_t sid[16];
    RAND_bytes(sid, sizeof(sid));
    store_hex(sid, sizeof(sid), b->session);
    b->degraded_after = s_env_u32("HSYNC_DEGRADED_AFTER", 3);
    const char *life = getenv("HSYNC_TOMBSTONE_LIFETIME");
    b->tombstone_lifetime_ms = 30ull * 86400 * 1000;
    if (life && *life && rules_parse_duration(life, &b->tombstone_lifetime_ms))
        broker_log(BROKER_LOG_WARN, NULL, "config",
                   "HSYNC_TOMBSTONE_LIFETIME '%s' is not a "
                   "duration (like 30d, 12h, 10s): using 30d",
                   life);
    b->failed_after = s_env_u32("HSYNC_FAILED_AFTER", 10);
    snprintf(b->dir, sizeof(b->dir), "%s", dir);
    b->log_refused.blt_interval_ms = B_LOG_EVERY_MS;
    b->log_untrusted.blt_interval_ms = B_LOG_EVERY_MS;
    b->log_badframe.blt_interval_ms = B_LOG_EVERY_MS;
    b->log_peerbad.blt_interval_ms = B_LOG_EVERY_MS;
    b->log_peerbad.blt_burst = 32; /* a linked peer's mistakes are worth a few lines */
    b->log_join.blt_interval_ms = B_LOG_EVERY_MS;
    store_mpw_init(&b->w);
    signal(SIGPIPE, SIG_IGN);
    s_raise_nofile();
    int err = s_start(b);
    if (!err) {
        broker_log(BROKER_LOG_INFO, NULL, "started", "node '%s' listening on %s", b->id.id_name,
                   b->listen);
        s_drain(b);
        event_base_dispatch(b->base);
        broker_log(BROKER_LOG_INFO, NULL, "stopped", "node '%s' stopped", b->id.id_name);
    }
    s_stop(b);
    free(b);
    return err;
}
