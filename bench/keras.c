/*
 * bench_keras MODEL.keras --input-kif K,I,F [--layer-output-kif K,I,F] [--repeat N]
 *
 * The in-process conversion of a Keras model file, split the way a request spends its time
 * (bench/README.md "Keras"): reading (the file's zip and HDF5, the config JSON, the graph: what
 * the keras tracer does before its first layer), tracing (the walk and the emission, outside the
 * solvers), solving (the CMVM/SCM solvers, from the trace's own clock) and encoding (the reply
 * with the ALIR JSON text, as alkaidd writes it). Best of N runs of each part; the conversion is
 * given explicit input shapes, so the tracer reads the file once, as a request with `inputs`.
 */
#include "core/io.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "plugins/keras/model_file.h"
#include "plugins/keras/model_graph.h"
#include "rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static bool parse_kif(const char *text, int kif[3]) {
    return sscanf(text, "%d,%d,%d", &kif[0], &kif[1], &kif[2]) == 3;
}

/* Reads the payload, the config and the graph, as the tracer's job_open does. */
static int read_model(const alk_buf *bytes, alk_arena *arena, alk_keras_model **ret_model,
                      alk_diag *diag) {
    const alk_value *payload = NULL;
    const alk_value *root = NULL;
    int rv = alk_keras_file_read(bytes->data, bytes->len, NULL, arena, &payload, diag);
    if (rv == ALK_OK) {
        const alk_value *config = alk_value_get(payload, "config");
        alk_value_limits limits;
        alk_value_limits_default(&limits);
        rv = alk_value_from_python_json(config->as.str.bytes, config->as.str.len, &limits, arena,
                                        &root, diag);
    }
    return rv == ALK_OK ? alk_keras_graph_parse(root, arena, ret_model, diag) : rv;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int input_kif[3];
    int output_kif[3];
    bool has_input_kif = false, has_output_kif = false;
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--input-kif") == 0 && i + 1 < argc) {
            has_input_kif = parse_kif(argv[++i], input_kif);
        } else if (strcmp(argv[i], "--layer-output-kif") == 0 && i + 1 < argc) {
            has_output_kif = parse_kif(argv[++i], output_kif);
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else {
            path = argv[i];
        }
    }
    if (path == NULL || !has_input_kif || repeat < 1) {
        fprintf(stderr, "usage: bench_keras MODEL.keras --input-kif K,I,F "
                        "[--layer-output-kif K,I,F] [--repeat N]\n");
        return 2;
    }
    alk_diag diag = {{0}};
    alk_buf bytes;
    alk_buf_init(&bytes);
    if (alk_read_file(path, (size_t)1 << 30, &bytes, &diag) != ALK_OK) {
        fprintf(stderr, "bench_keras: %s\n", diag.message);
        return 1;
    }
    /* The request: the file's bytes, explicit input shapes from the config, the options. */
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_keras_model *model = NULL;
    if (read_model(&bytes, &arena, &model, &diag) != ALK_OK) {
        fprintf(stderr, "bench_keras: %s: %s\n", path, diag.message);
        return 1;
    }
    alk_input_spec inputs[ALK_KERAS_MAX_INPUTS];
    for (size_t i = 0; i < model->n_inputs && i < ALK_KERAS_MAX_INPUTS; i++) {
        inputs[i] =
            (alk_input_spec){.has_kif = true, .kif = {input_kif[0], input_kif[1], input_kif[2]}};
        if (alk_keras_model_input_shape(model, i, inputs[i].dims, ALK_MAX_DIMS, &inputs[i].n_dims,
                                        &diag) != ALK_OK) {
            fprintf(stderr, "bench_keras: input %zu has no shape\n", i);
            return 1;
        }
        inputs[i].dims[0] = 1;
    }
    alk_value *file = alk_value_new(&arena, ALK_VALUE_BIN);
    file->as.str.bytes = bytes.data;
    file->as.str.len = bytes.len;
    const alk_value *kif_items[3] = {alk_value_new_int(&arena, output_kif[0]),
                                     alk_value_new_int(&arena, output_kif[1]),
                                     alk_value_new_int(&arena, output_kif[2])};
    alk_value_pair precision = {alk_value_new_bytes(&arena, ALK_VALUE_STR, "layer_output_kif", 16),
                                alk_value_new_array(&arena, kif_items, 3)};
    alk_value_pair fields[2] = {{alk_value_new_bytes(&arena, ALK_VALUE_STR, "file", 4), file},
                                {alk_value_new_bytes(&arena, ALK_VALUE_STR, "precision", 9),
                                 alk_value_new_map(&arena, &precision, 1)}};
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "keras";
    request.model = alk_value_new_map(&arena, fields, has_output_kif ? 2 : 1);
    request.inputs = inputs;
    request.n_inputs = model->n_inputs;

    char **dirs = NULL;
    size_t n_dirs = 0;
    alk_generation *generation = NULL;
    alk_plugin_config config = {0};
    if (alk_plugin_search_path(NULL, 0, &dirs, &n_dirs) != ALK_OK) {
        return 1;
    }
    config.dirs = (const char *const *)dirs;
    config.n_dirs = n_dirs;
    if (alk_generation_build(&config, NULL, &generation, &diag) != ALK_OK) {
        fprintf(stderr, "bench_keras: %s\n", diag.message);
        return 1;
    }
    double best_read = 1e30, best_convert = 1e30, best_solve = 1e30, best_encode = 1e30;
    size_t n_ops = 0;
    for (int r = 0; r < repeat; r++) {
        alk_arena scratch;
        alk_arena_init(&scratch, 0);
        double t0 = now_ms();
        alk_keras_model *m = NULL;
        (void)read_model(&bytes, &scratch, &m, &diag);
        double t1 = now_ms();
        alk_arena_fini(&scratch);
        alk_convert_result result = {0};
        double t2 = now_ms();
        int rv = alk_convert(generation, &request, &result, &diag);
        double t3 = now_ms();
        if (rv != ALK_OK) {
            fprintf(stderr, "bench_keras: %s\n", diag.message);
            return 1;
        }
        alk_buf reply;
        alk_buf_init(&reply);
        alk_rpc_convert_options options = {0};
        alk_rpc_error err;
        alk_rpc_error_clear(&err);
        double t4 = now_ms();
        (void)alk_rpc_encode_convert_reply(NULL, &result, &options, 1, NULL, &reply, &err);
        double t5 = now_ms();
        alk_buf_fini(&reply);
        n_ops = result.program->n_ops;
        best_read = t1 - t0 < best_read ? t1 - t0 : best_read;
        best_convert = t3 - t2 < best_convert ? t3 - t2 : best_convert;
        best_solve =
            result.solve_seconds * 1e3 < best_solve ? result.solve_seconds * 1e3 : best_solve;
        best_encode = t5 - t4 < best_encode ? t5 - t4 : best_encode;
        alk_convert_result_fini(&result);
    }
    /* The conversion includes one read of the file (the tracer's) and the solvers. */
    double trace = best_convert - best_read - best_solve;
    double total = best_convert + best_encode;
    printf("%s: %zu ops, best of %d\n", path, n_ops, repeat);
    printf("  reading  %8.2f ms  %5.1f %%\n", best_read, 100 * best_read / total);
    printf("  tracing  %8.2f ms  %5.1f %%\n", trace, 100 * trace / total);
    printf("  solving  %8.2f ms  %5.1f %%\n", best_solve, 100 * best_solve / total);
    printf("  encoding %8.2f ms  %5.1f %%\n", best_encode, 100 * best_encode / total);
    printf("  total    %8.2f ms\n", total);
    alk_generation_unref(generation);
    alk_plugin_dirs_free(dirs, n_dirs);
    alk_arena_fini(&arena);
    alk_buf_fini(&bytes);
    return 0;
}
