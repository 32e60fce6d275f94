/*
 * One `convert` request handled in process: the daemon's path without its queue and sockets.
 * The daemon's worker processes, `alkaidc convert --local` and the daemon benchmark's in-process
 * baseline all use it, so that they run and measure the same thing.
 *
 * Thread rule: reentrant; everything is local to the call except the borrowed generation.
 */
#include "rpc/rpc.h"

#include "plugin/registry.h"

#include <stdio.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int alk_rpc_convert_local(const alk_generation *generation, const void *bytes, size_t len,
                          const alk_rpc_local *how, alk_buf *reply, alk_rpc_error *err) {
    double start = now_ms();
    alk_rpc_error_clear(err);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_convert_request creq;
    alk_rpc_convert_options copts;
    alk_convert_result result = {0};
    int rv = alk_rpc_decode_request(bytes, len, ALK_RPC_SOCKET_SERVICE, false, how->limits, &arena,
                                    &req, err);
    if (rv == ALK_OK) {
        rv = alk_rpc_convert_request(&req, how->limits, &arena, &creq, &copts, err);
    }
    if (rv == ALK_OK) {
        creq.cancel = how->cancel;
        creq.on_trace = how->on_trace;
        creq.on_trace_ctx = how->on_trace_ctx;
        rv = alk_convert(generation, &creq, &result, &err->diag);
        err->code = rv;
        if (rv == ALK_EINVAL || rv == ALK_ENOTSUP || rv == ALK_ELIMIT || rv == ALK_ENOENT ||
            rv == ALK_EPLUGIN) {
            /* The culprit: the framework key when no such tracer is loaded, else the payload
             * the tracer was converting (its message names the layer). */
            bool named = alk_value_get(req.body, "framework") != NULL;
            (void)snprintf(err->where, sizeof(err->where), "%s",
                           alk_generation_has_tracer(generation, creq.framework) ? "model"
                           : named                                               ? "framework"
                                                                                 : "module");
        }
    }
    if (rv == ALK_OK) {
        alk_rpc_timings timings = {.queue_ms = how->queue_ms, .run_ms = now_ms() - start};
        rv = alk_rpc_encode_convert_reply(req.id, &result, &copts, how->generation, &timings, reply,
                                          err);
        alk_convert_result_fini(&result);
    }
    if (rv != ALK_OK) {
        if (err->diag.message[0] == '\0') {
            (void)alk_diag_set(&err->diag, rv, "%s", alk_strerror(rv));
        }
        err->code = rv;
        alk_buf_reset(reply);
        (void)alk_rpc_encode_error(err, reply);
    }
    alk_arena_fini(&arena);
    int written = alk_buf_error(reply);
    return written != ALK_OK ? written : rv;
}
