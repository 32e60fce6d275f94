/*
 * alkaidd's private structures, shared by server.c (loop, sockets, replies), jobs.c (the worker
 * side of a request) and methods.c (the methods answered on the loop thread, plugin generations).
 *
 * Ownership of a request, end to end: an nng context with its aio ("slot") receives a message;
 * the aio callback (an nng thread) only records the result and queues the slot in the inbox; the
 * loop thread takes it from there — decodes, answers at once or creates a job; the job runs on a
 * worker and comes back through the pool's completion handle; the loop sends the reply on the
 * slot (and on every duplicate attached to the job) and re-arms the slot to receive.
 *
 * Thread rule: every field here is touched by the loop thread only, except where a comment says
 * otherwise (the inbox under `inbox_lock`, a job's worker-side fields between submission and
 * completion, `cancel`).
 */
#ifndef ALKD_SERVER_INT_H
#define ALKD_SERVER_INT_H

#include "cache.h"
#include "config.h"
#include "pool.h"
#include "server.h"

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
} slot;

struct listener {
    alkd_server *server;
    nng_socket socket;
    nng_listener nng_listener;
    char *url;
    bool control;
    size_t n_receiving;
    slot **slots; /* every slot, for shutdown */
    size_t n_slots;
    slot *idle;
};

typedef enum job_kind { JOB_CONVERT, JOB_SLEEP } job_kind;

struct job {
    alkd_pool_item item; /* first: the pool hands back this pointer */
    alkd_server *server;
    job_kind kind;
    slot *requesters; /* the first requester, then attached duplicates */
    alk_arena arena;  /* the decoded request */
    alk_rpc_request request;
    alk_convert_request convert;
    alk_rpc_convert_options options;
    uint64_t sleep_ms;
    alk_generation *generation; /* referenced; dropped on the loop thread */
    uint64_t generation_id;
    alkd_cache_entry *cache; /* in-flight entry, or NULL */
    atomic_bool cancel;      /* set by the loop on deadline; read by the worker */
    bool replied;
    uv_timer_t deadline;
    uint64_t received;
    /* Written by the worker, read by the loop after completion. */
    uint64_t started;
    uint64_t finished;
    int result;    /* ALK_OK, or the code of the error reply in `reply` */
    alk_buf reply; /* the encoded reply */
};

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
    uint64_t job_count;
    double job_ms_sum;
    uint64_t job_buckets[6]; /* <= 1, 10, 100, 1000, 10000 ms, +inf */
} stats;

struct alkd_server {
    alkd_config *config;
    uv_loop_t *loop;
    uint64_t started; /* uv_hrtime() */
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

    alkd_pool pool;
    bool pool_started;
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

/* jobs.c: starts a queued method; on success takes `arena` over (and zeroes it). */
int alkd__job_start(alkd_server *server, slot *s, alk_arena *arena, const alk_rpc_request *request,
                    uint64_t hash, size_t len, alk_rpc_error *err);
void alkd__job_run(alkd_pool_item *item);
void alkd__job_done(alkd_pool_item *item);

/* methods.c */
/* Builds the first plugin generation (non-strict: a refused plugin is listed, not fatal). */
int alkd__generation_init(alkd_server *server, alk_diag *diag);
/*
 * Answers a method that does not run on a worker (listings and control). Either fills `reply`
 * and returns true, or takes `s` and `arena` over for a later reply (drain) and returns false.
 * *ret_code is the reply's error code (ALK_OK for a result).
 */
bool alkd__handle_method(alkd_server *server, slot *s, alk_arena *arena,
                         const alk_rpc_request *request, alk_buf *reply, int *ret_code);
/* SIGHUP: reload from the config file and rebuild the generation; logs the outcome. */
void alkd__reload_from_signal(alkd_server *server);
/* Answers pending drains when nothing is in flight on the service sockets. */
void alkd__drains_check(alkd_server *server);
/* Answers pending drains with ECANCELED (the daemon is stopping). */
void alkd__drains_cancel(alkd_server *server);
/* sd_notify STATUS= with the current counters. */
void alkd__notify_status(alkd_server *server);

#endif
