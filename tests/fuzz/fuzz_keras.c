/*
 * libFuzzer harness for the Keras model-file readers (plugins/keras/model_file.h): every input
 * is read as a model file (zip, HDF5 or JSON by its first bytes), as the weights file of a pair
 * with a fixed model JSON, as Python JSON (the config parser), and, when it decodes as msgpack,
 * as a request's `model` map (file bytes or a decoded payload). A payload a reader returns must
 * pass the decoded-payload checks (the readers and the wire's checks agree); every failure must
 * carry one of the documented codes and a message. Small limits keep each run fast.
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 * libhdf5 and libzip are not instrumented: libFuzzer steers by our code's coverage only.
 */
#include "core/arena.h"
#include "plugins/keras/model_file.h"
#include "rpc/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char model_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": []}}";

static void check_failure(int rv, const alk_diag *diag) {
    if (rv != ALK_EINVAL && rv != ALK_ELIMIT && rv != ALK_ENOTSUP && rv != ALK_ENOMEM) {
        abort(); /* not a documented code */
    }
    if (diag->message[0] == '\0') {
        abort(); /* an error must say why */
    }
}

/* A reader's result: a payload must pass the checks of a decoded payload. */
static void check_result(int rv, const alk_value *payload, const alk_diag *diag,
                         const alk_keras_file_limits *limits, alk_arena *arena) {
    if (rv != ALK_OK) {
        check_failure(rv, diag);
        return;
    }
    const alk_value *again = NULL;
    alk_diag check = {{0}};
    if (alk_keras_model_payload(payload, limits, arena, &again, &check) != ALK_OK ||
        again != payload) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_keras_file_limits limits;
    alk_keras_file_limits_default(&limits);
    limits.max_entries = 64;
    limits.max_total_bytes = 8u << 20;
    limits.max_string_bytes = 1u << 20;
    limits.max_tensor_elements = 1u << 16;
    limits.max_depth = 16;
    limits.max_objects = 4096;

    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *payload = NULL;
    alk_diag diag = {{0}};
    int rv = alk_keras_file_read(data, size, &limits, &arena, &payload, &diag);
    check_result(rv, payload, &diag, &limits, &arena);

    diag.message[0] = '\0';
    rv = alk_keras_pair_read(model_json, sizeof(model_json) - 1, data, size, &limits, &arena,
                             &payload, &diag);
    check_result(rv, payload, &diag, &limits, &arena);

    alk_value_limits value_limits = {
        .max_depth = 16, .max_items = 4096, .max_total = 65536, .max_string = 1u << 20};
    const alk_value *tree;
    diag.message[0] = '\0';
    rv = alk_value_from_python_json((const char *)data, size, &value_limits, &arena, &tree, &diag);
    if (rv != ALK_OK && rv != ALK_EINVAL && rv != ALK_ELIMIT && rv != ALK_ENOMEM) {
        abort();
    }

    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_value_from_msgpack(data, size, &value_limits, &arena, &tree, &err) == ALK_OK) {
        diag.message[0] = '\0';
        rv = alk_keras_model_payload(tree, &limits, &arena, &payload, &diag);
        if (rv == ALK_OK && payload != tree) {
            check_result(rv, payload, &diag, &limits, &arena);
        } else if (rv != ALK_OK) {
            check_failure(rv, &diag);
        }
    }
    alk_arena_fini(&arena);
    return 0;
}
