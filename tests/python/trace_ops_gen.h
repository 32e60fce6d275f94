/*
 * The named test functions of trace_ops_gen: each takes the input array x (8 variables of the
 * formats in trace_ops_gen.c) and returns the array whose quantize(..., 1, 12, 12) is traced.
 * trace_ops_gen.c holds the operation groups of the reference's tests; trace_ops_arrays.c the
 * array primitives and pending tables of issue 11.
 */
#ifndef ALK_TESTS_TRACE_OPS_GEN_H
#define ALK_TESTS_TRACE_OPS_GEN_H

#include "trace/fvarray.h"

#include <stddef.h>

typedef alk_fva *(*op_fn)(alk_trace *t, alk_fva *x);

typedef struct trace_op {
    const char *name;
    op_fn fn;
} trace_op;

extern const trace_op array_ops[];
extern const size_t n_array_ops;

#endif
