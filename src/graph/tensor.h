/*
 * Tensors of the wire format: checked decoding of `{dtype, shape, data}` maps (spec
 * frontends.md §7.2) and their conversion to numbers.
 *
 * A tensor is a view into a decoded value tree: `data` points at the tree's blob, little-endian,
 * C order. alk_tensor_from_value checks everything a client controls before anyone reads the
 * bytes: a known dtype code, a shape of at most ALK_TENSOR_MAX_DIMS non-negative extents whose
 * product does not overflow, and a blob of exactly size x itemsize bytes.
 *
 * Thread rule: pure functions; a tensor is as immutable as the tree it views.
 */
#ifndef ALK_GRAPH_TENSOR_H
#define ALK_GRAPH_TENSOR_H

#include "core/err.h"
#include "graph/value.h"

#include <stddef.h>
#include <stdint.h>

/* The numpy codes of §7.2 ("f4", "bf16", "u1", "b1", ...). */
typedef enum alk_dtype {
    ALK_DTYPE_F2,
    ALK_DTYPE_BF16,
    ALK_DTYPE_F4,
    ALK_DTYPE_F8,
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

enum { ALK_TENSOR_MAX_DIMS = 16 };

typedef struct alk_tensor {
    alk_dtype dtype;
    size_t ndim;
    size_t shape[ALK_TENSOR_MAX_DIMS];
    size_t size;         /* number of elements (1 for a 0-d tensor) */
    const uint8_t *data; /* size x alk_dtype_size(dtype) bytes, borrowed from the value tree */
} alk_tensor;

/* The dtype of code `name`; ALK_EINVAL for an unknown code. */
int alk_dtype_parse(const char *name, alk_dtype *ret_dtype);
/* The wire code of `dtype` ("f4"). */
const char *alk_dtype_name(alk_dtype dtype);
/* Bytes per element. */
size_t alk_dtype_size(alk_dtype dtype);

/*
 * Reads the tensor map `value` (borrowed; *ret_tensor points into it and lives as long as it).
 * ALK_EINVAL with a message naming the field (dtype, shape, data) when anything is malformed.
 */
int alk_tensor_from_value(const alk_value *value, alk_tensor *ret_tensor, alk_diag *diag);

/* Writes the tensor's elements as doubles, in C order, to `ret_values` (tensor->size entries,
 * owned by the caller). Integers beyond 2^53 round as numpy's astype(float64) does; booleans
 * read as 0 and 1. */
void alk_tensor_to_f64(const alk_tensor *tensor, double *ret_values);

#endif
