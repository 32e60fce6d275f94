/*
 * What the daemon and its worker processes share: the frames on a worker's socket and the status
 * page the worker keeps for the daemon to read after a crash.
 *
 * A worker is `alkaidd --worker` started by the daemon (workers.c) with two extra descriptors:
 * fd 3, a stream socket to the daemon, and fd 4, a one-page memfd mapped by both. On the socket
 * every message is a frame: a fixed header, then `length` payload bytes. Both ends are the same
 * binary, so the header is written in the machine's own layout.
 *
 *   daemon -> worker  INIT    payload: msgpack map {generation, plugin_dirs, disabled, limits,
 *                             memory_bytes, log_level, test_hooks}; once, first
 *   worker -> daemon  READY   code ALK_OK, or the error that stops the worker (payload: message)
 *   daemon -> worker  JOB     seq, kind, generation, queue_ms; payload: the request's bytes
 *   worker -> daemon  PLUGINS seq; payload: msgpack array of maps {group, name, version, error},
 *                             one per on-demand plugin the worker has loaded (error nil) or
 *                             failed to load (error: why), in any order; sent before the RESULT
 *                             of a conversion when that set grew, or when the job is the first
 *                             of its generation since the worker last sent one
 *   worker -> daemon  RESULT  seq, code; payload: the encoded reply (result or error)
 *
 * PLUGINS lets the daemon list on-demand plugins as its workers loaded them: the daemon notes
 * them on the generation the job ran with. A worker loads a plugin once in its life, so a worker
 * kept across a reload that changed no plugin (it then serves the new generation) repeats what it
 * has loaded with its first job of the new generation, whose listing started on demand again.
 *
 * A worker works on one job at a time. SIGUSR1 asks it to cancel the job it runs (the deadline
 * passed: the daemon has answered already); closing the socket (EOF) tells it to exit.
 *
 * Thread rule: the page is written by the worker (its main thread and its fatal-signal handler)
 * and read by the daemon's loop thread only after the worker has died or between jobs.
 */
#ifndef ALKD_WORKER_PROTO_H
#define ALKD_WORKER_PROTO_H

#include <stdint.h>

enum {
    ALKD_WORKER_SOCKET_FD = 3,
    ALKD_WORKER_PAGE_FD = 4,
    ALKD_WORKER_PAGE_SIZE = 4096,
};

typedef enum alkd_frame_type {
    ALKD_FRAME_INIT = 1,
    ALKD_FRAME_READY,
    ALKD_FRAME_JOB,
    ALKD_FRAME_RESULT,
    ALKD_FRAME_PLUGINS,
} alkd_frame_type;

/* The kinds of job a worker runs (the schemas' queued methods). */
typedef enum alkd_job_kind {
    ALKD_JOB_NONE,
    ALKD_JOB_CONVERT, /* convert */
    ALKD_JOB_SLEEP,   /* test.sleep (--test-hooks) */
} alkd_job_kind;

typedef struct alkd_frame {
    uint32_t type;       /* alkd_frame_type */
    uint32_t code;       /* READY, RESULT: an alk_err */
    uint64_t seq;        /* JOB, PLUGINS, RESULT: the job */
    uint64_t generation; /* JOB: the plugin generation the reply reports */
    double queue_ms;     /* JOB: time the request waited for a worker */
    uint32_t kind;       /* JOB: alkd_job_kind */
    uint32_t length;     /* payload bytes that follow */
} alkd_frame;

/* The largest payload either side accepts (a reply carries a whole ALIR program). */
#define ALKD_FRAME_MAX_PAYLOAD ((uint32_t)0x7fffffff)

/* The status page (fd 4). */
typedef struct alkd_worker_page {
    volatile uint64_t job_seq;        /* the job being converted; 0 between jobs */
    volatile int32_t fatal_signal;    /* the signal that is killing the worker, or 0 */
    volatile int32_t at_memory_limit; /* the crash came with the address space exhausted */
    char last_trace[160];             /* the last trace the tracer named ("/dense/final") */
} alkd_worker_page;

#endif
