/*
 * The keras tracer's walk (frontends.md §1.3, §2.1) through alk_convert with the build's
 * plugins: trace-map names and `#N` renames of shared layers and shared sub-models, the input
 * shapes rule, tagged call arguments (checked by running the program on hand-worked samples),
 * `training` at inference, and the errors that name the culprit (unknown tagged value, unsupported
 * layer and package, softmax, a tensor past a node's outputs, the precision options' fields).
 */
#include "alir/interp.h"
#include "plugin/convert.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static alk_generation *generation;
static alk_arena arena;

static void setup(void) {
    char **dirs;
    size_t n;
    cr_assert_eq(alk_plugin_search_path(NULL, 0, &dirs, &n), ALK_OK);
    alk_plugin_config config = {.dirs = (const char *const *)dirs, .n_dirs = n};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_generation_build(&config, NULL, &generation, &diag), ALK_OK, "%s",
                 diag.message);
    alk_plugin_dirs_free(dirs, n);
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_generation_unref(generation);
    alk_arena_fini(&arena);
}

TestSuite(keras_walk, .init = setup, .fini = teardown);

static const alk_value *str(const char *s) {
    return alk_value_new_bytes(&arena, ALK_VALUE_STR, s, strlen(s));
}

/* Single quotes of `text` made double ones (configs are easier to read that way). */
static const char *quoted(const char *text) {
    char *json = alk_arena_alloc(&arena, strlen(text) + 1);
    for (size_t i = 0; text[i] != '\0'; i++) {
        json[i] = text[i] == '\'' ? '"' : text[i];
    }
    json[strlen(text)] = '\0';
    return json;
}

/* A decoded keras_v3 payload of `config` with no weights, plus `extra` model keys (JSON map
 * text or NULL, e.g. a precision map). */
static const alk_value *payload(const char *config, const char *extra) {
    const alk_value *extras = NULL;
    size_t n_extra = 0;
    if (extra != NULL) {
        alk_diag diag = {{0}};
        const char *json = quoted(extra);
        cr_assert_eq(alk_value_from_json(json, strlen(json), NULL, &arena, &extras, &diag), ALK_OK);
        n_extra = extras->as.map.len;
    }
    alk_value_pair pairs[8] = {
        {str("format"), str("keras_v3")},
        {str("config"), str(quoted(config))},
        {str("weights"), alk_value_new_map(&arena, NULL, 0)},
    };
    for (size_t i = 0; i < n_extra; i++) {
        pairs[3 + i] = extras->as.map.pairs[i];
    }
    return alk_value_new_map(&arena, pairs, 3 + n_extra);
}

/* Converts; every input gets kif (1, 3, 0). */
static int convert(const char *config, const char *extra, alk_convert_result *result,
                   alk_diag *diag) {
    static const int kif[1][3] = {{1, 3, 0}};
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "keras";
    request.model = payload(config, extra);
    request.inputs_kif = kif;
    request.n_inputs_kif = 1;
    request.dump = true;
    *result = (alk_convert_result){0};
    return alk_convert(generation, &request, result, diag);
}

/* The dump's names, space-separated. */
static const char *dump_names(const alk_convert_result *r) {
    static char out[2048];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_dump; i++) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i > 0 ? " " : "", r->dump[i].name);
    }
    return out;
}

/* Runs the program on one sample. */
static void run(const alk_program *program, const double *in, double *out) {
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_OK, "%s", diag.message);
    cr_assert_eq(alk_interp_run(interp, in, 1, out, &diag), ALK_OK, "%s", diag.message);
    alk_interp_free(interp);
}

#define T(layer, node)                                                                             \
    "{'class_name': '__keras_tensor__', 'config': {'keras_history': ['" layer "', " #node ", 0]}}"
#define NODE1(layer, node) "{'args': [" T(layer, node) "], 'kwargs': {}}"
#define INPUT(name, n)                                                                             \
    "{'module': 'keras.layers', 'class_name': 'InputLayer', 'name': '" name                        \
    "', 'config': {'batch_shape': [null, " #n "], 'name': '" name "'}, 'inbound_nodes': []}"
#define RELU(name, nodes)                                                                          \
    "{'module': 'keras.layers', 'class_name': 'ReLU', 'name': '" name                              \
    "', 'config': {'name': '" name "'}, 'inbound_nodes': [" nodes "]}"
#define FUNCTIONAL(name, layers, in, out)                                                          \
    "{'module': 'keras.src.models.functional', 'class_name': 'Functional', 'config': {'name': "    \
    "'" name "', 'layers': [" layers "], 'input_layers': [" in "], 'output_layers': [" out "]}"

Test(keras_walk, shared_layer_gets_renamed_dumps) {
    alk_convert_result r;
    alk_diag diag = {{0}};
    int rv = convert(
        FUNCTIONAL("m", INPUT("in", 4) "," RELU("re_lu", NODE1("in", 0) "," NODE1("re_lu", 0)),
                   "['in', 0, 0]", "['re_lu', 1, 0]") "}",
        NULL, &r, &diag);
    cr_assert_eq(rv, ALK_OK, "%s", diag.message);
    cr_assert_str_eq(dump_names(&r), "inputs /re_lu/post_call /re_lu/final /re_lu#1/post_call "
                                     "/re_lu#1/final final");
    cr_assert_eq(r.n_output_names, 1);
    cr_assert_str_eq(r.output_names[0], "final");
    double in[4] = {-3, 2, 0, 7}, out[4];
    run(r.program, in, out);
    cr_assert(out[0] == 0 && out[1] == 2 && out[2] == 0 && out[3] == 7);
    alk_convert_result_fini(&r);
}

Test(keras_walk, shared_sub_model_gets_a_child_scope_per_call) {
    /* sub (a Functional) called twice: its nodes are 1 and 2; each call is a child scope. */
    const char *sub =
        "{'module': 'keras.src.models.functional', 'class_name': 'Functional', "
        "'name': 'sub', 'config': {'name': 'sub', 'layers': [" INPUT("sin", 4) "," RELU(
            "re_lu",
            NODE1("sin", 0)) "], "
                             "'input_layers': [['sin', 0, 0]], 'output_layers': [['re_lu', "
                             "0, 0]]}, 'inbound_nodes': [" NODE1("in", 0) "," NODE1("sub", 1) "]}";
    char config[4096];
    (void)snprintf(config, sizeof(config),
                   FUNCTIONAL("m", "%s,%s", "['in', 0, 0]", "['sub', 2, 0]") "}", INPUT("in", 4),
                   sub);
    alk_convert_result r;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(config, NULL, &r, &diag), ALK_OK, "%s", diag.message);
    cr_assert_str_eq(dump_names(&r),
                     "inputs /sub/re_lu/post_call /sub/re_lu/final /sub/final "
                     "/sub#1/re_lu/post_call /sub#1/re_lu/final /sub#1/final final");
    alk_convert_result_fini(&r);
}

Test(keras_walk, tagged_arguments_reach_the_ops) {
    /* x[:, ::-1] * [0.5, 2, -1, 0.25] + 1 (a __numpy__ constant, a scalar). */
    const char *config = FUNCTIONAL(
        "m",
        INPUT(
            "in",
            4) ","
               "{'module': 'keras.src.ops.numpy', 'class_name': 'GetItem', 'name': 'gi', "
               "'config': {'name': 'gi'}, 'inbound_nodes': [{'args': [" T(
                   "in",
                   0) ", "
                      "[{'class_name': '__slice__', 'config': {'start': null, 'stop': null, "
                      "'step': null}}, {'class_name': '__slice__', 'config': {'start': null, "
                      "'stop': null, 'step': -1}}]], 'kwargs': {}}]},"
                      "{'module': 'keras.src.ops.numpy', 'class_name': 'Multiply', 'name': 'mul', "
                      "'config': {'name': 'mul'}, 'inbound_nodes': [{'args': [" T(
                          "gi",
                          0) ", "
                             "{'class_name': '__numpy__', 'config': {'value': [0.5, 2, -1, 0.25], "
                             "'dtype': 'float32'}}], 'kwargs': {}}]},"
                             "{'module': 'keras.src.ops.numpy', 'class_name': 'Add', 'name': "
                             "'add', "
                             "'config': {'name': 'add'}, 'inbound_nodes': [{'args': [" T(
                                 "mul", 0) ", "
                                           "1], 'kwargs': {}}]}",
        "['in', 0, 0]", "['add', 0, 0]") "}";
    alk_convert_result r;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(config, NULL, &r, &diag), ALK_OK, "%s", diag.message);
    double in[4] = {1, 2, 3, -4}, out[4];
    run(r.program, in, out);
    /* reversed: -4 3 2 1; times 0.5 2 -1 0.25: -2 6 -2 0.25; plus 1. */
    cr_assert(out[0] == -1 && out[1] == 7 && out[2] == -1 && out[3] == 1.25, "%g %g %g %g", out[0],
              out[1], out[2], out[3]);
    alk_convert_result_fini(&r);
}

Test(keras_walk, training_is_inference) {
    /* Keras records training=True for Random* layers; predict() runs them as identities. */
    const char *config = FUNCTIONAL(
        "m",
        INPUT("in", 4) ","
                       "{'module': 'keras.layers', 'class_name': 'RandomFlip', 'name': 'flip', "
                       "'config': {'name': 'flip'}, 'inbound_nodes': [{'args': [" T(
                           "in", 0) "], "
                                    "'kwargs': {'training': true}}]}",
        "['in', 0, 0]", "['flip', 0, 0]") "}";
    alk_convert_result r;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(config, NULL, &r, &diag), ALK_OK, "%s", diag.message);
    double in[4] = {1, -2, 3, -4}, out[4];
    run(r.program, in, out);
    cr_assert(out[0] == 1 && out[1] == -2 && out[2] == 3 && out[3] == -4);
    alk_convert_result_fini(&r);
}

/* A model that fails with a message containing every string of `texts` (NULL-terminated). */
static void refused(const char *config, const char *extra, const char *const *texts) {
    alk_convert_result r;
    alk_diag diag = {{0}};
    cr_assert_neq(convert(config, extra, &r, &diag), ALK_OK);
    for (size_t i = 0; texts[i] != NULL; i++) {
        cr_assert(strstr(diag.message, texts[i]) != NULL, "'%s' lacks '%s'", diag.message,
                  texts[i]);
    }
    alk_convert_result_fini(&r);
}

/* One layer `entry` (with its node) applied to the input. */
#define ONE_LAYER(entry)                                                                           \
    FUNCTIONAL("m", INPUT("in", 4) "," entry, "['in', 0, 0]", "['x', 0, 0]") "}"

Test(keras_walk, errors_name_the_culprit) {
    refused(ONE_LAYER("{'module': 'keras.src.ops.numpy', 'class_name': 'Multiply', 'name': 'x', "
                      "'config': {}, 'inbound_nodes': [{'args': [" T(
                          "in", 0) ", {'class_name': "
                                   "'__bogus__', 'config': {}}], 'kwargs': {}}]}"),
            NULL,
            (const char *const[]){"layer x (Multiply)", "unknown tagged value __bogus__", NULL});
    refused(ONE_LAYER("{'module': 'keras.layers', 'class_name': 'LayerNormalization', 'name': "
                      "'x', 'config': {}, 'inbound_nodes': [" NODE1("in", 0) "]}"),
            NULL,
            (const char *const[]){"layer x (LayerNormalization)",
                                  "unsupported layer LayerNormalization (module keras.layers)",
                                  NULL});
    refused(ONE_LAYER("{'module': 'qkeras.qlayers', 'class_name': 'QDense', 'registered_name': "
                      "'qkeras>QDense', 'name': 'x', 'config': {}, 'inbound_nodes': [" NODE1(
                          "in", 0) "]}"),
            NULL, (const char *const[]){"layer x (QDense)", "QKeras", "qkeras.qlayers", NULL});
    refused(
        ONE_LAYER("{'module': 'keras.layers', 'class_name': 'Activation', 'name': 'x', "
                  "'config': {'activation': 'softmax'}, 'inbound_nodes': [" NODE1("in", 0) "]}"),
        NULL, (const char *const[]){"layer x (Activation)", "softmax is not supported", NULL});
    refused(ONE_LAYER("{'module': 'keras.layers', 'class_name': 'ReLU', 'name': 'x', "
                      "'config': {}, 'inbound_nodes': [{'args': [{'class_name': "
                      "'__keras_tensor__', 'config': {'keras_history': ['in', 0, 1]}}], "
                      "'kwargs': {}}]}"),
            NULL, (const char *const[]){"layer x (ReLU)", "refers to output 1 of layer in", NULL});
    refused(ONE_LAYER(RELU("x", NODE1("in", 0))), "{'precision': {'weight_kif': [2, 1, 1]}}",
            (const char *const[]){"model.precision.weight_kif: K (the sign bit) is 0 or 1", NULL});
    refused(ONE_LAYER(RELU("x", NODE1("in", 0))), "{'precision': {'output_kif': [1, 1, 1]}}",
            (const char *const[]){"model.precision.output_kif is unknown", NULL});
}

Test(keras_walk, unknown_input_shape_needs_inputs) {
    alk_convert_result r;
    alk_diag diag = {{0}};
    const char *config =
        FUNCTIONAL("m",
                   "{'module': 'keras.layers', 'class_name': 'InputLayer', 'name': 'in', "
                   "'config': {'batch_shape': [null, null, 2]}, 'inbound_nodes': []}," RELU(
                       "x", NODE1("in", 0)),
                   "['in', 0, 0]", "['x', 0, 0]") "}";
    cr_assert_eq(convert(config, NULL, &r, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "inputs must be provided") != NULL, "%s", diag.message);
    alk_convert_result_fini(&r);
}
