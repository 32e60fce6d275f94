/*
 * alkaidc's REQ connection (see rpc_client.h).
 *
 * Dialing: each URL is first dialed synchronously, so that "no daemon there" is known at once;
 * a URL that fails is dialed again in the background (nng retries it), so that a farm with one
 * daemon down still works. The reply is awaited with an aio whose callback signals a condition
 * variable: the main thread can then show progress without cancelling the request (a timed-out
 * nng_recv on a REQ socket would abandon it), and notice when no connection to any daemon is
 * left (nng's pipe notifications count them): nng would wait for one to come back forever.
 *
 * Thread rule: one connection per thread; the aio callback touches only the waiter.
 */
#include "rpc_client.h"

#include "cli.h"

#include "core/alloc.h"
#include "daemon/common.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool cli_url_push(const char **urls, size_t *n, size_t cap, const char *url) {
    if (*n >= cap) {
        return false;
    }
    urls[(*n)++] = url;
    return true;
}

static bool ipc_path_exists(const char *url) {
    struct stat st;
    return strncmp(url, "ipc://", 6) == 0 && stat(url + 6, &st) == 0;
}

/* nng thread: one connection to a daemon more or less. */
static void on_pipe_event(nng_pipe pipe, nng_pipe_ev event, void *arg) {
    cli_conn *conn = arg;
    (void)pipe;
    atomic_fetch_add(&conn->pipes, event == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

int cli_conn_open(cli_conn *conn, cli_target target, const char *const *urls, size_t n,
                  double resend_s, alk_diag *diag) {
    *conn = (cli_conn){0};
    enum { MAX_URLS = 16, URL_CAP = 512 };
    char defaults[MAX_URLS][URL_CAP];
    const char *list[MAX_URLS];
    bool from_defaults = false;
    char env_copy[4096];
    if (n == 0 && target == CLI_SERVICE && getenv("ALKAID_CONNECT") != NULL &&
        getenv("ALKAID_CONNECT")[0] != '\0') {
        (void)snprintf(env_copy, sizeof(env_copy), "%s", getenv("ALKAID_CONNECT"));
        for (char *save = NULL, *tok = strtok_r(env_copy, ",", &save); tok != NULL && n < MAX_URLS;
             tok = strtok_r(NULL, ",", &save)) {
            list[n++] = tok;
        }
        urls = list;
    } else if (n == 0) {
        const char *name = target == CLI_SERVICE ? ALKD_SERVICE_SOCKET : ALKD_CONTROL_SOCKET;
        size_t count = alkd_default_urls(name, &defaults[0][0], MAX_URLS, URL_CAP);
        for (size_t i = 0; i < count; i++) {
            if (ipc_path_exists(defaults[i])) {
                list[n++] = defaults[i];
                break; /* the first daemon found: the user's before the system's */
            }
        }
        if (n == 0) {
            (void)snprintf(conn->url, sizeof(conn->url), "%s", count > 0 ? defaults[0] : "");
            conn->unreachable = true;
            return alk_diag_set(diag, ALK_ENOENT, "no daemon at the default socket %s",
                                count > 0 ? defaults[0] : "(no runtime directory)");
        }
        urls = list;
        from_defaults = true;
    }
    (void)snprintf(conn->url, sizeof(conn->url), "%.500s", urls[0]);
    int rv = nng_req0_open(&conn->socket);
    if (rv != 0) {
        return alk_diag_set(diag, alkd_err_from_nng(rv), "cannot open a REQ socket: %s",
                            nng_strerror(rv));
    }
    conn->open = true;
    atomic_init(&conn->pipes, 0);
    (void)nng_pipe_notify(conn->socket, NNG_PIPE_EV_ADD_POST, on_pipe_event, conn);
    (void)nng_pipe_notify(conn->socket, NNG_PIPE_EV_REM_POST, on_pipe_event, conn);
    nng_duration resend = resend_s > 0 ? (nng_duration)(resend_s * 1000.0) : NNG_DURATION_INFINITE;
    (void)nng_socket_set_ms(conn->socket, NNG_OPT_REQ_RESENDTIME, resend);
    /* nng 1.5 reads messages of any size by default: bound what a peer can make us allocate. */
    (void)nng_socket_set_size(conn->socket, NNG_OPT_RECVMAXSZ, CLI_MAX_REPLY_BYTES);
    size_t reached = 0;
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        rv = nng_dial(conn->socket, urls[i], NULL, 0);
        /* EAGAIN is an ipc listener's full backlog: a daemon listens, busy for a moment. */
        reached += rv == 0 || rv == NNG_EAGAIN;
        if (rv == 0) {
            continue;
        }
        last = rv;
        if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP) {
            cli_conn_close(conn);
            return alk_diag_set(diag, ALK_EINVAL, "'%s' is not a valid URL: %s", urls[i],
                                nng_strerror(rv));
        }
        /* Keep trying in the background: the daemon may come back (farms). */
        (void)nng_dial(conn->socket, urls[i], NULL, NNG_FLAG_NONBLOCK);
    }
    if (reached == 0) {
        cli_conn_close(conn);
        conn->unreachable = true;
        return alk_diag_set(diag, from_defaults ? ALK_ENOENT : ALK_EIO,
                            "cannot reach a daemon at %s%s: %s", urls[0],
                            n > 1 ? " (nor the other URLs)" : "", nng_strerror(last));
    }
    return ALK_OK;
}

void cli_conn_close(cli_conn *conn) {
    if (conn->open) {
        (void)nng_close(conn->socket);
        conn->open = false;
    }
}

void cli_request_open(alk_mp_map_writer *request, alk_buf *out, const char *method) {
    /* Ids only need to differ between different requests of this process (docs/protocol.md). */
    static uint64_t counter;
    alk_mp_map_open(request, out);
    alk_mp_key(request, "v");
    alk_mp_uint(out, ALK_RPC_PROTOCOL);
    alk_mp_key(request, "id");
    alk_mp_uint(out, ((uint64_t)getpid() << 32) | ++counter);
    alk_mp_key(request, "method");
    alk_mp_str(out, method);
}

void cli_request_simple(alk_buf *out, const char *method, const char *key, const alk_value *value) {
    alk_mp_map_writer request;
    cli_request_open(&request, out, method);
    if (key != NULL) {
        alk_mp_key(&request, key);
        alk_mp_value(out, value);
    }
    alk_mp_map_close(&request);
}

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} waiter;

static void on_aio(void *arg) {
    waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static double now_s(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one aio operation to completion, showing progress; returns nng's result, or
 * NNG_ECONNSHUT when no connection to a daemon was left for CLI_LOST_AFTER_S. */
static int wait_aio(cli_conn *conn, nng_aio *aio, waiter *w, bool progress, double start,
                    const char *what) {
    double lost_since = 0.0;
    bool lost = false;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        struct timespec until;
        (void)clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        (void)pthread_cond_timedwait(&w->cond, &w->lock, &until);
        if (!w->done && progress) {
            fprintf(stderr, "\ralkaidc: %s... %.1f s ", what, now_s() - start);
        }
        double now = now_s();
        if (w->done || atomic_load(&conn->pipes) > 0) {
            lost_since = 0.0;
        } else if (lost_since == 0.0) {
            lost_since = now;
        } else if (now - lost_since > CLI_LOST_AFTER_S && !lost) {
            lost = true;
            pthread_mutex_unlock(&w->lock);
            nng_aio_cancel(aio); /* the callback runs and sets done */
            pthread_mutex_lock(&w->lock);
        }
    }
    w->done = false;
    pthread_mutex_unlock(&w->lock);
    return lost ? NNG_ECONNSHUT : nng_aio_result(aio);
}

/* One request and its reply (see cli_conn_call). */
static int round_trip(cli_conn *conn, const alk_buf *request, double timeout_s, bool progress,
                      alk_arena *arena, const alk_value **ret_reply, alk_diag *diag) {
    progress = progress && isatty(2);
    waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    int rv = nng_aio_alloc(&aio, on_aio, &w);
    if (rv == 0) {
        rv = nng_msg_alloc(&msg, request->len);
    }
    if (rv != 0) {
        nng_aio_free(aio);
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory for the request");
    }
    memcpy(nng_msg_body(msg), request->data, request->len);
    double start = now_s();
    nng_duration timeout =
        timeout_s > 0 ? (nng_duration)(timeout_s * 1000.0) : NNG_DURATION_INFINITE;
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, timeout);
    nng_send_aio(conn->socket, aio);
    rv = wait_aio(conn, aio, &w, progress, start, "sending");
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
    } else {
        nng_aio_set_timeout(aio, timeout);
        nng_recv_aio(conn->socket, aio);
        rv = wait_aio(conn, aio, &w, progress, start, "waiting for the daemon");
    }
    if (progress) {
        fprintf(stderr, "\r\033[K");
    }
    if (rv == NNG_ECONNSHUT) {
        nng_aio_free(aio);
        conn->unreachable = true;
        return alk_diag_set(diag, ALK_EIO,
                            "lost the daemon at %s: no connection for %.0f s (it stopped or died)",
                            conn->url, CLI_LOST_AFTER_S);
    }
    if (rv != 0) {
        nng_aio_free(aio);
        conn->unreachable = rv != NNG_ETIMEDOUT;
        return alk_diag_set(diag, alkd_err_from_nng(rv), "%s: no reply from %s: %s",
                            rv == NNG_ETIMEDOUT ? "timed out" : "failed", conn->url,
                            nng_strerror(rv));
    }
    msg = nng_aio_get_msg(aio);
    nng_aio_free(aio);
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    const alk_value *reply = NULL;
    rv = alk_value_from_msgpack(nng_msg_body(msg), nng_msg_len(msg), &limits, arena, &reply, &err);
    nng_msg_free(msg);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, ALK_EPROTO, "the daemon's reply is malformed: %s",
                            err.diag.message);
    }
    const alk_value *ok = alk_value_get(reply, "ok");
    if (ok == NULL || ok->kind != ALK_VALUE_BOOL) {
        return alk_diag_set(diag, ALK_EPROTO, "the daemon's reply has no 'ok' field");
    }
    if (!ok->as.boolean) {
        const alk_value *e = alk_value_get(reply, "error");
        const char *name = cli_get_str(e, "name");
        const char *message = cli_get_str(e, "message");
        const char *where = cli_get_str(e, "where");
        uint64_t code = cli_get_uint(e, "code");
        (void)alk_diag_set(diag, (int)code, "%s%s%s: %s", name != NULL ? name : "EUNKNOWN",
                           where != NULL ? " at " : "", where != NULL ? where : "",
                           message != NULL ? message : "");
        return code > 0 && code < 1000 ? (int)code : ALK_EINTERNAL;
    }
    *ret_reply = reply;
    return ALK_OK;
}

/*
 * A message over the daemon's max_message_bytes is never read (nng drops the connection and the
 * REQ socket resends it until the deadline), so a big request is checked against `info` first.
 */
static int check_size(cli_conn *conn, size_t len, double timeout_s, alk_arena *arena,
                      alk_diag *diag) {
    alk_buf info;
    alk_buf_init(&info);
    cli_request_simple(&info, "info", NULL, NULL);
    const alk_value *reply = NULL;
    int rv = alk_buf_error(&info);
    if (rv == ALK_OK) {
        rv = round_trip(conn, &info, timeout_s, false, arena, &reply, diag);
    }
    alk_buf_fini(&info);
    if (rv != ALK_OK) {
        return rv;
    }
    uint64_t limit = cli_get_uint(alk_value_get(reply, "limits"), "max_message_bytes");
    if (limit > 0 && len > limit) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "the request has %zu bytes; the daemon at %s accepts at most %llu "
                            "(max_message_bytes)",
                            len, conn->url, (unsigned long long)limit);
    }
    return ALK_OK;
}

int cli_conn_call(cli_conn *conn, const alk_buf *request, double timeout_s, bool progress,
                  alk_arena *arena, const alk_value **ret_reply, alk_diag *diag) {
    if (request->len > CLI_CHECK_SIZE_ABOVE) {
        int rv = check_size(conn, request->len, timeout_s, arena, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return round_trip(conn, request, timeout_s, progress, arena, ret_reply, diag);
}

int cli_conn_fail(const cli_conn *conn, int err, const alk_diag *diag) {
    if (conn->unreachable) {
        fprintf(stderr, "alkaidc: %s\n", diag->message[0] != '\0' ? diag->message : "no daemon");
        return EXIT_UNAVAILABLE;
    }
    return cli_fail(err, diag);
}

uint64_t cli_get_uint(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_INT && v->as.integer >= 0 ? (uint64_t)v->as.integer
                                                                       : 0;
}

double cli_get_number(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    if (v == NULL) {
        return 0.0;
    }
    return v->kind == ALK_VALUE_FLOAT ? v->as.number
           : v->kind == ALK_VALUE_INT ? (double)v->as.integer
                                      : 0.0;
}

const char *cli_get_str(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    return v != NULL && v->kind == ALK_VALUE_STR ? v->as.str.bytes : NULL;
}
