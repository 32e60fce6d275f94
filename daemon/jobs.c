/*
 * Jobs: the requests that run in a worker process (`convert`, and the `test.sleep` hook).
 *
 * A job is created when its request has been decoded and validated, so that a bad request is
 * answered at once and never reaches a worker. Jobs of requests above ALKD_HEAVY_BYTES are heavy:
 * they wait in a queue of their own, run at a lower CPU priority, and while small requests keep
 * coming one worker stays free for those, so that one client's big messages cost that client. It
 * owns the decoded request (its arena), the request's bytes (until a worker has them), a deadline
 * timer and the list of slots to answer (the first requester and any duplicate that arrived while
 * it was in flight). It waits in the fair queue (queue.h) until a worker of the current generation
 * is idle, then takes a reference on the daemon's plugin generation and runs there (workers.h);
 * what its worker reports of the on-demand plugins it loaded is noted on that generation, for the
 * `plugins` listing. The reply is sent exactly once, by whichever comes first:
 *  - the worker's result: to every requester and, unless it is a transient error, into the reply
 *    cache;
 *  - the worker's death: the error names the signal or exit status, the framework and the last
 *    trace the tracer named, and the conversion goes on the poison list (poison.h), so that it
 *    is answered at once when it comes again instead of killing another worker;
 *  - the deadline: a waiting job leaves the queue, a running one is cancelled (its worker is
 *    killed if it does not stop within the grace time); ETIMEDOUT goes to every requester.
 * A job is freed when it is answered and no worker holds it any more.
 *
 * Thread rule: loop thread only.
 */
#include "server_int.h"

#include "log.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How long light jobs count as present for the worker kept free for them (heavy_may_run). */
#define LIGHT_LATELY_NS ((uint64_t)2000000000)

static double elapsed_ms(uint64_t from, uint64_t to) {
    return to > from ? (double)(to - from) / 1e6 : 0.0;
}

/* Replies that a resend should not get again: the retry might succeed. */
static bool cacheable_result(int code) {
    return code != ALK_ETIMEDOUT && code != ALK_EBUSY && code != ALK_ENOMEM &&
           code != ALK_ECANCELED && code != ALK_EINTERNAL && code != ALK_EPLUGIN;
}

/* ---- answering ------------------------------------------------------------------------------ */

static void record_latency(alkd_server *server, uint64_t received) {
    static const double bounds[] = {1, 10, 100, 1000, 10000};
    double ms = elapsed_ms(received, alkd__now());
    stats *st = &server->stats;
    st->job_count++;
    st->job_ms_sum += ms;
    size_t b = 0;
    while (b < 5 && ms > bounds[b]) {
        b++;
    }
    st->job_buckets[b]++;
}

/* Sends `bytes` to every requester of `j`. */
static void reply_all(job *j, const void *bytes, size_t len, int code) {
    alkd_server *server = j->server;
    j->replied = true;
    if (j->cache != NULL) {
        if (code == ALK_OK || cacheable_result(code)) {
            alkd_cache_complete(&server->cache, j->cache, bytes, len, alkd__now());
        } else {
            alkd_cache_remove(&server->cache, j->cache); /* a resend runs again */
        }
        j->cache = NULL;
    }
    slot *s = j->requesters;
    j->requesters = NULL;
    while (s != NULL) {
        slot *next = s->next;
        if (code != ALK_OK) {
            alkd__count_error(server, code);
        }
        record_latency(server, s->received);
        alkd__send_reply(server, s, bytes, len);
        s = next;
    }
}

static void reply_error(job *j, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_error(job *j, int code, const char *where, const char *fmt, ...) {
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    err.code = code;
    err.id = j->request.id;
    if (where != NULL) {
        (void)snprintf(err.where, sizeof(err.where), "%s", where);
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err.diag.message, sizeof(err.diag.message), fmt, ap);
    va_end(ap);
    alk_buf out;
    alk_buf_init(&out);
    if (alk_rpc_encode_error(&err, &out) == ALK_OK) {
        reply_all(j, out.data, out.len, code);
    } else {
        /* Not even an error fits: give the slots up rather than keep them forever. */
        j->replied = true;
        while (j->requesters != NULL) {
            slot *next = j->requesters->next;
            alkd__abandon(j->server, j->requesters);
            j->requesters = next;
        }
    }
    alk_buf_fini(&out);
}

/* ---- freeing -------------------------------------------------------------------------------- */

static void free_request_bytes(void *msg) {
    nng_msg_free(msg);
}

static void job_free(uv_handle_t *handle) {
    job *j = handle->data;
    alkd_server *server = j->server;
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        server->jobs = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    }
    alk_arena_fini(&j->arena);
    alk_free(j);
    server->n_jobs--;
    alkd__drains_check(server);
    alkd__maybe_finish(server);
}

/* Drops what the job holds; the memory goes once the timer handle is closed. */
static void job_release(job *j) {
    alkd_server *server = j->server;
    if (j->cache != NULL) {
        alkd_cache_remove(&server->cache, j->cache);
        j->cache = NULL;
    }
    if (j->msg != NULL) {
        nng_msg_free(j->msg);
        j->msg = NULL;
    }
    alk_generation_unref(j->generation); /* on the loop thread: plugin fini runs here */
    j->generation = NULL;
    (void)uv_timer_stop(&j->deadline);
    uv_close((uv_handle_t *)&j->deadline, job_free);
}

/* ---- running -------------------------------------------------------------------------------- */

/* Hands `j` to an idle worker (there is one): the request's bytes go with it. */
static void run(job *j) {
    alkd_server *server = j->server;
    if (j->hold_generation && server->generation != NULL) {
        j->generation = alk_generation_ref(server->generation);
        j->generation_id = alk_generation_id(server->generation);
    }
    alkd_frame frame = {
        .kind = j->kind,
        .generation = j->generation_id,
        .queue_ms = elapsed_ms(j->received, alkd__now()),
    };
    nng_msg *msg = j->msg;
    j->msg = NULL;
    bool taken = alkd_workers_run(&server->workers, j, &frame, nng_msg_body(msg), nng_msg_len(msg),
                                  free_request_bytes, msg, &j->worker);
    if (!taken) { /* alkd_workers_idle said otherwise: an internal error, not the client's */
        nng_msg_free(msg);
        reply_error(j, ALK_EINTERNAL, NULL, "no worker took the job");
        job_release(j);
        return;
    }
    if (j->heavy) {
        alkd_workers_lower_priority(j->worker);
        server->running_heavy++;
    }
    server->running++;
    server->stats.worker_jobs++;
}

/* The queue `j` waits in. */
static alkd_queue *queue_of(alkd_server *server, const job *j) {
    return j->heavy ? &server->heavy_queue : &server->queue;
}

/* Whether a heavy job may take a worker now: while light jobs came lately, one worker stays
 * theirs (with two workers or more), so that a flood of big requests cannot hold them all. */
static bool heavy_may_run(const alkd_server *server) {
    size_t n = server->workers.config.n;
    bool light_lately = alkd__now() - server->last_light < LIGHT_LATELY_NS;
    return server->running_heavy < (n >= 2 && light_lately ? n - 1 : n);
}

/* Gives waiting jobs to idle workers: each queue serves its peers in turn, and the two queues
 * alternate while both have runnable jobs. */
static void dispatch(alkd_server *server) {
    while (alkd_workers_idle(&server->workers) > 0) {
        bool light = server->queue.n > 0;
        bool heavy = server->heavy_queue.n > 0 && heavy_may_run(server);
        if (!light && !heavy) {
            return;
        }
        bool take_heavy = heavy && (!light || server->heavy_turn);
        server->heavy_turn = !take_heavy;
        run((job *)alkd_queue_pop(take_heavy ? &server->heavy_queue : &server->queue));
    }
}

/* The worker of `j` is done with it (the job has been answered). */
static void finished(job *j) {
    j->worker = NULL;
    j->server->running--;
    j->server->running_heavy -= j->heavy;
    job_release(j);
}

static void on_idle(void *ctx) {
    dispatch(ctx);
}

/* The string at `key` of map `map`, or NULL. */
static const char *str_at(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_STR ? v->as.str.bytes : NULL;
}

/* A worker's PLUGINS report: noted on the generation `j` ran with, whose `plugins` listing then
 * shows what the workers loaded. A malformed report is logged and dropped. */
static void on_plugins(void *ctx, void *job_ptr, const void *payload, size_t len) {
    job *j = job_ptr;
    (void)ctx;
    if (j->generation == NULL) {
        return; /* a conversion always holds one */
    }
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    const alk_value *list = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    int rv = alk_value_from_msgpack(payload, len, &limits, &arena, &list, &err);
    if (rv == ALK_OK && list->kind != ALK_VALUE_ARRAY) {
        rv = ALK_EPROTO;
    }
    for (size_t i = 0; rv == ALK_OK && i < list->as.array.len; i++) {
        const alk_value *plugin = list->as.array.items[i];
        const char *group = str_at(plugin, "group");
        const char *name = str_at(plugin, "name");
        rv = group != NULL && name != NULL
                 ? alk_generation_note_loaded(j->generation, group, name, str_at(plugin, "version"),
                                              str_at(plugin, "error"))
                 : ALK_EPROTO;
    }
    if (rv != ALK_OK) {
        alkd_warn("a worker's report of the plugins it loaded was dropped (%s)", alk_err_name(rv));
    }
    alk_arena_fini(&arena);
}

static void on_result(void *ctx, void *job_ptr, int code, const void *reply, size_t len) {
    job *j = job_ptr;
    (void)ctx;
    if (!j->replied) {
        if (len == 0) {
            reply_error(j, code != ALK_OK ? code : ALK_EINTERNAL, NULL,
                        "the worker sent an empty reply");
        } else {
            reply_all(j, reply, len, code);
        }
    }
    finished(j);
}

static void on_lost(void *ctx, void *job_ptr, int code, const char *what, const char *trace) {
    alkd_server *server = ctx;
    job *j = job_ptr;
    if (!j->replied) {
        char message[480];
        const char *framework = j->kind == ALKD_JOB_CONVERT ? j->convert.framework : NULL;
        (void)snprintf(message, sizeof(message),
                       "the conversion%s%s%s killed its worker process (%s)%s%s",
                       framework != NULL ? " by the " : "", framework != NULL ? framework : "",
                       framework != NULL ? " tracer" : "", what,
                       trace[0] != '\0' ? "; the last trace it named was " : "", trace);
        alkd_warn("%s", message);
        if (j->kind == ALKD_JOB_CONVERT) {
            uint8_t key[32];
            alkd_poison_key(j->request.body, key);
            alkd_poison_add(&server->poison, key, code, message, alkd__now());
        }
        reply_error(j, code, NULL, "%s", message);
    }
    finished(j);
}

static void on_unavailable(void *ctx, const char *why) {
    alkd_server *server = ctx;
    alkd_error("no worker process can start: %s", why);
    alkd_queue *queues[] = {&server->queue, &server->heavy_queue};
    for (size_t q = 0; q < 2; q++) {
        job *j;
        while ((j = (job *)alkd_queue_pop(queues[q])) != NULL) {
            reply_error(j, ALK_EINTERNAL, NULL, "no worker process can start: %s", why);
            job_release(j);
        }
    }
}

static void on_deadline(uv_timer_t *timer) {
    job *j = timer->data;
    alkd_server *server = j->server;
    if (j->replied) {
        return;
    }
    bool waiting = alkd_queue_remove(queue_of(server, j), &j->item);
    if (!waiting && j->worker != NULL) {
        alkd_workers_cancel(j->worker); /* the worker stops it, or is killed */
        server->stats.abandoned++;
    }
    reply_error(j, ALK_ETIMEDOUT, NULL, "the deadline passed %s",
                waiting ? "while the job was waiting for a worker"
                        : "while the job was running; it was cancelled");
    alkd_debug("job %s timed out (%s)", j->request.method->name, waiting ? "queued" : "running");
    if (waiting) {
        job_release(j); /* no worker will ever see it */
    }
}

/* ---- starting ------------------------------------------------------------------------------- */

int alkd__jobs_init(alkd_server *server, alk_diag *diag) {
    const alkd_config *config = server->config;
    size_t n = config->workers > 0 ? (size_t)config->workers : uv_available_parallelism();
    alkd_workers_config workers = {
        .n = n,
        .memory_bytes = config->worker_memory_mb << 20,
        .kill_grace_ms = config->kill_grace_ms,
    };
    alkd_workers_events events = {
        .ctx = server,
        .idle = on_idle,
        .plugins = on_plugins,
        .result = on_result,
        .lost = on_lost,
        .unavailable = on_unavailable,
    };
    int rv = alkd_workers_init(&server->workers, server->loop, &workers, &events);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot find this program's path to start workers");
    }
    server->workers_started = true;
    alkd_queue_init(&server->queue);
    alkd_queue_init(&server->heavy_queue);
    rv = alkd_poison_init(&server->poison, config->poison_ttl_ms);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    return ALK_OK;
}

int alkd__jobs_generation(alkd_server *server, const char *const *dirs, size_t n_dirs,
                          bool changed) {
    const alkd_config *config = server->config;
    alk_buf init;
    alk_buf_init(&init);
    alk_mp_map_writer map;
    alk_mp_map_open(&map, &init);
    alk_mp_key(&map, "plugin_dirs");
    alk_mp_array(&init, (uint32_t)n_dirs);
    for (size_t i = 0; i < n_dirs; i++) {
        alk_mp_str(&init, dirs[i]);
    }
    alk_mp_key(&map, "disabled");
    alk_mp_array(&init, (uint32_t)server->disabled.len);
    for (size_t i = 0; i < server->disabled.len; i++) {
        alk_mp_str(&init, server->disabled.items[i]);
    }
    alk_mp_key(&map, "limits");
    alk_mp_map_writer limits;
    alk_mp_map_open(&limits, &init);
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        alk_mp_key(&limits, alk_rpc_limit_fields[i].name);
        alk_mp_uint(&init, *(const uint64_t *)((const char *)&config->limits +
                                               alk_rpc_limit_fields[i].offset));
    }
    alk_mp_map_close(&limits);
    alk_mp_key(&map, "memory_bytes");
    alk_mp_uint(&init, config->worker_memory_mb << 20);
    alk_mp_key(&map, "log_level");
    alk_mp_uint(&init, (uint64_t)config->log_level);
    alk_mp_key(&map, "test_hooks");
    alk_mp_bool(&init, config->test_hooks);
    alk_mp_map_close(&map);
    int rv = alk_buf_error(&init);
    if (rv == ALK_OK) {
        rv = alkd_workers_generation(&server->workers, alk_generation_id(server->generation), &init,
                                     changed);
    }
    alk_buf_fini(&init);
    if (changed) {
        alkd_poison_clear(&server->poison); /* new plugin code may not crash where the old did */
    }
    return rv;
}

/* The sleep hook's fields (the schema checked their types). */
static uint64_t sleep_options(const alk_rpc_request *request, bool *ret_hold) {
    const alk_value *timeout = alk_value_get(request->body, "timeout_ms");
    const alk_value *hold = alk_value_get(request->body, "hold_generation");
    *ret_hold = hold == NULL || hold->kind != ALK_VALUE_BOOL || hold->as.boolean;
    return timeout != NULL && timeout->kind == ALK_VALUE_INT ? (uint64_t)timeout->as.integer : 0;
}

/* A conversion that killed a worker not long ago: its error, at once. */
static int poisoned(alkd_server *server, const alk_rpc_request *request, alk_rpc_error *err) {
    if (alkd_poison_empty(&server->poison)) {
        return ALK_OK;
    }
    uint8_t key[32];
    alkd_poison_key(request->body, key);
    const alkd_poison_entry *e = alkd_poison_find(&server->poison, key, alkd__now());
    if (e == NULL) {
        return ALK_OK;
    }
    server->stats.poison_hits++;
    return alk_rpc_error_set(err, e->code, NULL, "%s (remembered: this request is not run again)",
                             e->message);
}

/* Queues `j` when no worker is idle. In a full queue the newest job of the peer that holds the
 * most gives its place (answered EBUSY), unless that peer is `j`'s own: then `j` is refused. */
static int admit(alkd_server *server, job *j, alk_rpc_error *err) {
    size_t room = server->workers.config.n + (size_t)server->config->queue;
    size_t waiting = server->queue.n + server->heavy_queue.n;
    if (server->running + waiting >= room) {
        /* The newest job of the peer holding the most gives its place, heavy ones first. */
        job *victim = (job *)alkd_queue_evict(&server->heavy_queue, j->peer);
        if (victim == NULL) {
            victim = (job *)alkd_queue_evict(&server->queue, j->peer);
        }
        if (victim == NULL) {
            return alk_rpc_error_set(err, ALK_EBUSY, NULL,
                                     "the job queue is full (%zu workers busy, %zu jobs "
                                     "waiting); retry later",
                                     alkd_workers_busy(&server->workers), waiting);
        }
        reply_error(victim, ALK_EBUSY, NULL,
                    "the job queue is full and this client holds most of it; retry later");
        job_release(victim);
    }
    int rv = alkd_queue_push(queue_of(server, j), &j->item, j->peer);
    return rv == ALK_OK ? ALK_OK : alk_rpc_error_set(err, rv, NULL, "out of memory for a job");
}

int alkd__job_start(alkd_server *server, slot *s, alkd_job_kind kind, alkd_decoded *d, nng_msg *msg,
                    alk_rpc_error *err) {
    const alk_rpc_limits *limits = &server->config->limits;
    const alk_rpc_request *request = &d->request;
    err->id = request->id;
    job *j = alk_calloc(1, sizeof(*j));
    if (j == NULL) {
        return alk_rpc_error_set(err, ALK_ENOMEM, NULL, "out of memory for a job");
    }
    j->server = server;
    j->kind = kind;
    j->request = *request;
    j->received = s->received;
    j->peer = s->peer;
    j->heavy = nng_msg_len(msg) > ALKD_HEAVY_BYTES;
    j->hold_generation = true;
    uint64_t timeout_ms = 0;
    int rv = ALK_OK;
    if (kind == ALKD_JOB_CONVERT) {
        j->convert = d->convert;
        j->options = d->options;
        timeout_ms = d->options.timeout_ms;
        rv = poisoned(server, request, err);
    } else {
        timeout_ms = sleep_options(request, &j->hold_generation);
    }
    if (!j->heavy) {
        server->last_light = alkd__now();
    }
    bool runs_now = alkd_workers_idle(&server->workers) > 0 && (!j->heavy || heavy_may_run(server));
    if (rv == ALK_OK && !runs_now) {
        rv = admit(server, j, err);
    }
    if (rv != ALK_OK) {
        alk_free(j);
        return rv;
    }
    /* Taken: from here on the job owns the request and answers it. */
    if (timeout_ms == 0) {
        timeout_ms = limits->default_timeout_ms;
    }
    if (timeout_ms > limits->max_timeout_ms) {
        timeout_ms = limits->max_timeout_ms;
    }
    server->n_jobs++;
    j->next = server->jobs;
    if (server->jobs != NULL) {
        server->jobs->prev = j;
    }
    server->jobs = j;
    j->arena = d->arena; /* the request's tree moves with the arena's blocks */
    d->arena = (alk_arena){0};
    j->msg = msg;
    s->state = SLOT_WORKING;
    s->next = NULL;
    j->requesters = s;
    j->cache =
        (request->method->flags & ALK_RPC_METHOD_CACHEABLE)
            ? alkd_cache_begin(&server->cache, d->hash, nng_msg_len(msg), j, request->method->id)
            : NULL;
    j->deadline.data = j;
    (void)uv_timer_init(server->loop, &j->deadline);
    uint64_t elapsed = (alkd__now() - s->received) / 1000000;
    (void)uv_timer_start(&j->deadline, on_deadline, timeout_ms > elapsed ? timeout_ms - elapsed : 0,
                         0);
    if (runs_now) {
        run(j);
    }
    return ALK_OK;
}

void alkd__jobs_cancel_all(alkd_server *server) {
    job *next;
    for (job *j = server->jobs; j != NULL; j = next) {
        next = j->next; /* a released job leaves the list only when its handle is closed */
        if (j->replied) {
            continue;
        }
        bool waiting = alkd_queue_remove(queue_of(server, j), &j->item);
        if (!waiting && j->worker != NULL) {
            alkd_workers_cancel(j->worker);
        }
        reply_error(j, ALK_ECANCELED, NULL, "the daemon stopped before the job finished");
        if (waiting) {
            job_release(j);
        }
    }
}

void alkd__jobs_stop(alkd_server *server, void (*stopped)(void *ctx)) {
    alkd_queue_fini(&server->queue);
    alkd_queue_fini(&server->heavy_queue);
    alkd_workers_stop(&server->workers, stopped);
}
