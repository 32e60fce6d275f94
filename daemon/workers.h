/*
 * The daemon's worker processes: a pool of `alkaidd --worker` processes (worker.c) that run the
 * conversions, one job each at a time.
 *
 * Why processes: the tracer plugins parse user files (zip, HDF5) and run third-party code; a
 * crash, an abort(), an exit(), an endless loop or an unbounded allocation in a plugin must cost
 * one request, not the daemon and every request in flight. Each worker builds its own plugin
 * generation from the same manifests as the daemon's; a reload starts workers of the new
 * generation and retires the old ones, each when its job ends.
 *
 * Each worker is watched: its exit status and the status page (worker_proto.h) tell how a job
 * was lost (which signal, whether the memory ceiling was reached, the last trace the tracer
 * named); a job past its deadline is cancelled (SIGUSR1) and its worker killed if it has not
 * answered after a grace time; a worker whose RSS passes the ceiling is killed (RLIMIT_AS in the
 * worker catches fast growth first). A dead worker is replaced; a worker that dies before it is
 * ready is retried with a growing delay, and while none can start the owner is told, so that
 * waiting jobs are answered rather than left to their deadlines.
 *
 * Thread rule: loop thread only; every callback runs on the loop thread.
 */
#ifndef ALKD_WORKERS_H
#define ALKD_WORKERS_H

#include "worker_proto.h"

#include "core/vec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct alkd_worker alkd_worker;

enum { ALKD_WORKER_HEAVY_NICE = 10 };

/* What the pool reports to its owner (jobs.c). `job` is the owner's pointer given to
 * alkd_workers_run. */
typedef struct alkd_workers_events {
    void *ctx;
    /* A worker became free: the owner may give it a job. */
    void (*idle)(void *ctx);
    /* The worker of `job` reports the on-demand plugins it has loaded: a PLUGINS payload
     * (worker_proto.h; borrowed for the call, not checked yet). Comes before the result. */
    void (*plugins)(void *ctx, void *job, const void *payload, size_t len);
    /* The worker of `job` answered with `code` and the encoded reply (borrowed for the call). */
    void (*result)(void *ctx, void *job, int code, const void *reply, size_t len);
    /* The worker of `job` died before answering: `code` is ALK_ENOMEM (memory ceiling) or
     * ALK_EPLUGIN (a crash: `what` names the signal or exit status), `last_trace` the last
     * trace the tracer named ("" when none). */
    void (*lost)(void *ctx, void *job, int code, const char *what, const char *last_trace);
    /* No worker of the current generation can start: `why` says what the last one reported. */
    void (*unavailable)(void *ctx, const char *why);
} alkd_workers_events;

typedef struct alkd_workers_config {
    size_t n;               /* workers of the current generation */
    uint64_t memory_bytes;  /* each worker's memory ceiling; 0: none */
    uint64_t kill_grace_ms; /* from a cancel to SIGKILL */
} alkd_workers_config;

typedef struct alkd_workers {
    uv_loop_t *loop;
    alkd_workers_config config;
    alkd_workers_events events;
    char exe[4096]; /* this binary, started as `exe --worker` */
    uint64_t generation;
    alk_buf init; /* the INIT payload of the current generation */
    alkd_worker *all;
    uv_timer_t watch;   /* the memory watch, while a worker is busy */
    uv_timer_t respawn; /* the delay before retrying a worker that could not start */
    bool respawn_armed;
    unsigned start_failures; /* in a row */
    char start_error[256];
    bool stopping;
    void (*stopped)(void *ctx);
    uint64_t next_seq;
    /* Counters for `stats`. */
    uint64_t started;
    uint64_t crashed;
    uint64_t killed;
} alkd_workers;

/* Prepares the pool on `loop` (borrowed); no worker starts before alkd_workers_generation. */
int alkd_workers_init(alkd_workers *pool, uv_loop_t *loop, const alkd_workers_config *config,
                      const alkd_workers_events *events);

/*
 * Makes generation `id` current: `init` (borrowed, copied) is its INIT payload (worker_proto.h).
 * With `restart`, workers of other generations are retired (an idle one at once, a busy one when
 * its job ends) and workers of this one started up to the configured number; without (the
 * plugins did not change), the workers of the previous generation serve this one.
 */
int alkd_workers_generation(alkd_workers *pool, uint64_t id, const alk_buf *init, bool restart);

/*
 * Gives `job` to an idle worker of the current generation; false when none is idle. The frame's
 * kind, generation and queue_ms are the caller's; `bytes` (len bytes) stays the caller's until
 * `release(owner)` is called, once the bytes are written. On true *ret_worker is the worker
 * until the result or loss is reported.
 */
bool alkd_workers_run(alkd_workers *pool, void *job, const alkd_frame *frame, const void *bytes,
                      size_t len, void (*release)(void *owner), void *owner,
                      alkd_worker **ret_worker);

/* Lowers the CPU priority of `worker` for the job it runs (a heavy request: nice
 * ALKD_WORKER_HEAVY_NICE); the worker is replaced after the job, since an unprivileged daemon
 * cannot raise it again. */
void alkd_workers_lower_priority(alkd_worker *worker);

/* The job on `worker` is no longer wanted (its deadline passed): asks the worker to stop it and
 * kills the worker if it has not answered after the grace time. */
void alkd_workers_cancel(alkd_worker *worker);

/* Workers that can take a job now; workers running one. */
size_t alkd_workers_idle(const alkd_workers *pool);
size_t alkd_workers_busy(const alkd_workers *pool);

/* Ends every worker (idle ones at once; busy ones are killed); `stopped(ctx)` runs when the
 * last one is gone and every handle is closed. */
void alkd_workers_stop(alkd_workers *pool, void (*stopped)(void *ctx));

#endif
