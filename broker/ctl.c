#include "broker/ctl.h"

#include "store/hs_error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

bool broker_ctl_running(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/broker.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool running = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return running;
}

int broker_ctl_endpoint(const char *dir, char *out, size_t outlen)
{
    char abs[4096];
    if (!realpath(dir, abs))
        return HS_ENOENT;
    int n = snprintf(out, outlen, "ipc://%s/ctl.sock", abs);
    return n < 0 || (size_t)n >= outlen ? HS_ETOOBIG : HS_OK;
}

static long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int broker_ctl_call(const char *dir, const json_t *req, int timeout_ms, json_t **resp,
                    broker_ctl_progress_fn progress, void *ctx)
{
    *resp = NULL;
    if (!broker_ctl_running(dir))
        return HS_ENOBROKER;
    char ep[4200];
    int err = broker_ctl_endpoint(dir, ep, sizeof(ep));
    if (err)
        return err;
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text)
        return HS_ENOMEM;
    void *zctx = zmq_ctx_new();
    void *sock = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL;
    err = HS_ETRANSPORT;
    if (!sock)
        goto out;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(sock, ep) != 0 || zmq_send(sock, text, strlen(text), 0) < 0)
        goto out;
    long deadline = s_now_ms() + timeout_ms;
    for (;;) {
        long left = deadline - s_now_ms();
        if (left <= 0) {
            err = HS_ETIMEDOUT;
            goto out;
        }
        zmq_pollitem_t pi = {sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&pi, 1, left < 1000 ? left : 1000);
        if (rc < 0)
            goto out;
        if (rc == 0) {
            if (!broker_ctl_running(dir)) { /* it stopped (or crashed) meanwhile */
                err = HS_ENOBROKER;
                goto out;
            }
            continue;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            goto out;
        }
        json_error_t je;
        json_t *j = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, &je);
        zmq_msg_close(&m);
        if (!json_is_object(j)) {
            json_decref(j);
            err = HS_EMALF;
            goto out;
        }
        json_t *p = json_object_get(j, "progress");
        if (p) {
            if (progress)
                progress(ctx, p);
            json_decref(j);
            continue;
        }
        *resp = j;
        err = HS_OK;
        break;
    }
out:
    free(text);
    if (sock)
        zmq_close(sock);
    if (zctx)
        zmq_ctx_term(zctx);
    return err;
}

void broker_ctl_poke(const char *dir)
{
    if (!broker_ctl_running(dir))
        return;
    char ep[4200];
    if (broker_ctl_endpoint(dir, ep, sizeof(ep)))
        return;
    void *zctx = zmq_ctx_new();
    void *sock = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL;
    if (sock) {
        int linger = 200; /* long enough to hand the poke over on a local socket */
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
        static const char poke[] = "{\"cmd\":\"poke\"}";
        if (zmq_connect(sock, ep) == 0)
            zmq_send(sock, poke, sizeof(poke) - 1, ZMQ_DONTWAIT);
        zmq_close(sock);
    }
    if (zctx)
        zmq_ctx_term(zctx);
}
