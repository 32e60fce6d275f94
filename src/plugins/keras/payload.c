/*
 * The request's `model` map of a Keras model: file bytes to read (model_file.c), or a decoded
 * payload to check, so that the tracer reads one checked form either way.
 *
 * The checks of a decoded payload are those the readers guarantee by construction: the format,
 * the config text (model_file.c's check), every tensor of `weights` against the limits
 * (graph/tensor.h), string maps and lists of the right kinds, every name of `weight_names`
 * naming a tensor of `weights` (looked up by binary search over the sorted addresses), every
 * layer of `layer_names` having its `weight_names`. Errors name the field as a path from
 * `model` ("model.weights['layers/dense/vars/0']: tensor field 'shape[1]' ...").
 *
 * Thread rule: reentrant.
 */
#include "plugins/keras/model_file_int.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <stdlib.h>
#include <string.h>

/* A map's value of `key` that must have one of the kinds `kinds` (bit mask of 1 << kind). */
static int get_field(const alk_value *map, const char *key, unsigned kinds, bool required,
                     const alk_value **ret_value, alk_diag *diag) {
    const alk_value *v = alk_value_get(map, key);
    if (v == NULL) {
        *ret_value = NULL;
        return required ? alk_diag_set(diag, ALK_EINVAL, "model.%s is missing", key) : ALK_OK;
    }
    if (!(kinds & (1u << v->kind))) {
        return alk_diag_set(diag, ALK_EINVAL, "model.%s has the wrong type (%s)", key,
                            alk_value_kind_name(v->kind));
    }
    *ret_value = v;
    return ALK_OK;
}

enum {
    STR = 1u << ALK_VALUE_STR,
    BIN = 1u << ALK_VALUE_BIN,
    ARRAY = 1u << ALK_VALUE_ARRAY,
    MAP = 1u << ALK_VALUE_MAP,
};

/* Every tensor of `weights` within the limits; the byte total within max_total_bytes. */
static int check_weights(const alk_value *weights, const alk_keras_file_limits *limits,
                         alk_diag *diag) {
    if (weights->as.map.len > limits->max_objects) {
        return alk_diag_set(diag, ALK_ELIMIT, "model.weights has %zu tensors; at most %zu",
                            weights->as.map.len, limits->max_objects);
    }
    alk_tensor_limits tensor_limits = {.max_dims = limits->max_dims,
                                       .max_elements = limits->max_tensor_elements};
    uint64_t total = 0;
    for (size_t i = 0; i < weights->as.map.len; i++) {
        const alk_value_pair *p = &weights->as.map.pairs[i];
        const char *address = p->key->kind == ALK_VALUE_STR ? p->key->as.str.bytes : "";
        if (address[0] == '\0') {
            return alk_diag_set(diag, ALK_EINVAL, "model.weights has an empty address");
        }
        alk_tensor tensor;
        int rv = alk_tensor_from_value(p->value, &tensor_limits, &tensor, diag);
        if (rv != ALK_OK) {
            alk_diag_prefix(diag, "model.weights['%.200s']: ", address);
            return rv;
        }
        total += tensor.nbytes;
        if (total > limits->max_total_bytes) {
            return alk_diag_set(diag, ALK_ELIMIT,
                                "model.weights['%.200s']: the weights exceed %llu bytes", address,
                                (unsigned long long)limits->max_total_bytes);
        }
    }
    return ALK_OK;
}

/* Whether every item of `array` is a str. */
static bool all_strings(const alk_value *array) {
    for (size_t i = 0; i < array->as.array.len; i++) {
        if (array->as.array.items[i]->kind != ALK_VALUE_STR) {
            return false;
        }
    }
    return true;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each weight name of each layer names a tensor "<layer>/<name>" of `weights`. */
static int check_weight_names(const alk_value *weight_names, const alk_value *weights,
                              alk_diag *diag) {
    size_t n = weights->as.map.len;
    const char **addresses = alk_calloc(n + 1, sizeof(*addresses));
    alk_buf address;
    alk_buf_init(&address);
    if (addresses == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        addresses[i] = weights->as.map.pairs[i].key->as.str.bytes;
    }
    qsort(addresses, n, sizeof(*addresses), compare_strings);
    int rv = ALK_OK;
    for (size_t i = 0; rv == ALK_OK && i < weight_names->as.map.len; i++) {
        const alk_value_pair *layer = &weight_names->as.map.pairs[i];
        if (layer->value->kind != ALK_VALUE_ARRAY || !all_strings(layer->value)) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "model.weight_names['%.200s'] must be an array of str",
                              layer->key->as.str.bytes);
            break;
        }
        for (size_t k = 0; rv == ALK_OK && k < layer->value->as.array.len; k++) {
            const char *name = layer->value->as.array.items[k]->as.str.bytes;
            alk_buf_reset(&address);
            alk_buf_printf(&address, "%s/%s", layer->key->as.str.bytes, name);
            const char *key = address.data;
            if (alk_buf_error(&address) != ALK_OK) {
                rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory");
            } else if (bsearch(&key, addresses, n, sizeof(*addresses), compare_strings) == NULL) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "model.weight_names['%.200s'][%zu] = '%.200s' has no tensor "
                                  "'%.200s' in model.weights",
                                  layer->key->as.str.bytes, k, name, address.data);
            }
        }
    }
    alk_buf_fini(&address);
    alk_free(addresses);
    return rv;
}

/* The checks of a decoded payload (see the file's comment). */
static int check_decoded(const alk_value *model, const alk_keras_file_limits *limits,
                         alk_diag *diag) {
    const alk_value *format, *config, *metadata, *weights, *var_names, *weight_names, *layer_names;
    int rv = get_field(model, "format", STR, true, &format, diag);
    if (rv == ALK_OK && strcmp(format->as.str.bytes, "keras_v3") != 0 &&
        strcmp(format->as.str.bytes, "legacy_h5") != 0) {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "model.format is '%.40s'; expected 'keras_v3' or 'legacy_h5' (or give "
                          "the file's bytes as model.file)",
                          format->as.str.bytes);
    }
    bool legacy = rv == ALK_OK && strcmp(format->as.str.bytes, "legacy_h5") == 0;
    rv = rv != ALK_OK ? rv : get_field(model, "config", STR, true, &config, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "metadata", STR | MAP, false, &metadata, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "weights", MAP, true, &weights, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "var_names", MAP, false, &var_names, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "weight_names", MAP, legacy, &weight_names, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "layer_names", ARRAY, false, &layer_names, diag);
    if (rv == ALK_OK) {
        rv = alk__kf_check_config(limits, config->as.str.bytes, config->as.str.len, "model.config",
                                  diag);
    }
    if (rv == ALK_OK) {
        rv = check_weights(weights, limits, diag);
    }
    for (size_t i = 0; rv == ALK_OK && var_names != NULL && i < var_names->as.map.len; i++) {
        if (var_names->as.map.pairs[i].value->kind != ALK_VALUE_STR) {
            rv = alk_diag_set(diag, ALK_EINVAL, "model.var_names['%.200s'] must be a str",
                              var_names->as.map.pairs[i].key->as.str.bytes);
        }
    }
    if (rv == ALK_OK && weight_names != NULL) {
        rv = check_weight_names(weight_names, weights, diag);
    }
    for (size_t i = 0; rv == ALK_OK && layer_names != NULL && i < layer_names->as.array.len; i++) {
        const alk_value *layer = layer_names->as.array.items[i];
        if (layer->kind != ALK_VALUE_STR ||
            alk_value_get(weight_names, layer->as.str.bytes) == NULL) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "model.layer_names[%zu] must be a str with an entry in "
                              "model.weight_names",
                              i);
        }
    }
    return rv;
}

int alk_keras_model_payload(const alk_value *model, const alk_keras_file_limits *limits,
                            alk_arena *arena, const alk_value **ret_payload, alk_diag *diag) {
    alk_keras_file_limits defaults;
    if (limits == NULL) {
        alk_keras_file_limits_default(&defaults);
        limits = &defaults;
    }
    if (model == NULL || model->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "model must be a map, not %s",
                            model != NULL ? alk_value_kind_name(model->kind) : "missing");
    }
    const alk_value *file, *weights_file;
    int rv = get_field(model, "file", BIN, false, &file, diag);
    rv = rv != ALK_OK ? rv : get_field(model, "weights_file", BIN, false, &weights_file, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (file == NULL && weights_file != NULL) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "model.weights_file is given without model.file (the model JSON)");
    }
    if (file == NULL) {
        rv = check_decoded(model, limits, diag);
        if (rv == ALK_OK) {
            *ret_payload = model;
        }
        return rv;
    }
    rv = weights_file != NULL
             ? alk_keras_pair_read(file->as.str.bytes, file->as.str.len, weights_file->as.str.bytes,
                                   weights_file->as.str.len, limits, arena, ret_payload, diag)
             : alk_keras_file_read(file->as.str.bytes, file->as.str.len, limits, arena, ret_payload,
                                   diag);
    if (rv != ALK_OK) {
        alk_diag_prefix(diag, "model.file: ");
    }
    return rv;
}
