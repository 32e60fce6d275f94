/*
 * What the daemon benchmarks (bench_daemon, bench_hgq) share: their own alkaidd on an ipc socket
 * in a temporary directory, and the check of a reply.
 */
#ifndef ALK_BENCH_COMMON_H
#define ALK_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A benchmark's own alkaidd; the caller embeds it. */
typedef struct bench_daemon {
    char dir[64];  /* the temporary directory of its sockets */
    char url[600]; /* its request socket */
    pid_t pid;     /* 0 when none was started */
} bench_daemon;

/*
 * Starts `alkaidd` (a path) listening on `d->url` and a control socket, both in a new temporary
 * directory named after `name`, with the extra arguments `extra` (a NULL-terminated list, borrowed
 * for the call; NULL: none), and waits up to 5 s for its socket to appear. False (with a message
 * on stderr) when the directory cannot be made.
 */
bool bench_daemon_start(bench_daemon *d, const char *name, const char *alkaidd,
                        const char *const *extra);
/* Stops the daemon bench_daemon_start started (SIGTERM, then waits) and removes its directory;
 * nothing for a zeroed `d` that was never started. */
void bench_daemon_stop(bench_daemon *d);

/* Whether a reply's bytes decode to {ok: true}; otherwise its error message (or "bad reply") goes
 * into `error` (cap bytes) unless `error` is NULL. */
bool bench_reply_ok(const void *bytes, size_t len, char *error, size_t cap);

#endif
