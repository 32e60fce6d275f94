/*
 * `alkaidc inspect MODEL.keras|.h5|.json [--weights W.h5]`: every layer of a Keras model file,
 * nested models included — name, class, module, input and output shapes, the weights the file
 * stores for it (address, dtype, shape) and whether a handler exists, found as a conversion
 * would find it (the keras tracer's table, then a second-level plugin loaded on demand) — so
 * that a user sees every unsupported layer at once, before converting.
 *
 * It reads the file with the tracer's reader and graph (model_file.h, model_graph.h), in
 * process; shapes come from the config (the `shape` of the tensors a node consumes and of those
 * other nodes take from it; Keras 2 configs record none), so nothing is traced.
 */
#include "cli.h"

#include "core/io.h"
#include "graph/tensor.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "plugins/keras/model_file.h"
#include "plugins/keras/model_graph.h"

#include <stdio.h>
#include <string.h>

typedef struct inspection {
    const alk_value *payload;
    bool legacy;
    const alk_generation *generation; /* NULL: no plugins, handlers unknown */
    size_t n_layers;
    size_t n_unsupported;
} inspection;

/* "(None, 8)" from a shape value (a list of ints and nulls); "?" without one. */
static void shape_text(const alk_value *shape, char *out, size_t cap) {
    if (shape == NULL || shape->kind != ALK_VALUE_ARRAY) {
        (void)snprintf(out, cap, "?");
        return;
    }
    size_t n = (size_t)snprintf(out, cap, "(");
    for (size_t d = 0; d < shape->as.array.len && n < cap; d++) {
        const alk_value *dim = shape->as.array.items[d];
        const char *sep = d + 1 < shape->as.array.len ? ", " : shape->as.array.len == 1 ? "," : "";
        if (dim->kind == ALK_VALUE_INT) {
            n += (size_t)snprintf(out + n, cap - n, "%lld%s", (long long)dim->as.integer, sep);
        } else {
            n += (size_t)snprintf(out + n, cap - n, "None%s", sep);
        }
    }
    if (n < cap) {
        (void)snprintf(out + n, cap - n, ")");
    }
}

/* Appends the shapes of the tensors in `v` (a node's args or kwargs) to `out`. */
static void tensor_shapes(const alk_value *v, char *out, size_t cap, unsigned depth) {
    if (v == NULL || depth > 32) {
        return;
    }
    const alk_value *cls = alk_value_get(v, "class_name");
    if (cls != NULL && cls->kind == ALK_VALUE_STR &&
        strcmp(cls->as.str.bytes, "__keras_tensor__") == 0) {
        char one[160];
        shape_text(alk_value_get(alk_value_get(v, "config"), "shape"), one, sizeof(one));
        size_t n = strlen(out);
        (void)snprintf(out + n, cap - n, "%s%s", n > 0 ? " " : "", one);
        return;
    }
    if (v->kind == ALK_VALUE_ARRAY) {
        for (size_t i = 0; i < v->as.array.len; i++) {
            tensor_shapes(v->as.array.items[i], out, cap, depth + 1);
        }
    } else if (v->kind == ALK_VALUE_MAP && cls == NULL) {
        for (size_t i = 0; i < v->as.map.len; i++) {
            tensor_shapes(v->as.map.pairs[i].value, out, cap, depth + 1);
        }
    }
}

/* The shape of output 0 of `layer`'s first node as another node of the level records it. */
static const alk_value *output_shape_in(const alk_value *v, const alk_keras_layer *layer,
                                        size_t node, unsigned depth) {
    if (v == NULL || depth > 32) {
        return NULL;
    }
    const alk_value *cls = alk_value_get(v, "class_name");
    if (cls != NULL && cls->kind == ALK_VALUE_STR &&
        strcmp(cls->as.str.bytes, "__keras_tensor__") == 0) {
        const alk_value *config = alk_value_get(v, "config");
        const alk_value *h = alk_value_get(config, "keras_history");
        bool match = h != NULL && h->kind == ALK_VALUE_ARRAY && h->as.array.len == 3 &&
                     h->as.array.items[0]->kind == ALK_VALUE_STR &&
                     strcmp(h->as.array.items[0]->as.str.bytes, layer->name) == 0 &&
                     h->as.array.items[1]->kind == ALK_VALUE_INT &&
                     h->as.array.items[1]->as.integer == (int64_t)node;
        return match ? alk_value_get(config, "shape") : NULL;
    }
    const alk_value *found = NULL;
    if (v->kind == ALK_VALUE_ARRAY) {
        for (size_t i = 0; i < v->as.array.len && found == NULL; i++) {
            found = output_shape_in(v->as.array.items[i], layer, node, depth + 1);
        }
    } else if (v->kind == ALK_VALUE_MAP && cls == NULL) {
        for (size_t i = 0; i < v->as.map.len && found == NULL; i++) {
            found = output_shape_in(v->as.map.pairs[i].value, layer, node, depth + 1);
        }
    }
    return found;
}

static void output_shape(const alk_keras_model *m, const alk_keras_layer *layer, char *out,
                         size_t cap) {
    const alk_value *shape = NULL;
    size_t node = layer->first_node;
    if (layer->kind == ALK_KERAS_INPUT) {
        shape = alk_value_get(layer->config, "batch_shape");
        shape = shape != NULL ? shape : alk_value_get(layer->config, "batch_input_shape");
    }
    for (size_t l = 0; l < m->n_layers && shape == NULL; l++) {
        for (size_t k = 0; k < m->layers[l].n_nodes && shape == NULL; k++) {
            shape = output_shape_in(m->layers[l].nodes[k].args, layer, node, 0);
            shape = shape != NULL ? shape
                                  : output_shape_in(m->layers[l].nodes[k].kwargs, layer, node, 0);
        }
    }
    shape_text(shape, out, cap);
}

/* One weight line: address, dtype and shape. */
static void print_weight(const char *indent, const char *address, const alk_value *tensor) {
    alk_tensor t;
    alk_diag diag = {{0}};
    if (alk_tensor_from_value(tensor, NULL, &t, &diag) != ALK_OK) {
        printf("%s  %s: %s\n", indent, address, diag.message);
        return;
    }
    char shape[160];
    size_t n = (size_t)snprintf(shape, sizeof(shape), "(");
    for (size_t d = 0; d < t.ndim && n < sizeof(shape); d++) {
        n += (size_t)snprintf(shape + n, sizeof(shape) - n, "%zu%s", t.shape[d],
                              d + 1 < t.ndim ? ", "
                              : t.ndim == 1  ? ","
                                             : "");
    }
    (void)snprintf(shape + n, sizeof(shape) - n, ")");
    printf("%s  %-44s %-8s %s\n", indent, address, alk_dtype_numpy_name(t.dtype), shape);
}

/* The weights the file stores for `layer`: keras_v3 every tensor under its group (a nested
 * model's own layers are listed with them); legacy_h5 its names in its group. */
static void print_weights(const inspection *in, const alk_keras_layer *layer, const char *indent) {
    const alk_value *weights = alk_value_get(in->payload, "weights");
    if (!in->legacy) {
        if (layer->weights_dir == NULL || layer->kind == ALK_KERAS_MODEL) {
            return;
        }
        size_t len = strlen(layer->weights_dir);
        for (size_t i = 0; weights != NULL && i < weights->as.map.len; i++) {
            const char *address = weights->as.map.pairs[i].key->as.str.bytes;
            if (strncmp(address, layer->weights_dir, len) == 0 && address[len] == '/') {
                print_weight(indent, address, weights->as.map.pairs[i].value);
            }
        }
        return;
    }
    if (layer->kind == ALK_KERAS_MODEL) {
        return;
    }
    const alk_value *names =
        alk_value_get(alk_value_get(in->payload, "weight_names"), layer->legacy_group);
    for (size_t i = 0; names != NULL && names->kind == ALK_VALUE_ARRAY && i < names->as.array.len;
         i++) {
        const char *name = names->as.array.items[i]->as.str.bytes;
        if (layer->nested && !alk_keras_legacy_owns(name, layer->name)) {
            continue;
        }
        char address[1024];
        (void)snprintf(address, sizeof(address), "%s/%s", layer->legacy_group, name);
        print_weight(indent, address, alk_value_get(weights, address));
    }
}

/* Whether a handler exists: "yes", or the reason a conversion would give. */
static void print_handler(inspection *in, const alk_keras_layer *layer) {
    if (layer->kind == ALK_KERAS_INPUT) {
        printf("-\n");
        return;
    }
    if (layer->kind == ALK_KERAS_MODEL) {
        printf("model (its layers below)\n");
        return;
    }
    in->n_layers++;
    if (in->generation == NULL) {
        printf("? (no plugins)\n");
        return;
    }
    alk_diag diag = {{0}};
    int rv = alk_convert_find_op(in->generation, "keras", alk_keras_dispatch_module(layer),
                                 layer->class_name, &diag);
    if (rv == ALK_OK) {
        printf("yes\n");
    } else {
        in->n_unsupported++;
        printf("NO: %s\n", diag.message);
    }
}

static void print_level(inspection *in, const alk_keras_model *m, unsigned depth) {
    char indent[40];
    (void)snprintf(indent, sizeof(indent), "%*s", (int)(2 * depth + 2), "");
    for (size_t l = 0; l < m->n_layers; l++) {
        const alk_keras_layer *layer = &m->layers[l];
        char inputs[512] = "";
        char output[160];
        if (layer->n_nodes > 0) {
            tensor_shapes(layer->nodes[0].args, inputs, sizeof(inputs), 0);
            tensor_shapes(layer->nodes[0].kwargs, inputs, sizeof(inputs), 0);
        }
        output_shape(m, layer, output, sizeof(output));
        printf("%s%-24s %-22s %-34s %s -> %s", indent, layer->name, layer->class_name,
               layer->module, inputs[0] != '\0' ? inputs : "-", output);
        if (layer->n_nodes > 1) {
            printf(" (called %zu times)", layer->n_nodes);
        }
        printf("\n%s  handler: ", indent);
        print_handler(in, layer);
        print_weights(in, layer, indent);
        if (layer->model != NULL) {
            print_level(in, layer->model, depth + 1);
        }
    }
}

int cli_inspect_keras(const char *path, const char *weights_path, const char *const *plugin_dirs,
                      size_t n_plugin_dirs) {
    alk_diag diag = {{0}};
    alk_buf model_bytes, weight_bytes;
    alk_buf_init(&model_bytes);
    alk_buf_init(&weight_bytes);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_generation *generation = NULL;
    const alk_value *payload = NULL;
    const alk_value *root = NULL;
    alk_keras_model *model = NULL;
    int code = EXIT_OK;
    int rv = alk_read_file(path, (size_t)1 << 30, &model_bytes, &diag);
    if (rv == ALK_OK && weights_path != NULL) {
        rv = alk_read_file(weights_path, (size_t)1 << 30, &weight_bytes, &diag);
    }
    if (rv == ALK_OK) {
        rv = weights_path != NULL
                 ? alk_keras_pair_read(model_bytes.data, model_bytes.len, weight_bytes.data,
                                       weight_bytes.len, NULL, &arena, &payload, &diag)
                 : alk_keras_file_read(model_bytes.data, model_bytes.len, NULL, &arena, &payload,
                                       &diag);
    }
    const alk_value *config = rv == ALK_OK ? alk_value_get(payload, "config") : NULL;
    if (rv == ALK_OK) {
        alk_value_limits limits;
        alk_value_limits_default(&limits);
        rv = alk_value_from_python_json(config->as.str.bytes, config->as.str.len, &limits, &arena,
                                        &root, &diag);
    }
    if (rv == ALK_OK) {
        rv = alk_keras_graph_parse(root, &arena, &model, &diag);
    }
    if (rv != ALK_OK) {
        alk_diag_prefix(&diag, "%s: ", path);
        code = cli_fail(rv, &diag);
        goto done;
    }
    /* The plugins, to say which layers have a handler; without them the listing still helps. */
    char **dirs = NULL;
    size_t n_dirs = 0;
    if (alk_plugin_search_path(plugin_dirs, n_plugin_dirs, &dirs, &n_dirs) == ALK_OK) {
        alk_plugin_config pc = {.dirs = (const char *const *)dirs, .n_dirs = n_dirs};
        alk_diag ignored = {{0}};
        (void)alk_generation_build(&pc, NULL, &generation, &ignored);
        alk_plugin_dirs_free(dirs, n_dirs);
    }
    const char *format = alk_value_get(payload, "format")->as.str.bytes;
    inspection in = {payload, strcmp(format, "legacy_h5") == 0, generation, 0, 0};
    printf("file: %s (%s)\n", path, format);
    printf("model: %s (%s), %zu input(s), %zu output(s)\n", model->name, model->class_name,
           model->n_inputs, model->n_outputs);
    printf("layers (name, class, module, input shapes -> output shape, handler, weights):\n");
    print_level(&in, model, 0);
    printf("%zu layer(s) and op(s), %zu without a handler\n", in.n_layers, in.n_unsupported);
done:
    alk_generation_unref(generation);
    alk_arena_fini(&arena);
    alk_buf_fini(&model_bytes);
    alk_buf_fini(&weight_bytes);
    return code;
}
