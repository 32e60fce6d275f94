/*
 * The reference's example model (spec trace-alir.md §5, converter/example.py `operation(x)`),
 * written against the tracing API: quantization, relu, slicing, a sine table, SCM, a heap max,
 * variable matrix products, einsum, a sum, an argsort and broadcasting bit operations.
 */
#ifndef ALK_TRACE_EXAMPLE_H
#define ALK_TRACE_EXAMPLE_H

#include "alir/program.h"
#include "trace/fvarray.h"

/* operation(x) on the 2-D array `x` (borrowed; unquantized inputs or variables). Returns the
 * output array, or NULL with the trace's error set. */
alk_fva *alk_example_operation(alk_trace *t, const alk_fva *x);

/*
 * Traces the example on a fresh 2-D input of shape `shape` (2 entries, each 2..4096) with the
 * converter's defaults and optimises it. `config` may be NULL (defaults). The caller owns
 * *ret_program.
 */
int alk_example_trace(const size_t shape[2], const alk_trace_config *config,
                      alk_program **ret_program, alk_diag *diag);

#endif
