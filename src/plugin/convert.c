/*
 * Model conversion (see convert.h): picks the top-level tracer, builds the symbolic inputs,
 * replays the model through the plugin and emits the traced graph as one ALIR program.
 *
 * Thread rule: reentrant; everything a conversion allocates belongs to its own trace context.
 */
#include "plugin/convert.h"
#include "plugin/plugin_int.h"
#include "alir/validate.h"
#include "core/alloc.h"
#include "core/vec.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void alk_convert_request_init(alk_convert_request *request) {
    *request = (alk_convert_request){.hwconf = ALK_HWCONF_DEFAULT};
    alk_solver_options_init(&request->solver);
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

int alk_convert_find_op(const alk_generation *generation, const char *framework, const char *module,
                        const char *name, alk_diag *diag) {
    const alk__loaded *tracer = NULL;
    int rv = find_tracer(generation, framework, &tracer, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_host host = {.generation = generation, .tracer = tracer, .map = NULL};
    const alk_op_def *def = NULL;
    return alk_host_find_op(&host, module, name, &def, diag);
}

int alk_convert_framework(const alk_convert_request *request, char *ret_key, size_t cap,
                          alk_diag *diag) {
    if (request->framework != NULL && request->framework[0] != '\0') {
        size_t n = strlen(request->framework);
        if (n >= cap) {
            return alk_diag_set(diag, ALK_EINVAL, "framework '%.64s...' is too long",
                                request->framework);
        }
        memcpy(ret_key, request->framework, n + 1);
        return ALK_OK;
    }
    if (request->module == NULL) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "the request names no framework and no module to infer it from");
    }
    if (alk_framework_of_module(request->module, ret_key, cap) != ALK_OK) {
        return alk_diag_set(diag, ALK_EINVAL, "cannot infer the framework from module '%.200s'",
                            request->module);
    }
    return ALK_OK;
}

static void trace_config(const alk_convert_request *request, alk_trace_config *config) {
    alk_trace_config_init(config);
    config->hwconf = request->hwconf;
    config->solver = request->solver;
    config->solver.cmvm.cancel = request->cancel;
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

/*
 * Refuses an input shape with more than request->max_input_elements elements before anything is
 * allocated for it: the tracer's shapes come from the model (a 66-byte request can declare
 * [5000, 5000]) and must meet the limit the request's own shapes met when they were decoded.
 */
static int check_input_size(const alk_convert_request *request, const alk_input_spec *spec,
                            size_t index, const char *tracer, alk_diag *diag) {
    if (request->max_input_elements == 0) {
        return ALK_OK;
    }
    char shape[160];
    size_t len = 0;
    size_t elements = 1;
    bool over = false;
    for (size_t d = 0; d < spec->n_dims; d++) {
        int n = snprintf(shape + len, sizeof(shape) - len, "%s%lld", d > 0 ? ", " : "",
                         (long long)spec->dims[d]);
        len = n > 0 && (size_t)n < sizeof(shape) - len ? len + (size_t)n : len;
        over = over || spec->dims[d] < 0 ||
               !alk_mul_size(elements, (size_t)spec->dims[d], &elements) ||
               elements > request->max_input_elements;
    }
    if (!over) {
        return ALK_OK;
    }
    return alk_diag_set(diag, ALK_ELIMIT,
                        "input %zu of shape [%s] (%s) has more than %llu elements "
                        "(max_tensor_elements)",
                        index, shape, request->n_inputs > 0 ? "from the request's inputs" : tracer,
                        (unsigned long long)request->max_input_elements);
}

/* Makes the symbolic input of `spec`: auto-width, or one format for every element. */
static int make_input(alk_trace *t, const alk_input_spec *spec, size_t index, alk_fva **ret_input,
                      alk_diag *diag) {
    size_t shape[ALK_MAX_DIMS];
    size_t size = 1;
    for (size_t d = 0; d < spec->n_dims; d++) {
        if (spec->dims[d] <= 0 || !alk_mul_size(size, (size_t)spec->dims[d], &size) ||
            size > ALK_FVA_MAX_ELEMENTS) {
            return alk_diag_set(diag, ALK_EINVAL, "input %zu: bad or too large shape", index);
        }
        shape[d] = (size_t)spec->dims[d];
    }
    /* A wider input could not be read by the program (and its values, up to 2^128, would
     * overflow the float32 arithmetic of the solvers before the emission refused it). */
    int width = spec->kif[0] + spec->kif[1] + spec->kif[2];
    if (spec->has_kif && width > 64) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "input %zu: format (%d, %d, %d) is %d bits wide; ALIR values hold at "
                            "most 64",
                            index, spec->kif[0], spec->kif[1], spec->kif[2], width);
    }
    alk_fva *a = NULL;
    if (!spec->has_kif) {
        a = alk_fva_input(t, spec->n_dims, shape);
    } else {
        int *kif = alk_calloc(3 * size, sizeof(int));
        if (kif == NULL) {
            return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        }
        for (size_t e = 0; e < size; e++) {
            kif[e] = spec->kif[0];
            kif[size + e] = spec->kif[1];
            kif[2 * size + e] = spec->kif[2];
        }
        a = alk_fva_from_kif(t, spec->n_dims, shape, kif, kif + size, kif + 2 * size);
        alk_free(kif);
    }
    if (a == NULL) {
        return alk_diag_set(diag, alk_trace_error(t), "input %zu: %s", index, alk_trace_message(t));
    }
    *ret_input = a;
    return ALK_OK;
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
        /* A layer's table function may still wait for the quantizer of a later layer (a torch
         * sigmoid before `* 16` and round): its dump shows the function's float values. */
        for (size_t j = 0; j < e->n_arrays; j++) {
            if (alk_fva_is_pending(e->arrays[j])) {
                e->arrays[j] =
                    alk_fva_quantize_each(t, e->arrays[j], NULL, NULL, NULL, ALK_WRAP, ALK_TRN);
            }
        }
        int rv = alk_fva_trace(t, inputs, n_inputs, e->arrays, e->n_arrays, true, &named->program);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

static double seconds_now(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Replays the model and emits the program into `result`. */
static int run_tracer(const alk_generation *generation, const alk__loaded *tracer,
                      const alk_convert_request *request, alk_trace *t, alk_convert_result *result,
                      alk_diag *diag) {
    alk_input_spec specs[ALK_PLUGIN_MAX_INPUTS];
    alk_fva *inputs[ALK_PLUGIN_MAX_INPUTS];
    size_t n_inputs = 0;
    int rv = input_specs(tracer, request, specs, &n_inputs, diag);
    char origin[96];
    (void)snprintf(origin, sizeof(origin), "the %s tracer's, from the model", tracer->desc->name);
    for (size_t i = 0; rv == ALK_OK && i < n_inputs; i++) {
        rv = check_input_size(request, &specs[i], i, origin, diag);
    }
    for (size_t i = 0; rv == ALK_OK && i < n_inputs; i++) {
        rv = make_input(t, &specs[i], i, &inputs[i], diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    alk__trace_map map;
    alk__trace_map_init(&map);
    alk_host host = {
        .generation = generation,
        .tracer = tracer,
        .map = &map,
        .on_trace = request->on_trace,
        .on_trace_ctx = request->on_trace_ctx,
    };
    alk_vec outputs;
    alk_vec_init(&outputs, sizeof(alk_fva *));
    alk_diag inner = {{0}};
    double start = seconds_now();
    rv = tracer->desc->apply_model(tracer->state, t, &host, request->model, inputs, n_inputs,
                                   &inner);
    result->replay_seconds = seconds_now() - start;
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
        start = seconds_now();
        rv = alk_fva_trace(t, inputs, n_inputs, outputs.items, outputs.len, true, &result->program);
        result->emit_seconds = seconds_now() - start;
        if (rv != ALK_OK) {
            rv = alk_diag_set(diag, rv, "tracing the outputs: %s", alk_trace_message(t));
        }
    }
    if (rv == ALK_OK) {
        /* A program no interpreter can run (an op wider than 64 bits) is an error here, where
         * the user can still be told which model made it, not a file that fails later. */
        rv = alk_program_validate(result->program, &inner);
        if (rv != ALK_OK) {
            rv = alk_diag_set(diag, rv, "the %s tracer built a program that is not valid ALIR: %s",
                              tracer->desc->name, inner.message);
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
    int rv = alk_convert_framework(request, key, sizeof(key), diag);
    if (rv == ALK_OK) {
        rv = find_tracer(generation, key, &tracer, diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    trace_config(request, &config);
    alk_trace *t = NULL;
    rv = alk_trace_new(&config, &t);
    if (rv == ALK_EINVAL) {
        return alk_diag_set(diag, rv,
                            "hwconf (%lld, %lld, %g) or solver_options.binary_lut_width %d: an "
                            "adder or carry size of 0, or a table wider than %d inputs",
                            (long long)request->hwconf.adder_size,
                            (long long)request->hwconf.carry_size, request->hwconf.latency_cutoff,
                            request->solver.binary_lut_width, ALK_BINARY_LUT_MAX_WIDTH);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    alk_convert_result result = {0};
    rv = run_tracer(generation, tracer, request, t, &result, diag);
    result.solve_seconds = alk_trace_solver_seconds(t);
    alk_trace_free(t);
    if (rv != ALK_OK) {
        alk_convert_result_fini(&result);
        return rv;
    }
    *ret_result = result;
    return ALK_OK;
}
