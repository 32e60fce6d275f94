/*
 * Test tool: reads a Keras model file with the C reader and prints the payload as JSON
 * (payload_json.h) for the Python tests to compare with h5py and zipfile.
 *
 *   keras_dump [--limit NAME=N]... FILE             alk_keras_file_read
 *   keras_dump [--limit NAME=N]... MODEL.json WEIGHTS.h5  alk_keras_pair_read
 *   keras_dump [--limit NAME=N]... --model FILE     FILE holds a msgpack `model` map:
 *                                                   alk_keras_model_payload
 * NAME is a field of alk_keras_file_limits. On failure prints "keras_dump: NAME: message" on
 * stderr (NAME the error's wire name) and exits 1.
 */
#include "payload_json.h"

#include "core/io.h"
#include "plugins/keras/model_file.h"
#include "rpc/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_limit(alk_keras_file_limits *limits, const char *text) {
    static const struct {
        const char *name;
        size_t offset;
        bool wide;
    } fields[] = {
        {"max_entries", offsetof(alk_keras_file_limits, max_entries), false},
        {"max_total_bytes", offsetof(alk_keras_file_limits, max_total_bytes), true},
        {"max_string_bytes", offsetof(alk_keras_file_limits, max_string_bytes), false},
        {"max_tensor_elements", offsetof(alk_keras_file_limits, max_tensor_elements), false},
        {"max_dims", offsetof(alk_keras_file_limits, max_dims), false},
        {"max_depth", offsetof(alk_keras_file_limits, max_depth), false},
        {"max_objects", offsetof(alk_keras_file_limits, max_objects), false},
    };
    const char *eq = strchr(text, '=');
    for (size_t i = 0; eq != NULL && i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strlen(fields[i].name) == (size_t)(eq - text) &&
            strncmp(fields[i].name, text, (size_t)(eq - text)) == 0) {
            unsigned long long n = strtoull(eq + 1, NULL, 10);
            char *field = (char *)limits + fields[i].offset;
            if (fields[i].wide) {
                *(uint64_t *)(void *)field = n;
            } else {
                *(size_t *)(void *)field = (size_t)n;
            }
            return 0;
        }
    }
    fprintf(stderr, "keras_dump: unknown limit '%s'\n", text);
    return 1;
}

static int read_input(const char *path, alk_buf *out, alk_diag *diag) {
    alk_buf_init(out);
    return alk_read_file(path, (size_t)1 << 30, out, diag);
}

int main(int argc, char **argv) {
    alk_keras_file_limits limits;
    alk_keras_file_limits_default(&limits);
    int i = 1;
    bool model = false;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--model") == 0) {
            model = true;
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            if (set_limit(&limits, argv[++i]) != 0) {
                return 2;
            }
        } else {
            fprintf(stderr, "keras_dump: bad option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (argc - i < 1 || argc - i > 2 || (model && argc - i != 1)) {
        fprintf(stderr, "usage: keras_dump [--limit NAME=N]... (FILE [WEIGHTS] | --model FILE)\n");
        return 2;
    }
    alk_diag diag = {{0}};
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_buf file, weights, json;
    alk_buf_init(&weights);
    alk_buf_init(&json);
    const alk_value *payload = NULL;
    int rv = read_input(argv[i], &file, &diag);
    if (rv == ALK_OK && argc - i == 2) {
        rv = read_input(argv[i + 1], &weights, &diag);
    }
    if (rv == ALK_OK && model) {
        alk_value_limits value_limits;
        alk_value_limits_default(&value_limits);
        alk_rpc_error err;
        alk_rpc_error_clear(&err);
        const alk_value *map;
        rv = alk_value_from_msgpack(file.data, file.len, &value_limits, &arena, &map, &err);
        diag = err.diag;
        if (rv == ALK_OK) {
            rv = alk_keras_model_payload(map, &limits, &arena, &payload, &diag);
        }
    } else if (rv == ALK_OK && argc - i == 2) {
        rv = alk_keras_pair_read(file.data, file.len, weights.data, weights.len, &limits, &arena,
                                 &payload, &diag);
    } else if (rv == ALK_OK) {
        rv = alk_keras_file_read(file.data, file.len, &limits, &arena, &payload, &diag);
    }
    if (rv == ALK_OK) {
        rv = payload_to_json(payload, &json, &diag);
    }
    if (rv == ALK_OK && alk_buf_error(&json) != ALK_OK) {
        rv = alk_diag_set(&diag, ALK_ENOMEM, "out of memory");
    }
    if (rv == ALK_OK) {
        fwrite(json.data, 1, json.len, stdout);
    } else {
        fprintf(stderr, "keras_dump: %s: %s\n", alk_err_name(rv), diag.message);
    }
    alk_buf_fini(&json);
    alk_buf_fini(&weights);
    alk_buf_fini(&file);
    alk_arena_fini(&arena);
    return rv == ALK_OK ? 0 : 1;
}
