/*
 * alkaidd's leveled logging to stderr (see log.h).
 *
 * Thread rule: the level and the journal flag are set once before any thread starts; a line is
 * formatted into a local buffer and written with one fputs, so lines from threads never mix.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static alkd_log_level max_level = ALKD_LOG_INFO;
static bool journal;

/* JOURNAL_STREAM is "DEV:INODE" of the journal's stream; it is ours if stderr matches. */
static bool stderr_is_journal(void) {
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev;
    unsigned long long ino;
    struct stat st;
    if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0) {
        return false;
    }
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void alkd_log_init(alkd_log_level level) {
    max_level = level;
    journal = stderr_is_journal();
}

bool alkd_log_level_parse(const char *text, alkd_log_level *ret_level) {
    static const struct {
        const char *name;
        alkd_log_level level;
    } names[] = {{"error", ALKD_LOG_ERROR},
                 {"warn", ALKD_LOG_WARN},
                 {"warning", ALKD_LOG_WARN},
                 {"info", ALKD_LOG_INFO},
                 {"debug", ALKD_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i].name) == 0) {
            *ret_level = names[i].level;
            return true;
        }
    }
    return false;
}

static const char *program = "alkaidd";

void alkd_log_set_name(const char *name) {
    program = name;
}

static const char *level_name(alkd_log_level level) {
    switch (level) {
    case ALKD_LOG_ERROR:
        return "error";
    case ALKD_LOG_WARN:
        return "warning";
    case ALKD_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void alkd_log(alkd_log_level level, const char *fmt, ...) {
    if (level > max_level) {
        return;
    }
    char line[1024];
    size_t len;
    if (journal) {
        len = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
    } else {
        struct timespec ts;
        struct tm tm;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                ".%03ldZ %s[%d] %s: ", ts.tv_nsec / 1000000, program, (int)getpid(),
                                level_name(level));
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    (void)fputs(line, stderr);
}
