/*
 * alkaidd's private structures, shared by server.c (loop, sockets, replies), jobs.c (the worker
 * side of a request) and methods.c (the methods answered on the loop thread, plugin generations).
 *
 * Ownership of a request, end to end: an nng context with its aio ("slot") receives a message;
 * the aio callback (an nng thread) only records the result and queues the slot in the inbox; the
 * loop thread takes it from there — decodes, answers at once or creates a job; the job runs in a
 * worker process and its result comes back on the worker's socket; the loop sends the reply on
 * the slot (and on every duplicate attached to the job) and re-arms the slot to receive.
 *
 * Thread rule: every field here is touched by the loop thread only, except where a comment says
 * otherwise (the inbox under `inbox_lock`, a listener's atomic `handed_over`).
 */
#ifndef ALKD_SERVER_INT_H
#define ALKD_SERVER_INT_H

#include "cache.h"
#include "config.h"
#include "ipc_guard.h"
#include "poison.h"
#include "pool.h"
#include "queue.h"
#include "server.h"
#include "workers.h"

#include "core/arena.h"
#include "core/vec.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "rpc/rpc.h"

#include <nng/nng.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct listener listener;
typedef struct job job;

typedef enum slot_state {
    SLOT_IDLE,      /* in its listener's free list */
    SLOT_RECEIVING, /* nng owns it: a receive is pending */
    SLOT_WORKING,   /* the loop holds a request received on it */
    SLOT_SENDING,   /* nng owns it: a send is pending */
} slot_state;

typedef struct slot {
    listener *owner;
    nng_ctx ctx;
    nng_aio *aio;
    slot_state state;
    int aio_result;    /* written by the aio callback before it queues the slot */
    struct slot *next; /* inbox, free list, or a job's list of requesters */
    uint64_t received; /* uv_hrtime() at receipt */
    uint32_t pipe;     /* id of the connection the request came on */
    uint64_t peer;     /* the process or host at its other end (queue.h) */
} slot;

struct listener {
    alkd_server *server;
    nng_socket socket;
    nng_listener nng_listener;
    char *url;
    bool control;
    bool ipc;
    int lock_fd;                      /* ipc: the socket's lock (ipc_guard.h), else -1 */
    alkd_ipc_probe probe;             /* ipc: the self-probe */
    bool probing;                     /* the probe was set up (its handles need closing) */
    uint64_t last_probe_ok;           /* alkd__now() of the last probe that passed */
    atomic_uint_fast64_t handed_over; /* probe pipes that reached the socket (nng threads) */
    size_t n_receiving;
    slot **slots; /* every slot, for shutdown */
    size_t n_slots;
    slot *idle;
};

struct job {
    alkd_queue_item item; /* while waiting for a worker */
    job *prev;            /* the server's list of live jobs */
    job *next;
    alkd_server *server;
    alkd_job_kind kind;
    slot *requesters; /* the first requester, then attached duplicates */
    alk_arena arena;  /* the decoded request */
    alk_rpc_request request;
    alk_convert_request convert; /* a conversion's decoded options (its framework, for errors) */
    alk_rpc_convert_options options;
    nng_msg *msg; /* the request's bytes, until a worker takes them */
    uint64_t peer;
    bool heavy; /* a request above ALKD_HEAVY_BYTES: the heavy queue, a lower priority */
    bool hold_generation;
    alk_generation *generation; /* referenced from dispatch on; dropped on release */
    uint64_t generation_id;
    alkd_cache_entry *cache; /* in-flight entry, or NULL */
    alkd_worker *worker;     /* while a worker has the job */
    bool replied;
    uv_timer_t deadline;
    uint64_t received;
};

/* Requests larger than this are heavy: decoded on the decode thread and run at a lower CPU
 * priority, so that one client's flood of big messages costs that client, not everyone. A heavy
 * job's worker is replaced after it (a process cannot raise its priority back), which costs a
 * worker start: model files (`model.file`, a .keras zip of a few hundred KB) must stay light. */
enum { ALKD_HEAVY_BYTES = 1024 * 1024 };

/* A request decoded and validated (on the loop, or on a decode thread for a large one). */
typedef struct alkd_decoded {
    int rv; /* ALK_OK, or the error in `err` */
    alk_rpc_error err;
    alk_arena arena;              /* the tree and everything decoded from it */
    const alk_rpc_method *method; /* NULL when not even the method could be read */
    alk_rpc_request request;
    alk_convert_request convert; /* a conversion's request and options */
    alk_rpc_convert_options options;
    uint64_t hash; /* the reply cache's hash of the bytes */
} alkd_decoded;

/* A control request answered later (drain). */
typedef struct pending_reply {
    slot *requester;
    alk_arena arena;
    alk_rpc_request request;
    struct pending_reply *next;
} pending_reply;

typedef enum server_state { STATE_SERVING, STATE_DRAINING, STATE_STOPPING } server_state;

enum { N_ERROR_CODES = ALK_EINTERNAL + 1 };

typedef struct stats {
    uint64_t *requests_by_method; /* alk_rpc_n_methods + 1 (other) */
    uint64_t errors[N_ERROR_CODES];
    uint64_t replies;
    uint64_t cache_hits;
    uint64_t reloads;
    uint64_t reload_failures;
    uint64_t abandoned;
    uint64_t poison_hits;
    uint64_t listener_restarts;
    uint64_t worker_jobs;
    uint64_t job_count;
    double job_ms_sum;
    uint64_t job_buckets[6]; /* <= 1, 10, 100, 1000, 10000 ms, +inf */
} stats;

struct alkd_server {
    alkd_config *config;
    uv_loop_t *loop;
    uint64_t started; /* uv_hrtime() */
    int pid;
    server_state state;
    bool closing; /* the final close has begun */
    int exit_code;

    listener **listeners;
    size_t n_listeners;

    bool inbox_ready;
    uv_mutex_t inbox_lock;
    slot *inbox_head; /* completed aios, guarded by inbox_lock */
    slot *inbox_tail;
    uv_async_t inbox_async;

    alkd_pool decoders; /* decode threads for large requests (requests.c) */
    bool decoders_started;
    alkd_workers workers;
    bool workers_started;
    alkd_queue queue;       /* light jobs waiting for a worker */
    alkd_queue heavy_queue; /* heavy jobs waiting for a worker */
    bool heavy_turn;        /* the heavy queue is served next when both can be */
    uint64_t last_light;    /* alkd__now() when the last light job arrived */
    size_t running;         /* jobs a worker has */
    size_t running_heavy;
    job *jobs; /* jobs not yet freed: waiting, running, or cancelled and finishing */
    size_t n_jobs;
    alkd_poison poison;
    alkd_cache cache;
    size_t inflight;         /* requests received and not yet answered (all sockets) */
    size_t service_inflight; /* the same, service sockets only */
    size_t sending;          /* slots with a send pending */
    pending_reply *drains;

    alk_generation *generation;
    alkd_strings plugin_dirs; /* current, changed by load */
    alkd_strings disabled;    /* current, changed by load/unload */

    uv_signal_t sig_hup;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_timer_t housekeeping; /* cache sweep, watchdog, status */
    uv_timer_t probes;       /* the ipc listeners' self-probes */
    uv_timer_t linger;
    uint64_t watchdog_usec;
    uint64_t last_watchdog;
    stats stats;
};

/* server.c */
uint64_t alkd__now(void);
/* Sends `len` bytes (copied) as the reply on `s`, which must be WORKING. */
void alkd__send_reply(alkd_server *server, slot *s, const void *bytes, size_t len);
/* Gives up the request on `s` without replying (a resend superseded it on the same connection):
 * the REP context drops it when it receives again. */
void alkd__abandon(alkd_server *server, slot *s);
/* Sends the error reply for `err` on `s` and counts it. */
void alkd__send_error(alkd_server *server, slot *s, const alk_rpc_error *err);
void alkd__count_error(alkd_server *server, int code);
/* Stops taking requests, finishes what is in flight, then exits with `exit_code`. */
void alkd__begin_stop(alkd_server *server, int exit_code);
/* Finishes stopping once nothing is in flight (called after every reply and job). */
void alkd__maybe_finish(alkd_server *server);
/* Cancels or re-arms the receives of the service sockets after a state change. */
void alkd__update_receivers(alkd_server *server);

/* requests.c */
/* Starts the decode thread. */
int alkd__requests_init(alkd_server *server, alk_diag *diag);
/* A request arrived on `s` (WORKING): decodes it and answers it or makes it a job; takes `msg`. */
void alkd__request_received(alkd_server *server, slot *s, nng_msg *msg);

/* jobs.c */
/* Prepares the worker processes, the queue and the poison list (no worker starts yet). */
int alkd__jobs_init(alkd_server *server, alk_diag *diag);
/* The generation in server->generation is current: when its plugins `changed`, start its
 * workers with the plugin search path `dirs` (borrowed), retire the others and forget the poison
 * list; else the running workers serve it as they are. */
int alkd__jobs_generation(alkd_server *server, const char *const *dirs, size_t n_dirs,
                          bool changed);
/*
 * Starts a queued method of `kind` whose request (decoded and validated in `d`, bytes in `msg`)
 * arrived on `s`. On success takes d's arena (zeroed) and `msg` over and answers the request
 * itself; on failure the caller keeps both and sends the error in `err`.
 */
int alkd__job_start(alkd_server *server, slot *s, alkd_job_kind kind, alkd_decoded *d, nng_msg *msg,
                    alk_rpc_error *err);
/* Answers every job not yet answered ECANCELED (the daemon is stopping) and cancels the
 * running ones. */
void alkd__jobs_cancel_all(alkd_server *server);
/* Ends the worker processes; `stopped(server)` runs when they are gone. */
void alkd__jobs_stop(alkd_server *server, void (*stopped)(void *ctx));

/* methods.c */

/* How the daemon answers one method of the schemas (exactly one of the three ways). */
typedef struct alkd_method {
    /* At once on the loop thread: writes the reply (or an error reply) to `out` and returns its
     * code (ALK_OK for a result). */
    int (*reply)(alkd_server *server, const slot *s, const alk_rpc_request *request, alk_buf *out);
    /* Either fills `out` (and *ret_code) and returns true, or takes `s` and `arena` over for a
     * later reply and returns false. */
    bool (*deferred)(alkd_server *server, slot *s, alk_arena *arena, const alk_rpc_request *request,
                     alk_buf *out, int *ret_code);
    alkd_job_kind job; /* a queued method: the job it becomes */
    bool stops;        /* a successful reply stops the daemon (shutdown) */
} alkd_method;

/* The daemon's way of answering `method` (an entry of alk_rpc_methods). */
const alkd_method *alkd__method(const alk_rpc_method *method);
/* ALK_EINTERNAL naming the first method of the schemas the daemon has no single handler for. */
int alkd__methods_check(alk_diag *diag);
/* Builds the first plugin generation (non-strict: a refused plugin is listed, not fatal). */
int alkd__generation_init(alkd_server *server, alk_diag *diag);
/* SIGHUP: reload from the config file and rebuild the generation; logs the outcome. */
void alkd__reload_from_signal(alkd_server *server);
/* Answers pending drains when nothing is in flight on the service sockets. */
void alkd__drains_check(alkd_server *server);
/* Answers pending drains with ECANCELED (the daemon is stopping). */
void alkd__drains_cancel(alkd_server *server);
/* sd_notify STATUS= with the current counters. */
void alkd__notify_status(alkd_server *server);

#endif
