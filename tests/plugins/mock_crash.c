/*
 * A top-level tracer that misbehaves on request (group alir_tracer.plugins, name "crashy"), for
 * the reliability tests of the daemon's worker processes.
 *
 * Its model is {"do": WHAT} with one input of shape [2]. apply_model first records the trace
 * "/victim/final" (so that a crash report can name the last trace), then does WHAT: "ok"
 * (returns its input as the output "final"), "segv" (writes through a bad pointer), "abort", "exit"
 * (exit(3)), "fpe" (an integer division by zero), "hang" (sleeps forever, ignoring the
 * cancellation a deadline asks for), "alloc" (allocates and touches 64 MiB blocks until malloc
 * fails, then aborts, as a C++ library does on bad_alloc).
 */
#include "plugin/alk_plugin.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                            size_t cap, size_t *ret_n_shapes, alk_diag *diag) {
    (void)state;
    (void)model;
    (void)diag;
    if (cap < 1) {
        return ALK_ELIMIT;
    }
    ret_shapes[0] = (alk_plugin_shape){.n_dims = 1, .dims = {2}};
    *ret_n_shapes = 1;
    return ALK_OK;
}

/* Volatile: the compiler must neither fold the division nor see through the pointer. */
static volatile int zero;
static int *volatile bad_pointer = (int *)16;

static void misbehave(const char *what) {
    if (strcmp(what, "segv") == 0) {
        *bad_pointer = 1;
    } else if (strcmp(what, "abort") == 0) {
        abort();
    } else if (strcmp(what, "exit") == 0) {
        exit(3);
    } else if (strcmp(what, "fpe") == 0) {
        int divisor = zero; /* a dividend the compiler cannot know forces a real idiv */
        zero = (int)strlen(what) / divisor;
    } else if (strcmp(what, "hang") == 0) {
        for (;;) {
            (void)sleep(1);
        }
    } else if (strcmp(what, "alloc") == 0) {
        for (;;) {
            size_t block = (size_t)64 << 20;
            char *p = malloc(block);
            if (p == NULL) {
                abort();
            }
            memset(p, 1, block);
        }
    }
}

static int apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                       alk_fva *const *inputs, size_t n_inputs, alk_diag *diag) {
    (void)state;
    const alk_value *what = alk_value_get(model, "do");
    if (what == NULL || what->kind != ALK_VALUE_STR) {
        return alk_diag_set(diag, ALK_EINVAL, "model.do must be a string");
    }
    alk_scope *scope = alk_scope_new(host, trace, ALK_SCOPE_KERAS, "/");
    alk_scope_dump(scope, "victim/final", inputs, n_inputs);
    misbehave(what->as.str.bytes);
    return alk_scope_finish(scope, "final", inputs, n_inputs, diag);
}

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "crashy",
    .version = "1",
    .get_input_shapes = get_input_shapes,
    .apply_model = apply_model,
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
