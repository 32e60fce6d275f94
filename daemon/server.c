/*
 * alkaidd's server: the libuv loop, the nng REP sockets and their contexts, request dispatch,
 * replies, signals, sd_notify and the graceful stop.
 *
 * Design. Every `--listen` URL (and the control URL) is one nng REP socket. Each socket keeps a
 * few contexts ("slots") receiving; when one receives, the loop arms another, so there is one
 * context per request in flight and nng spreads the requests of all connections over them.
 * nng's aio callbacks run on nng's threads and do nothing but hand the slot to the loop (a
 * mutex-protected inbox and a uv_async); all request state lives on the loop thread. A request is
 * decoded and validated there: a bad one is answered at once, a listing or control method is
 * answered on the loop, a conversion becomes a job on the worker pool (jobs.c). Every request
 * gets exactly one reply, sent from the loop thread; a slot returns to receiving when its send
 * completes.
 *
 * Stopping (SIGTERM, SIGINT, `shutdown`): the service sockets stop receiving (requests not yet
 * taken stay in nng and a REQ client resends them elsewhere when we close), every request taken
 * is finished and answered, then after a short linger (so that the last replies leave the
 * process) the sockets close and the loop ends with exit code 0. A second SIGTERM/SIGINT exits at
 * once with 1.
 *
 * Thread rule: loop thread only, except slot_aio_cb (nng threads), which touches only the inbox
 * under `inbox_lock` and the slot's aio_result before handing it over.
 */
#include "server_int.h"

#include "common.h"
#include "log.h"

#include "core/alloc.h"

#include <nng/protocol/reqrep0/rep.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

enum {
    SERVICE_RECEIVERS = 4, /* contexts kept receiving on each service socket */
    CONTROL_RECEIVERS = 1,
    SEND_TIMEOUT_MS = 30000, /* a client that does not read its reply loses it */
    HOUSEKEEPING_MS = 1000,
};

uint64_t alkd__now(void) {
    return uv_hrtime();
}

/* ---- slots --------------------------------------------------------------------------------- */

/* nng thread: record the result and hand the slot to the loop. */
static void slot_aio_cb(void *arg) {
    slot *s = arg;
    alkd_server *server = s->owner->server;
    s->aio_result = nng_aio_result(s->aio);
    uv_mutex_lock(&server->inbox_lock);
    s->next = NULL;
    if (server->inbox_tail != NULL) {
        server->inbox_tail->next = s;
    } else {
        server->inbox_head = s;
    }
    server->inbox_tail = s;
    uv_mutex_unlock(&server->inbox_lock);
    (void)uv_async_send(&server->inbox_async);
}

static slot *slot_new(listener *l) {
    slot **slots = alk_realloc(l->slots, (l->n_slots + 1) * sizeof(*slots));
    if (slots == NULL) {
        return NULL;
    }
    l->slots = slots;
    slot *s = alk_calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->owner = l;
    int rv = nng_aio_alloc(&s->aio, slot_aio_cb, s);
    if (rv == 0) {
        rv = nng_ctx_open(&s->ctx, l->socket);
        if (rv != 0) {
            nng_aio_free(s->aio);
        }
    }
    if (rv != 0) {
        alkd_error("cannot open an nng context on %s: %s", l->url, nng_strerror(rv));
        alk_free(s);
        return NULL;
    }
    l->slots[l->n_slots++] = s;
    return s;
}

static bool accepting(const listener *l) {
    const alkd_server *server = l->server;
    if (server->closing) {
        return false;
    }
    return l->control || server->state == STATE_SERVING;
}

static void ensure_receivers(listener *l) {
    size_t want = l->control ? CONTROL_RECEIVERS : SERVICE_RECEIVERS;
    while (accepting(l) && l->n_receiving < want) {
        slot *s = l->idle;
        if (s != NULL) {
            l->idle = s->next;
        } else {
            s = slot_new(l);
            if (s == NULL) {
                return; /* retried at the next completion */
            }
        }
        s->state = SLOT_RECEIVING;
        s->next = NULL;
        l->n_receiving++;
        nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
        nng_ctx_recv(s->ctx, s->aio);
    }
}

void alkd__update_receivers(alkd_server *server) {
    for (size_t i = 0; i < server->n_listeners; i++) {
        listener *l = server->listeners[i];
        if (accepting(l)) {
            ensure_receivers(l);
            continue;
        }
        for (size_t k = 0; k < l->n_slots; k++) {
            if (l->slots[k]->state == SLOT_RECEIVING) {
                nng_aio_cancel(l->slots[k]->aio);
            }
        }
    }
}

static void slot_release(slot *s) {
    listener *l = s->owner;
    s->state = SLOT_IDLE;
    s->next = l->idle;
    l->idle = s;
}

/* The request on `s` is answered (or its reply could not be sent). */
static void request_finished(alkd_server *server, slot *s) {
    server->inflight--;
    if (!s->owner->control) {
        server->service_inflight--;
    }
    slot_release(s);
    ensure_receivers(s->owner);
    alkd__drains_check(server);
    alkd__maybe_finish(server);
}

void alkd__abandon(alkd_server *server, slot *s) {
    request_finished(server, s);
}

/* ---- replies ------------------------------------------------------------------------------- */

void alkd__send_reply(alkd_server *server, slot *s, const void *bytes, size_t len) {
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, len);
    if (rv != 0) {
        alkd_error("cannot allocate a reply of %zu bytes: %s", len, nng_strerror(rv));
        request_finished(server, s);
        return;
    }
    memcpy(nng_msg_body(msg), bytes, len);
    nng_aio_set_msg(s->aio, msg);
    nng_aio_set_timeout(s->aio, SEND_TIMEOUT_MS);
    s->state = SLOT_SENDING;
    server->sending++;
    server->stats.replies++;
    nng_ctx_send(s->ctx, s->aio);
}

void alkd__count_error(alkd_server *server, int code) {
    server->stats.errors[code > 0 && code < N_ERROR_CODES ? code : ALK_EINTERNAL]++;
}

void alkd__send_error(alkd_server *server, slot *s, const alk_rpc_error *err) {
    alk_buf out;
    alk_buf_init(&out);
    int rv = alk_rpc_encode_error(err, &out);
    alkd__count_error(server, err->code);
    if (rv != ALK_OK) {
        alkd_error("cannot encode an error reply: %s", alk_strerror(rv));
        request_finished(server, s);
    } else {
        alkd__send_reply(server, s, out.data, out.len);
    }
    alk_buf_fini(&out);
}

/* ---- requests ------------------------------------------------------------------------------ */

static size_t method_index(const alk_rpc_method *method) {
    return method != NULL ? (size_t)(method - alk_rpc_methods) : alk_rpc_n_methods;
}

static void handle_request(alkd_server *server, slot *s) {
    nng_msg *msg = nng_aio_get_msg(s->aio);
    nng_aio_set_msg(s->aio, NULL);
    s->pipe = nng_pipe_id(nng_msg_get_pipe(msg));
    const void *bytes = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    uint64_t now = alkd__now();

    /* A resend, or an identical request: attach to the one in flight or reuse its reply. */
    uint64_t hash = alkd_cache_hash(&server->cache, bytes, len);
    alkd_cache_entry *hit = alkd_cache_find(&server->cache, hash, len, now);
    if (hit != NULL) {
        server->stats.cache_hits++;
        server->stats.requests_by_method[hit->tag]++;
        nng_msg_free(msg);
        if (hit->owner != NULL) {
            /* A resend on the same connection supersedes the earlier copy: the client waits
             * for one reply per request, and a second one would only be discarded. */
            job *j = hit->owner;
            for (slot **link = &j->requesters; *link != NULL;) {
                slot *r = *link;
                if (r->pipe == s->pipe) {
                    *link = r->next;
                    alkd__abandon(server, r);
                } else {
                    link = &r->next;
                }
            }
            s->next = j->requesters;
            j->requesters = s;
        } else {
            alkd__send_reply(server, s, hit->reply, hit->reply_len);
        }
        return;
    }

    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request request;
    alk_rpc_error err;
    uint32_t socket_kind = s->owner->control ? ALK_RPC_SOCKET_CONTROL : ALK_RPC_SOCKET_SERVICE;
    int rv = alk_rpc_decode_request(bytes, len, socket_kind, server->config->test_hooks,
                                    &server->config->limits, &arena, &request, &err);
    nng_msg_free(msg);
    if (rv != ALK_OK) {
        server->stats.requests_by_method[alk_rpc_n_methods]++;
        alkd_debug("refused a request on %s: %s %s", s->owner->url, alk_err_name(err.code),
                   err.diag.message);
        alkd__send_error(server, s, &err);
        alk_arena_fini(&arena);
        return;
    }
    server->stats.requests_by_method[method_index(request.method)]++;

    if (request.method->flags & ALK_RPC_METHOD_QUEUED) {
        rv = alkd__job_start(server, s, &arena, &request, hash, len, &err);
        if (rv != ALK_OK) {
            alkd__send_error(server, s, &err);
            alk_arena_fini(&arena);
        }
        return;
    }

    alk_buf reply;
    alk_buf_init(&reply);
    int code = ALK_OK;
    if (alkd__handle_method(server, s, &arena, &request, &reply, &code)) {
        if (alk_buf_error(&reply) != ALK_OK) {
            alk_rpc_error_set(&err, ALK_ENOMEM, NULL, "out of memory while encoding the reply");
            err.id = request.id;
            alkd__send_error(server, s, &err);
        } else {
            if (code != ALK_OK) {
                alkd__count_error(server, code);
            } else if (request.method->flags & ALK_RPC_METHOD_CACHEABLE) {
                alkd_cache_store(&server->cache, hash, len, method_index(request.method),
                                 reply.data, reply.len, now);
            }
            alkd__send_reply(server, s, reply.data, reply.len);
        }
        alk_arena_fini(&arena);
    }
    alk_buf_fini(&reply);
    if (strcmp(request.method->name, "shutdown") == 0 && code == ALK_OK) {
        alkd__begin_stop(server, 0);
    }
}

static void handle_completion(alkd_server *server, slot *s) {
    listener *l = s->owner;
    if (s->state == SLOT_RECEIVING) {
        l->n_receiving--;
        if (s->aio_result != 0) {
            if (s->aio_result != NNG_ECANCELED && s->aio_result != NNG_ECLOSED) {
                alkd_warn("receive failed on %s: %s", l->url, nng_strerror(s->aio_result));
            }
            slot_release(s);
            ensure_receivers(l);
            alkd__maybe_finish(server);
            return;
        }
        s->state = SLOT_WORKING;
        s->received = alkd__now();
        server->inflight++;
        if (!l->control) {
            server->service_inflight++;
        }
        ensure_receivers(l);
        handle_request(server, s);
    } else if (s->state == SLOT_SENDING) {
        server->sending--;
        if (s->aio_result != 0) {
            nng_msg *msg = nng_aio_get_msg(s->aio);
            nng_aio_set_msg(s->aio, NULL);
            nng_msg_free(msg);
            alkd_debug("a reply on %s was not delivered: %s", l->url, nng_strerror(s->aio_result));
        }
        request_finished(server, s);
    }
}

static void on_inbox(uv_async_t *handle) {
    alkd_server *server = handle->data;
    uv_mutex_lock(&server->inbox_lock);
    slot *s = server->inbox_head;
    server->inbox_head = NULL;
    server->inbox_tail = NULL;
    uv_mutex_unlock(&server->inbox_lock);
    while (s != NULL) {
        slot *next = s->next;
        handle_completion(server, s);
        s = next;
    }
}

/* ---- listeners ----------------------------------------------------------------------------- */

static int listener_open(alkd_server *server, const char *url, bool control, alk_diag *diag) {
    bool ipc = strncmp(url, "ipc://", 6) == 0;
    bool tcp = strncmp(url, "tcp://", 6) == 0;
    if (control && !ipc) {
        return alk_diag_set(diag, ALK_EINVAL, "the control socket must be ipc://, not '%s'", url);
    }
    if (!ipc && !tcp) {
        return alk_diag_set(diag, ALK_EINVAL, "'%s': only ipc:// and tcp:// URLs are served", url);
    }
    listener *l = alk_calloc(1, sizeof(*l));
    listener **all = alk_realloc(server->listeners, (server->n_listeners + 1) * sizeof(*all));
    char *url_copy = alk_strdup(url);
    if (l == NULL || all == NULL || url_copy == NULL) {
        alk_free(l);
        alk_free(url_copy);
        if (all != NULL) {
            server->listeners = all;
        }
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    server->listeners = all;
    l->server = server;
    l->control = control;
    l->url = url_copy;

    int rv = nng_rep0_open(&l->socket);
    if (rv == 0) {
        rv = nng_socket_set_size(l->socket, NNG_OPT_RECVMAXSZ,
                                 alkd_recv_limit(server->config->limits.max_message_bytes));
    }
    bool socket_open = rv == 0;
    if (rv == 0) {
        rv = nng_listener_create(&l->nng_listener, l->socket, url);
    }
    if (rv == 0 && ipc) {
        rv = nng_listener_set_int(l->nng_listener, NNG_OPT_IPC_PERMISSIONS,
                                  control ? 0600 : (int)server->config->socket_mode);
    }
    if (rv == 0) {
        /* The socket file must never exist with looser permissions, even for an instant. */
        mode_t old_mask = umask(control ? 0177 : 0);
        rv = nng_listener_start(l->nng_listener, 0);
        (void)umask(old_mask);
    }
    if (rv != 0) {
        int err = alkd_err_from_nng(rv);
        if (socket_open) {
            (void)nng_close(l->socket);
        }
        alk_free(l->url);
        alk_free(l);
        return alk_diag_set(diag, err, "cannot listen on %s: %s", url, nng_strerror(rv));
    }
    server->listeners[server->n_listeners++] = l;
    alkd_info("listening on %s%s", url, control ? " (control)" : "");
    return ALK_OK;
}

/* Closes every socket and frees the slots; nothing is in flight any more. */
static void listeners_close(alkd_server *server) {
    for (size_t i = 0; i < server->n_listeners; i++) {
        (void)nng_close(server->listeners[i]->socket);
    }
    for (size_t i = 0; i < server->n_listeners; i++) {
        listener *l = server->listeners[i];
        for (size_t k = 0; k < l->n_slots; k++) {
            nng_aio_free(l->slots[k]->aio); /* waits for a running callback */
            alk_free(l->slots[k]);
        }
        alk_free(l->slots);
        alk_free(l->url);
        alk_free(l);
    }
    alk_free(server->listeners);
    server->listeners = NULL;
    server->n_listeners = 0;
    /* Completions queued by the close refer to freed slots: drop them. */
    if (server->inbox_ready) {
        uv_mutex_lock(&server->inbox_lock);
        server->inbox_head = NULL;
        server->inbox_tail = NULL;
        uv_mutex_unlock(&server->inbox_lock);
    }
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void close_handle(uv_handle_t *handle) {
    if (handle->loop != NULL && !uv_is_closing(handle)) {
        uv_close(handle, NULL);
    }
}

static void final_close(alkd_server *server) {
    alkd_info("stopped: %llu replies sent", (unsigned long long)server->stats.replies);
    listeners_close(server);
    if (server->pool_started) {
        alkd_pool_stop(&server->pool);
        server->pool_started = false;
    }
    close_handle((uv_handle_t *)&server->inbox_async);
    close_handle((uv_handle_t *)&server->sig_hup);
    close_handle((uv_handle_t *)&server->sig_term);
    close_handle((uv_handle_t *)&server->sig_int);
    close_handle((uv_handle_t *)&server->housekeeping);
    close_handle((uv_handle_t *)&server->linger);
}

static void on_linger(uv_timer_t *timer) {
    final_close(timer->data);
}

void alkd__maybe_finish(alkd_server *server) {
    if (server->state != STATE_STOPPING || server->closing) {
        return;
    }
    if (server->inflight > 0 || (server->pool_started && alkd_pool_pending(&server->pool) > 0)) {
        return;
    }
    server->closing = true;
    alkd__update_receivers(server); /* the control socket stops receiving too */
    (void)uv_timer_start(&server->linger, on_linger, server->config->shutdown_linger_ms, 0);
}

void alkd__begin_stop(alkd_server *server, int exit_code) {
    if (server->state == STATE_STOPPING) {
        return;
    }
    server->state = STATE_STOPPING;
    server->exit_code = exit_code;
    (void)sd_notify(0, "STOPPING=1");
    alkd_info("stopping: finishing %zu requests in flight", server->inflight);
    alkd__drains_cancel(server);
    alkd__update_receivers(server);
    alkd__maybe_finish(server);
}

static void on_signal(uv_signal_t *handle, int signum) {
    alkd_server *server = handle->data;
    if (signum == SIGHUP) {
        alkd__reload_from_signal(server);
        return;
    }
    if (server->state == STATE_STOPPING) {
        alkd_warn("second %s while stopping: exiting at once", strsignal(signum));
        _exit(1);
    }
    alkd_info("%s received", strsignal(signum));
    alkd__begin_stop(server, 0);
}

static void on_housekeeping(uv_timer_t *timer) {
    alkd_server *server = timer->data;
    uint64_t now = alkd__now();
    alkd_cache_sweep(&server->cache, now);
    if (server->watchdog_usec > 0 &&
        now - server->last_watchdog >= server->watchdog_usec * 1000 / 2) {
        (void)sd_notify(0, "WATCHDOG=1");
        server->last_watchdog = now;
    }
    static unsigned ticks;
    if (++ticks % 5 == 0) {
        alkd__notify_status(server);
    }
}

/* ---- running ------------------------------------------------------------------------------- */

/* Creates the directory of a default ipc socket (0700 when we create it). */
static void make_socket_dir(const char *url) {
    const char *path = url + strlen("ipc://");
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path) {
        return;
    }
    char dir[512];
    if ((size_t)(slash - path) >= sizeof(dir)) {
        return;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        alkd_warn("cannot create %s: %s", dir, strerror(errno));
    }
}

static int open_listeners(alkd_server *server, alk_diag *diag) {
    alkd_config *config = server->config;
    char dir[512];
    char url[600];
    bool have_dir = alkd_runtime_dir(dir, sizeof(dir));
    int rv = ALK_OK;
    if (config->listen.len == 0) {
        if (!have_dir) {
            return alk_diag_set(diag, ALK_EINVAL, "no --listen URL and no runtime directory");
        }
        (void)snprintf(url, sizeof(url), "ipc://%s/%s", dir, ALKD_SERVICE_SOCKET);
        make_socket_dir(url);
        rv = listener_open(server, url, false, diag);
    }
    for (size_t i = 0; rv == ALK_OK && i < config->listen.len; i++) {
        rv = listener_open(server, config->listen.items[i], false, diag);
    }
    if (rv == ALK_OK && config->control != NULL) {
        rv = listener_open(server, config->control, true, diag);
    } else if (rv == ALK_OK) {
        if (!have_dir) {
            return alk_diag_set(diag, ALK_EINVAL, "no --control URL and no runtime directory");
        }
        (void)snprintf(url, sizeof(url), "ipc://%s/%s", dir, ALKD_CONTROL_SOCKET);
        make_socket_dir(url);
        rv = listener_open(server, url, true, diag);
    }
    return rv;
}

static int server_start(alkd_server *server, alk_diag *diag) {
    alkd_config *config = server->config;
    server->started = alkd__now();
    server->stats.requests_by_method =
        alk_calloc(alk_rpc_n_methods + 1, sizeof(*server->stats.requests_by_method));
    if (server->stats.requests_by_method == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    int rv = alkd_cache_init(&server->cache, config->reply_cache_ttl_ms * 1000000,
                             (size_t)config->reply_cache_bytes, 65536);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot create the reply cache");
    }
    if (uv_mutex_init(&server->inbox_lock) != 0) {
        return alk_diag_set(diag, ALK_EINTERNAL, "cannot create a mutex");
    }
    server->inbox_ready = true;
    server->inbox_async.data = server;
    server->sig_hup.data = server;
    server->sig_term.data = server;
    server->sig_int.data = server;
    server->housekeeping.data = server;
    server->linger.data = server;
    if (uv_async_init(server->loop, &server->inbox_async, on_inbox) != 0 ||
        uv_signal_init(server->loop, &server->sig_hup) != 0 ||
        uv_signal_init(server->loop, &server->sig_term) != 0 ||
        uv_signal_init(server->loop, &server->sig_int) != 0 ||
        uv_timer_init(server->loop, &server->housekeeping) != 0 ||
        uv_timer_init(server->loop, &server->linger) != 0) {
        return alk_diag_set(diag, ALK_EINTERNAL, "cannot create the loop's handles");
    }
    size_t workers = config->workers > 0 ? (size_t)config->workers : uv_available_parallelism();
    rv = alkd_pool_init(&server->pool, server->loop, workers, (size_t)config->queue, alkd__job_run,
                        alkd__job_done);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot start %zu worker threads", workers);
    }
    server->pool_started = true;
    rv = alkd__generation_init(server, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = open_listeners(server, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    (void)uv_signal_start(&server->sig_hup, on_signal, SIGHUP);
    (void)uv_signal_start(&server->sig_term, on_signal, SIGTERM);
    (void)uv_signal_start(&server->sig_int, on_signal, SIGINT);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) {
        server->watchdog_usec = usec;
        alkd_info("systemd watchdog: every %llu ms", (unsigned long long)(usec / 2000));
    }
    uint64_t tick = HOUSEKEEPING_MS;
    if (server->watchdog_usec > 0 && server->watchdog_usec / 4000 < tick) {
        tick = server->watchdog_usec / 4000 > 0 ? server->watchdog_usec / 4000 : 1;
    }
    (void)uv_timer_start(&server->housekeeping, on_housekeeping, tick, tick);
    alkd__update_receivers(server);
    alkd_info("serving with %zu workers, queue %llu, plugin generation %llu", workers,
              (unsigned long long)config->queue,
              (unsigned long long)(server->generation != NULL
                                       ? alk_generation_id(server->generation)
                                       : 0));
    (void)sd_notify(0, "READY=1");
    alkd__notify_status(server);
    return ALK_OK;
}

static void on_walk_close(uv_handle_t *handle, void *arg) {
    (void)arg;
    close_handle(handle);
}

int alkd_server_run(alkd_config *config) {
    /* A client that vanishes must not kill us with SIGPIPE. */
    (void)signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        alkd_error("cannot create the event loop");
        return 1;
    }
    alkd_server server = {.config = config, .loop = &loop};
    alk_diag diag = {{0}};
    int rv = server_start(&server, &diag);
    if (rv != ALK_OK) {
        alkd_error("%s", diag.message[0] != '\0' ? diag.message : alk_strerror(rv));
        server.closing = true;
        final_close(&server);
        uv_walk(&loop, on_walk_close, NULL);
        server.exit_code = 1;
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        alkd_warn("the event loop still had handles at exit");
    }
    alk_generation_unref(server.generation);
    alkd_strings_fini(&server.plugin_dirs);
    alkd_strings_fini(&server.disabled);
    alkd_cache_fini(&server.cache);
    alk_free(server.stats.requests_by_method);
    if (server.inbox_ready) {
        uv_mutex_destroy(&server.inbox_lock);
    }
    return server.exit_code;
}
