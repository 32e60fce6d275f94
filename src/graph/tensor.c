/*
 * Tensors of the wire format (see tensor.h): dtype codes, the checked map decoder and the
 * conversion of every dtype to doubles.
 *
 * Bytes are read with memcpy and assembled little-endian by hand, so the decoder neither
 * depends on the host's byte order nor makes unaligned loads. Half floats are widened exactly
 * (every binary16 and bfloat16 value is a double).
 */
#include "graph/tensor.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ALK_DTYPE_F2] = {"f2", 2}, [ALK_DTYPE_BF16] = {"bf16", 2}, [ALK_DTYPE_F4] = {"f4", 4},
    [ALK_DTYPE_F8] = {"f8", 8}, [ALK_DTYPE_U1] = {"u1", 1},     [ALK_DTYPE_U2] = {"u2", 2},
    [ALK_DTYPE_U4] = {"u4", 4}, [ALK_DTYPE_U8] = {"u8", 8},     [ALK_DTYPE_I1] = {"i1", 1},
    [ALK_DTYPE_I2] = {"i2", 2}, [ALK_DTYPE_I4] = {"i4", 4},     [ALK_DTYPE_I8] = {"i8", 8},
    [ALK_DTYPE_B1] = {"b1", 1},
};

enum { N_DTYPES = sizeof(dtypes) / sizeof(dtypes[0]) };

int alk_dtype_parse(const char *name, alk_dtype *ret_dtype) {
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(dtypes[i].name, name) == 0) {
            *ret_dtype = (alk_dtype)i;
            return ALK_OK;
        }
    }
    return ALK_EINVAL;
}

const char *alk_dtype_name(alk_dtype dtype) {
    return (size_t)dtype < N_DTYPES ? dtypes[dtype].name : "?";
}

size_t alk_dtype_size(alk_dtype dtype) {
    return (size_t)dtype < N_DTYPES ? dtypes[dtype].size : 0;
}

int alk_tensor_from_value(const alk_value *value, alk_tensor *ret_tensor, alk_diag *diag) {
    if (value == NULL || value->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "a tensor must be a map {dtype, shape, data}, got %s",
                            value != NULL ? alk_value_kind_name(value->kind) : "nothing");
    }
    const alk_value *dtype = alk_value_get(value, "dtype");
    const alk_value *shape = alk_value_get(value, "shape");
    const alk_value *data = alk_value_get(value, "data");
    alk_tensor t = {0};
    if (dtype == NULL || dtype->kind != ALK_VALUE_STR ||
        alk_dtype_parse(dtype->as.str.bytes, &t.dtype) != ALK_OK) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "tensor dtype must be one of f2 bf16 f4 f8 u1 u2 u4 u8 i1 i2 i4 i8 b1, "
                            "got %s",
                            dtype != NULL && dtype->kind == ALK_VALUE_STR ? dtype->as.str.bytes
                            : dtype != NULL ? alk_value_kind_name(dtype->kind)
                                            : "nothing");
    }
    if (shape == NULL || shape->kind != ALK_VALUE_ARRAY ||
        shape->as.array.len > ALK_TENSOR_MAX_DIMS) {
        return alk_diag_set(diag, ALK_EINVAL, "tensor shape must be a list of at most %d extents",
                            ALK_TENSOR_MAX_DIMS);
    }
    t.ndim = shape->as.array.len;
    t.size = 1;
    for (size_t d = 0; d < t.ndim; d++) {
        const alk_value *extent = shape->as.array.items[d];
        if (extent->kind != ALK_VALUE_INT || extent->as.integer < 0 ||
            extent->as.integer > UINT32_MAX) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "tensor shape[%zu] must be an integer from 0 to 2^32-1", d);
        }
        t.shape[d] = (size_t)extent->as.integer;
        if (!alk_mul_size(t.size, t.shape[d], &t.size)) {
            return alk_diag_set(diag, ALK_EINVAL, "tensor shape is too large");
        }
    }
    size_t n_bytes;
    if (!alk_mul_size(t.size, alk_dtype_size(t.dtype), &n_bytes)) {
        return alk_diag_set(diag, ALK_EINVAL, "tensor shape is too large");
    }
    if (data == NULL || data->kind != ALK_VALUE_BIN || data->as.str.len != n_bytes) {
        return alk_diag_set(
            diag, ALK_EINVAL, "tensor data must be %zu bytes (%zu elements of %s), got %s of %zu",
            n_bytes, t.size, alk_dtype_name(t.dtype),
            data != NULL ? alk_value_kind_name(data->kind) : "nothing",
            data != NULL && (data->kind == ALK_VALUE_BIN || data->kind == ALK_VALUE_STR)
                ? data->as.str.len
                : 0);
    }
    t.data = (const uint8_t *)data->as.str.bytes;
    *ret_tensor = t;
    return ALK_OK;
}

/* The little-endian unsigned integer of `n` bytes at `p`. */
static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) {
        v = v << 8 | p[i];
    }
    return v;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 fraction bits. */
static double half_to_double(uint16_t h) {
    int exponent = (h >> 10) & 0x1f;
    double fraction = h & 0x3ff;
    double magnitude;
    if (exponent == 0) {
        magnitude = ldexp(fraction, -24); /* subnormal */
    } else if (exponent == 31) {
        magnitude = fraction == 0 ? INFINITY : NAN;
    } else {
        magnitude = ldexp(fraction + 1024, exponent - 25);
    }
    return (h & 0x8000) ? -magnitude : magnitude;
}

/* bfloat16 is the upper half of a binary32. */
static double bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static double element(alk_dtype dtype, const uint8_t *p) {
    switch (dtype) {
    case ALK_DTYPE_F2:
        return half_to_double((uint16_t)load_le(p, 2));
    case ALK_DTYPE_BF16:
        return bits_to_float((uint32_t)load_le(p, 2) << 16);
    case ALK_DTYPE_F4:
        return bits_to_float((uint32_t)load_le(p, 4));
    case ALK_DTYPE_F8: {
        uint64_t bits = load_le(p, 8);
        double d;
        memcpy(&d, &bits, sizeof(d));
        return d;
    }
    case ALK_DTYPE_U1:
    case ALK_DTYPE_U2:
    case ALK_DTYPE_U4:
    case ALK_DTYPE_U8:
        return (double)load_le(p, alk_dtype_size(dtype));
    case ALK_DTYPE_I1:
    case ALK_DTYPE_I2:
    case ALK_DTYPE_I4:
    case ALK_DTYPE_I8: {
        /* Sign-extend from the top bit of the element's width. */
        size_t bits = 8 * alk_dtype_size(dtype);
        uint64_t u = load_le(p, alk_dtype_size(dtype));
        uint64_t sign = (uint64_t)1 << (bits - 1);
        return u & sign ? -(double)((~u & (sign - 1)) + 1) : (double)u;
    }
    case ALK_DTYPE_B1:
        return p[0] != 0;
    }
    return 0;
}

void alk_tensor_to_f64(const alk_tensor *tensor, double *ret_values) {
    size_t item = alk_dtype_size(tensor->dtype);
    for (size_t i = 0; i < tensor->size; i++) {
        ret_values[i] = element(tensor->dtype, tensor->data + i * item);
    }
}
