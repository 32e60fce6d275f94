/*
 * alkaidd's server: the libuv loop, the nng REP sockets and their contexts, request dispatch,
 * replies, signals, sd_notify and the graceful stop.
 *
 * Design. Every `--listen` URL (and the control URL) is one nng REP socket. Each socket keeps a
 * few contexts ("slots") receiving; when one receives, the loop arms another, so there is one
 * context per request in flight and nng spreads the requests of all connections over them.
 * nng's aio callbacks run on nng's threads and do nothing but hand the slot to the loop (a
 * mutex-protected inbox and a uv_async); all request state lives on the loop thread. A request
 * goes to requests.c, which decodes and validates it (a large one on a decode thread) and answers
 * it or makes it a job for the worker processes (jobs.c). Every request gets exactly one reply,
 * sent from the loop thread; a slot returns to receiving when its send completes.
 *
 * Stopping (SIGTERM, SIGINT, `shutdown`): a request that arrives on a service socket is answered
 * EBUSY at once (the client may send it again, to another daemon of a farm), every request taken
 * before is finished and answered, then after a short linger (so that the last replies leave the
 * process) the workers end, the sockets close and the loop ends with exit code 0. A second
 * SIGTERM/SIGINT exits at once with 1.
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
    /* The ipc listeners' probes (ipc_guard.h): a wedged listener is found and re-created within
     * PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS. */
    PROBE_INTERVAL_MS = 200,
    PROBE_TIMEOUT_MS = 300,
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

/* Whether `l` receives: while stopping, service sockets receive to answer EBUSY at once. */
static bool accepting(const listener *l) {
    const alkd_server *server = l->server;
    if (server->closing) {
        return false;
    }
    return l->control || server->state != STATE_DRAINING;
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
        nng_msg *msg = nng_aio_get_msg(s->aio);
        nng_aio_set_msg(s->aio, NULL);
        alkd__request_received(server, s, msg);
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

/* Creates and starts the nng listener of `l` on its socket (again, after a wedge). */
static int start_listening(listener *l, alk_diag *diag) {
    alkd_server *server = l->server;
    int rv = nng_listener_create(&l->nng_listener, l->socket, l->url);
    if (rv == 0 && l->ipc) {
        rv = nng_listener_set_int(l->nng_listener, NNG_OPT_IPC_PERMISSIONS,
                                  l->control ? 0600 : (int)server->config->socket_mode);
    }
    if (rv == 0) {
        /* The socket file must never exist with looser permissions, even for an instant. */
        mode_t old_mask = umask(l->control ? 0177 : 0);
        rv = nng_listener_start(l->nng_listener, 0);
        (void)umask(old_mask);
    }
    if (rv != 0) {
        return alk_diag_set(diag, alkd_err_from_nng(rv), "cannot listen on %s: %s", l->url,
                            nng_strerror(rv));
    }
    return ALK_OK;
}

/* Replaces the nng listener of `l`, which no longer hands connections to its socket. */
static void recreate_listener(listener *l, const char *why) {
    alkd_server *server = l->server;
    alkd_warn("%s %s: re-creating the listener", l->url, why);
    server->stats.listener_restarts++;
    (void)nng_listener_close(l->nng_listener);
    alk_diag diag = {{0}};
    if (start_listening(l, &diag) != ALK_OK) {
        /* The watchdog lapses (on_housekeeping) and systemd restarts the daemon. */
        alkd_error("%s", diag.message);
    }
}

static void on_probe(alkd_ipc_probe *probe, bool ok) {
    listener *l = probe->data;
    if (ok) {
        l->last_probe_ok = alkd__now();
    } else if (!l->server->closing) {
        recreate_listener(l, "did not hand a connection to its socket (nng 1.5.2 stops after "
                             "a connection closes during the SP handshake)");
    }
}

static void on_probe_tick(uv_timer_t *timer) {
    alkd_server *server = timer->data;
    if (server->closing) {
        return;
    }
    for (size_t i = 0; i < server->n_listeners; i++) {
        listener *l = server->listeners[i];
        if (l->probing) {
            alkd_ipc_probe_start(&l->probe, PROBE_TIMEOUT_MS);
        }
    }
}

/* nng thread: counts the pipes of the daemon's own process (its probes) that reach the socket. */
static void on_pipe_added(nng_pipe pipe, nng_pipe_ev event, void *arg) {
    listener *l = arg;
    uint64_t pid;
    (void)event;
    if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
        pid == (uint64_t)l->server->pid) {
        atomic_fetch_add(&l->handed_over, 1);
    }
}

/* Sets up the lock and the self-probe of an ipc listener (ipc_guard.h). */
static int guard_ipc(listener *l, alk_diag *diag) {
    const char *path = l->url + strlen("ipc://");
    int rv = alkd_ipc_lock(path, &l->lock_fd, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    l->probe.data = l;
    atomic_init(&l->handed_over, 0);
    if (alkd_ipc_probe_init(&l->probe, l->server->loop, path, &l->handed_over, on_probe) ==
        ALK_OK) {
        l->probing = true;
        l->last_probe_ok = alkd__now();
    }
    return ALK_OK;
}

static void listener_release(listener *l) {
    alk_free(l->url);
    alk_free(l);
}

static void on_probe_closed(alkd_ipc_probe *probe) {
    listener_release(probe->data);
}

/* Frees `l` once its probe's handles are closed. */
static void listener_free(listener *l) {
    alkd_ipc_unlock(l->lock_fd);
    if (l->probing) {
        alkd_ipc_probe_close(&l->probe, on_probe_closed);
    } else {
        listener_release(l);
    }
}

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
    l->ipc = ipc;
    l->url = url_copy;
    l->lock_fd = -1;

    int rv = ipc ? guard_ipc(l, diag) : ALK_OK;
    if (rv != ALK_OK) {
        listener_free(l);
        return rv;
    }
    int nng_rv = nng_rep0_open(&l->socket);
    if (nng_rv == 0) {
        nng_rv = nng_socket_set_size(l->socket, NNG_OPT_RECVMAXSZ,
                                     alkd_recv_limit(server->config->limits.max_message_bytes));
    }
    if (nng_rv == 0 && l->probing) {
        nng_rv = nng_pipe_notify(l->socket, NNG_PIPE_EV_ADD_POST, on_pipe_added, l);
    }
    if (nng_rv != 0) {
        listener_free(l);
        return alk_diag_set(diag, alkd_err_from_nng(nng_rv), "cannot open a socket for %s: %s", url,
                            nng_strerror(nng_rv));
    }
    rv = start_listening(l, diag);
    if (rv != ALK_OK) {
        (void)nng_close(l->socket);
        listener_free(l);
        return rv;
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
        listener_free(l);
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

static void on_workers_stopped(void *ctx) {
    alkd_server *server = ctx;
    server->workers_started = false;
}

static void final_close(alkd_server *server) {
    alkd_info("stopped: %llu replies sent", (unsigned long long)server->stats.replies);
    listeners_close(server);
    if (server->workers_started) {
        alkd__jobs_stop(server, on_workers_stopped);
    }
    if (server->decoders_started) {
        alkd_pool_stop(&server->decoders);
        server->decoders_started = false;
    }
    close_handle((uv_handle_t *)&server->inbox_async);
    close_handle((uv_handle_t *)&server->sig_hup);
    close_handle((uv_handle_t *)&server->sig_term);
    close_handle((uv_handle_t *)&server->sig_int);
    close_handle((uv_handle_t *)&server->housekeeping);
    close_handle((uv_handle_t *)&server->probes);
    close_handle((uv_handle_t *)&server->linger);
}

static void on_linger(uv_timer_t *timer) {
    final_close(timer->data);
}

void alkd__maybe_finish(alkd_server *server) {
    if (server->state != STATE_STOPPING || server->closing) {
        return;
    }
    if (server->inflight > 0 || server->n_jobs > 0) {
        return;
    }
    server->closing = true;
    alkd__update_receivers(server); /* the control socket stops receiving too */
    (void)uv_timer_start(&server->linger, on_linger, server->config->shutdown_linger_ms, 0);
}

/* The jobs still running when --stop-timeout has passed are cancelled, so that a stop always
 * ends (a stuck plugin's worker is killed after the grace time). */
static void on_stop_timeout(uv_timer_t *timer) {
    alkd_server *server = timer->data;
    alkd_warn("stop timeout: cancelling the %zu jobs still running", server->running);
    alkd__jobs_cancel_all(server);
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
    /* The same timer later lingers after the last reply (alkd__maybe_finish). */
    (void)uv_timer_start(&server->linger, on_stop_timeout, server->config->stop_timeout_ms, 0);
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

/* Whether every ipc listener passed a probe lately: the systemd watchdog is fed only then. */
static bool listeners_healthy(const alkd_server *server, uint64_t now) {
    for (size_t i = 0; i < server->n_listeners; i++) {
        const listener *l = server->listeners[i];
        if (l->probing && now - l->last_probe_ok > (uint64_t)10 * PROBE_TIMEOUT_MS * 1000000) {
            return false;
        }
    }
    return true;
}

static void on_housekeeping(uv_timer_t *timer) {
    alkd_server *server = timer->data;
    uint64_t now = alkd__now();
    alkd_cache_sweep(&server->cache, now);
    if (server->watchdog_usec > 0 && listeners_healthy(server, now) &&
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

/* Creates the directory of a default ipc socket (0700 when we create it); the shared-/tmp
 * fallback must then be ours alone (common.h). */
static int make_socket_dir(const char *url, alk_diag *diag) {
    const char *path = url + strlen("ipc://");
    const char *slash = strrchr(path, '/');
    char dir[512];
    if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir)) {
        return ALK_OK;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        alkd_warn("cannot create %s: %s", dir, strerror(errno));
    }
    if (strncmp(dir, "/tmp/", 5) == 0 && !alkd_private_dir_ok(dir, (unsigned)geteuid(), diag)) {
        return ALK_EIO;
    }
    return ALK_OK;
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
        rv = make_socket_dir(url, diag);
        if (rv == ALK_OK) {
            rv = listener_open(server, url, false, diag);
        }
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
        rv = make_socket_dir(url, diag);
        if (rv == ALK_OK) {
            rv = listener_open(server, url, true, diag);
        }
    }
    return rv;
}

static int server_start(alkd_server *server, alk_diag *diag) {
    alkd_config *config = server->config;
    server->started = alkd__now();
    int rv = alkd__methods_check(diag);
    if (rv != ALK_OK) {
        return rv;
    }
    server->stats.requests_by_method =
        alk_calloc(alk_rpc_n_methods + 1, sizeof(*server->stats.requests_by_method));
    if (server->stats.requests_by_method == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    rv = alkd_cache_init(&server->cache, config->reply_cache_ttl_ms * 1000000,
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
    server->probes.data = server;
    server->linger.data = server;
    if (uv_async_init(server->loop, &server->inbox_async, on_inbox) != 0 ||
        uv_signal_init(server->loop, &server->sig_hup) != 0 ||
        uv_signal_init(server->loop, &server->sig_term) != 0 ||
        uv_signal_init(server->loop, &server->sig_int) != 0 ||
        uv_timer_init(server->loop, &server->housekeeping) != 0 ||
        uv_timer_init(server->loop, &server->probes) != 0 ||
        uv_timer_init(server->loop, &server->linger) != 0) {
        return alk_diag_set(diag, ALK_EINTERNAL, "cannot create the loop's handles");
    }
    /* The sockets first: their locks keep a second daemon from starting anything. They take
     * no request before alkd__update_receivers below. */
    rv = open_listeners(server, diag);
    if (rv == ALK_OK) {
        rv = alkd__jobs_init(server, diag);
    }
    if (rv == ALK_OK) {
        rv = alkd__requests_init(server, diag);
    }
    if (rv == ALK_OK) {
        rv = alkd__generation_init(server, diag);
    }
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
    (void)uv_timer_start(&server->probes, on_probe_tick, PROBE_INTERVAL_MS, PROBE_INTERVAL_MS);
    alkd__update_receivers(server);
    alkd_info("serving with %zu workers, queue %llu, plugin generation %llu",
              server->workers.config.n, (unsigned long long)config->queue,
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
    alkd_server server = {.config = config, .loop = &loop, .pid = (int)getpid()};
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
    alkd_poison_fini(&server.poison);
    alk_free(server.stats.requests_by_method);
    if (server.inbox_ready) {
        uv_mutex_destroy(&server.inbox_lock);
    }
    return server.exit_code;
}
