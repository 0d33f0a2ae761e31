#include "broker/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t broker_log_escape(char *out, size_t cap, const char *in, bool quoted)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!cap)
        return 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        char e[4];
        size_t n;
        if (quoted && (*p == '"' || *p == '\\')) {
            e[0] = '\\', e[1] = (char)*p, n = 2;
        } else if (*p < 0x20 || *p >= 0x7f || (!quoted && (*p == ' ' || *p == '"' || *p == '\\'))) {
            e[0] = '\\', e[1] = 'x', e[2] = hex[*p >> 4], e[3] = hex[*p & 15], n = 4;
        } else {
            e[0] = (char)*p, n = 1;
        }
        if (o + n >= cap) /* never half an escape */
            break;
        memcpy(out + o, e, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

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
    char raw[1024];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    /* Text in a line may come from a peer (a name, a reason): escape every
     * field so that no input can end the line or forge a field. */
    char msg[4 * sizeof(raw)], who[4 * 80], what[4 * 32];
    broker_log_escape(msg, sizeof(msg), raw, true);
    broker_log_escape(who, sizeof(who), peer && *peer ? peer : "-", false);
    broker_log_escape(what, sizeof(what), event, false);
    fprintf(stderr, "%s.%03ldZ level=%s peer=%s event=%s msg=\"%s\"\n", when, ts.tv_nsec / 1000000,
            names[level & 3], who, what, msg);
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
    bool open = t->blt_window_ms && now - t->blt_window_ms < s_interval(t);
    if (open && t->blt_written < (t->blt_burst ? t->blt_burst : 1)) {
        t->blt_written++; /* within the interval's burst: written as it is */
        va_start(ap, fmt);
        char line[768];
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        broker_log(level, peer, event, "%s", line);
        return true;
    }
    if (open) {
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
    t->blt_written = 1;
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
    t->blt_written = 1;
    t->blt_suppressed = 0;
}
