/*
 * The `hgq` plugin's rows in-process (src/plugins/hgq, compiled into this test), on a fake host
 * whose tracer is the plugin itself and whose weight source is a table of tensors in this file:
 * quantizer configs with HGQ2's defaults and config classes, the stored variables' layouts
 * (keras_v3 vars/N and legacy names), every check that names a dataset, the iq/oq hooks and
 * their dumps, and the power-of-two scales HGQ2 derives at build time.
 *
 * Each result is traced into ALIR and run by the interpreter on the test's sample. Expected
 * values are worked by hand from HGQ2's quantizer (frontends.md §3.1):
 * i' = max(i, -f); SAT clips to [-k 2^i', 2^i' - 2^-f], SAT_SYM to [-k (2^i' - 2^-f), ...];
 * TRN floors x 2^f, RND floors x 2^f + 1/2, RND_CONV rounds half to even; WRAP wraps into
 * [-k 2^i', 2^i'); elements with k + i + f <= 0 are 0; then * scaler and the affine map.
 */
#include "alir/interp.h"
#include "plugin/op_int.h"
#include "plugins/hgq/hgq_int.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

const alk_plugin_descriptor *alk_plugin_entry(void);

/* ---- The fixture: the plugin as the host's tracer, a weight table -------------------------- */

static alk_trace *trace;
static alk_arena arena;
static alk__trace_map map;
static alk__loaded plugin;
static alk_host host = {.tracer = &plugin, .map = &map};

/* The inputs a test made, with the sample each is fed: expect_values traces them into ALIR
 * and runs the interpreter on that sample. */
static alk_fva *inputs[8];
static double samples[8][16];
static size_t n_inputs;

enum { MAX_STORED = 32 };
static struct {
    const char *path;
    const alk_value *value;
} stored[MAX_STORED];
static size_t n_stored;

static const alk_value *find(const void *ctx, const char *role, size_t index, const char *path) {
    (void)ctx;
    (void)index;
    for (size_t i = 0; role == NULL && i < n_stored; i++) {
        if (strcmp(stored[i].path, path) == 0) {
            return stored[i].value;
        }
    }
    return NULL;
}

static void setup(void) {
    cr_assert_eq(alk_trace_new(NULL, &trace), ALK_OK);
    alk_arena_init(&arena, 0);
    alk__trace_map_init(&map);
    plugin = (alk__loaded){.desc = alk_plugin_entry()};
    n_stored = 0;
    n_inputs = 0;
}

static void teardown(void) {
    alk__trace_map_fini(&map);
    alk_arena_fini(&arena);
    alk_trace_free(trace);
}

TestSuite(hgq, .init = setup, .fini = teardown);

static const alk_value *json(const char *text) {
    return test_json(&arena, text);
}

/* Stores {dtype, shape, data} at `path`: dtype "f4" (float32), "u1" (uint8) or "u4". */
static void store(const char *path, const char *dtype, size_t ndim, const size_t *shape,
                  const double *values) {
    size_t n = 1;
    for (size_t d = 0; d < ndim; d++) {
        n *= shape[d];
    }
    size_t width = dtype[1] == '1' ? 1 : 4;
    unsigned char *bytes = alk_arena_alloc(&arena, n * width + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t word;
        if (dtype[0] == 'f') {
            float f = (float)values[i];
            memcpy(&word, &f, 4);
        } else {
            word = (uint32_t)values[i];
        }
        for (size_t b = 0; b < width; b++) { /* little-endian */
            bytes[i * width + b] = (unsigned char)(word >> (8 * b));
        }
    }
    const alk_value *dims[8];
    for (size_t d = 0; d < ndim; d++) {
        dims[d] = alk_value_new_int(&arena, (int64_t)shape[d]);
    }
    alk_value_pair pairs[3] = {
        {alk_value_new_bytes(&arena, ALK_VALUE_STR, "dtype", 5),
         alk_value_new_bytes(&arena, ALK_VALUE_STR, dtype, strlen(dtype))},
        {alk_value_new_bytes(&arena, ALK_VALUE_STR, "shape", 5),
         alk_value_new_array(&arena, dims, ndim)},
        {alk_value_new_bytes(&arena, ALK_VALUE_STR, "data", 4),
         alk_value_new_bytes(&arena, ALK_VALUE_BIN, bytes, n * width)},
    };
    cr_assert_lt(n_stored, MAX_STORED);
    stored[n_stored].path = path;
    stored[n_stored++].value = alk_value_new_map(&arena, pairs, 3);
}

/* Stores a legacy weight_names list (JSON) or a vars group's name (any other text). */
static void store_value(const char *path, const char *text) {
    stored[n_stored].path = path;
    stored[n_stored++].value = text[0] == '['
                                   ? json(text)
                                   : alk_value_new_bytes(&arena, ALK_VALUE_STR, text, strlen(text));
}

/* The variables of a KIF quantizer at `prefix` ("quantizer/" or "kq/quantizer/") for a (1, n)
 * tensor, in HGQ2's order: i, f, k (WRAP: f, k, i, i_decay_speed). */
static void store_kif(const char *prefix, bool wrap, size_t n, const double *k, const double *i,
                      const double *f) {
    static char paths[MAX_STORED][96];
    size_t shape[2] = {1, n};
    const double *order[4] = {i, f, k, NULL};
    const char *dtypes[4] = {"f4", "f4", "u1", "f4"};
    if (wrap) {
        order[0] = f;
        order[1] = k;
        order[2] = i;
        dtypes[1] = "u1";
        dtypes[2] = "f4";
    }
    static const double decay = 0.01;
    for (size_t v = 0; v < (wrap ? 4u : 3u); v++) {
        char *p = paths[n_stored];
        (void)snprintf(p, 96, "%svars/%zu", prefix, v);
        if (v == 3) {
            store(p, "f4", 0, NULL, &decay);
        } else {
            store(p, dtypes[v], 2, shape, order[v]);
        }
    }
}

/* An input of shape (1, n), format (1, 4, 6) for every element, to be fed `values`. */
static alk_fva *constants(size_t n, const double *values) {
    int k[16], i[16], f[16];
    for (size_t j = 0; j < n; j++) {
        k[j] = 1;
        i[j] = 4;
        f[j] = 6;
        samples[n_inputs][j] = values[j];
    }
    size_t shape[2] = {1, n};
    cr_assert_lt(n_inputs, 8);
    inputs[n_inputs] = alk_fva_from_kif(trace, 2, shape, k, i, f);
    return inputs[n_inputs++];
}

/* The values of `a` for the recorded inputs and samples (the program's interpreter). */
static void expect_values(alk_fva *a, size_t n, const double *want) {
    cr_assert_not_null(a, "no result: %s", alk_trace_message(trace));
    cr_assert_eq(alk_fva_size(a), n);
    alk_program *program = NULL;
    cr_assert_eq(alk_fva_trace(trace, inputs, n_inputs, &a, 1, true, &program), ALK_OK, "%s",
                 alk_trace_message(trace));
    double x[128], y[16];
    size_t n_x = 0;
    for (size_t in = 0; in < n_inputs; in++) {
        for (size_t j = 0; j < alk_fva_size(inputs[in]); j++) {
            x[n_x++] = samples[in][j];
        }
    }
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_OK, "%s", diag.message);
    cr_assert_eq(alk_interp_run(interp, x, 1, y, &diag), ALK_OK, "%s", diag.message);
    for (size_t j = 0; j < n; j++) {
        cr_assert(y[j] == want[j], "[%zu]: %g, want %g", j, y[j], want[j]);
    }
    alk_interp_free(interp);
    alk_program_free(program);
}

/* Runs class `cls` (module `module`) named `name` with `config` on the positional `args`; the
 * result (NULL on failure). */
static alk_fva *run(const char *module, const char *cls, const char *name, const char *config,
                    alk_fva *const *args, size_t n_args, bool as_list) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, name, module, cls, json(config));
    if (as_list) {
        const alk_arg *items[8];
        for (size_t i = 0; i < n_args; i++) {
            items[i] = alk_arg_of_array(op, args[i]);
        }
        alk_op_add_arg(op, NULL, alk_arg_of_seq(op, ALK_ARG_LIST, items, n_args));
    } else {
        for (size_t i = 0; i < n_args; i++) {
            alk_op_add_arg(op, NULL, alk_arg_of_array(op, args[i]));
        }
    }
    alk_op_weights source = {find, NULL};
    alk_op_set_weights(op, &source);
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    if (alk_host_find_op(&host, module, cls, &def, &diag) != ALK_OK) {
        alk_op_fail(op, ALK_ENOENT, "%s", diag.message);
    }
    if (alk_op_run(op, def) != ALK_OK) {
        return NULL;
    }
    return alk_op_result_array(op, 0);
}

/* A Quantizer layer of `conf` (a QuantizerConfig's inner keys) on `x`. */
static alk_fva *quantizer(const char *conf, alk_fva *x) {
    char config[1024];
    (void)snprintf(config, sizeof(config),
                   "{\"name\": \"q\", \"config\": {\"module\": \"hgq.quantizer.config\", "
                   "\"class_name\": \"QuantizerConfig\", \"config\": %s}}",
                   conf);
    return run("hgq.quantizer.quantizer", "Quantizer", "q", config, &x, 1, false);
}

static void expect_failure(const char *part1, const char *part2) {
    const char *m = alk_trace_message(trace);
    cr_assert_neq(alk_trace_error(trace), ALK_OK, "no error, expected one with '%s'", part1);
    cr_assert(strstr(m, part1) != NULL && strstr(m, part2) != NULL,
              "message '%s' lacks '%s' or '%s'", m, part1, part2);
}

/* ---- Quantizer values ------------------------------------------------------------------------ */

static const double x4[4] = {0.3125, -2.75, 5.25, 0.734375};

Test(hgq, kif_sat_rnd_per_element) {
    const double k[4] = {1, 1, 0, 1}, i[4] = {1, 1, 2, 0}, f[4] = {2, 1, 1, 3};
    store_kif("quantizer/", false, 4, k, i, f);
    /* 0.3125 -> 1.25 + 0.5 floors to 1 -> 0.25; -2.75 clips to -2; 5.25 (unsigned, 2 integer
     * bits) clips to 4 - 0.5; 0.734375 * 8 + 0.5 = 6.375 -> 0.75. */
    const double want[4] = {0.25, -2, 3.5, 0.75};
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"RND\", "
                            "\"overflow_mode\": \"SAT\"}",
                            constants(4, x4)),
                  4, want);
}

Test(hgq, sat_sym_and_lower_case_modes) {
    const double k[2] = {1, 1}, i[2] = {1, 1}, f[2] = {2, 2};
    store_kif("quantizer/", false, 2, k, i, f);
    const double x[2] = {-3, 3};
    /* symmetric: [-(2 - 0.25), 2 - 0.25] */
    const double want[2] = {-1.75, 1.75};
    expect_values(quantizer("{\"q_type\": \"KIF\", \"round_mode\": \"rnd_conv\", "
                            "\"overflow_mode\": \"sat_sym\"}",
                            constants(2, x)),
                  2, want);
}

Test(hgq, kbi_wrap_trn_and_pruning) {
    /* KBI WRAP: b, k, i, i_decay_speed; f = b - i. Element 1: k + i + f = 0 + 2 - 2: pruned. */
    size_t shape[2] = {1, 2};
    const double b[2] = {3, 0}, k[2] = {1, 0}, i[2] = {1, 2}, decay = 0.01;
    store("quantizer/vars/0", "f4", 2, shape, b);
    store("quantizer/vars/1", "u1", 2, shape, k);
    store("quantizer/vars/2", "f4", 2, shape, i);
    store("quantizer/vars/3", "f4", 0, NULL, &decay);
    const double x[2] = {3.8125, 1.5};
    /* 3.8125 * 4 floors to 15 -> 3.75, wrapped into [-2, 2): 3.75 - 4 = -0.25 */
    const double want[2] = {-0.25, 0};
    expect_values(quantizer("{\"q_type\": \"kbi\", \"round_mode\": \"TRN\", "
                            "\"overflow_mode\": \"WRAP\"}",
                            constants(2, x)),
                  2, want);
}

Test(hgq, scaler_is_multiplied_back_and_affine_follows) {
    const double k[1] = {1}, i[1] = {2}, f[1] = {0};
    store_kif("quantizer/", false, 1, k, i, f);
    const double x[1] = {1.3125};
    /* 1.3125 / 0.5 = 2.625 -> RND 3 -> * 0.5 = 1.5 (Keras; the reference's tracer stops at 3)
     * -> * 2 + 0.25 = 3.25 */
    const double want[1] = {3.25};
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"RND\", \"overflow_mode\": "
                            "\"SAT\", \"scaler\": 0.5, \"affine\": [2, 0.25]}",
                            constants(1, x)),
                  1, want);
}

Test(hgq, stochastic_rounding_rounds_as_at_inference) {
    const double k[1] = {1}, i[1] = {1}, f[1] = {2};
    const double x[1] = {0.625}; /* * 4 = 2.5: RND gives 3, RND_CONV 2 */
    store_kif("quantizer/", false, 1, k, i, f);
    const double rnd[1] = {0.75};
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"S_RND\", "
                            "\"overflow_mode\": \"SAT\"}",
                            constants(1, x)),
                  1, rnd);
}

Test(hgq, stochastic_convergent_rounding_rounds_as_at_inference) {
    const double k[1] = {1}, i[1] = {1}, f[1] = {2};
    const double x[1] = {0.625};
    store_kif("quantizer/", false, 1, k, i, f);
    const double conv[1] = {0.5};
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"S_RND_CONV\", "
                            "\"overflow_mode\": \"SAT\"}",
                            constants(1, x)),
                  1, conv);
}

Test(hgq, a_trainable_wrap_weight_quantizer_only_rounds) {
    const double k[1] = {1}, i[1] = {0}, f[1] = {1};
    const double x[1] = {2.75};
    store_kif("quantizer/", true, 1, k, i, f);
    /* round only: floor(5.5 + 0.5) / 2 = 3; the full Q wraps 3 into [-1, 1): -1 */
    const double only[1] = {3}, full[1] = {-1};
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"RND\", \"overflow_mode\": "
                            "\"WRAP\", \"is_weight\": true, \"trainable\": true}",
                            constants(1, x)),
                  1, only);
    expect_values(quantizer("{\"q_type\": \"kif\", \"round_mode\": \"RND\", \"overflow_mode\": "
                            "\"WRAP\", \"is_weight\": true, \"trainable\": false}",
                            constants(1, x)),
                  1, full);
}

Test(hgq, hard_sigmoid_config_implies_sat_and_its_affine) {
    const double k[1] = {1}, i[1] = {1}, f[1] = {2};
    store_kif("quantizer/", false, 1, k, i, f);
    const double x[1] = {3};
    /* SAT: 3 -> 1.75; affine (0.25, 0.5): 0.9375 */
    const double want[1] = {0.9375};
    alk_fva *in = constants(1, x);
    expect_values(run("hgq.quantizer.quantizer", "Quantizer", "q",
                      "{\"config\": {\"class_name\": \"HardSigmoidConfig\", \"config\": "
                      "{\"q_type\": \"kif\", \"round_mode\": \"RND\"}}}",
                      &in, 1, false),
                  1, want);
}

Test(hgq, default_q_type_and_modes_come_from_the_place) {
    /* q_type "default" at the weight place: kbi, RND, SAT_SYM (3 variables b, i, k). */
    size_t shape[2] = {1, 1};
    const double b[1] = {3}, i[1] = {1}, k[1] = {1};
    store("quantizer/vars/0", "f4", 2, shape, b);
    store("quantizer/vars/1", "f4", 2, shape, i);
    store("quantizer/vars/2", "u1", 2, shape, k);
    const double x[1] = {-5};
    const double want[1] = {-1.75}; /* f = 2; symmetric clip at 2 - 0.25 */
    expect_values(quantizer("{\"q_type\": \"default\", \"place\": \"weight\", "
                            "\"is_weight\": false}",
                            constants(1, x)),
                  1, want);
}

/* ---- Refusals, each naming the layer and the culprit ----------------------------------------- */

Test(hgq, wrap_sm_float_dummy_and_unknown_types_are_refused) {
    const double one[1] = {1};
    store_kif("quantizer/", false, 1, one, one, one);
    alk_fva *x = constants(1, one);
    cr_assert_null(quantizer("{\"q_type\": \"kif\", \"overflow_mode\": \"WRAP_SM\"}", x));
    expect_failure("layer q (Quantizer)", "WRAP_SM");
    teardown();
    setup();
    store_kif("quantizer/", false, 1, one, one, one);
    cr_assert_null(quantizer("{\"q_type\": \"float\"}", constants(1, one)));
    expect_failure("layer q (Quantizer)", "floating-point");
    teardown();
    setup();
    cr_assert_null(quantizer("{\"q_type\": \"dummy\"}", constants(1, one)));
    expect_failure("layer q (Quantizer)", "dummy");
    teardown();
    setup();
    cr_assert_null(quantizer("{\"q_type\": \"foo\"}", constants(1, one)));
    expect_failure("layer q (Quantizer)", "unknown q_type 'foo'");
    teardown();
    setup();
    cr_assert_null(
        quantizer("{\"q_type\": \"kif\", \"round_mode\": \"STOCHASTIC\"}", constants(1, one)));
    expect_failure("layer q (Quantizer)", "round_mode 'STOCHASTIC'");
}

Test(hgq, stored_variables_are_checked_by_dtype_shape_and_count) {
    size_t shape[2] = {1, 2}, other[2] = {1, 3};
    const double v[3] = {1, 1, 1};
    const char *conf = "{\"q_type\": \"kif\", \"overflow_mode\": \"SAT\"}";
    /* k stored as float32 */
    store("quantizer/vars/0", "f4", 2, shape, v);
    store("quantizer/vars/1", "f4", 2, shape, v);
    store("quantizer/vars/2", "f4", 2, shape, v);
    cr_assert_null(quantizer(conf, constants(2, v)));
    expect_failure("dataset quantizer/vars/2 (k) has dtype f4", "layer q (Quantizer)");
    teardown();
    setup();
    /* f missing */
    store("quantizer/vars/0", "f4", 2, shape, v);
    store("quantizer/vars/2", "u1", 2, shape, v);
    cr_assert_null(quantizer(conf, constants(2, v)));
    expect_failure("dataset quantizer/vars/1 (f) is missing", "layer q (Quantizer)");
    teardown();
    setup();
    /* i of another shape than k */
    store("quantizer/vars/0", "f4", 2, other, v);
    store("quantizer/vars/1", "f4", 2, shape, v);
    store("quantizer/vars/2", "u1", 2, shape, v);
    cr_assert_null(quantizer(conf, constants(2, v)));
    expect_failure("dataset quantizer/vars/0 (i) has shape (1, 3), expected (1, 2)", "layer q");
    teardown();
    setup();
    /* a fourth variable: the file's layout is a WRAP quantizer's */
    store_kif("quantizer/", false, 2, v, v, v);
    store("quantizer/vars/3", "f4", 0, NULL, v);
    cr_assert_null(quantizer(conf, constants(2, v)));
    expect_failure("more variables", "quantizer/vars/3");
    teardown();
    setup();
    /* the variables of a KBI quantizer (by their group's name) under a KIF config */
    store_kif("quantizer/", false, 2, v, v, v);
    store_value("quantizer/vars", "fixed_point_quantizer_kbi_3");
    cr_assert_null(quantizer(conf, constants(2, v)));
    expect_failure("'fixed_point_quantizer_kbi_3'", "q_type 'kif'");
}

Test(hgq, variables_that_do_not_broadcast_are_named) {
    size_t shape[2] = {1, 3};
    const double v[3] = {1, 1, 1};
    store("quantizer/vars/0", "f4", 2, shape, v);
    store("quantizer/vars/1", "f4", 2, shape, v);
    store("quantizer/vars/2", "u1", 2, shape, v);
    cr_assert_null(quantizer("{\"q_type\": \"kif\", \"overflow_mode\": \"SAT\"}", constants(2, v)));
    expect_failure("shape (1, 3) do not broadcast", "shape (1, 2)");
}

/* ---- Hooks, lists of quantizers, legacy names, build-time scales ---------------------------- */

static const char *avg_pow2 =
    "{\"name\": \"avg\", \"enable_ebops\": false, \"iq_confs\": {\"class_name\": "
    "\"QuantizerConfig\", \"config\": {\"q_type\": \"kif\", \"round_mode\": \"TRN\", "
    "\"overflow_mode\": \"SAT\"}}}";

Test(hgq, average_pow2_quantizes_each_input_and_scales_by_a_power_of_two) {
    const double k[1] = {1}, i[1] = {3}, f[1] = {1};
    store_kif("iq/quantizers/quantizer/quantizer/", false, 1, k, i, f);
    store_kif("iq/quantizers/quantizer_1/quantizer/", false, 1, k, i, f);
    store_kif("iq/quantizers/quantizer_2/quantizer/", false, 1, k, i, f);
    const double a[1] = {1.75}, b[1] = {2.25}, c[1] = {-0.75};
    alk_fva *in[3] = {constants(1, a), constants(1, b), constants(1, c)};
    /* TRN at f = 1: 1.5 + 2 - 1 = 2.5; 3 inputs: 2^round(log2(1/3)) = 1/4 */
    const double want[1] = {0.625};
    expect_values(run("hgq.layers.ops.merge", "QAveragePow2", "avg", avg_pow2, in, 3, true), 1,
                  want);
    const alk__trace_entry *post_iq = alk__trace_map_get(&map, "/avg/post_iq");
    cr_assert_not_null(post_iq);
    cr_assert_eq(post_iq->n_arrays, 3);
}

Test(hgq, legacy_files_locate_list_entries_by_order) {
    /* Keras's legacy names: automatic quantizer names, ordered as the entries. */
    store_value("weight_names",
                "[\"avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/i\", "
                "\"avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/f\", "
                "\"avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/i\", "
                "\"avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/f\", "
                "\"avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/k\", "
                "\"avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/k\"]");
    size_t shape[2] = {1, 1};
    const double one[1] = {1}, i0[1] = {3}, f0[1] = {0}, i1[1] = {3}, f1[1] = {2};
    store("avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/i", "f4", 2, shape,
          i0);
    store("avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/f", "f4", 2, shape,
          f0);
    store("avg/multiple_quantizers_3/quantizer_7/fixed_point_quantizer_kif_7/k", "u1", 2, shape,
          one);
    store("avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/i", "f4", 2, shape,
          i1);
    store("avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/f", "f4", 2, shape,
          f1);
    store("avg/multiple_quantizers_3/quantizer_8/fixed_point_quantizer_kif_8/k", "u1", 2, shape,
          one);
    const double a[1] = {1.75}, b[1] = {1.75};
    alk_fva *in[2] = {constants(1, a), constants(1, b)};
    /* first input at f = 0: 1; second at f = 2: 1.75; 2 inputs: * 1/2 */
    const double want[1] = {1.375};
    expect_values(run("hgq.layers.ops.merge", "QAveragePow2", "avg", avg_pow2, in, 2, true), 1,
                  want);
}

Test(hgq, mean_pow2_scale_comes_from_the_reduced_sizes) {
    const double x[6] = {1, 2, 3, 4, 5, 6.5};
    alk_fva *in = constants(6, x);
    /* 6 elements: 2^round(log2(1/6)) = 1/8 */
    const double want[1] = {21.5 / 8};
    expect_values(run("hgq.layers.ops.accum", "QMeanPow2", "m",
                      "{\"enable_iq\": false, \"enable_ebops\": false, \"axes\": [1]}", &in, 1,
                      false),
                  1, want);
}

Test(hgq, sum_scale_must_be_a_power_of_two) {
    const double x[2] = {1, 2};
    alk_fva *in = constants(2, x);
    const double want[1] = {0.75};
    expect_values(run("hgq.layers.ops.accum", "QSum", "s",
                      "{\"enable_iq\": false, \"enable_ebops\": false, \"axes\": -1, "
                      "\"scale\": 0.25}",
                      &in, 1, false),
                  1, want);
    teardown();
    setup();
    in = constants(2, x);
    cr_assert_null(run("hgq.layers.ops.accum", "QSum", "s",
                       "{\"enable_iq\": false, \"enable_ebops\": false, \"scale\": 0.3}", &in, 1,
                       false));
    expect_failure("layer s (QSum)", "scale 0.3 is not a power of 2");
}

Test(hgq, own_variables_beyond_the_config_are_named) {
    /* enable_ebops: beta (float32) and ebops (uint32); a third variable is one too many. */
    const double zero[1] = {0};
    store("vars/0", "f4", 0, NULL, zero);
    store("vars/1", "u4", 0, NULL, zero);
    store("vars/2", "f4", 0, NULL, zero);
    const double x[2] = {1, 2};
    alk_fva *in = constants(2, x);
    cr_assert_null(run("hgq.layers.ops.accum", "QSum", "s",
                       "{\"enable_iq\": false, \"enable_ebops\": true}", &in, 1, false));
    expect_failure("layer s (QSum)", "more than the 2 variables this config gives the layer: "
                                     "vars/2");
}

Test(hgq, output_quantizer_runs_after_the_body) {
    const double k[1] = {1}, i[1] = {1}, f[1] = {0};
    store_kif("oq/quantizer/", false, 1, k, i, f);
    const double x[2] = {1.5, 2.25};
    alk_fva *in = constants(2, x);
    /* sum 3.75, oq SAT at i = 1, f = 0: [-2, 1] -> 1 */
    const double want[1] = {1};
    expect_values(run("hgq.layers.ops.accum", "QSum", "s",
                      "{\"enable_iq\": false, \"enable_ebops\": false, \"keepdims\": true, "
                      "\"enable_oq\": true, "
                      "\"oq_conf\": {\"class_name\": \"QuantizerConfig\", \"config\": "
                      "{\"q_type\": \"kif\", \"overflow_mode\": \"SAT\", \"round_mode\": "
                      "\"TRN\"}}}",
                      &in, 1, false),
                  1, want);
}
