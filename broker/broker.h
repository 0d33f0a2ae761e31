/*
 * broker.h - the hsync daemon: one per node folder.
 *
 * broker_serve() opens the node's store, takes DIR/broker.lock, binds
 *   - the peer endpoint (meta "listen"), a ZeroMQ ROUTER with CURVE
 *     encryption; a ZAP handler admits only keys in the trust table (and,
 *     while an invite is outstanding, unknown keys that may only present it),
 *     and names each connection by a User-Id on every frame: the key, or
 *     "invite-only:" and the key; frames to a peer go to the connection of
 *     its latest heartbeat with its key, never by a routing id a client chose
 *     (no ROUTER_HANDOVER; the DEALERs we dial present random routing ids);
 *   - the command-line endpoint ipc://DIR/ctl.sock (broker/ctl.h),
 * connects a CURVE DEALER to each child (the parent always dials its
 * children; the child answers through its ROUTER), and runs a libevent loop
 * with the sockets, a heartbeat timer and SIGINT/SIGTERM on it until a signal
 * stops it. Everything it decides is logged through broker/log.h.
 *
 * Link state machine (one per parent/child link):
 *
 *   JOINING --JOINED ok--> DOWN --frame received--> UP
 *      |                     ^                        |
 *      +--refused/timeout    +--no frame for 3 s------+
 *        (link dropped)
 *
 * Heartbeats go out every second on every link; any frame counts as a sign
 * of life.
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

/* Run the broker of node folder dir in the foreground. Returns HS_OK after a
 * clean stop, or an error (already logged) when it could not start. */
int broker_serve(const char *dir);

#endif
