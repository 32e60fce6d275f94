/*
 * Tensors of a model payload: a dtype, a shape and the raw bytes in C order.
 *
 * A tensor travels as the value-tree map `{"dtype": str, "shape": [uint...], "data": bin}`
 * (frontends.md §7.2–7.3: Keras weights, torch parameters). alk_tensor_from_value checks such a
 * map against limits and describes it without copying: `data` keeps pointing into the tree, so
 * the tensor lives as long as the tree's arena. Element counts are checked (overflow-checked
 * product against `max_elements`) before any caller allocates a buffer for them, and the byte
 * count must match exactly. The dtypes are numpy's codes, always little-endian; reads go through
 * byte loads, so neither the host's byte order nor the data's alignment matters.
 *
 * Thread rule: reentrant; a tensor is as immutable as the tree it points into.
 */
#ifndef ALK_GRAPH_TENSOR_H
#define ALK_GRAPH_TENSOR_H

#include "core/err.h"
#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Element types, named by numpy's codes ("f4"); "bf16" is bfloat16, "b1" numpy's bool. */
typedef enum alk_dtype {
    ALK_DTYPE_F2,
    ALK_DTYPE_F4,
    ALK_DTYPE_F8,
    ALK_DTYPE_BF16,
    ALK_DTYPE_U1,
    ALK_DTYPE_U2,
    ALK_DTYPE_U4,
    ALK_DTYPE_U8,
    ALK_DTYPE_I1,
    ALK_DTYPE_I2,
    ALK_DTYPE_I4,
    ALK_DTYPE_I8,
    ALK_DTYPE_B1,
} alk_dtype;

enum { ALK_DTYPE_COUNT = ALK_DTYPE_B1 + 1, ALK_TENSOR_MAX_DIMS = 8 };

typedef struct alk_tensor {
    alk_dtype dtype;
    size_t ndim; /* 0 for a scalar */
    size_t shape[ALK_TENSOR_MAX_DIMS];
    const void *data; /* nbytes bytes, borrowed from the value tree; any alignment */
    size_t nbytes;    /* = alk_tensor_elements() * alk_dtype_size(dtype) */
} alk_tensor;

/* What a tensor may declare (a client controls all of it). */
typedef struct alk_tensor_limits {
    size_t max_dims;     /* at most ALK_TENSOR_MAX_DIMS */
    size_t max_elements; /* product of the shape */
} alk_tensor_limits;

/* Defaults: 8 dimensions, 16 Mi elements (the wire's max_dims and max_tensor_elements). */
void alk_tensor_limits_default(alk_tensor_limits *limits);

/* The numpy code of `dtype` ("f4"), or "?" for a value outside the enum. */
const char *alk_dtype_name(alk_dtype dtype);

/* Bytes of one element (0 for a value outside the enum). */
size_t alk_dtype_size(alk_dtype dtype);

/* The dtype called `name` (exact numpy code); false when there is none. */
bool alk_dtype_parse(const char *name, alk_dtype *ret_dtype);

/*
 * Describes the tensor map `v` (borrowed) after checking it: `dtype` one of the codes above,
 * `shape` an array of at most limits->max_dims non-negative ints whose product is at most
 * limits->max_elements, `data` a bin of exactly elements × itemsize bytes. `limits` NULL means the
 * defaults. Errors: ALK_EINVAL naming the field ("shape[1] is -3, not a uint"), ALK_ELIMIT naming
 * the limit. *ret_tensor points into `v` and is written only on success.
 */
int alk_tensor_from_value(const alk_value *v, const alk_tensor_limits *limits,
                          alk_tensor *ret_tensor, alk_diag *diag);

/* Number of elements: the product of the shape (1 for a scalar). */
size_t alk_tensor_elements(const alk_tensor *tensor);

/*
 * Writes every element of `tensor` (borrowed) as a double to `out`, which holds
 * alk_tensor_elements() values. Every dtype converts exactly: f2 and bf16 (subnormals, ±inf and
 * NaN included) widen without rounding, b1 gives 0 or 1 (any non-zero byte is true, as numpy
 * reads it). The one inexact case is refused: an i8 or u8 element beyond ±2^53 that a double
 * cannot hold gives ALK_EINVAL naming its flat index (`out` is then partly written).
 */
int alk_tensor_to_f64(const alk_tensor *tensor, double *out, alk_diag *diag);

#endif
