/*
 * The trace context (fvar.h): its configuration and defaults, lifecycle, sticky error and arena.
 *
 * Design. Everything a trace makes (nodes, references, intervals, tables, arrays) is allocated
 * from the context's arena and freed at once with the context, so no traced object has its own
 * lifetime. Errors are sticky, SQLite style: the first one is kept with its message, and every
 * later operation returns NULL (fvar.h), so plugins check once at the end. The context is kept
 * apart from the scalar operations (fvar.c) so that the modules needing only allocation and
 * errors (affine.c, solver_seam.c, the array files) do not depend on the operations.
 *
 * Thread rule: one context per thread at a time (no locking). The one exception is the
 * cancellation flag of the solver options, which another thread sets and alk__trace_alloc polls
 * (atomically).
 */
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <stdio.h>
#include <string.h>

void alk_solver_options_init(alk_solver_options *options) {
    memset(options, 0, sizeof(*options));
    /* The solver's own defaults (cmvm.md §1.3), in the conversions' mode (ALK_SOLVER_DEFAULT_MODE)
     * and on one thread. */
    alk_cmvm_options_init(&options->cmvm);
    options->cmvm.mode = ALK_SOLVER_DEFAULT_MODE;
    /* A tracing job already runs on a worker of its own; the search stays on it. */
    options->cmvm.threads = 1;
    options->binary_lut = true;
    options->binary_lut_width = 6;
    options->use_cache = true;
}

void alk_trace_set_offload(alk_trace *trace, alk_offload_fn offload, void *ctx) {
    trace->solver.offload = offload;
    trace->solver.offload_ctx = ctx;
}

void alk_trace_config_init(alk_trace_config *config) {
    memset(config, 0, sizeof(*config));
    config->hwconf = ALK_HWCONF_DEFAULT;
    alk_solver_options_init(&config->solver);
}

int alk_trace_new(const alk_trace_config *config, alk_trace **ret_trace) {
    alk_trace_config defaults;
    if (config == NULL) {
        alk_trace_config_init(&defaults);
        config = &defaults;
    }
    /* The one door of every trace: sizes that would divide by zero in the latency estimates, or
     * tables of more than 2^16 entries, are refused here whoever builds the configuration (a
     * request's values are refused by name when it is decoded). */
    if (config->hwconf.adder_size == 0 || config->hwconf.carry_size == 0 ||
        config->solver.binary_lut_width > ALK_BINARY_LUT_MAX_WIDTH) {
        return ALK_EINVAL;
    }
    alk_trace *t = alk_calloc(1, sizeof(*t));
    if (t == NULL) {
        return ALK_ENOMEM;
    }
    alk_arena_init(&t->arena, config->arena_block != 0 ? config->arena_block : 1u << 16);
    t->hwconf = config->hwconf;
    t->solver = config->solver;
    if (t->solver.binary_lut_width <= 0) {
        t->solver.binary_lut_width = 6;
    }
    *ret_trace = t;
    return ALK_OK;
}

void alk_trace_free(alk_trace *t) {
    if (t == NULL) {
        return;
    }
    alk__trace_free_cache(t);
    alk_arena_fini(&t->arena);
    alk_free(t);
}

int alk_trace_error(const alk_trace *t) {
    return t->error;
}

const char *alk_trace_message(const alk_trace *t) {
    if (t->diag.message[0] != '\0') {
        return t->diag.message;
    }
    return alk_strerror(t->error);
}

static int vset_error(alk_trace *t, int err, const char *fmt, va_list ap) {
    if (t->error == ALK_OK) {
        t->error = err;
        vsnprintf(t->diag.message, sizeof(t->diag.message), fmt, ap);
    }
    return t->error;
}

int alk__trace_set_error(alk_trace *t, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rv = vset_error(t, err, fmt, ap);
    va_end(ap);
    return rv;
}

int alk_trace_fail(alk_trace *t, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rv = vset_error(t, err, fmt, ap);
    va_end(ap);
    return rv;
}

void alk__trace_prefix_error(alk_trace *t, const char *fmt, ...) {
    if (t->error == ALK_OK) {
        return;
    }
    if (t->diag.message[0] == '\0') {
        (void)snprintf(t->diag.message, sizeof(t->diag.message), "%s", alk_strerror(t->error));
    }
    char prefix[sizeof(t->diag.message)];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    alk_diag_prefix(&t->diag, "%s", prefix);
}

size_t alk_trace_n_vars(const alk_trace *t) {
    return t->n_vars;
}

alk_hwconf alk_trace_hwconf(const alk_trace *t) {
    return t->hwconf;
}

void *alk__trace_alloc(alk_trace *t, size_t size) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    /* Every allocation-heavy step passes here: a cheap place to notice a cancelled job. */
    const atomic_bool *cancel = t->solver.cmvm.cancel;
    if ((++t->allocations & 1023) == 0 && cancel != NULL &&
        atomic_load_explicit(cancel, memory_order_relaxed)) {
        alk__trace_set_error(t, ALK_ECANCELED, "the conversion was cancelled");
        return NULL;
    }
    void *p = alk_arena_alloc(&t->arena, size);
    if (p == NULL) {
        alk__trace_set_error(t, ALK_ENOMEM, "out of memory while tracing");
    }
    return p;
}
