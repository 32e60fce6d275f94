/*
 * libFuzzer harness for the wire decoder: every input is decoded as a request for both sockets
 * (with the test hooks allowed), a valid `convert` goes on to the conversion request (limits on
 * tensors, inputs, graph nodes), and the error reply is encoded. Independently the input is
 * decoded as a bare value tree, which must re-encode to bytes that decode to the same encoding
 * again (the writer and the reader agree). Small limits keep each run fast.
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 */
#include "core/arena.h"
#include "core/vec.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const uint8_t *data, size_t size, const alk_value_limits *limits) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *value;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_value_from_msgpack(data, size, limits, &arena, &value, &err) == ALK_OK) {
        alk_buf first;
        alk_buf second;
        alk_buf_init(&first);
        alk_buf_init(&second);
        alk_mp_value(&first, value);
        const alk_value *again;
        alk_value_limits unlimited = *limits;
        unlimited.max_total = SIZE_MAX;
        if (alk_buf_error(&first) == ALK_OK &&
            alk_value_from_msgpack(first.data, first.len, &unlimited, &arena, &again, &err) ==
                ALK_OK) {
            alk_mp_value(&second, again);
            if (alk_buf_error(&second) == ALK_OK &&
                (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)) {
                abort(); /* the writer and the reader disagree */
            }
        } else if (alk_buf_error(&first) == ALK_OK) {
            abort(); /* our own encoding of a decoded tree must decode */
        }
        alk_buf_fini(&first);
        alk_buf_fini(&second);
    } else if (err.code != ALK_EPROTO && err.code != ALK_ELIMIT && err.code != ALK_ENOMEM) {
        abort(); /* the decoder's documented codes */
    }
    alk_arena_fini(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    limits.max_message_bytes = 1 << 20;
    limits.max_items = 4096;
    limits.max_nodes = 65536;
    limits.max_string_bytes = 1 << 16;
    limits.max_tensor_elements = 1 << 16;
    static const uint32_t sockets[] = {ALK_RPC_SOCKET_SERVICE, ALK_RPC_SOCKET_CONTROL};
    for (size_t i = 0; i < 2; i++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        alk_rpc_request request;
        alk_rpc_error err;
        int rv =
            alk_rpc_decode_request(data, size, sockets[i], true, &limits, &arena, &request, &err);
        if (rv == ALK_OK && strcmp(request.method->name, "convert") == 0) {
            alk_convert_request convert;
            alk_rpc_convert_options options;
            rv = alk_rpc_convert_request(&request, &limits, &arena, &convert, &options, &err);
            if (rv == ALK_OK && convert.n_inputs > 0 && convert.inputs[0].n_dims > ALK_MAX_DIMS) {
                abort();
            }
        }
        if (rv != ALK_OK) {
            if (err.code != rv || err.code == ALK_OK) {
                abort(); /* the error must carry its code */
            }
            alk_buf reply;
            alk_buf_init(&reply);
            if (alk_rpc_encode_error(&err, &reply) != ALK_OK && reply.error != ALK_ENOMEM) {
                abort();
            }
            alk_buf_fini(&reply);
        }
        alk_arena_fini(&arena);
    }
    alk_value_limits value_limits;
    alk_rpc_value_limits(&limits, &value_limits);
    check_round_trip(data, size, &value_limits);
    return 0;
}
