/*
 * libFuzzer harness for the msgpack graph-message reader: a model file in msgpack (`alkaidc
 * convert MODEL.msgpack`) decoded by alk_value_from_msgpack, then checked as graph_checks.c
 * says. (The wire requests' own harness is fuzz_request.c.)
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 */
#include "graph_checks.h"

#include "rpc/wire.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_value_limits limits;
    fuzz_graph_limits(&limits);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *message = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_value_from_msgpack(data, size, &limits, &arena, &message, &err) == ALK_OK) {
        fuzz_check_graph(message);
    }
    alk_arena_fini(&arena);
    return 0;
}
