/*
 * A request from its receipt to its handler: the reply cache, decoding and validation, dispatch.
 *
 * Decoding is where one client's heavy messages could cost everyone: a 4 MB message of a million
 * small arrays takes a large fraction of a second to decode and check. So a message larger than
 * ALKD_HEAVY_BYTES is decoded on a decode thread (pool.h) running at a lower priority (nice
 * DECODE_NICE), and only the decoded request comes back to the loop; small messages, the common
 * case, are decoded inline. (Its job then runs in a worker at the same lower priority: jobs.c.)
 * Either way the request is validated completely here (schema, limits, a conversion's hwconf and
 * solver options), so that a bad request is answered at once and never queued for a worker.
 *
 * Order for a small message: the reply cache first (a resend or an identical request attaches
 * to the one in flight or reuses its reply), then decoding. For a large one the decode thread
 * computes the cache's hash too, and the cache is consulted when the decoded request comes back.
 *
 * Thread rule: loop thread, except decode_run on a decode thread, which reads only the message,
 * the constant configuration and the cache's constant key, and writes only its task.
 */
#define _GNU_SOURCE /* gettid */
#include "server_int.h"

#include "log.h"

#include "core/alloc.h"

#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum {
    DECODE_THREADS = 1, /* a flood of large messages takes at most one core here */
    DECODE_QUEUE = 8,   /* large messages waiting to be decoded; beyond, EBUSY */
    DECODE_NICE = 10,   /* the decode thread yields the CPU to the loop and to small jobs */
};

/* A large request on its way through a decode thread. */
typedef struct decode_task {
    alkd_pool_item item; /* first: the pool hands back this pointer */
    alkd_server *server;
    slot *s;
    nng_msg *msg;
    alkd_decoded decoded;
} decode_task;

/* The process (ipc) or host (tcp) at the other end of `pipe`, for the fair queue. */
static uint64_t peer_of(nng_pipe pipe) {
    uint64_t pid; /* nng 1.5 reports it as a uint64 */
    if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &pid) == 0) {
        return ((uint64_t)1 << 32) | (uint32_t)pid;
    }
    nng_sockaddr addr;
    if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &addr) == 0) {
        if (addr.s_family == NNG_AF_INET) {
            return ((uint64_t)2 << 32) | addr.s_in.sa_addr;
        }
        if (addr.s_family == NNG_AF_INET6) {
            uint64_t h = 3;
            for (size_t i = 0; i < sizeof(addr.s_in6.sa_addr); i++) {
                h = h * 1099511628211u ^ addr.s_in6.sa_addr[i];
            }
            return h | ((uint64_t)1 << 63);
        }
    }
    return nng_pipe_id(pipe);
}

/* Decodes and validates `bytes` for a socket of kind `control`; pure, so any thread may. */
static void decode(const alkd_config *config, bool control, const void *bytes, size_t len,
                   alkd_decoded *d) {
    alk_arena_init(&d->arena, 0);
    alk_rpc_error_clear(&d->err);
    uint32_t socket = control ? ALK_RPC_SOCKET_CONTROL : ALK_RPC_SOCKET_SERVICE;
    d->rv = alk_rpc_decode_request(bytes, len, socket, config->test_hooks, &config->limits,
                                   &d->arena, &d->request, &d->err);
    d->method = d->rv == ALK_OK ? d->request.method : NULL;
    if (d->rv == ALK_OK && alkd__method(d->method)->job == ALKD_JOB_CONVERT) {
        d->rv = alk_rpc_convert_request(&d->request, &config->limits, &d->arena, &d->convert,
                                        &d->options, &d->err);
        d->err.id = d->request.id;
    }
}

/* A resend or an identical request: attaches `s` to the job in flight or sends the cached
 * reply, and frees `msg`. False when the cache has nothing for it. */
static bool answer_from_cache(alkd_server *server, slot *s, nng_msg *msg, uint64_t hash) {
    alkd_cache_entry *hit = alkd_cache_find(&server->cache, hash, nng_msg_len(msg), alkd__now());
    if (hit == NULL) {
        return false;
    }
    server->stats.cache_hits++;
    server->stats.requests_by_method[hit->tag]++;
    nng_msg_free(msg);
    if (hit->owner == NULL) {
        alkd__send_reply(server, s, hit->reply, hit->reply_len);
        return true;
    }
    /* A resend on the same connection supersedes the earlier copy: the client waits for one
     * reply per request, and a second one would only be discarded. */
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
    return true;
}

/* Answers a method on the loop (listings and control); a cacheable method's result goes into the
 * reply cache under the request's hash and length `len`, so that a resent reload runs once. */
static void answer(alkd_server *server, slot *s, const alkd_method *method, alkd_decoded *d,
                   size_t len) {
    alk_buf reply;
    alk_buf_init(&reply);
    int code = ALK_OK;
    bool answered = true;
    if (method->reply != NULL) {
        code = method->reply(server, s, &d->request, &reply);
    } else {
        answered = method->deferred(server, s, &d->arena, &d->request, &reply, &code);
    }
    if (answered) {
        if (alk_buf_error(&reply) != ALK_OK) {
            alk_rpc_error err;
            alk_rpc_error_clear(&err);
            alk_rpc_error_set(&err, ALK_ENOMEM, NULL, "out of memory while encoding the reply");
            err.id = d->request.id;
            alkd__send_error(server, s, &err);
        } else {
            if (code != ALK_OK) {
                alkd__count_error(server, code);
            } else if (d->method->flags & ALK_RPC_METHOD_CACHEABLE) {
                alkd_cache_store(&server->cache, d->hash, len, d->method->id, reply.data, reply.len,
                                 alkd__now());
            }
            alkd__send_reply(server, s, reply.data, reply.len);
        }
        alk_arena_fini(&d->arena);
    }
    alk_buf_fini(&reply);
    if (method->stops && code == ALK_OK) {
        alkd__begin_stop(server, 0);
    }
}

/* Hands a decoded request to its handler; takes `msg` and d's arena over. */
static void dispatch(alkd_server *server, slot *s, nng_msg *msg, alkd_decoded *d) {
    server->stats.requests_by_method[d->method != NULL ? d->method->id : alk_rpc_n_methods]++;
    if (d->rv != ALK_OK) {
        alkd_debug("refused a request on %s: %s %s", s->owner->url, alk_err_name(d->err.code),
                   d->err.diag.message);
        alkd__send_error(server, s, &d->err);
        alk_arena_fini(&d->arena);
        nng_msg_free(msg);
        return;
    }
    const alkd_method *method = alkd__method(d->method);
    if (method->job == ALKD_JOB_NONE) {
        size_t len = nng_msg_len(msg);
        nng_msg_free(msg);
        answer(server, s, method, d, len);
        return;
    }
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alkd__job_start(server, s, method->job, d, msg, &err) != ALK_OK) {
        alkd__send_error(server, s, &err);
        alk_arena_fini(&d->arena);
        nng_msg_free(msg);
    }
}

/* ---- the decode threads ---------------------------------------------------------------------- */

static void decode_run(alkd_pool_item *item) {
    static _Thread_local bool niced;
    if (!niced) {
        /* This thread only: Linux applies a thread id's nice value to that thread alone. */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), DECODE_NICE);
        niced = true;
    }
    decode_task *t = (decode_task *)item;
    const void *bytes = nng_msg_body(t->msg);
    size_t len = nng_msg_len(t->msg);
    t->decoded.hash = alkd_cache_hash(&t->server->cache, bytes, len);
    decode(t->server->config, t->s->owner->control, bytes, len, &t->decoded);
}

static void decode_done(alkd_pool_item *item) {
    decode_task *t = (decode_task *)item;
    if (answer_from_cache(t->server, t->s, t->msg, t->decoded.hash)) {
        alk_arena_fini(&t->decoded.arena);
    } else {
        dispatch(t->server, t->s, t->msg, &t->decoded);
    }
    alk_free(t);
}

int alkd__requests_init(alkd_server *server, alk_diag *diag) {
    int rv = alkd_pool_init(&server->decoders, server->loop, DECODE_THREADS, DECODE_QUEUE,
                            decode_run, decode_done);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot start the decode thread");
    }
    server->decoders_started = true;
    return ALK_OK;
}

/* ---- receipt --------------------------------------------------------------------------------- */

/* While stopping, a new request on a service socket: EBUSY at once rather than a wait until the
 * client's timeout. */
static void refuse_while_stopping(alkd_server *server, slot *s, nng_msg *msg) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request request;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    /* Decoded only for its id: the reply must echo it. */
    (void)alk_rpc_decode_request(nng_msg_body(msg), nng_msg_len(msg), ALK_RPC_SOCKET_SERVICE, false,
                                 &server->config->limits, &arena, &request, &err);
    nng_msg_free(msg);
    const alk_value *id = err.id;
    alk_rpc_error_clear(&err);
    err.id = id;
    alk_rpc_error_set(&err, ALK_EBUSY, NULL,
                      "the daemon is stopping; send the request again (to another daemon)");
    alkd__send_error(server, s, &err);
    alk_arena_fini(&arena);
}

void alkd__request_received(alkd_server *server, slot *s, nng_msg *msg) {
    s->pipe = nng_pipe_id(nng_msg_get_pipe(msg));
    s->peer = peer_of(nng_msg_get_pipe(msg));
    if (server->state == STATE_STOPPING && !s->owner->control) {
        refuse_while_stopping(server, s, msg);
        return;
    }
    const void *bytes = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    if (len > ALKD_HEAVY_BYTES) {
        decode_task *t = alk_calloc(1, sizeof(*t));
        int rv = t != NULL ? ALK_OK : ALK_ENOMEM;
        if (rv == ALK_OK) {
            *t = (decode_task){.server = server, .s = s, .msg = msg};
            rv = alkd_pool_submit(&server->decoders, &t->item);
        }
        if (rv != ALK_OK) {
            alk_free(t);
            nng_msg_free(msg);
            alk_rpc_error err;
            alk_rpc_error_clear(&err);
            alk_rpc_error_set(&err, rv, NULL,
                              "too many large requests are being decoded; retry later");
            alkd__send_error(server, s, &err);
        }
        return;
    }
    uint64_t hash = alkd_cache_hash(&server->cache, bytes, len);
    if (answer_from_cache(server, s, msg, hash)) {
        return;
    }
    alkd_decoded d;
    decode(server->config, s->owner->control, bytes, len, &d);
    d.hash = hash;
    dispatch(server, s, msg, &d);
}
