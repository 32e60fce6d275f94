/*
 * Model conversion (see convert.h): picks the top-level tracer, builds the symbolic inputs,
 * replays the model through the plugin and emits the traced graph as one ALIR program.
 *
 * Thread rule: reentrant; everything a conversion allocates belongs to its own trace context.
 */
#include "plugin/convert.h"
#include "plugin/plugin_int.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <stdio.h>
#include <string.h>

void alk_convert_request_init(alk_convert_request *request) {
    *request = (alk_convert_request){.hwconf = {1, 1, -1}};
}

void alk_convert_result_fini(alk_convert_result *result) {
    if (result == NULL) {
        return;
    }
    alk_program_free(result->program);
    for (size_t i = 0; i < result->n_output_names; i++) {
        alk_free(result->output_names[i]);
    }
    alk_free(result->output_names);
    for (size_t i = 0; i < result->n_dump; i++) {
        alk_free(result->dump[i].name);
        alk_program_free(result->dump[i].program);
    }
    alk_free(result->dump);
    *result = (alk_convert_result){0};
}

int alk_framework_of_module(const char *module, char *ret_key, size_t cap) {
    size_t n = strcspn(module, ".");
    if (n == 0 || n >= cap) {
        return ALK_EINVAL;
    }
    memcpy(ret_key, module, n);
    ret_key[n] = '\0';
    return ALK_OK;
}

/* The loaded tracer of `framework`, or ALK_EINVAL listing the available keys. */
static int find_tracer(const alk_generation *generation, const char *framework,
                       const alk__loaded **ret_tracer, alk_diag *diag) {
    alk_buf keys;
    alk_buf_init(&keys);
    for (size_t i = 0; i < generation->n_entries; i++) {
        const alk__entry *e = &generation->entries[i];
        if (e->info.state != ALK_PLUGIN_LOADED || strcmp(e->info.group, ALK_GROUP_TRACER) != 0) {
            continue;
        }
        if (strcmp(e->info.name, framework) == 0) {
            alk_buf_fini(&keys);
            *ret_tracer = e->loaded;
            return ALK_OK;
        }
        alk_buf_printf(&keys, "%s%s", keys.len > 0 ? ", " : "", e->info.name);
    }
    int rv = alk_diag_set(diag, ALK_EINVAL, "unknown framework '%s' (available: %s)", framework,
                          keys.len > 0 ? keys.data : "none; no tracer plugin is installed");
    alk_buf_fini(&keys);
    return rv;
}

/* The framework key: the request's, else the first component of the model's "module". */
static int framework_of(const alk_convert_request *request, char *key, size_t cap, alk_diag *diag) {
    if (request->framework != NULL && request->framework[0] != '\0') {
        size_t n = strlen(request->framework);
        if (n >= cap) {
            return alk_diag_set(diag, ALK_EINVAL, "framework name is too long");
        }
        memcpy(key, request->framework, n + 1);
        return ALK_OK;
    }
    const alk_value *module = alk_value_get(request->model, "module");
    if (module == NULL || module->kind != ALK_VALUE_STR) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "the request names no framework and the model has no \"module\" "
                            "string to infer it from");
    }
    if (alk_framework_of_module(module->as.str.bytes, key, cap) != ALK_OK) {
        return alk_diag_set(diag, ALK_EINVAL, "cannot infer the framework from module '%s'",
                            module->as.str.bytes);
    }
    return ALK_OK;
}

/* Reads one solver option (`key`, `value`) of the request into `options`. */
static int solver_option(alk_solver_options *options, const char *key, const alk_value *value,
                         alk_diag *diag) {
    bool is_int = value->kind == ALK_VALUE_INT;
    bool is_bool = value->kind == ALK_VALUE_BOOL;
    bool is_str = value->kind == ALK_VALUE_STR;
    if ((strcmp(key, "method0") == 0 || strcmp(key, "method1") == 0) && is_str) {
        alk_cmvm_method *slot =
            strcmp(key, "method0") == 0 ? &options->cmvm.method0 : &options->cmvm.method1;
        if (alk_cmvm_method_parse(value->as.str.bytes, slot) != ALK_OK) {
            return alk_diag_set(diag, ALK_EINVAL, "solver_options.%s: unknown method '%s'", key,
                                value->as.str.bytes);
        }
        return ALK_OK;
    }
    if (strcmp(key, "hard_dc") == 0 && is_int) {
        options->cmvm.hard_dc = (int)value->as.integer;
    } else if (strcmp(key, "decompose_dc") == 0 && is_int) {
        options->cmvm.decompose_dc = (int)value->as.integer;
    } else if (strcmp(key, "search_all_decompose_dc") == 0 && is_bool) {
        options->cmvm.search_all_decompose_dc = value->as.boolean;
    } else if (strcmp(key, "binary_lut") == 0 && (is_bool || value->kind == ALK_VALUE_NIL)) {
        /* as in the reference, only a literal false disables it */
        options->binary_lut = !is_bool || value->as.boolean;
    } else if (strcmp(key, "binary_lut_width") == 0 && (is_int || value->kind == ALK_VALUE_NIL)) {
        options->binary_lut_width = is_int && value->as.integer > 0 ? (int)value->as.integer : 6;
    } else if (strcmp(key, "mode") == 0 && is_str) {
        if (strcmp(value->as.str.bytes, "compat") == 0) {
            options->cmvm.mode = ALK_CMVM_COMPAT;
        } else if (strcmp(value->as.str.bytes, "improved") == 0) {
            options->cmvm.mode = ALK_CMVM_IMPROVED;
        } else {
            return alk_diag_set(diag, ALK_EINVAL,
                                "solver_options.mode must be \"compat\" or \"improved\"");
        }
    } else {
        return alk_diag_set(diag, ALK_EINVAL,
                            "solver_options.%s: unknown option or wrong type (%s)", key,
                            alk_value_kind_name(value->kind));
    }
    if ((strcmp(key, "hard_dc") == 0 || strcmp(key, "decompose_dc") == 0) &&
        (value->as.integer < -2 || value->as.integer > 1024)) {
        return alk_diag_set(diag, ALK_EINVAL, "solver_options.%s is out of range", key);
    }
    return ALK_OK;
}

static int trace_config(const alk_convert_request *request, alk_trace_config *config,
                        alk_diag *diag) {
    alk_trace_config_init(config);
    config->hwconf = request->hwconf;
    config->solver.cmvm.cancel = request->cancel;
    const alk_value *options = request->solver_options;
    if (options == NULL || options->kind == ALK_VALUE_NIL) {
        return ALK_OK;
    }
    if (options->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "solver_options must be a map");
    }
    for (size_t i = 0; i < options->as.map.len; i++) {
        const alk_value_pair *pair = &options->as.map.pairs[i];
        if (pair->key->kind != ALK_VALUE_STR) {
            return alk_diag_set(diag, ALK_EINVAL, "solver_options keys must be strings");
        }
        int rv = solver_option(&config->solver, pair->key->as.str.bytes, pair->value, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

/* The input shapes: the request's, else the tracer's; "inputs must be provided" otherwise. */
static int input_specs(const alk__loaded *tracer, const alk_convert_request *request,
                       alk_input_spec *specs, size_t *ret_n, alk_diag *diag) {
    if (request->n_inputs > 0) {
        if (request->n_inputs > ALK_PLUGIN_MAX_INPUTS) {
            return alk_diag_set(diag, ALK_ELIMIT, "more than %d inputs", ALK_PLUGIN_MAX_INPUTS);
        }
        memcpy(specs, request->inputs, request->n_inputs * sizeof(*specs));
        *ret_n = request->n_inputs;
        return ALK_OK;
    }
    const alk_plugin_descriptor *d = tracer->desc;
    alk_plugin_shape shapes[ALK_PLUGIN_MAX_INPUTS];
    size_t n = 0;
    alk_diag inner = {{0}};
    int rv = d->get_input_shapes != NULL
                 ? d->get_input_shapes(tracer->state, request->model, shapes, ALK_PLUGIN_MAX_INPUTS,
                                       &n, &inner)
                 : ALK_ENOENT;
    if (rv == ALK_ENOENT) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "inputs must be provided: the %s tracer cannot infer the input "
                            "shapes of this model",
                            d->name);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "%s tracer: %s", d->name, inner.message);
    }
    size_t n_kif = request->inputs_kif != NULL ? request->n_inputs_kif : 0;
    if (n_kif > 1 && n_kif != n) {
        return alk_diag_set(diag, ALK_EINVAL, "inputs_kif has %zu triples for %zu inputs", n_kif,
                            n);
    }
    for (size_t i = 0; i < n && i < ALK_PLUGIN_MAX_INPUTS; i++) {
        if (shapes[i].n_dims > ALK_MAX_DIMS) {
            return alk_diag_set(diag, ALK_EINVAL, "input %zu has more than %d dimensions", i,
                                ALK_MAX_DIMS);
        }
        specs[i] = (alk_input_spec){.n_dims = shapes[i].n_dims, .has_kif = n_kif > 0};
        memcpy(specs[i].dims, shapes[i].dims, shapes[i].n_dims * sizeof(int64_t));
        if (n_kif > 0) {
            memcpy(specs[i].kif, request->inputs_kif[n_kif == 1 ? 0 : i], sizeof(specs[i].kif));
        }
    }
    *ret_n = n < ALK_PLUGIN_MAX_INPUTS ? n : ALK_PLUGIN_MAX_INPUTS;
    return ALK_OK;
}

/* Makes the symbolic input of `spec`: auto-width, or one format for every element. */
static alk_fva *make_input(alk_trace *t, const alk_input_spec *spec, size_t index, alk_diag *diag) {
    size_t shape[ALK_MAX_DIMS];
    size_t size = 1;
    for (size_t d = 0; d < spec->n_dims; d++) {
        if (spec->dims[d] <= 0 || !alk_mul_size(size, (size_t)spec->dims[d], &size) ||
            size > ALK_FVA_MAX_ELEMENTS) {
            alk_diag_set(diag, ALK_EINVAL, "input %zu: bad or too large shape", index);
            return NULL;
        }
        shape[d] = (size_t)spec->dims[d];
    }
    if (!spec->has_kif) {
        return alk_fva_input(t, spec->n_dims, shape);
    }
    int *kif = alk_calloc(3 * size, sizeof(int));
    if (kif == NULL) {
        alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t e = 0; e < size; e++) {
        kif[e] = spec->kif[0];
        kif[size + e] = spec->kif[1];
        kif[2 * size + e] = spec->kif[2];
    }
    alk_fva *a = alk_fva_from_kif(t, spec->n_dims, shape, kif, kif + size, kif + 2 * size);
    alk_free(kif);
    return a;
}

/* The model outputs named by the tracer, flattened in order. */
static int collect_outputs(const alk__trace_map *map, alk_vec *outputs, alk_diag *diag) {
    if (map->output_names.len == 0) {
        return alk_diag_set(diag, ALK_EPLUGIN, "the tracer named no outputs");
    }
    for (size_t i = 0; i < map->output_names.len; i++) {
        const alk__trace_entry *e =
            alk__trace_map_get(map, ALK_VEC_AT(&map->output_names, char *, i));
        int rv = alk_vec_append(outputs, e->arrays, e->n_arrays);
        if (rv != ALK_OK) {
            return alk_diag_set(diag, rv, "out of memory");
        }
    }
    return ALK_OK;
}

static int copy_names(const alk_vec *names, alk_convert_result *result) {
    result->output_names = alk_calloc(names->len, sizeof(char *));
    if (result->output_names == NULL) {
        return ALK_ENOMEM;
    }
    for (size_t i = 0; i < names->len; i++) {
        result->output_names[i] = alk_strdup(ALK_VEC_AT(names, char *, i));
        if (result->output_names[i] == NULL) {
            return ALK_ENOMEM;
        }
        result->n_output_names++;
    }
    return ALK_OK;
}

/* With a dump: every named entry of the trace map as its own program of the inputs. */
static int trace_dump(alk_trace *t, const alk__trace_map *map, alk_fva *const *inputs,
                      size_t n_inputs, alk_convert_result *result) {
    result->dump = alk_calloc(map->entries.len + 1, sizeof(alk_named_program));
    if (result->dump == NULL) {
        return ALK_ENOMEM;
    }
    for (size_t i = 0; i < map->entries.len; i++) {
        const alk__trace_entry *e = &ALK_VEC_AT(&map->entries, alk__trace_entry, i);
        alk_named_program *named = &result->dump[result->n_dump];
        named->name = alk_strdup(e->name);
        if (named->name == NULL) {
            return ALK_ENOMEM;
        }
        result->n_dump++;
        int rv = alk_fva_trace(t, inputs, n_inputs, e->arrays, e->n_arrays, true, &named->program);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

/* Replays the model and emits the program into `result`. */
static int run_tracer(const alk_generation *generation, const alk__loaded *tracer,
                      const alk_convert_request *request, alk_trace *t, alk_convert_result *result,
                      alk_diag *diag) {
    alk_input_spec specs[ALK_PLUGIN_MAX_INPUTS];
    alk_fva *inputs[ALK_PLUGIN_MAX_INPUTS];
    size_t n_inputs = 0;
    int rv = input_specs(tracer, request, specs, &n_inputs, diag);
    for (size_t i = 0; rv == ALK_OK && i < n_inputs; i++) {
        inputs[i] = make_input(t, &specs[i], i, diag);
        if (inputs[i] == NULL) {
            rv = alk_trace_error(t) != ALK_OK
                     ? alk_diag_set(diag, alk_trace_error(t), "input %zu: %s", i,
                                    alk_trace_message(t))
                     : ALK_EINVAL;
        }
    }
    if (rv != ALK_OK) {
        return rv;
    }
    alk__trace_map map;
    alk__trace_map_init(&map);
    alk_host host = {.generation = generation, .tracer = tracer, .map = &map};
    alk_vec outputs;
    alk_vec_init(&outputs, sizeof(alk_fva *));
    alk_diag inner = {{0}};
    rv = tracer->desc->apply_model(tracer->state, t, &host, request->model, inputs, n_inputs,
                                   &inner);
    if (rv == ALK_OK && alk_trace_error(t) != ALK_OK) {
        rv = alk_trace_error(t);
        (void)snprintf(inner.message, sizeof(inner.message), "%s", alk_trace_message(t));
    }
    if (rv != ALK_OK) {
        rv = alk_diag_set(diag, rv, "%s tracer: %s", tracer->desc->name,
                          inner.message[0] != '\0' ? inner.message : alk_strerror(rv));
        goto done;
    }
    rv = collect_outputs(&map, &outputs, diag);
    if (rv == ALK_OK) {
        rv = alk_fva_trace(t, inputs, n_inputs, outputs.items, outputs.len, true, &result->program);
        if (rv != ALK_OK) {
            rv = alk_diag_set(diag, rv, "tracing the outputs: %s", alk_trace_message(t));
        }
    }
    if (rv == ALK_OK) {
        rv = copy_names(&map.output_names, result);
    }
    if (rv == ALK_OK && request->dump) {
        rv = trace_dump(t, &map, inputs, n_inputs, result);
        if (rv != ALK_OK) {
            rv = alk_diag_set(diag, rv, "tracing the dump: %s", alk_trace_message(t));
        }
    }
    if (rv == ALK_ENOMEM) {
        alk_diag_set(diag, rv, "out of memory");
    }
done:
    alk_vec_fini(&outputs);
    alk__trace_map_fini(&map);
    return rv;
}

int alk_convert(const alk_generation *generation, const alk_convert_request *request,
                alk_convert_result *ret_result, alk_diag *diag) {
    char key[128];
    const alk__loaded *tracer = NULL;
    alk_trace_config config;
    int rv = framework_of(request, key, sizeof(key), diag);
    if (rv == ALK_OK) {
        rv = find_tracer(generation, key, &tracer, diag);
    }
    if (rv == ALK_OK) {
        rv = trace_config(request, &config, diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    alk_trace *t = NULL;
    rv = alk_trace_new(&config, &t);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    alk_convert_result result = {0};
    rv = run_tracer(generation, tracer, request, t, &result, diag);
    alk_trace_free(t);
    if (rv != ALK_OK) {
        alk_convert_result_fini(&result);
        return rv;
    }
    *ret_result = result;
    return ALK_OK;
}
