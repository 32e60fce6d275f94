/* Core library: error map, allocator fault injection, vectors, buffers, arena, number format,
 * gzip. */
#include "core/alloc.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/fxp.h"
#include "core/io.h"
#include "core/numfmt.h"
#include "core/vec.h"

#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

Test(err, names_and_texts_are_stable) {
    cr_assert_eq(ALK_OK, 0);
    cr_assert_eq(ALK_EINVAL, 1);
    cr_assert_eq(ALK_ENOMEM, 2);
    cr_assert_str_eq(alk_err_name(ALK_EINVAL), "EINVAL");
    cr_assert_str_eq(alk_err_name(ALK_ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(alk_err_name(9999), "EUNKNOWN");
    cr_assert_str_eq(alk_strerror(ALK_ENOMEM), "out of memory");
    cr_assert_str_eq(alk_strerror(-5), "unknown error");
}

Test(err, diag_set_and_prefix) {
    alk_diag diag = {{0}};
    cr_assert_eq(alk_diag_set(&diag, ALK_EINVAL, "op %d bad", 7), ALK_EINVAL);
    alk_diag_prefix(&diag, "%s: ", "file.json");
    cr_assert_str_eq(diag.message, "file.json: op 7 bad");
    cr_assert_eq(alk_diag_set(NULL, ALK_EIO, "ignored"), ALK_EIO);
}

Test(alloc, fails_exactly_the_nth_allocation) {
    alk_alloc_fail_at(3, false);
    void *a = alk_malloc(8);
    void *b = alk_malloc(8);
    void *c = alk_malloc(8);
    void *d = alk_malloc(8);
    alk_alloc_fail_at(0, false);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_null(c);
    cr_assert_not_null(d);
    alk_free(a);
    alk_free(b);
    alk_free(d);
}

Test(alloc, sticky_failure_and_live_count) {
    long live = alk_alloc_live();
    alk_alloc_fail_at(2, true);
    void *a = alk_malloc(8);
    void *b = alk_calloc(2, 8);
    void *c = alk_realloc(NULL, 8);
    cr_assert_eq(alk_alloc_count(), 3);
    alk_alloc_fail_at(0, false);
    cr_assert_not_null(a);
    cr_assert_null(b);
    cr_assert_null(c);
    cr_assert_eq(alk_alloc_live(), live + 1);
    alk_free(a);
    cr_assert_eq(alk_alloc_live(), live);
}

Test(alloc, overflow_checks) {
    size_t r = 0;
    cr_assert(alk_mul_size(1 << 20, 1 << 20, &r));
    cr_assert_eq(r, (size_t)1 << 40);
    cr_assert_not(alk_mul_size(SIZE_MAX / 2, 3, &r));
    cr_assert_null(alk_calloc(SIZE_MAX / 2, 3));
}

Test(vec, push_append_detach) {
    alk_vec v;
    alk_vec_init(&v, sizeof(int));
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(alk_vec_push(&v, &i), ALK_OK);
    }
    int more[3] = {7, 8, 9};
    cr_assert_eq(alk_vec_append(&v, more, 3), ALK_OK);
    cr_assert_eq(v.len, 1003);
    cr_assert_eq(ALK_VEC_AT(&v, int, 999), 999);
    cr_assert_eq(ALK_VEC_AT(&v, int, 1002), 9);
    int *items = alk_vec_detach(&v);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(items[500], 500);
    alk_free(items);
    alk_vec_fini(&v);
}

Test(buf, integers_in_decimal) {
    alk_buf b;
    alk_buf_init(&b);
    static const int64_t values[] = {0, 7, -1, 10, -90, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        alk_buf_put_i64(&b, values[i]);
        alk_buf_putc(&b, ' ');
    }
    cr_assert_str_eq(b.data, "0 7 -1 10 -90 9223372036854775807 -9223372036854775808 ");
    alk_buf_fini(&b);
}

Test(buf, sticky_error_stops_appends) {
    alk_buf b;
    alk_buf_init(&b);
    alk_buf_puts(&b, "abc");
    alk_buf_printf(&b, "-%d-", 42);
    alk_buf_put_i64(&b, INT64_MIN);
    cr_assert_str_eq(b.data, "abc-42--9223372036854775808");
    alk_alloc_fail_at(1, true);
    char big[4096];
    memset(big, 'x', sizeof(big));
    alk_buf_append(&b, big, sizeof(big));
    alk_alloc_fail_at(0, false);
    cr_assert_eq(alk_buf_error(&b), ALK_ENOMEM);
    alk_buf_puts(&b, "more");
    cr_assert_str_eq(b.data, "abc-42--9223372036854775808");
    alk_buf_fini(&b);
}

Test(arena, aligned_and_freed_at_once) {
    long live = alk_alloc_live();
    alk_arena arena;
    alk_arena_init(&arena, 256);
    for (int i = 1; i < 200; i++) {
        unsigned char *p = alk_arena_alloc(&arena, (size_t)i);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, (size_t)i);
    }
    int *z = alk_arena_calloc(&arena, 1000, sizeof(int));
    cr_assert_eq(z[999], 0);
    cr_assert_null(alk_arena_calloc(&arena, SIZE_MAX / 2, 4));
    alk_arena_fini(&arena);
    cr_assert_eq(alk_alloc_live(), live);
}

/* Expected strings are Python 3's repr() of the same doubles (spec trace-alir.md §4.5). */
Test(numfmt, python_repr) {
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.0625, "0.0625"},
        {-256.0, "-256.0"},
        {9.5367431640625e-07, "9.5367431640625e-07"},
        {1.7014118346046923e+38, "1.7014118346046923e+38"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {4.669921875, "4.669921875"},
        {1.119140625, "1.119140625"},
        {361.375, "361.375"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123.0, "123.0"},
        {2.5e-5, "2.5e-05"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[ALK_FMT_DOUBLE_MAX];
        size_t n = alk_fmt_double(text, cases[i].value);
        cr_assert_str_eq(text, cases[i].text);
        cr_assert_eq(n, strlen(cases[i].text));
    }
}

/* Hand-worked values of spec cmvm.md §2.1-2.2 and trace-alir.md §0. */
Test(fxp, lsb_and_ceil_log2_on_float32) {
    cr_assert_eq(alk_lsb_loc(1.0f), 0);
    cr_assert_eq(alk_lsb_loc(0.5f), -1);
    cr_assert_eq(alk_lsb_loc(12.0f), 2);
    cr_assert_eq(alk_lsb_loc(0.0f), 127);
    cr_assert_eq(alk_lsb_loc((float)0.1), -27);
    cr_assert_eq(alk_lsb_loc((float)(33554432.0 + 1.0)), 25);
    cr_assert_eq(alk_iceil_log2((float)(33554432.0 + 1.0)), 25);
    cr_assert_eq(alk_iceil_log2(0.0f), -127);
    cr_assert_eq(alk_iceil_log2(3.0f), 2);
    cr_assert_eq(alk_iceil_log2(-4.0f), 2);
    cr_assert_eq(alk_iceil_log2(0.0625f), -4);
}

/* Python's gzip.decompress is the oracle here: it reads concatenated members as the
 * concatenation of their contents, skips zero padding after a member and refuses other bytes. */
Test(gzip, members_padding_and_trailing_bytes) {
    alk_buf packed;
    alk_buf back;
    alk_buf_init(&packed);
    alk_buf_init(&back);
    alk_diag diag = {{0}};
    cr_assert_eq(alk_gzip("first,", 6, &packed, &diag), ALK_OK);
    cr_assert_eq(alk_gzip("second", 6, &packed, &diag), ALK_OK);
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1 << 30, &back, &diag), ALK_OK, "%s",
                 diag.message);
    cr_assert_eq(back.len, 12);
    cr_assert_eq(memcmp(back.data, "first,second", 12), 0);

    alk_buf_append(&packed, "\0\0\0\0", 4);
    alk_buf_reset(&back);
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1 << 30, &back, &diag), ALK_OK);
    cr_assert_eq(back.len, 12);

    alk_buf_append(&packed, "junk", 4);
    alk_buf_reset(&back);
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1 << 30, &back, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "4 bytes after the end of the stream") != NULL, "%s",
              diag.message);
    alk_buf_fini(&packed);
    alk_buf_fini(&back);
}

Test(gzip, round_trip_truncation_and_garbage) {
    alk_buf plain;
    alk_buf packed;
    alk_buf back;
    alk_buf_init(&plain);
    alk_buf_init(&packed);
    alk_buf_init(&back);
    for (int i = 0; i < 20000; i++) {
        alk_buf_printf(&plain, "%d,", i * 7919 % 1000);
    }
    alk_diag diag = {{0}};
    cr_assert_eq(alk_gzip(plain.data, plain.len, &packed, &diag), ALK_OK);
    cr_assert(alk_is_gzip(packed.data, packed.len));
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1 << 30, &back, &diag), ALK_OK);
    cr_assert_eq(back.len, plain.len);
    cr_assert_eq(memcmp(back.data, plain.data, plain.len), 0);

    for (size_t cut = 0; cut < packed.len; cut += packed.len / 37 + 1) {
        alk_buf_reset(&back);
        int rv = alk_gunzip(packed.data, cut, 1 << 30, &back, &diag);
        cr_assert_eq(rv, ALK_EINVAL, "cut at %zu gave %d", cut, rv);
        cr_assert(strstr(diag.message, "gzip") != NULL, "%s", diag.message);
    }
    packed.data[packed.len / 2] ^= 0x5a;
    packed.data[packed.len / 2 + 1] ^= 0xff;
    alk_buf_reset(&back);
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1 << 30, &back, &diag), ALK_EINVAL);

    alk_buf_reset(&back);
    alk_buf_reset(&packed);
    cr_assert_eq(alk_gzip(plain.data, plain.len, &packed, &diag), ALK_OK);
    cr_assert_eq(alk_gunzip(packed.data, packed.len, 1000, &back, &diag), ALK_ELIMIT);
    alk_buf_fini(&plain);
    alk_buf_fini(&packed);
    alk_buf_fini(&back);
}
