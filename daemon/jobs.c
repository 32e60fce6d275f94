/*
 * Jobs: the requests that run on a worker (`convert`, and the `test.sleep` hook).
 *
 * A job owns its decoded request (the arena), a reference on the plugin generation it started
 * with, a deadline timer and the list of slots to answer (the first requester and any duplicate
 * that arrived while it was in flight). The worker reads the request and writes only `result`,
 * `reply` and the timestamps; the loop reads them after the pool hands the job back. The reply is
 * sent exactly once, by whichever comes first on the loop thread:
 *  - the job finishing: its reply goes to every requester and, unless it is a transient error,
 *    into the reply cache;
 *  - the deadline: a queued job is taken out of the queue, a running one is asked to stop
 *    (`cancel`), and ETIMEDOUT goes to every requester. A running job's generation reference and
 *    memory stay until its worker returns, so plugin code is never unmapped under it.
 *
 * Thread rule: alkd__job_run runs on a worker; everything else on the loop thread. `cancel` is
 * the only field both sides write.
 */
#include "server_int.h"

#include "log.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double elapsed_ms(uint64_t from, uint64_t to) {
    return to > from ? (double)(to - from) / 1e6 : 0.0;
}

static void encode_failure(job *j, int code, const char *where, const char *message) {
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_rpc_error_set(&err, code, where, "%s", message);
    err.id = j->request.id;
    alk_buf_reset(&j->reply);
    j->result = code;
    if (alk_rpc_encode_error(&err, &j->reply) != ALK_OK) {
        j->result = ALK_ENOMEM;
    }
}

static void run_sleep(job *j) {
    uint64_t until = uv_hrtime() + j->sleep_ms * 1000000;
    while (!atomic_load(&j->cancel) && uv_hrtime() < until) {
        struct timespec step = {0, 2000000}; /* 2 ms: a cancelled job frees its worker at once */
        (void)nanosleep(&step, NULL);
    }
    if (atomic_load(&j->cancel)) {
        encode_failure(j, ALK_ECANCELED, NULL, "the job was cancelled");
        return;
    }
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, &j->reply, j->request.id);
    alk_mp_key(&reply, "slept_ms");
    alk_mp_float(&j->reply, elapsed_ms(j->started, uv_hrtime()));
    alk_mp_key(&reply, "generation");
    alk_mp_uint(&j->reply, j->generation_id);
    alk_mp_map_close(&reply);
    j->result = alk_buf_error(&j->reply);
}

static void run_convert(job *j) {
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    j->convert.cancel = &j->cancel; /* a deadline stops the conversion and frees this worker */
    int rv = alk_convert(j->generation, &j->convert, &result, &diag);
    uint64_t ran = uv_hrtime();
    if (rv != ALK_OK) {
        encode_failure(j, rv, NULL, diag.message[0] != '\0' ? diag.message : alk_strerror(rv));
        return;
    }
    alk_rpc_timings timings = {
        .queue_ms = elapsed_ms(j->received, j->started),
        .run_ms = elapsed_ms(j->started, ran),
    };
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    rv = alk_rpc_encode_convert_reply(j->request.id, &result, &j->options, j->generation_id,
                                      &timings, &j->reply, &err);
    alk_convert_result_fini(&result);
    if (rv != ALK_OK) {
        encode_failure(j, rv, NULL, err.diag.message);
        return;
    }
    j->result = ALK_OK;
}

void alkd__job_run(alkd_pool_item *item) {
    job *j = (job *)item;
    j->started = uv_hrtime();
    if (atomic_load(&j->cancel)) {
        j->result = ALK_ECANCELED;
    } else if (j->kind == JOB_SLEEP) {
        run_sleep(j);
    } else {
        run_convert(j);
    }
    j->finished = uv_hrtime();
}

/* Replies that a resend should not get again: the retry might succeed. */
static bool cacheable_result(int code) {
    return code != ALK_ETIMEDOUT && code != ALK_EBUSY && code != ALK_ENOMEM &&
           code != ALK_ECANCELED && code != ALK_EINTERNAL;
}

static void job_free(uv_handle_t *handle) {
    job *j = handle->data;
    alkd_server *server = j->server;
    alk_arena_fini(&j->arena);
    alk_buf_fini(&j->reply);
    alk_free(j);
    alkd__maybe_finish(server);
}

/* Drops what the job holds; the memory goes once the timer handle is closed. */
static void job_release(job *j) {
    alkd_server *server = j->server;
    if (j->cache != NULL) {
        alkd_cache_remove(&server->cache, j->cache);
        j->cache = NULL;
    }
    alk_generation_unref(j->generation); /* on the loop thread: plugin fini runs here */
    j->generation = NULL;
    uv_close((uv_handle_t *)&j->deadline, job_free);
}

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

void alkd__job_done(alkd_pool_item *item) {
    job *j = (job *)item;
    alkd_server *server = j->server;
    if (!j->replied) {
        int code = j->result;
        if (alk_buf_error(&j->reply) != ALK_OK || j->reply.len == 0) {
            code = code != ALK_OK ? code : ALK_ENOMEM;
            encode_failure(j, code, NULL, "the reply could not be encoded");
        }
        if (j->cache != NULL && cacheable_result(code)) {
            alkd_cache_complete(&server->cache, j->cache, j->reply.data, j->reply.len, alkd__now());
            j->cache = NULL;
        }
        reply_all(j, j->reply.data, j->reply.len, code);
    }
    (void)uv_timer_stop(&j->deadline);
    job_release(j);
}

static void on_deadline(uv_timer_t *timer) {
    job *j = timer->data;
    alkd_server *server = j->server;
    if (j->replied) {
        return;
    }
    bool was_queued = alkd_pool_cancel(&server->pool, &j->item);
    if (!was_queued) {
        atomic_store(&j->cancel, true);
        server->stats.abandoned++;
    }
    if (j->cache != NULL) {
        alkd_cache_remove(&server->cache, j->cache); /* a resend must run again */
        j->cache = NULL;
    }
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_rpc_error_set(&err, ALK_ETIMEDOUT, NULL, "the deadline passed %s",
                      was_queued ? "while the job was waiting for a worker"
                                 : "while the job was running; it was abandoned");
    err.id = j->request.id;
    alk_buf out;
    alk_buf_init(&out);
    if (alk_rpc_encode_error(&err, &out) == ALK_OK) {
        reply_all(j, out.data, out.len, ALK_ETIMEDOUT);
    }
    alk_buf_fini(&out);
    alkd_debug("job %s timed out (%s)", j->request.method->name, was_queued ? "queued" : "running");
    if (was_queued) {
        job_release(j); /* the worker will never see it */
    }
}

int alkd__job_start(alkd_server *server, slot *s, job_kind kind, alk_arena *arena,
                    const alk_rpc_request *request, uint64_t hash, size_t len, alk_rpc_error *err) {
    const alk_rpc_limits *limits = &server->config->limits;
    job *j = alk_calloc(1, sizeof(*j));
    if (j == NULL) {
        err->id = request->id;
        return alk_rpc_error_set(err, ALK_ENOMEM, NULL, "out of memory for a job");
    }
    j->server = server;
    j->request = *request;
    j->received = s->received;
    alk_buf_init(&j->reply);
    atomic_init(&j->cancel, false);
    uint64_t timeout_ms = 0;
    bool hold_generation = true;
    int rv = ALK_OK;
    j->kind = kind;
    if (kind == JOB_CONVERT) {
        rv = alk_rpc_convert_request(request, limits, arena, &j->convert, &j->options, err);
        timeout_ms = j->options.timeout_ms;
    } else {
        const alk_value *ms = alk_value_get(request->body, "ms");
        const alk_value *timeout = alk_value_get(request->body, "timeout_ms");
        const alk_value *hold = alk_value_get(request->body, "hold_generation");
        j->sleep_ms = (uint64_t)ms->as.integer;
        timeout_ms =
            timeout != NULL && timeout->kind == ALK_VALUE_INT ? (uint64_t)timeout->as.integer : 0;
        hold_generation = hold == NULL || hold->kind != ALK_VALUE_BOOL || hold->as.boolean;
    }
    if (rv != ALK_OK) {
        err->id = request->id;
        alk_free(j);
        return rv;
    }
    if (timeout_ms == 0) {
        timeout_ms = limits->default_timeout_ms;
    }
    if (timeout_ms > limits->max_timeout_ms) {
        timeout_ms = limits->max_timeout_ms;
    }
    if (hold_generation && server->generation != NULL) {
        j->generation = alk_generation_ref(server->generation);
        j->generation_id = alk_generation_id(server->generation);
    }
    j->deadline.data = j;
    (void)uv_timer_init(server->loop, &j->deadline);
    s->state = SLOT_WORKING;
    s->next = NULL;
    j->requesters = s;
    j->arena = *arena; /* the request's tree moves with the arena's blocks */
    rv = alkd_pool_submit(&server->pool, &j->item);
    if (rv != ALK_OK) {
        *arena = j->arena; /* the caller keeps it on failure */
        j->arena = (alk_arena){0};
        alk_generation_unref(j->generation);
        j->generation = NULL;
        uv_close((uv_handle_t *)&j->deadline, job_free);
        err->id = request->id;
        return alk_rpc_error_set(err, ALK_EBUSY, NULL,
                                 "the job queue is full (%zu workers busy, %zu jobs waiting); "
                                 "retry later",
                                 alkd_pool_running(&server->pool), alkd_pool_queued(&server->pool));
    }
    *arena = (alk_arena){0};
    j->cache = (request->method->flags & ALK_RPC_METHOD_CACHEABLE)
                   ? alkd_cache_begin(&server->cache, hash, len, j, request->method->id)
                   : NULL;
    uint64_t elapsed = (alkd__now() - s->received) / 1000000;
    (void)uv_timer_start(&j->deadline, on_deadline, timeout_ms > elapsed ? timeout_ms - elapsed : 0,
                         0);
    return ALK_OK;
}
