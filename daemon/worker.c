/*
 * A worker process: `alkaidd --worker`, started by the daemon (workers.c) to run conversions, so
 * that a plugin that crashes, aborts, calls exit(), hangs or allocates without bound takes one
 * process and one request down, never the daemon and the requests of others.
 *
 * Life: it reads its INIT frame (the plugin directories, the limits, the generation id, its memory
 * ceiling), builds its own plugin generation from the same manifests as the daemon's, caps its
 * address space, answers READY and then runs one job per JOB frame: the same in-process path as
 * `alkaidc convert --local` (alk_rpc_convert_local), whose reply bytes go back in a RESULT frame,
 * preceded by a PLUGINS frame when it has news for the daemon of the on-demand plugins it loaded.
 * It exits when the daemon closes the socket, when its parent dies (PR_SET_PDEATHSIG) and after
 * a job that ran out of memory (a fresh process returns the memory to the system).
 *
 * Signals: SIGUSR1 cancels the job in progress (the conversion polls the flag, as for a
 * deadline in-process); SIGINT, SIGTERM and SIGHUP are ignored, because the daemon stops its
 * workers itself once their jobs are answered (a terminal's Ctrl-C or systemd's SIGTERM to the
 * whole group must not kill jobs in flight). A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGABRT) is noted on the status page, with whether the address space was exhausted, and then
 * kills the process as it would have: the daemon tells the client which signal it was.
 *
 * Thread rule: one thread; the signal handlers touch only the page and an atomic flag.
 */
#include "worker.h"

#include "log.h"
#include "worker_proto.h"

#include "core/alloc.h"
#include "plugin/registry.h"
#include "rpc/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Address-space limits cannot apply under a sanitizer, which reserves terabytes of shadow. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

enum { TRIM_BYTES = 64 << 20 }; /* free heap bytes worth returning to the system */

typedef struct worker {
    int fd;
    alk_generation *generation;
    alk_rpc_limits limits;
    bool test_hooks;
    uint64_t memory_bytes;  /* the ceiling; 0: none */
    alk_plugin_info *built; /* the generation's listing as built: which plugins are on demand */
    size_t reported;        /* on-demand plugins loaded or refused, as last reported */
    uint64_t reported_generation; /* the daemon's generation of that report */
} worker;

static alkd_worker_page *page;
static atomic_bool cancel_requested;
static size_t probe_bytes; /* what the crash handler tries to map to see if memory ran out */

/* ---- signals ------------------------------------------------------------------------------- */

static void on_cancel(int sig) {
    (void)sig;
    atomic_store(&cancel_requested, true);
}

static void on_fatal(int sig) {
    page->fatal_signal = sig;
    /* At the ceiling the address space has no room left for a modest mapping. */
    void *probe =
        mmap(NULL, probe_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) {
        page->at_memory_limit = 1;
    } else {
        (void)munmap(probe, probe_bytes);
    }
    (void)signal(sig, SIG_DFL);
    (void)raise(sig);
}

static int install_signals(void) {
    static char alt_stack[64 * 1024]; /* a stack overflow must still reach the handler */
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack)};
    if (sigaltstack(&ss, NULL) != 0) {
        return ALK_EINTERNAL;
    }
    struct sigaction fatal = {.sa_handler = on_fatal, .sa_flags = SA_ONSTACK | SA_RESETHAND};
    sigemptyset(&fatal.sa_mask);
    static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
        (void)sigaction(fatal_signals[i], &fatal, NULL);
    }
    struct sigaction cancel = {.sa_handler = on_cancel, .sa_flags = SA_RESTART};
    sigemptyset(&cancel.sa_mask);
    (void)sigaction(SIGUSR1, &cancel, NULL);
    (void)signal(SIGINT, SIG_IGN);
    (void)signal(SIGTERM, SIG_IGN);
    (void)signal(SIGHUP, SIG_IGN);
    (void)signal(SIGPIPE, SIG_IGN);
    return ALK_OK;
}

/* ---- frames -------------------------------------------------------------------------------- */

/* Reads (`writing` false) or writes exactly `len` bytes; false on EOF or an error. */
static bool transfer(int fd, bool writing, char *bytes, size_t len) {
    while (len > 0) {
        ssize_t n = writing ? write(fd, bytes, len) : read(fd, bytes, len);
        if (n < 0 && errno == EINTR) {
            continue; /* SIGUSR1 (a cancel) arrived between jobs */
        }
        if (n <= 0) {
            return false;
        }
        bytes += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_full(int fd, void *bytes, size_t len) {
    return transfer(fd, false, bytes, len);
}

static bool write_full(int fd, const void *bytes, size_t len) {
    return transfer(fd, true, (char *)bytes, len);
}

static bool send_frame(int fd, alkd_frame *frame, const void *payload, size_t len) {
    frame->length = (uint32_t)len;
    return write_full(fd, frame, sizeof(*frame)) && write_full(fd, payload, len);
}

/* Reads the next frame and its payload into `payload` (reset first); false at EOF. */
static bool receive_frame(int fd, alkd_frame *ret_frame, alk_buf *payload) {
    if (!read_full(fd, ret_frame, sizeof(*ret_frame))) {
        return false;
    }
    alk_buf_reset(payload);
    if (ret_frame->length > ALKD_FRAME_MAX_PAYLOAD) {
        return false;
    }
    if (alk_buf_reserve(payload, ret_frame->length) != ALK_OK ||
        !read_full(fd, payload->data, ret_frame->length)) {
        return false;
    }
    payload->len = ret_frame->length;
    payload->data[payload->len] = '\0';
    return true;
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* The strings of an array value, as a NULL-terminated array allocated in `arena`. */
static const char *const *strings_of(const alk_value *array, alk_arena *arena, size_t *ret_n) {
    size_t n = array != NULL && array->kind == ALK_VALUE_ARRAY ? array->as.array.len : 0;
    const char **out = alk_arena_calloc(arena, n + 1, sizeof(*out));
    if (out == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (array->as.array.items[i]->kind == ALK_VALUE_STR) {
            out[k++] = array->as.array.items[i]->as.str.bytes;
        }
    }
    *ret_n = k;
    return out;
}

static uint64_t uint_of(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_INT && v->as.integer > 0 ? (uint64_t)v->as.integer : 0;
}

/* Caps the address space at what the process maps now plus its memory ceiling. */
static void cap_memory(uint64_t memory_bytes) {
    probe_bytes = (size_t)(memory_bytes / 16 > (64u << 20) ? memory_bytes / 16 : (64u << 20));
    if (SANITIZED || memory_bytes == 0) {
        return; /* the daemon's RSS watch still applies */
    }
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f != NULL) {
        if (fscanf(f, "%llu", &pages) != 1) {
            pages = 0;
        }
        (void)fclose(f);
    }
    rlim_t limit = (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) + memory_bytes);
    struct rlimit rl = {.rlim_cur = limit, .rlim_max = limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        alkd_warn("worker: cannot cap the address space: %s", strerror(errno));
    }
}

/* Reads INIT and builds the generation; on failure writes why to `diag`. */
static int start(worker *w, alk_buf *payload, alk_diag *diag) {
    alkd_frame frame;
    if (!receive_frame(w->fd, &frame, payload) || frame.type != ALKD_FRAME_INIT) {
        return alk_diag_set(diag, ALK_EPROTO, "no INIT frame from the daemon");
    }
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_value_limits value_limits;
    alk_value_limits_default(&value_limits);
    const alk_value *init = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    int rv =
        alk_value_from_msgpack(payload->data, payload->len, &value_limits, &arena, &init, &err);
    if (rv != ALK_OK) {
        alk_arena_fini(&arena);
        return alk_diag_set(diag, rv, "bad INIT frame: %s", err.diag.message);
    }
    const alk_value *limits = alk_value_get(init, "limits");
    alk_rpc_limits_default(&w->limits);
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        uint64_t value = uint_of(limits, alk_rpc_limit_fields[i].name);
        if (value > 0) {
            *(uint64_t *)((char *)&w->limits + alk_rpc_limit_fields[i].offset) = value;
        }
    }
    const alk_value *hooks = alk_value_get(init, "test_hooks");
    w->test_hooks = hooks != NULL && hooks->kind == ALK_VALUE_BOOL && hooks->as.boolean;
    w->memory_bytes = uint_of(init, "memory_bytes");
    alkd_log_level level = (alkd_log_level)uint_of(init, "log_level");
    alkd_log_init(level != 0 ? level : ALKD_LOG_INFO);

    alk_plugin_config config = {0};
    config.dirs = strings_of(alk_value_get(init, "plugin_dirs"), &arena, &config.n_dirs);
    config.disabled = strings_of(alk_value_get(init, "disabled"), &arena, &config.n_disabled);
    if (config.dirs == NULL || config.disabled == NULL) {
        alk_arena_fini(&arena);
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    rv = alk_generation_build(&config, NULL, &w->generation, diag);
    alk_arena_fini(&arena);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t n_built;
    if (alk_generation_plugins(w->generation, &w->built, &n_built) != ALK_OK) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    cap_memory(w->memory_bytes);
    return install_signals();
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void note_trace(void *ctx, const char *name) {
    (void)ctx;
    (void)snprintf(page->last_trace, sizeof(page->last_trace), "%s", name);
}

/* test.sleep: sleeps `ms`, polling the cancel flag, and reports the generation. */
static int run_sleep(const worker *w, const alkd_frame *job, const alk_buf *request,
                     alk_buf *reply) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    int rv = alk_rpc_decode_request(request->data, request->len, ALK_RPC_SOCKET_SERVICE,
                                    w->test_hooks, &w->limits, &arena, &req, &err);
    if (rv == ALK_OK) {
        double start = now_ms();
        double until = start + (double)alk_value_get(req.body, "ms")->as.integer;
        while (!atomic_load(&cancel_requested) && now_ms() < until) {
            struct timespec step = {0, 2000000}; /* 2 ms: a cancelled job ends at once */
            (void)nanosleep(&step, NULL);
        }
        if (atomic_load(&cancel_requested)) {
            rv = alk_rpc_error_set(&err, ALK_ECANCELED, NULL, "the job was cancelled");
            err.id = req.id;
        } else {
            alk_mp_map_writer map;
            alk_rpc_reply_open(&map, reply, req.id);
            alk_mp_key(&map, "slept_ms");
            alk_mp_float(reply, now_ms() - start);
            alk_mp_key(&map, "generation");
            alk_mp_uint(reply, job->generation);
            alk_mp_map_close(&map);
        }
    }
    if (rv != ALK_OK) {
        alk_buf_reset(reply);
        (void)alk_rpc_encode_error(&err, reply);
    }
    alk_arena_fini(&arena);
    return rv;
}

static int run_job(const worker *w, const alkd_frame *job, const alk_buf *request, alk_buf *reply) {
    atomic_store(&cancel_requested, false);
    page->last_trace[0] = '\0';
    page->job_seq = job->seq;
    int rv;
    if (job->kind == ALKD_JOB_SLEEP) {
        rv = run_sleep(w, job, request, reply);
    } else {
        alk_rpc_local how = {
            .limits = &w->limits,
            .generation = job->generation,
            .queue_ms = job->queue_ms,
            .cancel = &cancel_requested,
            .on_trace = note_trace,
        };
        alk_rpc_error err;
        rv = alk_rpc_convert_local(w->generation, request->data, request->len, &how, reply, &err);
    }
    page->job_seq = 0;
    return rv;
}

/* Whether plugin `i` of `now` (a listing of w->generation) was on demand and has been loaded or
 * refused since. */
static bool settled_on_demand(const worker *w, const alk_plugin_info *now, size_t i) {
    return w->built[i].state == ALK_PLUGIN_ON_DEMAND && now[i].state != ALK_PLUGIN_ON_DEMAND;
}

/* Sends PLUGINS (worker_proto.h) before the RESULT of conversion `job` when there is news for
 * the daemon; false when the socket is gone. */
static bool report_plugins(worker *w, const alkd_frame *job) {
    alk_plugin_info *now = NULL;
    size_t n = 0;
    if (alk_generation_plugins(w->generation, &now, &n) != ALK_OK) {
        return true; /* out of memory: a later job reports */
    }
    size_t settled = 0;
    for (size_t i = 0; i < n; i++) {
        settled += settled_on_demand(w, now, i);
    }
    bool sent = true;
    if (settled > 0 && (settled != w->reported || job->generation != w->reported_generation)) {
        alk_buf payload;
        alk_buf_init(&payload);
        alk_mp_array(&payload, (uint32_t)settled);
        for (size_t i = 0; i < n; i++) {
            if (!settled_on_demand(w, now, i)) {
                continue;
            }
            alk_mp_map_writer plugin;
            alk_mp_map_open(&plugin, &payload);
            alk_mp_key(&plugin, "group");
            alk_mp_str(&payload, now[i].group);
            alk_mp_key(&plugin, "name");
            alk_mp_str(&payload, now[i].name);
            alk_mp_key(&plugin, "version");
            alk_mp_str(&payload, now[i].version);
            alk_mp_key(&plugin, "error");
            alk_mp_str(&payload, now[i].state == ALK_PLUGIN_REFUSED ? now[i].error : NULL);
            alk_mp_map_close(&plugin);
        }
        if (alk_buf_error(&payload) == ALK_OK) {
            alkd_frame frame = {.type = ALKD_FRAME_PLUGINS, .seq = job->seq};
            sent = send_frame(w->fd, &frame, payload.data, payload.len);
            w->reported = settled;
            w->reported_generation = job->generation;
        }
        alk_buf_fini(&payload);
    }
    alk_free(now);
    return sent;
}

int alkd_worker_main(void) {
    /* Die with the daemon; if it is gone already, do not start. */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || parent == 1) {
        return 1;
    }
    alkd_log_set_name("alkaidd worker");
    worker w = {.fd = ALKD_WORKER_SOCKET_FD};
    page = mmap(NULL, ALKD_WORKER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                ALKD_WORKER_PAGE_FD, 0);
    int flags = fcntl(w.fd, F_GETFL);
    if (page == MAP_FAILED || flags < 0 || fcntl(w.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        fprintf(stderr, "alkaidd: --worker is internal: the daemon starts its workers itself\n");
        return 2;
    }
    alk_buf payload;
    alk_buf_init(&payload);
    alk_diag diag = {{0}};
    int rv = start(&w, &payload, &diag);
    alkd_frame ready = {.type = ALKD_FRAME_READY, .code = (uint32_t)rv};
    bool sent = send_frame(w.fd, &ready, diag.message, rv != ALK_OK ? strlen(diag.message) : 0);
    if (rv != ALK_OK || !sent) {
        alk_buf_fini(&payload);
        alk_generation_unref(w.generation);
        return 1;
    }
    alk_buf reply;
    alk_buf_init(&reply);
    alkd_frame job;
    while (receive_frame(w.fd, &job, &payload) && job.type == ALKD_FRAME_JOB) {
        alk_buf_reset(&reply);
        rv = run_job(&w, &job, &payload, &reply);
        if (alk_buf_error(&reply) != ALK_OK) {
            break; /* not even the error reply fits: the daemon answers ENOMEM for the lost job */
        }
        if (job.kind == ALKD_JOB_CONVERT && !report_plugins(&w, &job)) {
            break;
        }
        alkd_frame result = {.type = ALKD_FRAME_RESULT, .code = (uint32_t)rv, .seq = job.seq};
        if (!send_frame(w.fd, &result, reply.data, reply.len) || rv == ALK_ENOMEM) {
            break;
        }
        /* Freed memory goes back to the system after a big job, so that the RSS the daemon
         * watches is the next job's (a trim costs milliseconds: not after every small job). */
        if (mallinfo2().fordblks > TRIM_BYTES) {
            (void)malloc_trim(0);
        }
    }
    /* No plugin fini and no frees: the process ends and the system takes everything back. */
    _exit(0);
}
