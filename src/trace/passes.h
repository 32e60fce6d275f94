/*
 * The tracer's internals shared between emit.c and passes.c (not for plugins): tracing into the
 * working program form and the optimisation passes of spec trace-alir.md §3.7–3.9. Each pass
 * replaces *comb by its result (freeing the old program) or leaves it untouched on error.
 */
#ifndef ALK_TRACE_PASSES_H
#define ALK_TRACE_PASSES_H

#include "trace/comb.h"
#include "trace/fvar.h"

/* trace(inputs, outputs, optimize=False) (spec §3.1–3.6). The caller owns *ret. */
int alk__trace_comb(alk_trace *t, alk_fvar *const *inputs, size_t n_in, alk_fvar *const *outputs,
                    size_t n_out, alk__comb **ret);

int alk__pass_canonicalize(alk_trace *t, alk__comb **comb);
int alk__pass_dce(alk__comb **comb);
int alk__pass_cse(alk__comb **comb);
int alk__pass_null_quant(alk__comb **comb);
int alk__pass_canonical_sort(alk__comb **comb);
int alk__pass_topo_sort(alk__comb **comb);
int alk__pass_surrogate(alk_trace *t, alk__comb **comb);
int alk__pass_retrace(alk_trace *t, alk__comb **comb);
/* optimize() with surrogate and retrace on (spec §3.7). */
int alk__optimize(alk_trace *t, alk__comb **comb);

#endif
