/*
 * Tensors: dtype table, the checked view of a `{dtype, shape, data}` map, exact widening to
 * double. Elements are assembled from little-endian bytes one by one, so the code is the same on
 * any host and never reads through a misaligned pointer.
 */
#include "graph/tensor.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[ALK_DTYPE_COUNT] = {
    [ALK_DTYPE_F2] = {"f2", 2},     [ALK_DTYPE_F4] = {"f4", 4}, [ALK_DTYPE_F8] = {"f8", 8},
    [ALK_DTYPE_BF16] = {"bf16", 2}, [ALK_DTYPE_U1] = {"u1", 1}, [ALK_DTYPE_U2] = {"u2", 2},
    [ALK_DTYPE_U4] = {"u4", 4},     [ALK_DTYPE_U8] = {"u8", 8}, [ALK_DTYPE_I1] = {"i1", 1},
    [ALK_DTYPE_I2] = {"i2", 2},     [ALK_DTYPE_I4] = {"i4", 4}, [ALK_DTYPE_I8] = {"i8", 8},
    [ALK_DTYPE_B1] = {"b1", 1},
};

void alk_tensor_limits_default(alk_tensor_limits *limits) {
    *limits = (alk_tensor_limits){.max_dims = ALK_TENSOR_MAX_DIMS, .max_elements = 16u << 20};
}

const char *alk_dtype_name(alk_dtype dtype) {
    return (unsigned)dtype < ALK_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t alk_dtype_size(alk_dtype dtype) {
    return (unsigned)dtype < ALK_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

bool alk_dtype_parse(const char *name, alk_dtype *ret_dtype) {
    for (size_t i = 0; i < ALK_DTYPE_COUNT; i++) {
        if (strcmp(dtypes[i].name, name) == 0) {
            *ret_dtype = (alk_dtype)i;
            return true;
        }
    }
    return false;
}

size_t alk_tensor_elements(const alk_tensor *tensor) {
    size_t n = 1;
    for (size_t d = 0; d < tensor->ndim; d++) {
        n *= tensor->shape[d]; /* checked against overflow when the tensor was made */
    }
    return n;
}

/* The shape array: dims and element count within the limits. */
static int read_shape(const alk_value *shape, const alk_tensor_limits *limits, alk_tensor *t,
                      alk_diag *diag) {
    if (shape->kind != ALK_VALUE_ARRAY) {
        return alk_diag_set(diag, ALK_EINVAL, "tensor field 'shape' must be an array, not %s",
                            alk_value_kind_name(shape->kind));
    }
    size_t max_dims =
        limits->max_dims < ALK_TENSOR_MAX_DIMS ? limits->max_dims : ALK_TENSOR_MAX_DIMS;
    if (shape->as.array.len > max_dims) {
        return alk_diag_set(diag, ALK_ELIMIT,
                            "tensor field 'shape' has %zu dimensions; at most %zu are allowed",
                            shape->as.array.len, max_dims);
    }
    size_t elements = 1;
    for (size_t d = 0; d < shape->as.array.len; d++) {
        const alk_value *dim = shape->as.array.items[d];
        if (dim->kind != ALK_VALUE_INT || dim->as.integer < 0) {
            return dim->kind == ALK_VALUE_INT
                       ? alk_diag_set(diag, ALK_EINVAL,
                                      "tensor field 'shape[%zu]' is %" PRId64 ", not a uint", d,
                                      dim->as.integer)
                       : alk_diag_set(diag, ALK_EINVAL,
                                      "tensor field 'shape[%zu]' must be a uint, not %s", d,
                                      alk_value_kind_name(dim->kind));
        }
        if ((uint64_t)dim->as.integer > SIZE_MAX ||
            !alk_mul_size(elements, (size_t)dim->as.integer, &elements) ||
            elements > limits->max_elements) {
            return alk_diag_set(diag, ALK_ELIMIT,
                                "tensor field 'shape' has more than %zu elements (the limit)",
                                limits->max_elements);
        }
        t->shape[d] = (size_t)dim->as.integer;
    }
    t->ndim = shape->as.array.len;
    return ALK_OK;
}

int alk_tensor_from_value(const alk_value *v, const alk_tensor_limits *limits,
                          alk_tensor *ret_tensor, alk_diag *diag) {
    alk_tensor_limits defaults;
    if (limits == NULL) {
        alk_tensor_limits_default(&defaults);
        limits = &defaults;
    }
    if (v == NULL || v->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL, "a tensor must be a map {dtype, shape, data}, not %s",
                            v != NULL ? alk_value_kind_name(v->kind) : "missing");
    }
    static const char *const fields[] = {"dtype", "shape", "data"};
    for (size_t i = 0; i < 3; i++) {
        if (alk_value_get(v, fields[i]) == NULL) {
            return alk_diag_set(diag, ALK_EINVAL, "tensor field '%s' is missing", fields[i]);
        }
    }
    const alk_value *dtype = alk_value_get(v, "dtype");
    const alk_value *data = alk_value_get(v, "data");
    alk_tensor t = {0};
    if (dtype->kind != ALK_VALUE_STR || !alk_dtype_parse(dtype->as.str.bytes, &t.dtype)) {
        return dtype->kind == ALK_VALUE_STR
                   ? alk_diag_set(diag, ALK_EINVAL,
                                  "tensor field 'dtype' is '%.32s'; expected one of f2 f4 f8 "
                                  "bf16 u1 u2 u4 u8 i1 i2 i4 i8 b1",
                                  dtype->as.str.bytes)
                   : alk_diag_set(diag, ALK_EINVAL, "tensor field 'dtype' must be a str, not %s",
                                  alk_value_kind_name(dtype->kind));
    }
    int rv = read_shape(alk_value_get(v, "shape"), limits, &t, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    if (data->kind != ALK_VALUE_BIN) {
        return alk_diag_set(diag, ALK_EINVAL, "tensor field 'data' must be a bin, not %s",
                            alk_value_kind_name(data->kind));
    }
    size_t elements = alk_tensor_elements(&t);
    size_t nbytes = 0;
    if (!alk_mul_size(elements, alk_dtype_size(t.dtype), &nbytes) || data->as.str.len != nbytes) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "tensor field 'data' has %zu bytes; %zu elements of %s need %zu",
                            data->as.str.len, elements, alk_dtype_name(t.dtype), nbytes);
    }
    t.data = data->as.str.bytes;
    t.nbytes = nbytes;
    *ret_tensor = t;
    return ALK_OK;
}

/* The little-endian unsigned integer of `size` bytes at `p`. */
static uint64_t load_le(const unsigned char *p, size_t size) {
    uint64_t x = 0;
    for (size_t i = size; i-- > 0;) {
        x = (x << 8) | p[i];
    }
    return x;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 fraction bits. Every value is a double. */
static double half_to_double(uint16_t h) {
    int exponent = (h >> 10) & 0x1f;
    int fraction = h & 0x3ff;
    double magnitude;
    if (exponent == 0x1f) {
        magnitude = fraction == 0 ? INFINITY : NAN;
    } else if (exponent == 0) {
        magnitude = ldexp(fraction, -24); /* subnormal: fraction × 2^-24 */
    } else {
        magnitude = ldexp(fraction | 0x400, exponent - 25);
    }
    return (h & 0x8000) ? -magnitude : magnitude;
}

/* A float32 from its bit pattern (bfloat16 is the top half of one). */
static double float_bits_to_double(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Whether the 64-bit magnitude `m` has at most 53 significant bits (exact as a double). */
static bool fits_double(uint64_t m) {
    if (m == 0) {
        return true;
    }
    return 63 - __builtin_clzll(m) - __builtin_ctzll(m) < 53;
}

int alk_tensor_to_f64(const alk_tensor *tensor, double *out, alk_diag *diag) {
    const unsigned char *p = tensor->data;
    size_t size = alk_dtype_size(tensor->dtype);
    size_t n = alk_tensor_elements(tensor);
    for (size_t i = 0; i < n; i++, p += size) {
        uint64_t bits = load_le(p, size);
        switch (tensor->dtype) {
        case ALK_DTYPE_F2:
            out[i] = half_to_double((uint16_t)bits);
            break;
        case ALK_DTYPE_BF16:
            out[i] = float_bits_to_double((uint32_t)bits << 16);
            break;
        case ALK_DTYPE_F4:
            out[i] = float_bits_to_double((uint32_t)bits);
            break;
        case ALK_DTYPE_F8:
            memcpy(&out[i], &bits, sizeof(out[i]));
            break;
        case ALK_DTYPE_B1:
            out[i] = bits != 0;
            break;
        case ALK_DTYPE_I1:
            out[i] = (int8_t)bits;
            break;
        case ALK_DTYPE_I2:
            out[i] = (int16_t)bits;
            break;
        case ALK_DTYPE_I4:
            out[i] = (int32_t)bits;
            break;
        case ALK_DTYPE_I8: {
            int64_t x = (int64_t)bits;
            /* The magnitude as unsigned: -INT64_MIN does not fit int64 but is one bit here. */
            if (!fits_double(x < 0 ? 0 - bits : bits)) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "element %zu of an i8 tensor (%" PRId64 ") has no exact double",
                                    i, x);
            }
            out[i] = (double)x;
            break;
        }
        case ALK_DTYPE_U8:
            if (!fits_double(bits)) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "element %zu of a u8 tensor (%" PRIu64 ") has no exact double",
                                    i, bits);
            }
            out[i] = (double)bits;
            break;
        default: /* u1, u2, u4 */
            out[i] = (double)bits;
            break;
        }
    }
    return ALK_OK;
}
