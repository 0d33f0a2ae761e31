/*
 * peergate.h - the accept gate of the peer port (--listen, the CURVE ROUTER).
 *
 * libzmq accepts every TCP connection and keeps its descriptor until the
 * ZMTP handshake ends or ZMQ_HANDSHAKE_IVL passes; idle connections that
 * never send a greeting would otherwise use up the broker's descriptors, and
 * libzmq 4.3 aborts the process when its ipc accept (the ctl socket) then
 * fails with EMFILE. The gate watches the ROUTER through zmq_socket_monitor
 * (ZMQ_EVENT_ACCEPTED / ZMQ_EVENT_DISCONNECTED, whose value is the
 * connection's descriptor) and keeps the accepted connections that have not
 * yet delivered a frame (broker_peergate_seen) with their accept times.
 * When they are more than the limit (derived from the descriptor limit:
 * (soft - 512) / 2, between 16 and 256) the one accepted longest ago is shut
 * down; one pending longer than BROKER_PEERGATE_PENDING_MS is too. The gate
 * only calls shutdown(2) on the descriptor, after checking that it is still
 * a TCP socket on the listen port; libzmq sees the end of the stream and
 * closes the descriptor itself. Closures are logged once per 10 s with a
 * count and counted (broker_peergate_security).
 *
 * A legitimate peer completes its handshake in milliseconds and sends a
 * heartbeat at once, so it is only closed if more than the limit of newer
 * connections arrive while it handshakes; it then reconnects.
 */
#ifndef BROKER_PEERGATE_H
#define BROKER_PEERGATE_H

#include <jansson.h>
#include <stdint.h>

/* libzmq's handshake timeout set on the ROUTER, and the gate's own deadline
 * for a connection that has sent no frame yet. */
#define BROKER_PEERGATE_HANDSHAKE_MS 5000
#define BROKER_PEERGATE_PENDING_MS 10000

typedef struct broker_peergate broker_peergate_t;

/* Watch router (bound to TCP port port) through a monitor socket of zctx.
 * Sets ZMQ_HANDSHAKE_IVL on router. Returns HS_OK and *out, HS_ENOMEM or
 * HS_ETRANSPORT. */
int broker_peergate_open(void *zctx, void *router, unsigned port, broker_peergate_t **out);

/* The monitor socket: the caller polls it (ZMQ_FD) and calls
 * broker_peergate_events when it is readable. */
void *broker_peergate_socket(broker_peergate_t *g);

/* Read the monitor's pending events and enforce the limit. Returns the number
 * of events read (0 when there were none). now_ms is a monotonic clock. */
int broker_peergate_events(broker_peergate_t *g, uint64_t now_ms);

/* A frame arrived from descriptor fd (zmq_msg_get(ZMQ_SRCFD)): its handshake
 * is complete, the gate leaves it alone. */
void broker_peergate_seen(broker_peergate_t *g, int fd);

/* Close connections pending longer than BROKER_PEERGATE_PENDING_MS and flush
 * the log throttle. Call from a timer. */
void broker_peergate_tick(broker_peergate_t *g, uint64_t now_ms);

/* Add peer_connections_pending, peer_connection_limit and
 * peer_connections_closed to sec. */
void broker_peergate_security(const broker_peergate_t *g, json_t *sec);

/* Stop monitoring the ROUTER, close the monitor socket and free the gate;
 * *g becomes NULL. Call before closing the ROUTER. */
void broker_peergate_destroy(broker_peergate_t **g);

#endif
