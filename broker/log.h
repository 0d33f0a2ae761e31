/*
 * log.h - the broker's structured log: one line per event on stderr,
 *     2026-11-23T20:15:00.123Z level=info peer=child1 event=link-up msg="..."
 * Deep code never logs; the broker logs what it decides and why.
 */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum broker_log_level { BROKER_LOG_DEBUG, BROKER_LOG_INFO, BROKER_LOG_WARN, BROKER_LOG_ERROR };

/* peer may be NULL ("-"). event is a short kebab-case word. Every field is
 * escaped as broker_log_escape says (peer and event unquoted, msg quoted), so
 * no text from a peer can end the line or forge a field. */
void broker_log(int level, const char *peer, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Copy in to out (cap bytes with the NUL, cut before an escape that would
 * not fit) so that it reads as one log field. Bytes below 0x20 and from 0x7f
 * up become \xNN. quoted (text between double quotes): '"' and '\' become
 * \" and \\. Unquoted (peer=, event=): space, '"' and '\' become \xNN too.
 * Returns the length written.
 */
size_t broker_log_escape(char *out, size_t cap, const char *in, bool quoted);

/*
 * A throttle for one cause of lines a peer can repeat at will (refused
 * handshakes, failing accepts, dropped frames): the first line of an interval
 * (the first blt_burst lines, if set) is written, the others are only counted. The next line
 * written says how many were left out; broker_log_throttle_flush() writes that count when the flood
 * stops. One throttle per cause; zero-initialise it with the interval:
 *
 *     static broker_log_throttle_t t = {.blt_interval_ms = 10000};
 *     broker_log_throttled(&t, BROKER_LOG_WARN, NULL, "refused", "from %s", addr);
 *     ...
 *     broker_log_throttle_flush(&t);   (from a timer)
 *
 * Not thread-safe (the broker logs from its one loop).
 */
typedef struct broker_log_throttle {
    uint64_t blt_interval_ms; /* set by the owner; 0 means 10 s */
    uint32_t blt_burst;       /* set by the owner: lines written per interval; 0 means 1 */
    uint32_t blt_written;     /* lines written in the current interval */
    uint64_t blt_window_ms;   /* monotonic ms the current interval began; 0 before the first */
    uint64_t blt_suppressed;  /* lines counted, not written, in the current interval */
    uint64_t blt_total;       /* every line asked for, written or not */
    int blt_level;            /* of the last line left out: flush writes it so */
    char blt_event[32];
    char blt_last[256]; /* text of the last line left out */
} broker_log_throttle_t;

/* Like broker_log, through throttle t. Returns true when the line was
 * written, false when it was only counted. */
bool broker_log_throttled(broker_log_throttle_t *t, int level, const char *peer, const char *event,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* If lines were left out and t's interval is over, write one line with
 * their count and the last of them, and start a new interval. Cheap: call it
 * from a timer. */
void broker_log_throttle_flush(broker_log_throttle_t *t);

#endif
