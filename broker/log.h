/*
 * log.h - the broker's structured log: one line per event on stderr,
 *     2026-11-23T20:15:00.123Z level=info peer=child1 event=link-up msg="..."
 * Deep code never logs; the broker logs what it decides and why.
 */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

enum broker_log_level { BROKER_LOG_DEBUG, BROKER_LOG_INFO, BROKER_LOG_WARN, BROKER_LOG_ERROR };

/* peer may be NULL ("-"). event is a short kebab-case word. */
void broker_log(int level, const char *peer, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
