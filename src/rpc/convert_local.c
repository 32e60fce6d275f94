/*
 * One `convert` request handled in process: the daemon's path without its queue and sockets.
 * `alkaidc convert --local` and the daemon benchmark's in-process baseline both use it, so that
 * they measure and run the same thing.
 *
 * Thread rule: reentrant; everything is local to the call except the borrowed generation.
 */
#include "rpc/rpc.h"

#include "plugin/registry.h"

int alk_rpc_convert_local(const alk_generation *generation, const void *bytes, size_t len,
                          const alk_rpc_limits *limits, alk_buf *reply, alk_rpc_error *err) {
    alk_rpc_error_clear(err);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_convert_request creq;
    alk_rpc_convert_options copts;
    alk_convert_result result = {0};
    int rv = alk_rpc_decode_request(bytes, len, ALK_RPC_SOCKET_SERVICE, false, limits, &arena, &req,
                                    err);
    if (rv == ALK_OK) {
        rv = alk_rpc_convert_request(&req, limits, &arena, &creq, &copts, err);
    }
    if (rv == ALK_OK) {
        rv = alk_convert(generation, &creq, &result, &err->diag);
        err->code = rv;
    }
    if (rv == ALK_OK) {
        alk_rpc_timings timings = {0};
        rv = alk_rpc_encode_convert_reply(req.id, &result, &copts, alk_generation_id(generation),
                                          &timings, reply, err);
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
