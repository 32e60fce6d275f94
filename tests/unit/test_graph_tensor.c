/* Tensors: checks of the {dtype, shape, data} map and exact widening to double, against
 * hand-worked bit patterns (IEEE binary16 and bfloat16 tables, integer bounds of doubles). */
#include "core/arena.h"
#include "graph/tensor.h"
#include "graph/value.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static alk_arena arena;

static void setup(void) {
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_arena_fini(&arena);
}

TestSuite(tensor, .init = setup, .fini = teardown);

static const alk_value *str(const char *s) {
    return alk_value_new_bytes(&arena, ALK_VALUE_STR, s, strlen(s));
}

/* A tensor map {dtype, shape, data} with `n_dims` dims and `len` bytes of data. */
static const alk_value *tensor_map(const char *dtype, const int64_t *dims, size_t n_dims,
                                   const void *data, size_t len) {
    const alk_value *items[16];
    for (size_t i = 0; i < n_dims; i++) {
        items[i] = alk_value_new_int(&arena, dims[i]);
    }
    alk_value_pair pairs[3] = {
        {str("dtype"), str(dtype)},
        {str("shape"), alk_value_new_array(&arena, items, n_dims)},
        {str("data"), alk_value_new_bytes(&arena, ALK_VALUE_BIN, data, len)},
    };
    return alk_value_new_map(&arena, pairs, 3);
}

/* Converts `len` bytes of `dtype` (a 1-D tensor) and returns the doubles in `out`. */
static void convert(const char *dtype, const void *data, size_t len, double *out) {
    alk_dtype d;
    cr_assert(alk_dtype_parse(dtype, &d));
    int64_t n = (int64_t)(len / alk_dtype_size(d));
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(tensor_map(dtype, &n, 1, data, len), NULL, &t, &diag),
                 ALK_OK, "%s", diag.message);
    cr_assert_eq(alk_tensor_elements(&t), (size_t)n);
    cr_assert_eq(alk_tensor_to_f64(&t, out, &diag), ALK_OK, "%s", diag.message);
}

Test(tensor, dtype_names_and_sizes) {
    static const char *const names[] = {"f2", "f4", "f8", "bf16", "u1", "u2", "u4",
                                        "u8", "i1", "i2", "i4",   "i8", "b1"};
    static const size_t sizes[] = {2, 4, 8, 2, 1, 2, 4, 8, 1, 2, 4, 8, 1};
    for (size_t i = 0; i < ALK_DTYPE_COUNT; i++) {
        alk_dtype d;
        cr_assert(alk_dtype_parse(names[i], &d));
        cr_assert_str_eq(alk_dtype_name(d), names[i]);
        cr_assert_eq(alk_dtype_size(d), sizes[i], "%s", names[i]);
    }
    alk_dtype d;
    cr_assert_not(alk_dtype_parse("float32", &d));
    cr_assert_not(alk_dtype_parse("<f4", &d));
    cr_assert_str_eq(alk_dtype_name((alk_dtype)99), "?");
}

Test(tensor, half_floats_widen_exactly) {
    /* binary16 patterns, little-endian: 1, -2, 65504 (max), 2^-14 (min normal), 2^-24 (min
     * subnormal), 1023·2^-24 (max subnormal), -0, +inf, -inf, NaN, 1 + 2^-10. */
    static const uint16_t bits[] = {0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff,
                                    0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3c01};
    unsigned char bytes[sizeof(bits)];
    for (size_t i = 0; i < 11; i++) {
        bytes[2 * i] = bits[i] & 0xff;
        bytes[2 * i + 1] = bits[i] >> 8;
    }
    double out[11];
    convert("f2", bytes, sizeof(bytes), out);
    cr_assert_eq(out[0], 1.0);
    cr_assert_eq(out[1], -2.0);
    cr_assert_eq(out[2], 65504.0);
    cr_assert_eq(out[3], ldexp(1.0, -14));
    cr_assert_eq(out[4], ldexp(1.0, -24));
    cr_assert_eq(out[5], ldexp(1023.0, -24));
    cr_assert(out[6] == 0.0 && signbit(out[6]));
    cr_assert(isinf(out[7]) && out[7] > 0);
    cr_assert(isinf(out[8]) && out[8] < 0);
    cr_assert(isnan(out[9]));
    cr_assert_eq(out[10], 1.0 + ldexp(1.0, -10));
}

Test(tensor, bfloat16_is_the_top_half_of_a_float32) {
    /* 1.0, 3.140625 (0x4049), -0.5, smallest subnormal 2^-133, max 0x7f7f, +inf. */
    static const unsigned char bytes[] = {0x80, 0x3f, 0x49, 0x40, 0x00, 0xbf,
                                          0x01, 0x00, 0x7f, 0x7f, 0x80, 0x7f};
    double out[6];
    convert("bf16", bytes, sizeof(bytes), out);
    cr_assert_eq(out[0], 1.0);
    cr_assert_eq(out[1], 3.140625);
    cr_assert_eq(out[2], -0.5);
    cr_assert_eq(out[3], ldexp(1.0, -133));
    cr_assert_eq(out[4], ldexp(255.0, 120)); /* (1 + 127/128) · 2^127 */
    cr_assert(isinf(out[5]));
}

Test(tensor, floats_and_integers_little_endian) {
    static const unsigned char f4[] = {0x00, 0x00, 0x80, 0x3e, 0x01, 0x00, 0x00, 0x00};
    double out[4];
    convert("f4", f4, sizeof(f4), out);
    cr_assert_eq(out[0], 0.25);
    cr_assert_eq(out[1], ldexp(1.0, -149)); /* smallest float32 subnormal */

    static const unsigned char f8[] = {0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f};
    convert("f8", f8, sizeof(f8), out);
    cr_assert_eq(out[0], 0.1);

    static const unsigned char i2[] = {0xff, 0xff, 0x00, 0x80, 0xff, 0x7f};
    convert("i2", i2, sizeof(i2), out);
    cr_assert_eq(out[0], -1.0);
    cr_assert_eq(out[1], -32768.0);
    cr_assert_eq(out[2], 32767.0);

    static const unsigned char u4[] = {0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04};
    convert("u4", u4, sizeof(u4), out);
    cr_assert_eq(out[0], 4294967295.0);
    cr_assert_eq(out[1], (double)0x04030201);

    static const unsigned char i1[] = {0x80, 0x7f, 0xfe};
    convert("i1", i1, sizeof(i1), out);
    cr_assert_eq(out[0], -128.0);
    cr_assert_eq(out[1], 127.0);
    cr_assert_eq(out[2], -2.0);

    static const unsigned char b1[] = {0, 1, 2};
    convert("b1", b1, sizeof(b1), out);
    cr_assert_eq(out[0], 0.0);
    cr_assert_eq(out[1], 1.0);
    cr_assert_eq(out[2], 1.0); /* numpy reads any non-zero byte as True */
}

/* The little-endian bytes of `x`. */
static void put_u64(unsigned char *p, uint64_t x) {
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(x >> (8 * i));
    }
}

Test(tensor, wide_integers_convert_only_when_exact) {
    unsigned char bytes[32];
    put_u64(bytes, (uint64_t)1 << 53);
    put_u64(bytes + 8, (uint64_t)INT64_MIN); /* -2^63: one significant bit */
    put_u64(bytes + 16, (uint64_t) - (((int64_t)1 << 53) - 1));
    put_u64(bytes + 24, (uint64_t)0xfff0000000000000ull); /* u8: 12 significant bits */
    double out[4];
    convert("i8", bytes, 24, out);
    cr_assert_eq(out[0], ldexp(1.0, 53));
    cr_assert_eq(out[1], -ldexp(1.0, 63));
    cr_assert_eq(out[2], -(ldexp(1.0, 53) - 1));
    convert("u8", bytes + 24, 8, out);
    cr_assert_eq(out[0], ldexp(4095.0, 52));

    put_u64(bytes, ((uint64_t)1 << 53) + 1);
    int64_t n = 1;
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(tensor_map("i8", &n, 1, bytes, 8), NULL, &t, &diag), ALK_OK);
    cr_assert_eq(alk_tensor_to_f64(&t, out, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "element 0 of an i8 tensor (9007199254740993)") != NULL, "%s",
              diag.message);
    put_u64(bytes, UINT64_MAX);
    cr_assert_eq(alk_tensor_from_value(tensor_map("u8", &n, 1, bytes, 8), NULL, &t, &diag), ALK_OK);
    cr_assert_eq(alk_tensor_to_f64(&t, out, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "u8 tensor (18446744073709551615)") != NULL, "%s", diag.message);
}

Test(tensor, scalar_and_empty_shapes) {
    static const unsigned char one[] = {0x00, 0x00, 0x80, 0x3f};
    alk_tensor t;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(tensor_map("f4", NULL, 0, one, 4), NULL, &t, &diag), ALK_OK);
    cr_assert_eq(t.ndim, 0);
    cr_assert_eq(alk_tensor_elements(&t), 1);
    double x;
    cr_assert_eq(alk_tensor_to_f64(&t, &x, &diag), ALK_OK);
    cr_assert_eq(x, 1.0);
    int64_t dims[2] = {3, 0};
    cr_assert_eq(alk_tensor_from_value(tensor_map("f8", dims, 2, "", 0), NULL, &t, &diag), ALK_OK);
    cr_assert_eq(alk_tensor_elements(&t), 0);
    cr_assert_eq(t.shape[0], 3);
    cr_assert_eq(t.nbytes, 0);
}

/* Expects alk_tensor_from_value(v) to fail with `code` and a message containing `text`. */
static void expect_error(const alk_value *v, const alk_tensor_limits *limits, int code,
                         const char *text) {
    alk_tensor t = {.ndim = 77};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_tensor_from_value(v, limits, &t, &diag), code, "%s", diag.message);
    cr_assert(strstr(diag.message, text) != NULL, "'%s' lacks '%s'", diag.message, text);
    cr_assert_eq(t.ndim, 77, "the tensor is written only on success");
}

Test(tensor, malformed_maps_name_the_field) {
    unsigned char data[64] = {0};
    int64_t dims[9] = {2, 2, 1, 1, 1, 1, 1, 1, 1};
    expect_error(str("x"), NULL, ALK_EINVAL, "must be a map {dtype, shape, data}, not str");
    alk_value_pair no_data[2] = {{str("dtype"), str("f4")},
                                 {str("shape"), alk_value_new_array(&arena, NULL, 0)}};
    expect_error(alk_value_new_map(&arena, no_data, 2), NULL, ALK_EINVAL,
                 "tensor field 'data' is missing");
    expect_error(tensor_map("float32", dims, 2, data, 16), NULL, ALK_EINVAL,
                 "tensor field 'dtype' is 'float32'");
    expect_error(tensor_map("f4", dims, 2, data, 12), NULL, ALK_EINVAL,
                 "'data' has 12 bytes; 4 elements of f4 need 16");
    expect_error(tensor_map("i2", dims, 2, data, 16), NULL, ALK_EINVAL, "4 elements of i2 need 8");
    int64_t negative[2] = {2, -3};
    expect_error(tensor_map("f4", negative, 2, data, 16), NULL, ALK_EINVAL,
                 "'shape[1]' is -3, not a uint");
    expect_error(tensor_map("f4", dims, 9, data, 16), NULL, ALK_ELIMIT,
                 "'shape' has 9 dimensions; at most 8");
    alk_tensor_limits small = {.max_dims = 2, .max_elements = 3};
    expect_error(tensor_map("f4", dims, 3, data, 16), &small, ALK_ELIMIT,
                 "3 dimensions; at most 2");
    expect_error(tensor_map("f4", dims, 2, data, 16), &small, ALK_ELIMIT, "more than 3 elements");
    /* A product that wraps size_t is a limit error, not a small tensor. */
    int64_t huge[4] = {INT64_MAX, INT64_MAX, 4, 0};
    expect_error(tensor_map("u1", huge, 4, data, 0), NULL, ALK_ELIMIT, "more than 16777216");
    alk_value_pair text_data[3] = {{str("dtype"), str("u1")},
                                   {str("shape"), alk_value_new_array(&arena, NULL, 0)},
                                   {str("data"), str("x")}};
    expect_error(alk_value_new_map(&arena, text_data, 3), NULL, ALK_EINVAL,
                 "'data' must be a bin, not str");
}
