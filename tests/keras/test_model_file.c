/*
 * The Keras model-file reader in C: a real HGQ2 file against values h5py reads from it, one
 * model in every file form against the weights its generator wrote, allocation failures at every
 * allocation, concurrent reads, limits, Python's JSON numbers and the decoded-payload checks.
 * Inputs: ../shared/fixtures/keras (ALK_FIXTURES) and the named seeds of the fuzz corpus
 * (tests/fuzz/corpus_keras, written by make_keras_corpus.py from kerasgen).
 */
#include "core/alloc.h"
#include "core/io.h"
#include "graph/tensor.h"
#include "plugins/keras/model_file.h"
#include "rpc/wire.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static alk_buf read_input(const char *dir_env, const char *fallback, const char *name) {
    const char *dir = getenv(dir_env);
    char path[1024];
    (void)snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : fallback, name);
    alk_buf buf;
    alk_buf_init(&buf);
    alk_diag diag = {{0}};
    cr_assert_eq(alk_read_file(path, (size_t)1 << 28, &buf, &diag), ALK_OK, "%s", diag.message);
    return buf;
}

/* A seed of the fuzz corpus, by name ("file-tiny.keras"), without its first byte (which
 * chooses the fuzzer's reader). */
static alk_buf seed(const char *name) {
    const char *root = getenv("ALK_SOURCE_ROOT");
    char dir[900];
    (void)snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus_keras", root != NULL ? root : ".");
    setenv("ALK_KERAS_SEEDS", dir, 1);
    alk_buf bytes = read_input("ALK_KERAS_SEEDS", ".", name);
    cr_assert_gt(bytes.len, 0, "%s is empty", name);
    memmove(bytes.data, bytes.data + 1, bytes.len);
    bytes.len--;
    return bytes;
}

static alk_buf fixture(const char *name) {
    char rel[256];
    (void)snprintf(rel, sizeof(rel), "keras/%s", name);
    return read_input("ALK_FIXTURES", "../shared/fixtures", rel);
}

/* The widened values of weight `address` of `payload` (at most cap), and their count. */
static size_t values_of(const alk_value *payload, const char *address, double *out, size_t cap,
                        alk_tensor *ret_tensor) {
    const alk_value *map = alk_value_get(alk_value_get(payload, "weights"), address);
    cr_assert_not_null(map, "no weight '%s'", address);
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(map, NULL, &t, &diag), ALK_OK, "%s", diag.message);
    size_t n = alk_tensor_elements(&t);
    cr_assert_leq(n, cap);
    cr_assert_eq(alk_tensor_to_f64(&t, out, &diag), ALK_OK, "%s", diag.message);
    *ret_tensor = t;
    return n;
}

static const char *str_at(const alk_value *map, const char *key) {
    const alk_value *v = alk_value_get(map, key);
    cr_assert(v != NULL && v->kind == ALK_VALUE_STR, "'%s' is not a str", key);
    return v->as.str.bytes;
}

Test(keras_file, real_hgq2_file_matches_h5py) {
    alk_buf file = fixture("hgq2_randmat_64x64_bw8.keras");
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *p;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_file_read(file.data, file.len, NULL, &arena, &p, &diag), ALK_OK, "%s",
                 diag.message);
    cr_assert_str_eq(str_at(p, "format"), "keras_v3");
    cr_assert_str_eq(str_at(p, "metadata"),
                     "{\"keras_version\": \"3.9.0\", \"date_saved\": \"2025-05-06@18:38:39\"}");
    cr_assert(strncmp(str_at(p, "config"), "{\"module\": \"keras.src.models.functional\"", 40) ==
              0);
    cr_assert_eq(alk_value_get(p, "weights")->as.map.len, 10);
    const alk_value *names = alk_value_get(p, "var_names");
    cr_assert_eq(names->as.map.len, 7);
    cr_assert_str_eq(str_at(names, "layers/q_dense/kq/vars"), "q_dense_10_kq");
    cr_assert_str_eq(str_at(names, "layers/input_layer/vars"), "input_layer_10");
    cr_assert_str_eq(str_at(names, "vars"), "functional_10");
    /* Values h5py reads from the same file. */
    static double values[64 * 64];
    alk_tensor t;
    cr_assert_eq(values_of(p, "layers/q_dense/vars/0", values, 4096, &t), 4096);
    cr_assert_eq(t.dtype, ALK_DTYPE_F4);
    cr_assert(t.ndim == 2 && t.shape[0] == 64 && t.shape[1] == 64);
    cr_assert(values[0] == 0.6015625 && values[1] == 0.83203125 && values[2] == 0.90625);
    cr_assert_eq(values_of(p, "layers/q_dense/vars/1", values, 1, &t), 1);
    cr_assert(t.ndim == 0 && values[0] == (double)1e-5f);
    cr_assert_eq(values_of(p, "layers/q_dense/vars/2", values, 1, &t), 1);
    cr_assert(t.dtype == ALK_DTYPE_U4 && t.ndim == 0 && values[0] == 0.0);
    cr_assert_eq(values_of(p, "layers/q_dense/kq/quantizer/vars/2", values, 4096, &t), 4096);
    cr_assert_eq(t.dtype, ALK_DTYPE_U1);
    cr_assert_eq(values_of(p, "layers/q_dense/iq/quantizer/vars/3", values, 1, &t), 1);
    cr_assert_eq(values[0], (double)0.01f);
    alk_arena_fini(&arena);
    alk_buf_fini(&file);
}

/* The tiny model of make_keras_corpus.py: kernel [[0.25, -0.5], [1, 2]], bias [0.5, 0]. */
static void expect_tiny(const alk_value *p, const char *kernel, const char *bias) {
    double v[4];
    alk_tensor t;
    cr_assert_eq(values_of(p, kernel, v, 4, &t), 4);
    cr_assert(t.shape[0] == 2 && t.shape[1] == 2);
    cr_assert(v[0] == 0.25 && v[1] == -0.5 && v[2] == 1.0 && v[3] == 2.0, "%s", kernel);
    cr_assert_eq(values_of(p, bias, v, 2, &t), 2);
    cr_assert(v[0] == 0.5 && v[1] == 0.0);
}

Test(keras_file, every_form_gives_the_written_weights) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_diag diag = {{0}};
    const alk_value *p;
    alk_buf keras = seed("file-tiny.keras");
    cr_assert_eq(alk_keras_file_read(keras.data, keras.len, NULL, &arena, &p, &diag), ALK_OK, "%s",
                 diag.message);
    expect_tiny(p, "layers/q_dense/vars/0", "layers/q_dense/vars/1");
    cr_assert_str_eq(str_at(alk_value_get(p, "var_names"), "layers/q_dense/kq/quantizer/vars"),
                     "fixed_point_quantizer_kbi");

    alk_buf k3 = seed("file-tiny_k3.h5");
    cr_assert_eq(alk_keras_file_read(k3.data, k3.len, NULL, &arena, &p, &diag), ALK_OK, "%s",
                 diag.message);
    cr_assert_str_eq(str_at(p, "format"), "legacy_h5");
    expect_tiny(p, "dense/dense/kernel", "dense/dense/bias");
    const alk_value *names = alk_value_get(alk_value_get(p, "weight_names"), "dense");
    /* Trainable first: kernel, bias, the quantizer's b and i; then beta, ebops, k. */
    cr_assert_eq(names->as.array.len, 7);
    cr_assert_str_eq(names->as.array.items[2]->as.str.bytes,
                     "dense/dense_kq/fixed_point_quantizer_kbi/b");
    cr_assert_str_eq(names->as.array.items[6]->as.str.bytes,
                     "dense/dense_kq/fixed_point_quantizer_kbi/k");

    alk_buf k2 = seed("file-tiny_k2.h5");
    cr_assert_eq(alk_keras_file_read(k2.data, k2.len, NULL, &arena, &p, &diag), ALK_OK, "%s",
                 diag.message);
    expect_tiny(p, "dense/dense/kernel:0", "dense/dense/bias:0");
    cr_assert_str_eq(str_at(alk_value_get(p, "metadata"), "keras_version"), "2.9.0");

    alk_buf json = seed("json-tiny_k2.json");
    alk_buf weights = seed("pair-tiny_k2_weights.h5");
    cr_assert_eq(alk_keras_pair_read(json.data, json.len, weights.data, weights.len, NULL, &arena,
                                     &p, &diag),
                 ALK_OK, "%s", diag.message);
    expect_tiny(p, "dense/dense/kernel:0", "dense/dense/bias:0");
    const alk_value *layers = alk_value_get(p, "layer_names");
    cr_assert_eq(layers->as.array.len, 2); /* the input layer and the dense layer */
    cr_assert_str_eq(layers->as.array.items[0]->as.str.bytes, "x");

    alk_buf v3 = seed("pair-tiny.weights.h5");
    cr_assert_eq(alk_keras_pair_read(json.data, json.len, v3.data, v3.len, NULL, &arena, &p, &diag),
                 ALK_OK, "%s", diag.message);
    cr_assert_str_eq(str_at(p, "format"), "keras_v3");
    expect_tiny(p, "layers/q_dense/vars/0", "layers/q_dense/vars/1");
    alk_buf_fini(&v3);
    alk_buf_fini(&weights);
    alk_buf_fini(&json);
    alk_buf_fini(&k2);
    alk_buf_fini(&k3);
    alk_buf_fini(&keras);
    alk_arena_fini(&arena);
}

/* Reads seed `name` (a model map in msgpack when `model`, else a file) once. */
static int read_seed(const alk_buf *bytes, bool model, alk_arena *arena, alk_diag *diag) {
    const alk_value *p;
    if (!model) {
        return alk_keras_file_read(bytes->data, bytes->len, NULL, arena, &p, diag);
    }
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    const alk_value *map;
    int rv = alk_value_from_msgpack(bytes->data, bytes->len, &limits, arena, &map, &err);
    return rv != ALK_OK ? rv : alk_keras_model_payload(map, NULL, arena, &p, diag);
}

Test(keras_file, every_allocation_failure_is_clean) {
    static const struct {
        const char *name;
        bool model;
    } inputs[] = {
        {"file-tiny.keras", false},
        {"file-tiny_k3.h5", false},
        {"payload-tiny_model_pair.msgpack", true},
        {"payload-tiny_decoded_legacy.msgpack", true},
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        alk_buf bytes = seed(inputs[i].name);
        int rv = ALK_ENOMEM;
        size_t n;
        for (n = 1; rv == ALK_ENOMEM && n < 100000; n++) {
            long live = alk_alloc_live();
            alk_arena arena;
            alk_arena_init(&arena, 0);
            alk_diag diag = {{0}};
            alk_alloc_fail_at(n, true);
            rv = read_seed(&bytes, inputs[i].model, &arena, &diag);
            alk_alloc_fail_at(0, false);
            alk_arena_fini(&arena);
            cr_assert(rv == ALK_OK || rv == ALK_ENOMEM, "%s, allocation %zu: %s", inputs[i].name, n,
                      diag.message);
            cr_assert_eq(alk_alloc_live(), live, "%s leaks after failing allocation %zu",
                         inputs[i].name, n);
        }
        cr_assert_eq(rv, ALK_OK, "%s never read", inputs[i].name);
        cr_assert_gt(n, 5, "%s: only %zu allocations", inputs[i].name, n);
        alk_buf_fini(&bytes);
    }
}

typedef struct reader_job {
    const alk_buf *file;
    size_t weights; /* out: weights of the last read, 0 on failure */
} reader_job;

static void *read_repeatedly(void *arg) {
    reader_job *job = arg;
    job->weights = 0;
    for (int i = 0; i < 10; i++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        const alk_value *p;
        alk_diag diag = {{0}};
        if (alk_keras_file_read(job->file->data, job->file->len, NULL, &arena, &p, &diag) ==
            ALK_OK) {
            job->weights = alk_value_get(p, "weights")->as.map.len;
        } else {
            job->weights = 0;
            i = 10;
        }
        alk_arena_fini(&arena);
    }
    return NULL;
}

Test(keras_file, threads_read_at_once) {
    alk_buf files[2] = {fixture("hgq2_jsc_16-64-32-32-5.keras"), seed("file-seq_k3.h5")};
    pthread_t threads[4];
    reader_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (reader_job){.file = &files[i % 2]};
        cr_assert_eq(pthread_create(&threads[i], NULL, read_repeatedly, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
    }
    cr_assert_eq(jobs[0].weights, 65);
    cr_assert_eq(jobs[2].weights, 65);
    cr_assert_eq(jobs[1].weights, 6);
    cr_assert_eq(jobs[3].weights, 6);
    alk_buf_fini(&files[0]);
    alk_buf_fini(&files[1]);
}

/* Reads tiny.keras with one limit changed; expects `code` and `text` in the message. */
static void expect_limit(const char *field, size_t value, int code, const char *text) {
    alk_keras_file_limits limits;
    alk_keras_file_limits_default(&limits);
    if (strcmp(field, "max_entries") == 0) {
        limits.max_entries = value;
    } else if (strcmp(field, "max_total_bytes") == 0) {
        limits.max_total_bytes = value;
    } else if (strcmp(field, "max_string_bytes") == 0) {
        limits.max_string_bytes = value;
    } else if (strcmp(field, "max_tensor_elements") == 0) {
        limits.max_tensor_elements = value;
    } else if (strcmp(field, "max_depth") == 0) {
        limits.max_depth = value;
    } else {
        limits.max_objects = value;
    }
    alk_buf file = seed("file-tiny.keras");
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *p;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_file_read(file.data, file.len, &limits, &arena, &p, &diag), code,
                 "%s: %s", field, diag.message);
    cr_assert(strstr(diag.message, text) != NULL, "%s: '%s' lacks '%s'", field, diag.message, text);
    alk_arena_fini(&arena);
    alk_buf_fini(&file);
}

Test(keras_file, limits_name_the_culprit) {
    expect_limit("max_entries", 2, ALK_ELIMIT, "the archive has 3 entries; at most 2");
    expect_limit("max_string_bytes", 100, ALK_ELIMIT, "entry 'config.json' declares");
    expect_limit("max_total_bytes", 5000, ALK_ELIMIT, "entry 'model.weights.h5'");
    expect_limit("max_tensor_elements", 3, ALK_ELIMIT, "dataset 'layers/q_dense/kq/quantizer");
    expect_limit("max_depth", 3, ALK_ELIMIT, "groups nest deeper than 3 at 'layers/q_dense/kq");
    expect_limit("max_objects", 5, ALK_ELIMIT, "more than 5 HDF5 objects");
}

Test(keras_file, python_json_numbers) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *v;
    alk_diag diag = {{0}};
    static const char text[] =
        "{\"a\": [NaN, Infinity, -Infinity, 1.5], \"Infinity\": \"NaN -Infinity\", \"b\": "
        "{\"c\":Infinity}}";
    cr_assert_eq(alk_value_from_python_json(text, sizeof(text) - 1, NULL, &arena, &v, &diag),
                 ALK_OK, "%s", diag.message);
    const alk_value *a = alk_value_get(v, "a");
    cr_assert(a->as.array.items[0]->kind == ALK_VALUE_FLOAT &&
              a->as.array.items[0]->as.number != a->as.array.items[0]->as.number);
    cr_assert_eq(a->as.array.items[1]->as.number, INFINITY);
    cr_assert_eq(a->as.array.items[2]->as.number, -INFINITY);
    cr_assert_eq(a->as.array.items[3]->as.number, 1.5);
    cr_assert_str_eq(str_at(v, "Infinity"), "NaN -Infinity"); /* inside strings: text */
    cr_assert_eq(alk_value_get(alk_value_get(v, "b"), "c")->as.number, INFINITY);
    /* Strict JSON refuses them; longer words and forged markers are not numbers. */
    cr_assert_eq(alk_value_from_json("[NaN]", 5, NULL, &arena, &v, &diag), ALK_EINVAL);
    cr_assert_eq(alk_value_from_python_json("[NaNa]", 6, NULL, &arena, &v, &diag), ALK_EINVAL);
    cr_assert_eq(alk_value_from_python_json("[Infinity2]", 11, NULL, &arena, &v, &diag),
                 ALK_EINVAL);
    static const char forged[] = "[\"\\u0000NaN\", NaN]";
    cr_assert_eq(alk_value_from_python_json(forged, sizeof(forged) - 1, NULL, &arena, &v, &diag),
                 ALK_EINVAL);
    cr_assert(strstr(diag.message, "NUL") != NULL, "%s", diag.message);
    alk_arena_fini(&arena);
}

Test(keras_file, decoded_payloads_are_checked_and_kept) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_buf bytes = seed("payload-tiny_decoded_v3.msgpack");
    const alk_value *model;
    cr_assert_eq(alk_value_from_msgpack(bytes.data, bytes.len, &limits, &arena, &model, &err),
                 ALK_OK);
    const alk_value *p;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_model_payload(model, NULL, &arena, &p, &diag), ALK_OK, "%s",
                 diag.message);
    cr_assert_eq(p, model, "a decoded payload is returned as is");
    expect_tiny(p, "layers/q_dense/vars/0", "layers/q_dense/vars/1");
    /* A tensor whose data does not fit its shape, named by address. */
    alk_keras_file_limits small;
    alk_keras_file_limits_default(&small);
    small.max_tensor_elements = 3;
    cr_assert_eq(alk_keras_model_payload(model, &small, &arena, &p, &diag), ALK_ELIMIT);
    cr_assert(strstr(diag.message, "model.weights['layers/q_dense/") != NULL, "%s", diag.message);
    cr_assert_eq(alk_keras_model_payload(alk_value_get(model, "config"), NULL, &arena, &p, &diag),
                 ALK_EINVAL);
    cr_assert(strstr(diag.message, "model must be a map, not str") != NULL, "%s", diag.message);
    alk_buf_fini(&bytes);
    alk_arena_fini(&arena);
}
