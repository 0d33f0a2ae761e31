#include "broker/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void broker_log(int level, const char *peer, const char *event, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* keep one event on one line, quotes balanced */
        if (*p == '\n' || *p == '"')
            *p = *p == '"' ? '\'' : ' ';
    fprintf(stderr, "%s.%03ldZ level=%s peer=%s event=%s msg=\"%s\"\n", when, ts.tv_nsec / 1000000,
            names[level & 3], peer ? peer : "-", event, msg);
    fflush(stderr);
}
