/*
 * libFuzzer harness for the msgpack graph-message reader: a model file in msgpack (`alkaidc
 * convert MODEL.msgpack`) decoded by alk_value_from_msgpack, then checked as graph_checks.c
 * says. (The wire requests' own harness is fuzz_request.c.)
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 */
#include "graph_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_graph_input(data, size, false);
    return 0;
}
