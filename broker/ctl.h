/*
 * ctl.h - the command line's channel to its node's running broker.
 *
 * The broker binds a ZeroMQ ROUTER on ipc://DIR/ctl.sock (the node folder is
 * mode 0700, so only its owner can reach it) and holds an exclusive flock on
 * DIR/broker.lock while it runs. A request is one JSON object
 * {"cmd": NAME, ...}; the reply is one JSON object {"ok": true, ...} or
 * {"ok": false, "error": SENTENCE}. Long commands may send any number of
 * {"progress": {...}} messages before the reply.
 */
#ifndef BROKER_CTL_H
#define BROKER_CTL_H

#include <jansson.h>
#include <stdbool.h>

/* True when a broker holds the node's lock. */
bool broker_ctl_running(const char *dir);

/* Path helpers: DIR/ctl.sock endpoint and DIR/broker.lock (out: 4096 bytes). */
int broker_ctl_endpoint(const char *dir, char *out, size_t outlen);

/*
 * Send req (borrowed) and wait up to timeout_ms for the reply (owned *resp).
 * progress, if not NULL, is called for each progress message. Returns HS_OK,
 * HS_ENOBROKER when none runs, HS_ETIMEDOUT, HS_EMALF (bad reply).
 */
typedef void (*broker_ctl_progress_fn)(void *ctx, const json_t *progress);
int broker_ctl_call(const char *dir, const json_t *req, int timeout_ms, json_t **resp,
                    broker_ctl_progress_fn progress, void *ctx);

/* Tell the running broker (if any) that the store changed, so urgent work
 * (event outboxes) goes out now instead of at its next tick. Never waits
 * for an answer; does nothing when no broker runs. */
void broker_ctl_poke(const char *dir);

#endif
