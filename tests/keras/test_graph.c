/*
 * Keras model configs to graphs (src/plugins/keras/model_graph.h), against hand-worked Keras
 * behaviour: keras/src/ops/function.py map_graph's node order (DFS from the outputs, depths by
 * the reverse post-order, dict insertion order within a depth), node indices of shared layers
 * and nested models, Keras 2 list nodes and Sequential chains, weight slots and Keras's
 * to_snake_case (expected names computed with Python's re, the function's own code), and the
 * errors a broken config gets.
 */
#include "plugins/keras/model_graph.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static alk_arena arena;

static void setup(void) {
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_arena_fini(&arena);
}

TestSuite(keras_graph, .init = setup, .fini = teardown);

/* Parses a config written with single quotes for readability. */
static int parse(const char *text, alk_keras_model **ret, alk_diag *diag) {
    char *json = alk_arena_alloc(&arena, strlen(text) + 1);
    for (size_t i = 0; text[i] != '\0'; i++) {
        json[i] = text[i] == '\'' ? '"' : text[i];
    }
    json[strlen(text)] = '\0';
    const alk_value *root = NULL;
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    limits.max_depth = 256; /* deeply nested models */
    int rv = alk_value_from_json(json, strlen(json), &limits, &arena, &root, diag);
    cr_assert_eq(rv, ALK_OK, "%s", diag->message);
    return alk_keras_graph_parse(root, &arena, ret, diag);
}

static alk_keras_model *parse_ok(const char *text) {
    alk_keras_model *m = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(parse(text, &m, &diag), ALK_OK, "%s", diag.message);
    return m;
}

/* The order as "name:index name:index ...". */
static const char *order_of(const alk_keras_model *m) {
    static char out[1024];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->n_order; i++) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%zu", i > 0 ? " " : "",
                              m->order[i]->layer->name, m->order[i]->index);
    }
    return out;
}

/* Keras 3 pieces. */
#define T(layer, node)                                                                             \
    "{'class_name': '__keras_tensor__', 'config': {'keras_history': ['" layer "', " #node ", 0]}}"
#define NODE1(layer, node) "{'args': [" T(layer, node) "], 'kwargs': {}}"
#define INPUT(name)                                                                                \
    "{'module': 'keras.layers', 'class_name': 'InputLayer', 'name': '" name                        \
    "', 'config': {'batch_shape': [null, 4], 'name': '" name "'}, 'inbound_nodes': []}"
#define LAYER(cls, name, nodes)                                                                    \
    "{'module': 'keras.layers', 'class_name': '" cls "', 'name': '" name                           \
    "', 'config': {'name': '" name "'}, 'inbound_nodes': [" nodes "]}"
#define FUNCTIONAL(layers, in, out)                                                                \
    "{'module': 'keras.src.models.functional', 'class_name': 'Functional', 'config': {'name': "    \
    "'model', 'layers': [" layers "], 'input_layers': [" in "], 'output_layers': [" out "]}}"

Test(keras_graph, depth_order_is_keras_map_graph_not_config_order) {
    /* in -> a -> b; in -> c; d = Add([b, c]). The DFS from d visits b's branch first: post-order
     * in a b c d; depths (reverse): d 0, b 1 and c 1 (inserted b then c), in 2 then 3, a 2. */
    alk_keras_model *m = parse_ok(FUNCTIONAL(
        INPUT("in") "," LAYER("ReLU", "c", NODE1("in", 0)) "," LAYER(
            "ReLU", "a",
            NODE1("in", 0)) "," LAYER("ReLU", "b",
                                      NODE1("a", 0)) ","
                                                     "{'module': 'keras.layers', 'class_name': "
                                                     "'Add', 'name': 'd', 'config': {}, "
                                                     "'inbound_nodes': [{'args': [[" T(
                                                         "b", 0) ", " T("c",
                                                                        0) "]], 'kwargs': {}}]}",
        "['in', 0, 0]", "['d', 0, 0]"));
    cr_assert_str_eq(order_of(m), "in:0 a:0 b:0 c:0 d:0");
    cr_assert_eq(alk_keras_model_layer(m, "d")->nodes[0].n_inputs, 2);
    cr_assert_eq(alk_keras_model_layer(m, "a")->nodes[0].depth, 2);
    cr_assert_eq(alk_keras_model_layer(m, "in")->nodes[0].depth, 3);
}

Test(keras_graph, kwargs_tensors_follow_args_in_sorted_key_order) {
    /* Keras's tree.flatten: args first, then kwargs by sorted key ('key' < 'value'). */
    alk_keras_model *m = parse_ok(FUNCTIONAL(
        INPUT("in") "," LAYER("ReLU", "p", NODE1("in", 0)) "," LAYER(
            "ReLU", "q",
            NODE1(
                "in",
                0)) "," LAYER("ReLU", "r",
                              NODE1(
                                  "in",
                                  0)) ","
                                      "{'module': 'keras.layers', 'class_name': "
                                      "'MultiHeadAttention', 'name': 'mha', "
                                      "'config': {}, 'inbound_nodes': [{'args': [" T(
                                          "r",
                                          0) "], 'kwargs': {'value': " T("p",
                                                                         0) ", 'key': " T("q",
                                                                                          0) "}}]}",
        "['in', 0, 0]", "['mha', 0, 0]"));
    const alk_keras_node *node = &alk_keras_model_layer(m, "mha")->nodes[0];
    cr_assert_eq(node->n_inputs, 3);
    cr_assert_str_eq(node->inputs[0].layer->name, "r");
    cr_assert_str_eq(node->inputs[1].layer->name, "q");
    cr_assert_str_eq(node->inputs[2].layer->name, "p");
    /* Depth 1 in insertion order r, q, p. */
    cr_assert_str_eq(order_of(m), "in:0 r:0 q:0 p:0 mha:0");
}

Test(keras_graph, shared_layer_nodes_are_numbered_in_call_order) {
    alk_keras_model *m = parse_ok(
        FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "relu", NODE1("in", 0) "," NODE1("relu", 0)),
                   "['in', 0, 0]", "['relu', 1, 0]"));
    cr_assert_str_eq(order_of(m), "in:0 relu:0 relu:1");
    cr_assert_eq(m->outputs[0].node, 1);
}

Test(keras_graph, outputs_in_order_and_an_unused_input_last) {
    /* Two outputs [b, a]: the DFS runs from b, then a (post-order x b a); the depths walk it
     * backwards, inserting a, x, b: depth 1 [x], depth 0 [a, b]. An input reaching no output
     * gets depth 0 and comes last. */
    alk_keras_model *m =
        parse_ok(FUNCTIONAL(INPUT("x") "," INPUT("unused") "," LAYER(
                                "ReLU", "a", NODE1("x", 0)) "," LAYER("ReLU", "b", NODE1("x", 0)),
                            "['x', 0, 0], ['unused', 0, 0]", "['b', 0, 0], ['a', 0, 0]"));
    cr_assert_str_eq(order_of(m), "x:0 a:0 b:0 unused:0");
    cr_assert_eq(m->n_inputs, 2);
    cr_assert_eq(m->n_outputs, 2);
}

Test(keras_graph, nested_functional_counts_its_nodes_from_one) {
    const char *inner =
        "{'module': 'keras.src.models.functional', 'class_name': 'Functional', "
        "'name': 'sub', 'config': {'name': 'sub', 'layers': [" INPUT("sin") "," LAYER(
            "ReLU", "relu",
            NODE1("sin", 0)) "], "
                             "'input_layers': [['sin', 0, 0]], 'output_layers': [['relu', "
                             "0, 0]]}, 'inbound_nodes': [" NODE1("in", 0) "," NODE1("sub", 1) "]}";
    char text[4096];
    (void)snprintf(text, sizeof(text), FUNCTIONAL("%s,%s", "['in', 0, 0]", "['sub', 2, 0]"),
                   INPUT("in"), inner);
    alk_keras_model *m = parse_ok(text);
    const alk_keras_layer *sub = alk_keras_model_layer(m, "sub");
    cr_assert_eq(sub->kind, ALK_KERAS_MODEL);
    cr_assert_eq(sub->first_node, 1);
    cr_assert_eq(alk_keras_layer_node(sub, 1), &sub->nodes[0]);
    cr_assert_eq(alk_keras_layer_node(sub, 2), &sub->nodes[1]);
    cr_assert_null(alk_keras_layer_node(sub, 0));
    cr_assert_str_eq(order_of(m), "in:0 sub:1 sub:2");
    cr_assert_str_eq(order_of(sub->model), "sin:0 relu:0");
    cr_assert_str_eq(sub->slot, "functional");
}

Test(keras_graph, sequential_is_a_chain_and_slots_skip_its_input) {
    alk_keras_model *m = parse_ok(
        "{'module': 'keras', 'class_name': 'Sequential', 'config': {'name': 'seq', 'layers': ["
        "{'module': 'keras.layers', 'class_name': 'InputLayer', 'config': {'batch_shape': [null, "
        "3], 'name': 'input_layer'}}, "
        "{'module': 'keras.layers', 'class_name': 'Dense', 'config': {'name': 'dense'}}, "
        "{'module': 'keras.layers', 'class_name': 'Dense', 'config': {'name': 'dense_1'}}]}}");
    cr_assert(m->sequential);
    cr_assert_str_eq(order_of(m), "input_layer:0 dense:0 dense_1:0");
    cr_assert_null(m->layers[0].slot);
    cr_assert_str_eq(m->layers[1].slot, "dense");
    cr_assert_str_eq(m->layers[2].slot, "dense_1");
    int64_t dims[8];
    size_t ndim = 0;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_model_input_shape(m, 0, dims, 8, &ndim, &diag), ALK_OK);
    cr_assert_eq(ndim, 2);
    cr_assert_eq(dims[0], -1);
    cr_assert_eq(dims[1], 3);
}

Test(keras_graph, sequential_without_input_layer_takes_build_input_shape) {
    alk_keras_model *m =
        parse_ok("{'module': 'keras', 'class_name': 'Sequential', 'config': {'name': 'seq', "
                 "'build_input_shape': [null, 5, 2], 'layers': [{'module': 'keras.layers', "
                 "'class_name': 'Flatten', 'config': {'name': 'flatten'}}]}}");
    int64_t dims[8];
    size_t ndim = 0;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_model_input_shape(m, 0, dims, 8, &ndim, &diag), ALK_OK);
    cr_assert_eq(ndim, 3);
    cr_assert_eq(dims[1], 5);
    cr_assert_eq(dims[2], 2);
    cr_assert_str_eq(order_of(m), "input_layer:0 flatten:0");
}

Test(keras_graph, keras2_list_nodes_and_nested_sequential_from_zero) {
    /* tf.keras 2 list nodes; a Sequential layer with an input layer counts from 1 in tf.keras,
     * but a writer counting from 0 is taken with that base. */
    alk_keras_model *m = parse_ok(
        "{'class_name': 'Model', 'config': {'name': 'm', 'layers': ["
        "{'class_name': 'InputLayer', 'name': 'a', 'config': {'batch_input_shape': [null, 2], "
        "'name': 'a'}, 'inbound_nodes': []},"
        "{'class_name': 'InputLayer', 'name': 'b', 'config': {'batch_input_shape': [null, 2], "
        "'name': 'b'}, 'inbound_nodes': []},"
        "{'class_name': 'Add', 'name': 'add', 'config': {'name': 'add'}, 'inbound_nodes': "
        "[[['a', 0, 0, {}], ['b', 0, 0, {'k': 1}]]]},"
        "{'class_name': 'Sequential', 'name': 'seq', 'config': {'name': 'seq', 'layers': ["
        "{'class_name': 'InputLayer', 'config': {'batch_input_shape': [null, 2], 'name': 'i'}},"
        "{'class_name': 'ReLU', 'config': {'name': 'r'}}]}, 'inbound_nodes': [[['add', 0, 0, "
        "{}]]]}], 'input_layers': [['a', 0, 0], ['b', 0, 0]], 'output_layers': [['seq', 0, "
        "0]]}}");
    cr_assert(m->keras2);
    const alk_keras_layer *add = alk_keras_model_layer(m, "add");
    cr_assert_str_eq(add->module, "keras.layers");
    cr_assert_str_eq(add->package, "keras");
    const alk_value *args = add->nodes[0].args;
    cr_assert_eq(args->as.array.len, 1);
    cr_assert_eq(args->as.array.items[0]->kind, ALK_VALUE_ARRAY); /* [[a, b]] */
    cr_assert_eq(args->as.array.items[0]->as.array.len, 2);
    cr_assert_not_null(alk_value_get(add->nodes[0].kwargs, "k"));
    const alk_keras_layer *seq = alk_keras_model_layer(m, "seq");
    cr_assert_eq(seq->first_node, 0);
    cr_assert_str_eq(order_of(m), "a:0 b:0 add:0 seq:0");
}

Test(keras_graph, slots_count_repeats_and_skip_ops) {
    alk_keras_model *m = parse_ok(FUNCTIONAL(
        INPUT("input_layer") "," INPUT("input_layer_1") "," LAYER(
            "Conv2DTranspose", "t1",
            NODE1("input_layer",
                  0)) ","
                      "{'module': 'keras.src.ops.numpy', 'class_name': 'Add', 'name': 'add', "
                      "'config': {}, "
                      "'inbound_nodes': [{'args': [" T("t1", 0) ", " T(
                          "input_layer_1",
                          0) "], "
                             "'kwargs': {}}]}," LAYER(
                                 "Conv2DTranspose", "t2",
                                 NODE1("add", 0)) ","
                                                  "{'module': 'hgq.layers', 'class_name': "
                                                  "'QEinsumDenseBatchnorm', 'name': 'q', "
                                                  "'registered_name': 'hgq>QEinsumDenseBatchnorm', "
                                                  "'config': {}, 'inbound_nodes': "
                                                  "[" NODE1("t2", 0) "]}",
        "['input_layer', 0, 0], ['input_layer_1', 0, 0]", "['q', 0, 0]"));
    cr_assert_str_eq(alk_keras_model_layer(m, "input_layer")->slot, "input_layer");
    cr_assert_str_eq(alk_keras_model_layer(m, "input_layer_1")->slot, "input_layer_1");
    cr_assert_str_eq(alk_keras_model_layer(m, "t1")->slot, "conv2d_transpose");
    cr_assert_str_eq(alk_keras_model_layer(m, "t2")->slot, "conv2d_transpose_1");
    cr_assert_null(alk_keras_model_layer(m, "add")->slot);
    cr_assert_eq(alk_keras_model_layer(m, "add")->kind, ALK_KERAS_OP);
    const alk_keras_layer *q = alk_keras_model_layer(m, "q");
    cr_assert_str_eq(q->slot, "q_einsum_dense_batchnorm");
    cr_assert_str_eq(q->package, "hgq");
}

Test(keras_graph, registered_package_names_the_plugin) {
    alk_keras_model *m = parse_ok(FUNCTIONAL(
        INPUT(
            "in") ",{'module': 'qkeras.qlayers', 'class_name': 'QDense', 'name': 'qd', "
                  "'registered_name': 'qkeras>QDense', 'config': {}, 'inbound_nodes': [" NODE1(
                      "in",
                      0) "]},"
                         "{'module': '__main__', 'class_name': 'Mine', 'name': 'mine', "
                         "'registered_name': 'Custom>Mine', 'config': {}, 'inbound_nodes': [" NODE1(
                             "qd", 0) "]}",
        "['in', 0, 0]", "['mine', 0, 0]"));
    cr_assert_str_eq(alk_keras_model_layer(m, "qd")->package, "qkeras");
    cr_assert_str_eq(alk_keras_model_layer(m, "mine")->package, "Custom");
}

Test(keras_graph, snake_case_as_keras) {
    /* Expected values computed with Python's re running Keras's to_snake_case. */
    static const char *const cases[][2] = {
        {"Conv2DTranspose", "conv2d_transpose"},
        {"QDense", "q_dense"},
        {"InputLayer", "input_layer"},
        {"QEinsumDenseBatchnorm", "q_einsum_dense_batchnorm"},
        {"ReLU", "re_lu"},
        {"PReLU", "p_re_lu"},
        {"GlobalAveragePooling2D", "global_average_pooling2d"},
        {"Conv1D", "conv1d"},
        {"HTTPLayer", "http_layer"},
        {"My-Layer2x", "my_layer2x"},
        {"ABCdef", "ab_cdef"},
        {"aB", "a_b"},
        {"A", "a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        cr_assert(alk_keras_snake_case(cases[i][0], out, sizeof(out)));
        cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
    }
    char small[4];
    cr_assert_not(alk_keras_snake_case("Conv2DTranspose", small, sizeof(small)));
}

Test(keras_graph, unknown_shape_and_missing_shape) {
    alk_keras_model *m = parse_ok(FUNCTIONAL(
        "{'module': 'keras.layers', 'class_name': 'InputLayer', 'name': 'in', 'config': "
        "{'batch_shape': [null, null, 2]}, 'inbound_nodes': []},"
        "{'module': 'keras.layers', 'class_name': 'InputLayer', 'name': 'in2', 'config': {}, "
        "'inbound_nodes': []}",
        "['in', 0, 0], ['in2', 0, 0]", "['in', 0, 0]"));
    int64_t dims[8];
    size_t ndim = 0;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_keras_model_input_shape(m, 0, dims, 8, &ndim, &diag), ALK_OK);
    cr_assert_eq(dims[1], -1);
    cr_assert_eq(dims[2], 2);
    cr_assert_eq(alk_keras_model_input_shape(m, 1, dims, 8, &ndim, &diag), ALK_ENOENT);
    cr_assert_eq(alk_keras_model_input_shape(m, 2, dims, 8, &ndim, &diag), ALK_EINVAL);
}

/* A broken config fails with `code` and a message containing `text`. */
static void refused(const char *config, int code, const char *text) {
    alk_keras_model *m = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(parse(config, &m, &diag), code, "%s", diag.message);
    cr_assert(strstr(diag.message, text) != NULL, "'%s' lacks '%s'", diag.message, text);
}

Test(keras_graph, broken_configs_name_the_culprit) {
    refused(FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "a", NODE1("b", 0)) "," LAYER("ReLU", "b",
                                                                                   NODE1("a", 0)),
                       "['in', 0, 0]", "['b', 0, 0]"),
            ALK_EINVAL, "is part of a cycle");
    refused(FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "a", NODE1("ghost", 0)), "['in', 0, 0]",
                       "['a', 0, 0]"),
            ALK_EINVAL, "layer a, inbound node 0: refers to layer 'ghost'");
    refused(FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "a", NODE1("in", 3)), "['in', 0, 0]",
                       "['a', 0, 0]"),
            ALK_EINVAL, "refers to node 3 of layer in, which has 1 node(s)");
    refused(FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "in", NODE1("in", 0)), "['in', 0, 0]",
                       "['in', 0, 0]"),
            ALK_EINVAL, "two layers are named in");
    refused(FUNCTIONAL(INPUT("in"), "['in', 0, 0]", "['nowhere', 0, 0]"), ALK_EINVAL,
            "output_layers: refers to layer 'nowhere'");
    refused("{'module': 'my.models', 'class_name': 'MyModel', 'config': {}}", ALK_EINVAL,
            "only Functional and Sequential models");
    refused("{'class_name': 'Functional', 'config': {'name': 'm', 'layers': 3}}", ALK_EINVAL,
            "config.layers is missing or not a list");
    refused(FUNCTIONAL(INPUT("in") "," LAYER("ReLU", "a", "[['in', 0]]"), "['in', 0, 0]",
                       "['a', 0, 0]"),
            ALK_EINVAL, "is not [layer, node, tensor, kwargs]");
}

/* Models nested `depth` deep into `text` (each level: an input and a model 'm' holding the next
 * level, the innermost 'm' a ReLU). */
static void nested_models(int depth, char *text, size_t cap) {
    static char next[41000];
    (void)snprintf(text, cap, "%s", LAYER("ReLU", "m", NODE1("in", 0)));
    for (int level = 0; level < depth; level++) {
        (void)snprintf(
            next, sizeof(next),
            "{'module': 'keras.src.models.functional', 'class_name': 'Functional', "
            "'name': 'm', 'config': {'name': 'm', 'layers': [" INPUT(
                "in") ", %s], "
                      "'input_layers': [['in', 0, 0]], 'output_layers': [['m', %d, 0]]}, "
                      "'inbound_nodes': [" NODE1("in", 0) "]}",
            text, level == 0 ? 0 : 1);
        cr_assert_lt(strlen(next), cap - 1);
        memcpy(text, next, strlen(next) + 1);
    }
}

Test(keras_graph, nesting_is_bounded) {
    /* 20 deep: refused at ALK_KERAS_MAX_NESTING. */
    static char text[40000];
    nested_models(20, text, sizeof(text));
    alk_keras_model *m = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(parse(text, &m, &diag), ALK_EINVAL, "%s", diag.message);
    cr_assert(strstr(diag.message, "nested more than 16 deep") != NULL, "%s", diag.message);
    /* 10 deep parses. */
    nested_models(10, text, sizeof(text));
    cr_assert_eq(parse(text, &m, &diag), ALK_OK, "%s", diag.message);
}
