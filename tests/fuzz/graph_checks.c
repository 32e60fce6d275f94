/*
 * The checks of the graph-message harnesses (see graph_checks.h). A graph message is a model
 * file's content (`alkaidc convert MODEL`: JSON or msgpack) and the body of a `convert` request;
 * after decoding, it meets the request validator (alk_rpc_validate) and the conversion request's
 * checks (alk_rpc_convert_request), which are what stands between a user's file and a tracer.
 */
#include "graph_checks.h"

#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* msgpack of `value` decodes to a value whose msgpack is the same bytes. */
static void check_round_trip(const alk_value *value, alk_arena *arena) {
    alk_buf first;
    alk_buf second;
    alk_buf_init(&first);
    alk_buf_init(&second);
    alk_mp_value(&first, value);
    alk_value_limits unlimited = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    const alk_value *again = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_buf_error(&first) == ALK_OK) {
        if (alk_value_from_msgpack(first.data, first.len, &unlimited, arena, &again, &err) !=
            ALK_OK) {
            abort(); /* the encoder wrote what the decoder refuses */
        }
        alk_mp_value(&second, again);
        if (alk_buf_error(&second) == ALK_OK &&
            (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)) {
            abort();
        }
    }
    alk_buf_fini(&first);
    alk_buf_fini(&second);
}

static void check_graph(const alk_value *message, alk_arena *arena) {
    check_round_trip(message, arena);
    const alk_rpc_method *convert = alk_rpc_method_find("convert");
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (message->kind == ALK_VALUE_MAP && alk_rpc_validate(convert, message, &err) == ALK_OK) {
        alk_rpc_limits limits;
        alk_rpc_limits_default(&limits);
        limits.max_tensor_elements = 1 << 16;
        alk_rpc_request request = {.version = 1, .method = convert, .body = message};
        alk_convert_request creq;
        alk_rpc_convert_options options;
        alk_rpc_error_clear(&err);
        if (alk_rpc_convert_request(&request, &limits, arena, &creq, &options, &err) == ALK_OK &&
            creq.framework == NULL) {
            abort(); /* a request that passes its checks names a framework */
        }
        alk_buf reply;
        alk_buf_init(&reply);
        (void)alk_rpc_encode_error(&err, &reply);
        alk_buf_fini(&reply);
    }
}

void fuzz_graph_input(const uint8_t *data, size_t size, bool json) {
    alk_value_limits limits = {
        .max_depth = 32,
        .max_items = 4096,
        .max_total = 65536,
        .max_string = 1 << 20,
    };
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *message = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    int rv =
        json ? alk_value_from_json((const char *)data, size, &limits, &arena, &message, &err.diag)
             : alk_value_from_msgpack(data, size, &limits, &arena, &message, &err);
    if (rv == ALK_OK) {
        check_graph(message, &arena);
    }
    alk_arena_fini(&arena);
}
