/*
 * libFuzzer harness for the JSON graph-message reader: a model file in JSON (`alkaidc convert
 * MODEL.json`) decoded by alk_value_from_json, then checked as graph_checks.c says.
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 */
#include "graph_checks.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_value_limits limits;
    fuzz_graph_limits(&limits);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *message = NULL;
    alk_diag diag = {{0}};
    if (alk_value_from_json((const char *)data, size, &limits, &arena, &message, &diag) == ALK_OK) {
        fuzz_check_graph(message);
    }
    alk_arena_fini(&arena);
    return 0;
}
