/*
 * alkaidd's log: one line per event on stderr, with a level.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) each line starts with the journal's priority
 * prefix ("<3>"), so that journalctl shows levels; otherwise with a UTC timestamp and the level
 * name. libalkaid never logs above debug (CONVENTIONS.md): the daemon logs once, where it decides
 * what to do.
 *
 * Thread rule: any thread may log; each line is written with one stdio call.
 */
#ifndef ALKD_LOG_H
#define ALKD_LOG_H

#include <stdbool.h>

typedef enum alkd_log_level {
    ALKD_LOG_ERROR = 3, /* the syslog priorities, so that the journal prefix is the level */
    ALKD_LOG_WARN = 4,
    ALKD_LOG_INFO = 6,
    ALKD_LOG_DEBUG = 7,
} alkd_log_level;

/* Sets the most verbose level written; detects the journal from the environment. */
void alkd_log_init(alkd_log_level level);

/* The program name written in each line ("alkaidd" by default; borrowed, static). */
void alkd_log_set_name(const char *name);

/* Parses "error", "warn", "info" or "debug"; returns false for anything else. */
bool alkd_log_level_parse(const char *text, alkd_log_level *ret_level);

void alkd_log(alkd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define alkd_error(...) alkd_log(ALKD_LOG_ERROR, __VA_ARGS__)
#define alkd_warn(...) alkd_log(ALKD_LOG_WARN, __VA_ARGS__)
#define alkd_info(...) alkd_log(ALKD_LOG_INFO, __VA_ARGS__)
#define alkd_debug(...) alkd_log(ALKD_LOG_DEBUG, __VA_ARGS__)

#endif
