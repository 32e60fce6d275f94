/*
 * Model conversion: the C equivalent of the reference's `trace_model()` (spec frontends.md §1).
 *
 * A request names a framework (or lets it be inferred from the model's `module` string, like the
 * reference's `type(model).__module__.split('.', 1)[0]`), carries the framework's model payload
 * as a value tree, optional explicit inputs, the hardware configuration and solver options. The
 * top-level tracer plugin of that framework replays the model on symbolic inputs; the traced
 * graph becomes one ALIR program.
 *
 * Thread rule: alk_convert is reentrant; it may run on any worker thread. The request and the
 * generation are borrowed and must not change during the call.
 */
#ifndef ALK_PLUGIN_CONVERT_H
#define ALK_PLUGIN_CONVERT_H

#include "alir/program.h"
#include "graph/value.h"
#include "plugin/registry.h"
#include "trace/fvar.h" /* alk_hwconf: HWConfig(adder_size, carry_size, latency_cutoff) */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ALK_MAX_DIMS = 8 };

/* One input: its shape and optionally a (k, i, f) format for every element. */
typedef struct alk_input_spec {
    size_t n_dims;
    int64_t dims[ALK_MAX_DIMS];
    bool has_kif;
    int kif[3];
} alk_input_spec;

typedef struct alk_convert_request {
    const char *framework;        /* "alkaid", "keras", "torch"; NULL: inferred from `module` */
    const char *module;           /* module of the model's class (the envelope's), or NULL */
    const alk_value *model;       /* the framework's payload (frontends.md §7) */
    const alk_input_spec *inputs; /* n_inputs explicit inputs; NULL: ask the tracer */
    size_t n_inputs;
    /* Without explicit inputs: formats (k, i, f) for the tracer's input shapes, one triple for
     * all inputs (n_inputs_kif == 1) or one per input; NULL: auto-width inputs. */
    const int (*inputs_kif)[3];
    size_t n_inputs_kif;
    alk_hwconf hwconf;         /* default ALK_HWCONF_DEFAULT */
    alk_solver_options solver; /* default alk_solver_options_init; `cancel` is ignored */
    bool dump;                 /* also return the named intermediate traces */
    /* Input shapes, the request's or the tracer's, with more elements are refused with
     * ALK_ELIMIT before anything is allocated (the wire's max_tensor_elements); 0: no limit
     * but the tracer's own. */
    uint64_t max_input_elements;
    /* Polled while tracing and solving; once it reads true the conversion stops with
     * ALK_ECANCELED and frees its thread. NULL: never. Borrowed for the call. */
    const atomic_bool *cancel;
    /* Called on the converting thread with each name the tracer records ("/dense/final"), so
     * that a crash report can name the last layer traced. NULL: none. */
    void (*on_trace)(void *ctx, const char *name);
    void *on_trace_ctx;
} alk_convert_request;

/* Fills `request` (owned by the caller) with an empty request, ALK_HWCONF_DEFAULT and the
 * default solver options. */
void alk_convert_request_init(alk_convert_request *request);

typedef struct alk_named_program {
    char *name; /* "/layer/final", "post_call", ... */
    alk_program *program;
} alk_named_program;

typedef struct alk_convert_result {
    alk_program *program;
    char **output_names; /* n_output_names strings */
    size_t n_output_names;
    alk_named_program *dump; /* n_dump traces when the request asked for a dump */
    size_t n_dump;
    double solve_seconds; /* the part of the conversion spent in the CMVM/SCM solvers */
    /* The tracer's replay of the model (its apply_model: decoding the payload, tracing, and the
     * solves its products ask for) and emitting the program (alk_fva_trace: the passes). */
    double replay_seconds;
    double emit_seconds;
} alk_convert_result;

/*
 * Converts `request` with the plugins of `generation` (both borrowed). On success fills
 * *ret_result, which the caller owns (alk_convert_result_fini). Errors: ALK_EINVAL naming the
 * culprit (unknown framework with the available keys, unsupported layer, bad input shape, "inputs
 * must be provided" when neither the request nor the model gives input shapes), ALK_EPLUGIN when
 * a plugin fails, ALK_ENOMEM.
 */
int alk_convert(const alk_generation *generation, const alk_convert_request *request,
                alk_convert_result *ret_result, alk_diag *diag);

/* Frees everything `result` holds and zeroes it; NULL is a no-op. */
void alk_convert_result_fini(alk_convert_result *result);

/*
 * Whether the tracer of `framework` in `generation` (both borrowed) has a handler for class
 * `name` of `module`, found as a conversion finds it: the tracer's own table, then the
 * second-level plugin of the module's first component (loaded on demand). ALK_OK; ALK_EINVAL
 * for an unknown framework; ALK_ENOENT or ALK_EPLUGIN with the reason a conversion would give
 * (`alkaidc inspect` shows it for every layer of a model file).
 */
int alk_convert_find_op(const alk_generation *generation, const char *framework, const char *module,
                        const char *name, alk_diag *diag);

/* The framework key of a module string: its first dotted component ("keras.src.x" -> "keras").
 * Writes at most `cap` bytes including the NUL; returns ALK_EINVAL for an empty key. */
int alk_framework_of_module(const char *module, char *ret_key, size_t cap);

/*
 * The one rule that picks a request's tracer: its `framework`, else the framework key of its
 * `module` (the reference's type(model).__module__.split('.', 1)[0]). Writes at most `cap`
 * bytes to `ret_key`; ALK_EINVAL naming the field when neither gives a key. The wire decoder
 * applies it when a request arrives, alk_convert when it runs.
 */
int alk_convert_framework(const alk_convert_request *request, char *ret_key, size_t cap,
                          alk_diag *diag);

#endif
