/*
 * libFuzzer harness for the Keras model-file readers (plugins/keras/model_file.h). The first
 * byte of an input chooses the reader (its low two bits; the rest of the input is what it
 * reads), so that an execution pays for one reader, as is usual for a harness of several
 * decoders:
 *   0  a model file (zip, HDF5 or JSON by its first bytes): alk_keras_file_read;
 *   1  the weights file of a pair with a fixed model JSON: alk_keras_pair_read;
 *   2  Python JSON (the config parser), then the keras tracer's graph of it (model_graph.h);
 *   3  msgpack, as a request's `model` map (file bytes or a decoded payload).
 * A payload a reader returns must pass the decoded-payload checks (the readers and the wire's
 * checks agree); every failure must carry one of the documented codes and a message. Small
 * limits keep each run fast. The seeds (corpus_keras/, make_keras_corpus.py) are named after
 * their reader: file-, pair-, json-, payload-.
 *
 * Built with clang -fsanitize=fuzzer when clang is available (tests/fuzz/meson.build); the
 * corpus-replay runner (replay.c) calls the same entry point from `meson test` in every build.
 * libhdf5 and libzip are not instrumented: libFuzzer steers by our code's coverage only.
 */
#include "core/arena.h"
#include "plugins/keras/model_file.h"
#include "plugins/keras/model_graph.h"
#include "rpc/wire.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * libhdf5 keeps freed blocks on free lists of 64 KiB each by default, so the metadata cache of
 * every opened image (half a megabyte) goes back to the allocator; under ASan each one is then
 * mapped afresh and its clearing faults in every page: that was half of an execution. Lists
 * without limits keep them (the daemon's allocator reuses such blocks by itself).
 */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    (void)H5set_free_list_limits(-1, -1, -1, -1, -1, -1);
    return 0;
}

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

/* The graph of a config tree: parsed, or refused with EINVAL/ENOMEM and a message; a parsed
 * graph's order holds every node of the level once. */
static void check_graph(const alk_value *tree, alk_arena *arena) {
    alk_keras_model *model = NULL;
    alk_diag diag = {{0}};
    int rv = alk_keras_graph_parse(tree, arena, &model, &diag);
    if (rv != ALK_OK) {
        if ((rv != ALK_EINVAL && rv != ALK_ENOMEM) || diag.message[0] == '\0') {
            abort();
        }
        return;
    }
    if (model->n_order > model->n_nodes) {
        abort();
    }
    for (size_t i = 0; i < model->n_order; i++) {
        for (size_t j = i + 1; j < model->n_order; j++) {
            if (model->order[i] == model->order[j]) {
                abort();
            }
        }
    }
}

/* Reader 2: Python JSON, and the graph of a config. */
static void read_python_json(const uint8_t *data, size_t size, const alk_value_limits *limits,
                             alk_arena *arena) {
    const alk_value *tree;
    alk_diag diag = {{0}};
    int rv = alk_value_from_python_json((const char *)data, size, limits, arena, &tree, &diag);
    if (rv != ALK_OK && rv != ALK_EINVAL && rv != ALK_ELIMIT && rv != ALK_ENOMEM) {
        abort();
    }
    if (rv == ALK_OK) {
        /* A config: the keras tracer's graph of it (every reference, the node order). */
        check_graph(tree, arena);
    }
}

/* Reader 3: a request's `model` map in msgpack. */
static void read_model_map(const uint8_t *data, size_t size, const alk_value_limits *value_limits,
                           const alk_keras_file_limits *limits, alk_arena *arena) {
    const alk_value *tree;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_value_from_msgpack(data, size, value_limits, arena, &tree, &err) != ALK_OK) {
        return;
    }
    const alk_value *payload = NULL;
    alk_diag diag = {{0}};
    int rv = alk_keras_model_payload(tree, limits, arena, &payload, &diag);
    if (rv == ALK_OK && payload != tree) {
        check_result(rv, payload, &diag, limits, arena);
    } else if (rv != ALK_OK) {
        check_failure(rv, &diag);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { READ_FILE, READ_PAIR, READ_PYTHON_JSON, READ_MODEL_MAP };
    if (size == 0) {
        return 0;
    }
    unsigned reader = data[0] & 3;
    data++;
    size--;
    alk_keras_file_limits limits;
    alk_keras_file_limits_default(&limits);
    limits.max_entries = 64;
    limits.max_total_bytes = 8u << 20;
    limits.max_string_bytes = 1u << 20;
    limits.max_tensor_elements = 1u << 16;
    limits.max_depth = 16;
    limits.max_objects = 4096;
    alk_value_limits value_limits = {
        .max_depth = 16, .max_items = 4096, .max_total = 65536, .max_string = 1u << 20};

    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *payload = NULL;
    alk_diag diag = {{0}};
    int rv;
    switch (reader) {
    case READ_FILE:
        rv = alk_keras_file_read(data, size, &limits, &arena, &payload, &diag);
        check_result(rv, payload, &diag, &limits, &arena);
        break;
    case READ_PAIR:
        rv = alk_keras_pair_read(model_json, sizeof(model_json) - 1, data, size, &limits, &arena,
                                 &payload, &diag);
        check_result(rv, payload, &diag, &limits, &arena);
        break;
    case READ_PYTHON_JSON:
        read_python_json(data, size, &value_limits, &arena);
        break;
    default:
        read_model_map(data, size, &value_limits, &limits, &arena);
        break;
    }
    alk_arena_fini(&arena);
    return 0;
}
