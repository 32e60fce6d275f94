/*
 * The wire tensor decoder (graph/tensor.h) against hand-written little-endian bytes: every dtype
 * of frontends.md §7.2 with values worked out from the formats' definitions (IEEE binary16 and
 * binary32, bfloat16 = the top half of binary32, two's complement), and every refusal.
 */
#include "graph/tensor.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

/* A tensor map {dtype, shape, data} built by hand (JSON cannot carry binary data). */
typedef struct tensor_fixture {
    alk_value dtype_key, dtype, shape_key, shape, data_key, data, map;
    alk_value extents[4];
    const alk_value *extent_ptrs[4];
    alk_value_pair pairs[3];
} tensor_fixture;

static const alk_value *make(tensor_fixture *f, const char *dtype, const int64_t *shape,
                             size_t ndim, const void *bytes, size_t n_bytes) {
    f->dtype_key = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"dtype", 5}};
    f->shape_key = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"shape", 5}};
    f->data_key = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"data", 4}};
    f->dtype = (alk_value){.kind = ALK_VALUE_STR, .as.str = {dtype, strlen(dtype)}};
    for (size_t d = 0; d < ndim; d++) {
        f->extents[d] = (alk_value){.kind = ALK_VALUE_INT, .as.integer = shape[d]};
        f->extent_ptrs[d] = &f->extents[d];
    }
    f->shape = (alk_value){.kind = ALK_VALUE_ARRAY, .as.array = {f->extent_ptrs, ndim}};
    f->data = (alk_value){.kind = ALK_VALUE_BIN, .as.str = {bytes, n_bytes}};
    f->pairs[0] = (alk_value_pair){&f->dtype_key, &f->dtype};
    f->pairs[1] = (alk_value_pair){&f->shape_key, &f->shape};
    f->pairs[2] = (alk_value_pair){&f->data_key, &f->data};
    f->map = (alk_value){.kind = ALK_VALUE_MAP, .as.map = {f->pairs, 3}};
    return &f->map;
}

/* Decodes `bytes` as a 1-D tensor of `n` elements and compares with `want`. */
static void expect(const char *dtype, const void *bytes, size_t n_bytes, const double *want,
                   size_t n) {
    tensor_fixture f;
    int64_t shape[1] = {(int64_t)n};
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(make(&f, dtype, shape, 1, bytes, n_bytes), &t, &diag),
                 ALK_OK, "%s: %s", dtype, diag.message);
    cr_assert_eq(t.size, n);
    cr_assert_str_eq(alk_dtype_name(t.dtype), dtype);
    double got[8];
    alk_tensor_to_f64(&t, got);
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert(isnan(got[i]), "%s[%zu]: %g", dtype, i, got[i]);
        } else {
            cr_assert(got[i] == want[i] && signbit(got[i]) == signbit(want[i]),
                      "%s[%zu]: got %.17g, want %.17g", dtype, i, got[i], want[i]);
        }
    }
}

Test(tensor, floats) {
    /* binary16: 1.0 = 0x3c00, -2 = 0xc000, 1/3 rounded = 0x3555 = 1365/4096, the smallest
     * subnormal 2^-24 = 0x0001, 65504 = 0x7bff, -0 = 0x8000, inf = 0x7c00, nan = 0x7e00. */
    const uint8_t f2[] = {0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0x01, 0x00,
                          0xff, 0x7b, 0x00, 0x80, 0x00, 0x7c, 0x00, 0x7e};
    const double f2_want[] = {1, -2, 1365.0 / 4096, ldexp(1, -24), 65504, -0.0, INFINITY, NAN};
    expect("f2", f2, sizeof(f2), f2_want, 8);
    /* bfloat16: 1.5 = 0x3fc0, -0.15625 = 0xbe20, 2^-133 (a binary32 subnormal) = 0x0001 << 16
     * read as 2^-149 * 2^16. */
    const uint8_t bf16[] = {0xc0, 0x3f, 0x20, 0xbe, 0x01, 0x00};
    const double bf16_want[] = {1.5, -0.15625, ldexp(1, -133)};
    expect("bf16", bf16, sizeof(bf16), bf16_want, 3);
    /* binary32: 0.1f = 0x3dcccccd = 13421773 * 2^-27; -3 = 0xc0400000. */
    const uint8_t f4[] = {0xcd, 0xcc, 0xcc, 0x3d, 0x00, 0x00, 0x40, 0xc0};
    const double f4_want[] = {13421773 * ldexp(1, -27), -3};
    expect("f4", f4, sizeof(f4), f4_want, 2);
    /* binary64: 0.1 = 0x3fb999999999999a. */
    const uint8_t f8[] = {0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f};
    const double f8_want[] = {0.1};
    expect("f8", f8, sizeof(f8), f8_want, 1);
}

Test(tensor, integers_and_bools) {
    const uint8_t u1[] = {0, 255, 128};
    expect("u1", u1, 3, (const double[]){0, 255, 128}, 3);
    const uint8_t i1[] = {0xff, 0x80, 0x7f};
    expect("i1", i1, 3, (const double[]){-1, -128, 127}, 3);
    const uint8_t u2[] = {0x34, 0x12, 0xff, 0xff};
    expect("u2", u2, 4, (const double[]){0x1234, 65535}, 2);
    const uint8_t i2[] = {0x00, 0x80, 0xfe, 0xff};
    expect("i2", i2, 4, (const double[]){-32768, -2}, 2);
    const uint8_t u4[] = {0x78, 0x56, 0x34, 0x12};
    expect("u4", u4, 4, (const double[]){0x12345678}, 1);
    const uint8_t i4[] = {0x00, 0x00, 0x00, 0x80, 0xfd, 0xff, 0xff, 0xff};
    expect("i4", i4, 8, (const double[]){-2147483648.0, -3}, 2);
    /* 2^53 + 1 is not a double: it rounds to even (2^53), as numpy's astype(float64). */
    const uint8_t u8[] = {0x01, 0,    0,    0,    0,    0,    0x20, 0x00,
                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect("u8", u8, 16, (const double[]){ldexp(1, 53), ldexp(1, 64)}, 2);
    const uint8_t i8[] = {0,    0,    0,    0,    0,    0,    0,    0x80,
                          0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect("i8", i8, 16, (const double[]){-ldexp(1, 63), -5}, 2);
    const uint8_t b1[] = {0, 1, 7};
    expect("b1", b1, 3, (const double[]){0, 1, 1}, 3);
}

Test(tensor, shapes) {
    tensor_fixture f;
    alk_tensor t;
    const float values[6] = {1, 2, 3, 4, 5, 6};
    cr_assert_eq(
        alk_tensor_from_value(make(&f, "f4", (const int64_t[]){2, 3}, 2, values, 24), &t, NULL),
        ALK_OK);
    cr_assert_eq(t.ndim, 2);
    cr_assert_eq(t.shape[0], 2);
    cr_assert_eq(t.shape[1], 3);
    cr_assert_eq(t.size, 6);
    /* 0-d: one element; an empty extent: none. */
    cr_assert_eq(alk_tensor_from_value(make(&f, "f4", NULL, 0, values, 4), &t, NULL), ALK_OK);
    cr_assert_eq(t.size, 1);
    cr_assert_eq(
        alk_tensor_from_value(make(&f, "f4", (const int64_t[]){3, 0}, 2, values, 0), &t, NULL),
        ALK_OK);
    cr_assert_eq(t.size, 0);
}

static void expect_refused(const alk_value *v, const char *reason) {
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(v, &t, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, reason) != NULL, "'%s' lacks '%s'", diag.message, reason);
}

Test(tensor, refusals) {
    tensor_fixture f;
    const uint8_t bytes[16] = {0};
    expect_refused(make(&f, "f3", (const int64_t[]){1}, 1, bytes, 4),
                   "tensor dtype must be one of f2 bf16 f4 f8 u1 u2 u4 u8 i1 i2 i4 i8 b1, got f3");
    expect_refused(make(&f, "f4", (const int64_t[]){3}, 1, bytes, 8),
                   "tensor data must be 12 bytes (3 elements of f4), got bin of 8");
    expect_refused(make(&f, "f4", (const int64_t[]){-1}, 1, bytes, 4),
                   "tensor shape[0] must be an integer from 0 to 2^32-1");
    /* Extents whose product overflows size_t are refused before any byte is read. */
    const int64_t huge[4] = {UINT32_MAX, UINT32_MAX, UINT32_MAX, 2};
    expect_refused(make(&f, "u1", huge, 4, bytes, 4), "tensor shape is too large");
    make(&f, "f4", (const int64_t[]){1}, 1, bytes, 4);
    f.data.kind = ALK_VALUE_STR;
    expect_refused(&f.map, "got str of 4");
    f.map.as.map.len = 2; /* no data */
    expect_refused(&f.map, "got nothing of 0");
    const alk_value not_a_map = {.kind = ALK_VALUE_INT};
    expect_refused(&not_a_map, "a tensor must be a map {dtype, shape, data}, got int");
}
