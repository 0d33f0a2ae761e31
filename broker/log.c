#include "broker/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static void s_vlog(int level, const char *peer, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void s_vlog(int level, const char *peer, const char *event, const char *fmt, va_list ap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    for (char *p = msg; *p; p++) /* keep one event on one line, quotes balanced */
        if (*p == '\n' || *p == '"')
            *p = *p == '"' ? '\'' : ' ';
    fprintf(stderr, "%s.%03ldZ level=%s peer=%s event=%s msg=\"%s\"\n", when, ts.tv_nsec / 1000000,
            names[level & 3], peer ? peer : "-", event, msg);
    fflush(stderr);
}

void broker_log(int level, const char *peer, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, peer, event, fmt, ap);
    va_end(ap);
}

/* ---- throttled lines ------------------------------------------------------ */

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_interval(const broker_log_throttle_t *t)
{
    return t->blt_interval_ms ? t->blt_interval_ms : 10000;
}

bool broker_log_throttled(broker_log_throttle_t *t, int level, const char *peer, const char *event,
                          const char *fmt, ...)
{
    uint64_t now = s_mono_ms();
    t->blt_total++;
    va_list ap;
    if (t->blt_window_ms && now - t->blt_window_ms < s_interval(t)) {
        t->blt_suppressed++;
        t->blt_level = level;
        snprintf(t->blt_event, sizeof(t->blt_event), "%s", event);
        va_start(ap, fmt);
        vsnprintf(t->blt_last, sizeof(t->blt_last), fmt, ap);
        va_end(ap);
        return false;
    }
    char msg[768];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->blt_suppressed)
        broker_log(level, peer, event,
                   "%s (and %" PRIu64 " more like it in the last %" PRIu64 " s)", msg,
                   t->blt_suppressed, (now - t->blt_window_ms + 999) / 1000);
    else
        broker_log(level, peer, event, "%s", msg);
    t->blt_window_ms = now;
    t->blt_suppressed = 0;
    return true;
}

void broker_log_throttle_flush(broker_log_throttle_t *t)
{
    uint64_t now = s_mono_ms();
    if (!t->blt_suppressed || now - t->blt_window_ms < s_interval(t))
        return;
    broker_log(t->blt_level, NULL, t->blt_event,
               "%" PRIu64 " more like this in the last %" PRIu64 " s, the last: %s",
               t->blt_suppressed, (now - t->blt_window_ms + 999) / 1000, t->blt_last);
    t->blt_window_ms = now;
    t->blt_suppressed = 0;
}
