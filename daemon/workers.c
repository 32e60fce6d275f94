/*
 * The worker processes (see workers.h).
 *
 * Each worker is `alkaidd --worker`, spawned with libuv (fork and exec from the loop thread, so
 * that nothing of the daemon's threads lives on in the child) with fd 3 a socket pair to us and
 * fd 4 a memfd holding its status page. A worker's states:
 *
 *   STARTING --READY--> IDLE --JOB--> BUSY --RESULT--> IDLE ...
 *   any state --(retired, stopped, READY with an error, ENOMEM)--> ENDING
 *
 * A worker is only freed when its process has exited, its socket has reached EOF (so that a
 * RESULT written just before an exit is still read) and its three handles are closed (so that
 * no write callback is pending): then a lost job is reported, and the worker replaced.
 *
 * The memory ceiling is watched from here as each busy worker's RSS, every WATCH_MS; the worker
 * itself caps its address space (worker.c) so that fast growth fails its allocations first.
 *
 * Thread rule: loop thread only.
 */
#define _GNU_SOURCE /* memfd_create */
#include "workers.h"

#include "log.h"

#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

enum {
    WATCH_MS = 100,         /* memory watch of busy workers */
    START_LIMIT_MS = 60000, /* a worker not ready by then is killed */
    EOF_WAIT_MS = 1000,     /* after an exit, for a socket some grandchild still holds */
    RESPAWN_MAX_MS = 5000,  /* the longest delay between failed starts */
    READ_CHUNK = 64 * 1024,
};

typedef enum worker_state { W_STARTING, W_IDLE, W_BUSY, W_ENDING } worker_state;

struct alkd_worker {
    alkd_workers *pool;
    alkd_worker *next;
    uv_process_t process;
    uv_pipe_t pipe;
    uv_timer_t timer; /* start-up limit, then a cancel's grace, then the wait for EOF */
    int handles;      /* open handles; the worker is freed at 0 */
    uv_shutdown_t shutdown;
    bool shut_down;
    /* The INIT frame and the JOB frame being written (one of each at most). */
    uv_write_t init_write;
    alkd_frame init_header;
    alk_buf init_payload;
    uv_write_t job_write;
    alkd_frame job_header;
    void (*release)(void *owner);
    void *owner;
    alkd_worker_page *page;
    worker_state state;
    bool was_ready;
    bool retired; /* ended on purpose (a newer generation, the daemon stopping) */
    uint64_t generation;
    void *job;
    uint64_t seq;
    bool cancelled;
    bool niced; /* runs a heavy job at a lower priority: replaced after it */
    bool killed_for_memory;
    bool exited;
    bool eof;
    int64_t exit_status;
    int term_signal;
    alk_buf in; /* bytes read, not yet a whole frame */
};

static void fill(alkd_workers *pool);

static bool current(const alkd_worker *w) {
    return w->generation == w->pool->generation && !w->pool->stopping;
}

static void kill_worker(alkd_worker *w, int sig) {
    if (!w->exited) {
        (void)uv_process_kill(&w->process, sig);
    }
}

/* Asks the worker to exit: it reads EOF and leaves. */
static void end_worker(alkd_worker *w) {
    w->state = W_ENDING;
    if (!w->shut_down && !w->eof && !uv_is_closing((uv_handle_t *)&w->pipe)) {
        w->shut_down = uv_shutdown(&w->shutdown, (uv_stream_t *)&w->pipe, NULL) == 0;
        if (!w->shut_down) {
            kill_worker(w, SIGKILL);
        }
    }
}

/* ---- freeing -------------------------------------------------------------------------------- */

static void report_loss(alkd_worker *w) {
    alkd_workers *pool = w->pool;
    void *job = w->job;
    w->job = NULL;
    char what[160];
    int code = ALK_EPLUGIN;
    if (w->killed_for_memory || w->page->at_memory_limit) {
        code = ALK_ENOMEM;
        (void)snprintf(what, sizeof(what), "it passed the worker memory limit of %" PRIu64 " MiB",
                       pool->config.memory_bytes >> 20);
    } else if (w->term_signal != 0) {
        (void)snprintf(what, sizeof(what), "signal %d, %s", w->term_signal,
                       strsignal(w->term_signal));
    } else {
        (void)snprintf(what, sizeof(what), "it exited with status %" PRId64, w->exit_status);
    }
    if (!w->cancelled) {
        pool->crashed++;
    }
    w->page->last_trace[sizeof(w->page->last_trace) - 1] = '\0';
    pool->events.lost(pool->events.ctx, job, code, what, w->page->last_trace);
}

static void maybe_stopped(alkd_workers *pool) {
    if (pool->stopping && pool->all == NULL && pool->stopped != NULL) {
        void (*stopped)(void *ctx) = pool->stopped;
        pool->stopped = NULL;
        uv_close((uv_handle_t *)&pool->watch, NULL);
        uv_close((uv_handle_t *)&pool->respawn, NULL);
        stopped(pool->events.ctx);
    }
}

static bool any_ready(const alkd_workers *pool) {
    for (const alkd_worker *w = pool->all; w != NULL; w = w->next) {
        if (w->generation == pool->generation && (w->state == W_IDLE || w->state == W_BUSY)) {
            return true;
        }
    }
    return false;
}

static void finalize(alkd_worker *w) {
    alkd_workers *pool = w->pool;
    for (alkd_worker **link = &pool->all; *link != NULL; link = &(*link)->next) {
        if (*link == w) {
            *link = w->next;
            break;
        }
    }
    if (w->job != NULL) {
        report_loss(w);
    }
    bool start_failed = !w->was_ready && !w->retired && !pool->stopping;
    if (start_failed) {
        pool->start_failures++;
        if (pool->start_error[0] == '\0') {
            (void)snprintf(pool->start_error, sizeof(pool->start_error),
                           "a worker process %s before it was ready",
                           w->term_signal != 0 ? "was killed by a signal" : "exited");
        }
        alkd_warn("worker %d could not start: %s", (int)w->process.pid, pool->start_error);
    }
    (void)munmap(w->page, ALKD_WORKER_PAGE_SIZE);
    alk_buf_fini(&w->in);
    alk_buf_fini(&w->init_payload);
    alk_free(w);
    if (pool->stopping) {
        maybe_stopped(pool);
        return;
    }
    if (start_failed && !any_ready(pool)) {
        pool->events.unavailable(pool->events.ctx, pool->start_error);
    }
    fill(pool);
}

static void on_handle_closed(uv_handle_t *handle) {
    alkd_worker *w = handle->data;
    if (--w->handles == 0) {
        finalize(w);
    }
}

static void close_handle(alkd_worker *w, uv_handle_t *handle) {
    if (!uv_is_closing(handle)) {
        uv_close(handle, on_handle_closed);
    }
}

/* Once the process has exited and its socket is drained, everything closes. */
static void maybe_close(alkd_worker *w) {
    if (w->exited && w->eof) {
        close_handle(w, (uv_handle_t *)&w->pipe);
        close_handle(w, (uv_handle_t *)&w->timer);
    }
}

static void on_eof_wait(uv_timer_t *timer) {
    alkd_worker *w = timer->data;
    w->eof = true; /* some other process still holds the socket: stop waiting for it */
    maybe_close(w);
}

static void on_exit_cb(uv_process_t *process, int64_t exit_status, int term_signal) {
    alkd_worker *w = process->data;
    w->exited = true;
    w->exit_status = exit_status;
    w->term_signal = term_signal;
    if (w->job != NULL && !w->cancelled) {
        alkd_warn("worker %d died during a job (%s %d)", (int)process->pid,
                  term_signal != 0 ? "signal" : "status",
                  term_signal != 0 ? term_signal : (int)exit_status);
    }
    close_handle(w, (uv_handle_t *)process);
    if (!w->eof) {
        (void)uv_timer_start(&w->timer, on_eof_wait, EOF_WAIT_MS, 0);
    }
    maybe_close(w);
}

/* ---- frames --------------------------------------------------------------------------------- */

static void protocol_error(alkd_worker *w, const char *what) {
    alkd_error("worker %d: %s; killing it", (int)w->process.pid, what);
    w->state = W_ENDING;
    kill_worker(w, SIGKILL);
}

static void on_ready(alkd_worker *w, const alkd_frame *frame, const char *payload) {
    alkd_workers *pool = w->pool;
    if (w->state == W_ENDING) {
        return; /* retired while it started: it reads EOF next and exits */
    }
    if (w->state != W_STARTING) {
        protocol_error(w, "READY out of turn");
        return;
    }
    (void)uv_timer_stop(&w->timer);
    if (frame->code != ALK_OK) {
        (void)snprintf(pool->start_error, sizeof(pool->start_error), "%.*s", (int)frame->length,
                       payload);
        w->state = W_ENDING; /* it exits by itself */
        return;
    }
    w->was_ready = true;
    pool->start_failures = 0;
    pool->start_error[0] = '\0';
    w->state = W_IDLE;
    pool->events.idle(pool->events.ctx);
}

static void on_result(alkd_worker *w, const alkd_frame *frame, const char *payload) {
    alkd_workers *pool = w->pool;
    if (w->state != W_BUSY || frame->seq != w->seq) {
        protocol_error(w, "a RESULT for no job");
        return;
    }
    (void)uv_timer_stop(&w->timer);
    void *job = w->job;
    w->job = NULL;
    w->cancelled = false;
    /* After ENOMEM the worker exits by itself, returning the memory; a niced one is replaced by
     * one at the normal priority. */
    bool keep = current(w) && frame->code != ALK_ENOMEM && !w->niced;
    if (keep) {
        w->state = W_IDLE;
    } else {
        w->retired = !current(w) || w->niced;
        end_worker(w);
    }
    pool->events.result(pool->events.ctx, job, (int)frame->code, payload, frame->length);
    if (keep) {
        pool->events.idle(pool->events.ctx);
    }
}

static void on_plugins(alkd_worker *w, const alkd_frame *frame, const char *payload) {
    if (w->state != W_BUSY || frame->seq != w->seq) {
        protocol_error(w, "a PLUGINS frame for no job");
        return;
    }
    w->pool->events.plugins(w->pool->events.ctx, w->job, payload, frame->length);
}

/* Handles every whole frame in w->in. */
static void handle_frames(alkd_worker *w) {
    size_t at = 0;
    while (w->in.len - at >= sizeof(alkd_frame) && !w->exited) {
        alkd_frame frame;
        memcpy(&frame, w->in.data + at, sizeof(frame));
        if (frame.length > ALKD_FRAME_MAX_PAYLOAD) {
            protocol_error(w, "an oversized frame");
            return;
        }
        if (w->in.len - at - sizeof(frame) < frame.length) {
            break;
        }
        const char *payload = w->in.data + at + sizeof(frame);
        at += sizeof(frame) + frame.length;
        if (frame.type == ALKD_FRAME_READY) {
            on_ready(w, &frame, payload);
        } else if (frame.type == ALKD_FRAME_PLUGINS) {
            on_plugins(w, &frame, payload);
        } else if (frame.type == ALKD_FRAME_RESULT) {
            on_result(w, &frame, payload);
        } else {
            protocol_error(w, "an unknown frame");
            return;
        }
    }
    memmove(w->in.data, w->in.data + at, w->in.len - at);
    w->in.len -= at;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    alkd_worker *w = handle->data;
    (void)suggested;
    /* Room for the rest of the frame being read, so that a big reply comes in a few reads. */
    size_t want = READ_CHUNK;
    if (w->in.len >= sizeof(alkd_frame)) {
        alkd_frame frame;
        memcpy(&frame, w->in.data, sizeof(frame));
        size_t missing = sizeof(frame) + (size_t)frame.length - w->in.len;
        want = missing > want && frame.length <= ALKD_FRAME_MAX_PAYLOAD ? missing : want;
    }
    if (alk_buf_reserve(&w->in, want) != ALK_OK) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(w->in.data + w->in.len, (unsigned)(w->in.cap - w->in.len - 1));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    alkd_worker *w = stream->data;
    (void)buf;
    if (nread > 0) {
        w->in.len += (size_t)nread;
        handle_frames(w);
        return;
    }
    if (nread == 0) {
        return;
    }
    /* EOF or an error: the worker is gone for us. */
    (void)uv_read_stop(stream);
    w->eof = true;
    if (w->state != W_ENDING) {
        w->state = W_ENDING;
    }
    kill_worker(w, SIGKILL);
    maybe_close(w);
}

static void on_init_written(uv_write_t *req, int status) {
    alkd_worker *w = req->data;
    alk_buf_fini(&w->init_payload);
    if (status != 0 && status != UV_ECANCELED) {
        kill_worker(w, SIGKILL);
    }
}

static void on_job_written(uv_write_t *req, int status) {
    alkd_worker *w = req->data;
    void (*release)(void *owner) = w->release;
    w->release = NULL;
    release(w->owner);
    if (status != 0 && status != UV_ECANCELED) {
        kill_worker(w, SIGKILL); /* the job is reported lost when the worker is gone */
    } else if (w->state == W_IDLE) {
        w->pool->events.idle(w->pool->events.ctx); /* it answered before this callback */
    }
}

/* ---- starting ------------------------------------------------------------------------------- */

static void on_start_limit(uv_timer_t *timer) {
    alkd_worker *w = timer->data;
    if (w->state == W_STARTING) {
        (void)snprintf(w->pool->start_error, sizeof(w->pool->start_error),
                       "a worker process was not ready after %d s", START_LIMIT_MS / 1000);
        kill_worker(w, SIGKILL);
    }
}

/* Starts one worker of the current generation; false when it could not even be spawned. */
static bool spawn(alkd_workers *pool) {
    alkd_worker *w = alk_calloc(1, sizeof(*w));
    int page_fd = memfd_create("alkaidd-worker", MFD_CLOEXEC);
    if (w == NULL || page_fd < 0 || ftruncate(page_fd, ALKD_WORKER_PAGE_SIZE) != 0) {
        (void)snprintf(pool->start_error, sizeof(pool->start_error),
                       "cannot make a worker's status page: %s", strerror(errno));
        if (page_fd >= 0) {
            (void)close(page_fd);
        }
        alk_free(w);
        return false;
    }
    w->page = mmap(NULL, ALKD_WORKER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0);
    if (w->page == MAP_FAILED) {
        (void)close(page_fd);
        alk_free(w);
        return false;
    }
    w->pool = pool;
    w->generation = pool->generation;
    w->state = W_STARTING;
    w->process.data = w;
    w->pipe.data = w;
    w->timer.data = w;
    w->init_write.data = w;
    w->job_write.data = w;
    (void)uv_pipe_init(pool->loop, &w->pipe, 0);
    (void)uv_timer_init(pool->loop, &w->timer);
    w->handles = 3; /* the process handle must be closed even when the spawn fails */
    uv_stdio_container_t stdio[5] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&w->pipe},
        {.flags = UV_INHERIT_FD, .data.fd = page_fd},
    };
    char *args[] = {pool->exe, "--worker", NULL};
    uv_process_options_t options = {
        .exit_cb = on_exit_cb,
        .file = pool->exe,
        .args = args,
        .stdio = stdio,
        .stdio_count = 5,
    };
    w->next = pool->all;
    pool->all = w;
    int rv = uv_spawn(pool->loop, &w->process, &options);
    (void)close(page_fd);
    if (rv != 0) {
        (void)snprintf(pool->start_error, sizeof(pool->start_error), "cannot start %.160s: %s",
                       pool->exe, uv_strerror(rv));
        w->state = W_ENDING;
        w->exited = true;
        w->eof = true;
        close_handle(w, (uv_handle_t *)&w->process);
        maybe_close(w);
        return false;
    }
    pool->started++;
    w->init_header = (alkd_frame){.type = ALKD_FRAME_INIT, .length = (uint32_t)pool->init.len};
    alk_buf_init(&w->init_payload);
    alk_buf_append(&w->init_payload, pool->init.data, pool->init.len);
    uv_buf_t bufs[2] = {
        uv_buf_init((char *)&w->init_header, sizeof(w->init_header)),
        uv_buf_init(w->init_payload.data, (unsigned)w->init_payload.len),
    };
    if (alk_buf_error(&w->init_payload) != ALK_OK ||
        uv_write(&w->init_write, (uv_stream_t *)&w->pipe, bufs, 2, on_init_written) != 0 ||
        uv_read_start((uv_stream_t *)&w->pipe, on_alloc, on_read) != 0) {
        w->state = W_ENDING;
        kill_worker(w, SIGKILL);
        return true;
    }
    (void)uv_timer_start(&w->timer, on_start_limit, START_LIMIT_MS, 0);
    return true;
}

static void on_respawn(uv_timer_t *timer) {
    alkd_workers *pool = timer->data;
    pool->respawn_armed = false;
    if (!pool->stopping) {
        (void)spawn(pool);
    }
}

/* Starts workers of the current generation up to the configured number; after failed starts,
 * one at a time with a doubling delay. */
static void fill(alkd_workers *pool) {
    if (pool->stopping || pool->respawn_armed) {
        return;
    }
    size_t live = 0;
    for (const alkd_worker *w = pool->all; w != NULL; w = w->next) {
        live += w->generation == pool->generation && w->state != W_ENDING;
    }
    if (live >= pool->config.n) {
        return;
    }
    if (pool->start_failures > 0) {
        uint64_t delay = 100u << (pool->start_failures < 6 ? pool->start_failures - 1 : 5);
        pool->respawn_armed = true;
        (void)uv_timer_start(&pool->respawn, on_respawn,
                             delay < RESPAWN_MAX_MS ? delay : RESPAWN_MAX_MS, 0);
        return;
    }
    while (live < pool->config.n && spawn(pool)) {
        live++;
    }
}

/* ---- the memory watch ----------------------------------------------------------------------- */

static uint64_t rss_of(int pid) {
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    FILE *f = fopen(path, "re");
    unsigned long long size = 0;
    unsigned long long resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2) {
            resident = 0;
        }
        (void)fclose(f);
    }
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void on_watch(uv_timer_t *timer) {
    alkd_workers *pool = timer->data;
    bool busy = false;
    for (alkd_worker *w = pool->all; w != NULL; w = w->next) {
        if (w->state != W_BUSY || w->exited) {
            continue;
        }
        busy = true;
        if (pool->config.memory_bytes > 0 && !w->killed_for_memory &&
            rss_of(w->process.pid) > pool->config.memory_bytes) {
            w->killed_for_memory = true;
            pool->killed++;
            kill_worker(w, SIGKILL);
        }
    }
    if (!busy) {
        (void)uv_timer_stop(timer);
    }
}

/* ---- the pool ------------------------------------------------------------------------------- */

int alkd_workers_init(alkd_workers *pool, uv_loop_t *loop, const alkd_workers_config *config,
                      const alkd_workers_events *events) {
    *pool = (alkd_workers){.loop = loop, .config = *config, .events = *events};
    alk_buf_init(&pool->init);
    size_t size = sizeof(pool->exe);
    if (uv_exepath(pool->exe, &size) != 0) {
        return ALK_EINTERNAL;
    }
    pool->watch.data = pool;
    pool->respawn.data = pool;
    (void)uv_timer_init(loop, &pool->watch);
    (void)uv_timer_init(loop, &pool->respawn);
    return ALK_OK;
}

int alkd_workers_generation(alkd_workers *pool, uint64_t id, const alk_buf *init, bool restart) {
    alk_buf_reset(&pool->init);
    alk_buf_append(&pool->init, init->data, init->len);
    if (alk_buf_error(&pool->init) != ALK_OK) {
        return ALK_ENOMEM;
    }
    if (!restart) {
        for (alkd_worker *w = pool->all; w != NULL; w = w->next) {
            w->generation = w->generation == pool->generation ? id : w->generation;
        }
        pool->generation = id;
        return ALK_OK;
    }
    pool->generation = id;
    pool->start_failures = 0;
    pool->start_error[0] = '\0';
    for (alkd_worker *w = pool->all; w != NULL; w = w->next) {
        if (w->generation != id && (w->state == W_IDLE || w->state == W_STARTING)) {
            w->retired = true;
            end_worker(w); /* a busy one ends when its job does (on_result) */
        }
    }
    if (pool->respawn_armed) {
        (void)uv_timer_stop(&pool->respawn);
        pool->respawn_armed = false;
    }
    fill(pool);
    return ALK_OK;
}

bool alkd_workers_run(alkd_workers *pool, void *job, const alkd_frame *frame, const void *bytes,
                      size_t len, void (*release)(void *owner), void *owner,
                      alkd_worker **ret_worker) {
    alkd_worker *w = pool->all;
    while (w != NULL && !(w->state == W_IDLE && current(w) && w->release == NULL)) {
        w = w->next;
    }
    if (w == NULL) {
        return false;
    }
    w->job = job;
    w->seq = ++pool->next_seq;
    w->state = W_BUSY;
    w->cancelled = false;
    w->page->last_trace[0] = '\0';
    w->job_header = *frame;
    w->job_header.type = ALKD_FRAME_JOB;
    w->job_header.seq = w->seq;
    w->job_header.length = (uint32_t)len;
    w->release = release;
    w->owner = owner;
    uv_buf_t bufs[2] = {
        uv_buf_init((char *)&w->job_header, sizeof(w->job_header)),
        uv_buf_init((char *)bytes, (unsigned)len),
    };
    if (uv_write(&w->job_write, (uv_stream_t *)&w->pipe, bufs, 2, on_job_written) != 0) {
        w->release = NULL;
        release(owner);
        w->state = W_ENDING;
        kill_worker(w, SIGKILL); /* reported lost when it is gone */
    }
    if (!uv_is_active((uv_handle_t *)&pool->watch)) {
        (void)uv_timer_start(&pool->watch, on_watch, WATCH_MS, WATCH_MS);
    }
    *ret_worker = w;
    return true;
}

void alkd_workers_lower_priority(alkd_worker *w) {
    if (w->state == W_BUSY && !w->exited &&
        setpriority(PRIO_PROCESS, (id_t)w->process.pid, ALKD_WORKER_HEAVY_NICE) == 0) {
        w->niced = true;
    }
}

static void on_grace(uv_timer_t *timer) {
    alkd_worker *w = timer->data;
    if (w->state == W_BUSY && w->cancelled) {
        alkd_warn("worker %d did not stop its cancelled job in %" PRIu64 " ms: killing it",
                  (int)w->process.pid, w->pool->config.kill_grace_ms);
        w->pool->killed++;
        kill_worker(w, SIGKILL);
    }
}

void alkd_workers_cancel(alkd_worker *w) {
    if (w->state != W_BUSY || w->cancelled) {
        return;
    }
    w->cancelled = true;
    kill_worker(w, SIGUSR1);
    (void)uv_timer_start(&w->timer, on_grace, w->pool->config.kill_grace_ms, 0);
}

static size_t count_state(const alkd_workers *pool, worker_state state) {
    size_t n = 0;
    for (const alkd_worker *w = pool->all; w != NULL; w = w->next) {
        n += w->state == state;
    }
    return n;
}

size_t alkd_workers_idle(const alkd_workers *pool) {
    size_t n = 0;
    for (const alkd_worker *w = pool->all; w != NULL; w = w->next) {
        n += w->state == W_IDLE && current(w) && w->release == NULL;
    }
    return n;
}

size_t alkd_workers_busy(const alkd_workers *pool) {
    return count_state(pool, W_BUSY);
}

void alkd_workers_stop(alkd_workers *pool, void (*stopped)(void *ctx)) {
    pool->stopping = true;
    pool->stopped = stopped;
    (void)uv_timer_stop(&pool->respawn);
    (void)uv_timer_stop(&pool->watch);
    for (alkd_worker *w = pool->all; w != NULL; w = w->next) {
        if (w->state == W_BUSY) {
            kill_worker(w, SIGKILL);
        }
        w->retired = true;
        end_worker(w);
    }
    alk_buf_fini(&pool->init);
    maybe_stopped(pool);
}
