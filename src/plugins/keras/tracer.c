/*
 * The `keras` top-level tracer (group alir_tracer.plugins; spec frontends.md §2): Keras 3
 * Functional and Sequential models, and Keras 2 ones, from a model file's bytes or a decoded
 * payload (model_file.h), replayed layer by layer through the handler kit.
 *
 * A conversion is one job: the payload is read into the job's arena, its config parsed into a
 * graph (model_graph.h), its weights indexed; then the walk (walk.c) runs every node in Keras's
 * order in a scope of the Keras style, whose activation step is the strict activation map and
 * whose data is the job (the hooks read the precision options from it). Everything the job
 * allocated is freed when apply_model returns: ops read their configs and weights during the
 * call only, and the traced arrays live in the trace.
 *
 * get_input_shapes reads the model's config the same way: `(1,) + batch_shape[1:]` of every
 * input, or ALK_ENOENT (the request must give inputs) when one is unknown.
 *
 * Thread rule: reentrant; every job has its own state, the plugin has none.
 */
#include "plugins/keras/keras_int.h"
#include "plugins/keras/model_file.h"

#include <stdio.h>
#include <string.h>

/* Reads `model` (the request's model map) into `job`: payload, config, graph. On failure the
 * job's arena is freed. */
static int job_open(keras_job *job, const alk_value *model, alk_diag *diag) {
    *job = (keras_job){0};
    alk_arena_init(&job->arena, 0);
    int rv = alk_keras_model_payload(model, NULL, &job->arena, &job->payload, diag);
    const alk_value *config_text = alk_value_get(job->payload, "config");
    const alk_value *root = NULL;
    if (rv == ALK_OK) {
        alk_value_limits limits;
        alk_value_limits_default(&limits);
        rv = alk_value_from_python_json(config_text->as.str.bytes, config_text->as.str.len, &limits,
                                        &job->arena, &root, diag);
        if (rv != ALK_OK) {
            alk_diag_prefix(diag, "the model config: ");
        }
    }
    if (rv == ALK_OK) {
        rv = alk_keras_graph_parse(root, &job->arena, &job->model, diag);
    }
    if (rv == ALK_OK) {
        const alk_value *format = alk_value_get(job->payload, "format");
        job->legacy = strcmp(format->as.str.bytes, "legacy_h5") == 0;
        return ALK_OK;
    }
    alk_arena_fini(&job->arena);
    return rv;
}

static void job_close(keras_job *job) {
    alk_arena_fini(&job->arena);
}

int keras_get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                           size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    keras_job job;
    int rv = job_open(&job, model, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_keras_model *m = job.model;
    if (m->n_inputs > cap) {
        rv = alk_diag_set(diag, ALK_EINVAL, "the model has %zu inputs; at most %zu", m->n_inputs,
                          cap);
    }
    for (size_t i = 0; rv == ALK_OK && i < m->n_inputs; i++) {
        int64_t dims[ALK_PLUGIN_MAX_DIMS];
        size_t ndim = 0;
        rv = alk_keras_model_input_shape(m, i, dims, ALK_PLUGIN_MAX_DIMS, &ndim, diag);
        /* The batch axis is 1 (frontends.md §2.1 step 9); any other unknown size leaves the
         * shapes to the request. */
        ret_shapes[i].n_dims = (uint32_t)ndim;
        for (size_t d = 0; rv == ALK_OK && d < ndim; d++) {
            ret_shapes[i].dims[d] = d == 0 ? 1 : dims[d];
            rv = d > 0 && dims[d] < 0 ? ALK_ENOENT : ALK_OK;
        }
    }
    if (rv == ALK_OK) {
        *ret_n_shapes = m->n_inputs;
    }
    job_close(&job);
    return rv;
}

int keras_apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                      alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    keras_job job;
    int rv = job_open(&job, model, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    job.host = host;
    job.trace = trace;
    rv = keras_precision_parse(&job.precision, model, diag);
    if (rv == ALK_OK) {
        rv = keras_weights_index(&job, diag);
    }
    if (rv == ALK_OK) {
        alk_scope *scope = alk_scope_new(host, trace, ALK_SCOPE_KERAS, "/");
        alk_scope_set_activation(scope, keras_activation_step);
        alk_scope_set_data(scope, &job);
        rv = keras_walk(&job, scope, inputs, n_inputs, diag);
    }
    if (rv != ALK_OK && strstr(diag->message, "unquantized input") != NULL) {
        /* A plain Keras model traced without input formats: say what to give. */
        size_t n = strlen(diag->message);
        (void)snprintf(diag->message + n, sizeof(diag->message) - n,
                       "; the model's inputs have no fixed-point format: give one (alkaidc "
                       "--input-kif K,I,F, inputs_kif in a request) or quantize them in the "
                       "model, as HGQ2 models do");
    }
    job_close(&job);
    return rv;
}
