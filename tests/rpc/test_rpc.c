/* The wire layer (src/rpc): the msgpack decoder against msgpack-c, limits before allocation,
 * errors naming the field, request validation from the generated tables, the convert request,
 * error and conversion replies, and allocation failures. */
#include "core/alloc.h"
#include "core/arena.h"
#include "core/vec.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static alk_value_limits small_limits(void) {
    return (alk_value_limits){
        .max_depth = 8, .max_items = 100, .max_total = 1000, .max_string = 1000};
}

/* Decodes `len` bytes with `limits`; returns the code and fills `err`. */
static int decode(const void *bytes, size_t len, const alk_value_limits *limits, alk_arena *arena,
                  const alk_value **ret, alk_rpc_error *err) {
    alk_rpc_error_clear(err);
    return alk_value_from_msgpack(bytes, len, limits, arena, ret, err);
}

/* Packs a request map with msgpack-c from alternating key/value writers. */
typedef struct packer {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} packer;

static void packer_init(packer *p) {
    msgpack_sbuffer_init(&p->sbuf);
    msgpack_packer_init(&p->pk, &p->sbuf, msgpack_sbuffer_write);
}

static void pack_str(packer *p, const char *s) {
    msgpack_pack_str(&p->pk, strlen(s));
    msgpack_pack_str_body(&p->pk, s, strlen(s));
}

/* {v: 1, id: 7, method: M} plus n more fields the caller packs. */
static void pack_envelope(packer *p, const char *method, size_t n_more) {
    msgpack_pack_map(&p->pk, 3 + n_more);
    pack_str(p, "v");
    msgpack_pack_uint64(&p->pk, 1);
    pack_str(p, "id");
    msgpack_pack_uint64(&p->pk, 7);
    pack_str(p, "method");
    pack_str(p, method);
}

static int decode_request(packer *p, alk_arena *arena, alk_rpc_request *req, alk_rpc_error *err) {
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    return alk_rpc_decode_request(p->sbuf.data, p->sbuf.size, ALK_RPC_SOCKET_SERVICE, false,
                                  &limits, arena, req, err);
}

/* ---- decoder -------------------------------------------------------------------------------- */

/* The example model's convert request, {"framework": "alkaid", "model": {"input_shape":
 * [4, 5]}}, packed into a fresh `p` (destroy its sbuf afterwards). */
static void pack_example_convert(packer *p) {
    packer_init(p);
    pack_envelope(p, "convert", 2);
    pack_str(p, "framework");
    pack_str(p, "alkaid");
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "input_shape");
    msgpack_pack_array(&p->pk, 2);
    msgpack_pack_uint64(&p->pk, 4);
    msgpack_pack_uint64(&p->pk, 5);
}

Test(wire, decodes_every_type_like_msgpack_c) {
    packer p;
    packer_init(&p);
    msgpack_pack_array(&p.pk, 14);
    msgpack_pack_nil(&p.pk);
    msgpack_pack_true(&p.pk);
    msgpack_pack_false(&p.pk);
    msgpack_pack_int64(&p.pk, -5);
    msgpack_pack_int64(&p.pk, -200000);
    msgpack_pack_uint64(&p.pk, 300);
    msgpack_pack_uint64(&p.pk, UINT64_MAX);
    msgpack_pack_int64(&p.pk, INT64_MIN);
    msgpack_pack_float(&p.pk, 1.5f);
    msgpack_pack_double(&p.pk, -2.25);
    pack_str(&p, "h\xc3\xa9llo");
    msgpack_pack_bin(&p.pk, 3);
    msgpack_pack_bin_body(&p.pk, "\x00\x01\x02", 3);
    msgpack_pack_map(&p.pk, 1);
    pack_str(&p, "k");
    msgpack_pack_array(&p.pk, 0);
    msgpack_pack_str(&p.pk, 0);

    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *v;
    alk_rpc_error err;
    cr_assert_eq(decode(p.sbuf.data, p.sbuf.size, NULL, &arena, &v, &err), ALK_OK, "%s",
                 err.diag.message);
    cr_assert_eq(v->kind, ALK_VALUE_ARRAY);
    cr_assert_eq(v->as.array.len, 14);
    const alk_value *const *it = v->as.array.items;
    cr_assert_eq(it[0]->kind, ALK_VALUE_NIL);
    cr_assert(it[1]->as.boolean && !it[2]->as.boolean);
    cr_assert_eq(it[3]->as.integer, -5);
    cr_assert_eq(it[4]->as.integer, -200000);
    cr_assert_eq(it[5]->as.integer, 300);
    cr_assert_eq(it[6]->kind, ALK_VALUE_FLOAT); /* beyond int64: a float, as in the JSON decoder */
    cr_assert_eq(it[6]->as.number, 18446744073709551615.0);
    cr_assert_eq(it[7]->as.integer, INT64_MIN);
    cr_assert_eq(it[8]->as.number, 1.5);
    cr_assert_eq(it[9]->as.number, -2.25);
    cr_assert_str_eq(it[10]->as.str.bytes, "h\xc3\xa9llo");
    cr_assert_eq(it[11]->kind, ALK_VALUE_BIN);
    cr_assert_eq(it[11]->as.str.len, 3);
    cr_assert_eq(memcmp(it[11]->as.str.bytes, "\x00\x01\x02", 3), 0);
    cr_assert_str_eq(it[12]->as.map.pairs[0].key->as.str.bytes, "k");
    cr_assert_eq(it[13]->as.str.len, 0);

    /* Re-encoding with our writer gives bytes msgpack-c decodes to the same object. */
    alk_buf out;
    alk_buf_init(&out);
    alk_mp_value(&out, v);
    cr_assert_eq(alk_buf_error(&out), ALK_OK);
    msgpack_unpacked a;
    msgpack_unpacked b;
    msgpack_unpacked_init(&a);
    msgpack_unpacked_init(&b);
    cr_assert_eq(msgpack_unpack_next(&a, p.sbuf.data, p.sbuf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(msgpack_unpack_next(&b, out.data, out.len, NULL), MSGPACK_UNPACK_SUCCESS);
    /* msgpack-c keeps UINT64_MAX as an integer; we made it a float: compare the rest. */
    a.data.via.array.ptr[6] = b.data.via.array.ptr[6];
    a.data.via.array.ptr[8] = b.data.via.array.ptr[8]; /* float32 became float64 */
    cr_assert(msgpack_object_equal(a.data, b.data));
    msgpack_unpacked_destroy(&a);
    msgpack_unpacked_destroy(&b);
    alk_buf_fini(&out);
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

Test(wire, map_writer_counts_the_pairs_it_wrote) {
    alk_buf out;
    alk_buf_init(&out);
    alk_mp_map_writer outer;
    alk_mp_map_open(&outer, &out);
    alk_mp_key(&outer, "a");
    alk_mp_uint(&out, 1);
    alk_mp_key(&outer, "inner");
    alk_mp_map_writer inner;
    alk_mp_map_open(&inner, &out);
    for (int i = 0; i < 300; i++) { /* past fixmap and map16 counts */
        char key[16];
        (void)snprintf(key, sizeof(key), "k%d", i);
        alk_mp_key(&inner, key);
        alk_mp_int(&out, -i);
    }
    alk_mp_map_close(&inner);
    alk_mp_keyn(&outer, "empty!", 5);
    alk_mp_map_writer empty;
    alk_mp_map_open(&empty, &out);
    alk_mp_map_close(&empty);
    alk_mp_map_close(&outer);
    cr_assert_eq(alk_buf_error(&out), ALK_OK);
    /* msgpack-c, an independent decoder, reads the counts. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, out.data, out.len, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_object top = u.data;
    cr_assert_eq(top.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(top.via.map.size, 3);
    cr_assert_eq(top.via.map.ptr[1].val.via.map.size, 300);
    cr_assert_eq(top.via.map.ptr[1].val.via.map.ptr[299].val.via.i64, -299);
    cr_assert_eq(top.via.map.ptr[2].key.via.str.size, 5);
    cr_assert_eq(top.via.map.ptr[2].val.via.map.size, 0);
    msgpack_unpacked_destroy(&u);
    alk_buf_fini(&out);
}

Test(wire, every_truncation_is_a_clean_eproto) {
    packer p;
    pack_example_convert(&p);
    long live = alk_alloc_live();
    for (size_t n = 0; n < p.sbuf.size; n++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        const alk_value *v;
        alk_rpc_error err;
        int rv = decode(p.sbuf.data, n, NULL, &arena, &v, &err);
        cr_assert_eq(rv, ALK_EPROTO, "prefix of %zu bytes: %s", n, alk_err_name(rv));
        cr_assert(strstr(err.diag.message, "truncated") != NULL, "%s", err.diag.message);
        alk_arena_fini(&arena);
    }
    cr_assert_eq(alk_alloc_live(), live);
    msgpack_sbuffer_destroy(&p.sbuf);
}

Test(wire, huge_declared_sizes_fail_before_any_allocation) {
    /* str32 / bin32 / array32 / map32 declaring 1 GiB or 4 Gi entries, with 3 bytes of data. */
    static const unsigned char messages[][8] = {
        {0xdb, 0x40, 0x00, 0x00, 0x00, 'a', 'b', 'c'},
        {0xc6, 0x40, 0x00, 0x00, 0x00, 'a', 'b', 'c'},
        {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03},
        {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 0x01},
    };
    alk_value_limits limits = small_limits();
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        const alk_value *v;
        alk_rpc_error err;
        alk_alloc_fail_at(0, false); /* resets the counter */
        cr_assert_eq(decode(messages[i], 8, &limits, &arena, &v, &err), ALK_ELIMIT, "message %zu",
                     i);
        cr_assert_eq(alk_alloc_count(), 0, "message %zu allocated before refusing", i);
        alk_arena_fini(&arena);
    }
    /* Within the limits but beyond the bytes present: EPROTO, still without allocating. */
    alk_value_limits big = {
        .max_depth = 8, .max_items = SIZE_MAX, .max_total = SIZE_MAX, .max_string = SIZE_MAX};
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        const alk_value *v;
        alk_rpc_error err;
        alk_alloc_fail_at(0, false);
        cr_assert_eq(decode(messages[i], 8, &big, &arena, &v, &err), ALK_EPROTO, "message %zu", i);
        cr_assert_eq(alk_alloc_count(), 0, "message %zu allocated before refusing", i);
        alk_arena_fini(&arena);
    }
}

Test(wire, limits_name_the_path) {
    packer p;
    packer_init(&p);
    msgpack_pack_map(&p.pk, 1);
    pack_str(&p, "model");
    msgpack_pack_map(&p.pk, 1);
    pack_str(&p, "weights");
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_nil(&p.pk);
    msgpack_pack_bin(&p.pk, 2000);
    char blob[2000] = {0};
    msgpack_pack_bin_body(&p.pk, blob, sizeof(blob));
    alk_value_limits limits = small_limits();
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *v;
    alk_rpc_error err;
    cr_assert_eq(decode(p.sbuf.data, p.sbuf.size, &limits, &arena, &v, &err), ALK_ELIMIT);
    cr_assert_str_eq(err.where, "model.weights[1]");
    cr_assert(strstr(err.diag.message, "max_string_bytes") != NULL, "%s", err.diag.message);
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

Test(wire, depth_items_and_nodes_limits) {
    alk_value_limits limits = small_limits();
    unsigned char deep[16];
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
    deep[15] = 0xc0;
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *v;
    alk_rpc_error err;
    cr_assert_eq(decode(deep, sizeof(deep), &limits, &arena, &v, &err), ALK_ELIMIT);
    cr_assert(strstr(err.diag.message, "max_depth") != NULL, "%s", err.diag.message);

    /* 101 items > max_items = 100 */
    unsigned char items[3 + 101];
    items[0] = 0xdc;
    items[1] = 0;
    items[2] = 101;
    memset(items + 3, 0xc0, 101);
    cr_assert_eq(decode(items, sizeof(items), &limits, &arena, &v, &err), ALK_ELIMIT);
    cr_assert(strstr(err.diag.message, "max_items") != NULL, "%s", err.diag.message);

    /* 11 arrays of 100 nils: 1112 nodes > max_total = 1000 */
    static unsigned char many[3 + 11 * 103];
    many[0] = 0xdc;
    many[1] = 0;
    many[2] = 11;
    for (size_t i = 0; i < 11; i++) {
        unsigned char *a = many + 3 + i * 103;
        a[0] = 0xdc;
        a[1] = 0;
        a[2] = 100;
        memset(a + 3, 0xc0, 100);
    }
    cr_assert_eq(decode(many, sizeof(many), &limits, &arena, &v, &err), ALK_ELIMIT);
    cr_assert(strstr(err.diag.message, "max_nodes") != NULL, "%s", err.diag.message);
    alk_arena_fini(&arena);
}

Test(wire, malformed_bytes) {
    static const struct {
        unsigned char bytes[8];
        size_t len;
        const char *needle;
    } cases[] = {
        {{0xc1}, 1, "0xc1"},
        {{0xd4, 0x01, 0x02}, 3, "ext"},
        {{0xc7, 0x01, 0x05, 0x00}, 4, "ext"},
        {{0xa2, 0xff, 0xfe}, 3, "UTF-8"},
        {{0xa3, 'a', 0x00, 'b'}, 4, "NUL"},
        {{0xa3, 0xed, 0xa0, 0x80}, 4, "UTF-8"}, /* a surrogate */
        {{0xa2, 0xc0, 0x80}, 3, "UTF-8"},       /* an overlong NUL */
        {{0x81, 0x01, 0x02}, 3, "key"},
        {{0xc0, 0xc0}, 2, "follow"},
        {{0}, 0, "truncated"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        alk_arena arena;
        alk_arena_init(&arena, 0);
        const alk_value *v;
        alk_rpc_error err;
        cr_assert_eq(decode(cases[i].bytes, cases[i].len, NULL, &arena, &v, &err), ALK_EPROTO,
                     "case %zu", i);
        cr_assert(strstr(err.diag.message, cases[i].needle) != NULL, "case %zu: %s", i,
                  err.diag.message);
        alk_arena_fini(&arena);
    }
}

Test(wire, allocation_failures_are_clean) {
    packer p;
    pack_example_convert(&p);
    long live = alk_alloc_live();
    bool succeeded = false;
    for (unsigned long nth = 1; nth < 100 && !succeeded; nth++) {
        alk_arena arena;
        alk_arena_init(&arena, 16); /* tiny blocks: many allocations */
        alk_rpc_request req;
        alk_rpc_error err;
        alk_alloc_fail_at(nth, true);
        int rv = decode_request(&p, &arena, &req, &err);
        alk_alloc_fail_at(0, false);
        cr_assert(rv == ALK_OK || rv == ALK_ENOMEM, "nth %lu: %s", nth, alk_err_name(rv));
        succeeded = rv == ALK_OK;
        alk_arena_fini(&arena);
        cr_assert_eq(alk_alloc_live(), live, "leak at nth %lu", nth);
    }
    cr_assert(succeeded);
    msgpack_sbuffer_destroy(&p.sbuf);
}

/* ---- requests ------------------------------------------------------------------------------- */

/* Decodes the convert request packed in `p` and builds its conversion request, with the default
 * limits; both must succeed. */
static void decode_convert(packer *p, alk_arena *arena, alk_convert_request *ret_request,
                           alk_rpc_convert_options *ret_options) {
    alk_rpc_request req;
    alk_rpc_error err;
    cr_assert_eq(decode_request(p, arena, &req, &err), ALK_OK, "%s", err.diag.message);
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    cr_assert_eq(alk_rpc_convert_request(&req, &limits, arena, ret_request, ret_options, &err),
                 ALK_OK, "%s", err.diag.message);
}

Test(request, valid_convert_request) {
    packer p;
    packer_init(&p);
    pack_envelope(&p, "convert", 2);
    pack_str(&p, "framework");
    pack_str(&p, "alkaid");
    pack_str(&p, "model");
    msgpack_pack_map(&p.pk, 1);
    pack_str(&p, "input_shape");
    msgpack_pack_nil(&p.pk);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_rpc_error err;
    cr_assert_eq(decode_request(&p, &arena, &req, &err), ALK_OK, "%s", err.diag.message);
    cr_assert_str_eq(req.method->name, "convert");
    cr_assert_eq(req.id->as.integer, 7);
    cr_assert(req.method->flags & ALK_RPC_METHOD_QUEUED);

    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    alk_convert_request creq;
    alk_rpc_convert_options opts;
    cr_assert_eq(alk_rpc_convert_request(&req, &limits, &arena, &creq, &opts, &err), ALK_OK);
    cr_assert_str_eq(creq.framework, "alkaid");
    cr_assert_eq(creq.n_inputs, 0);
    cr_assert_eq(creq.hwconf.adder_size, 1);
    cr_assert_eq(creq.hwconf.carry_size, 1);
    cr_assert_eq(creq.hwconf.latency_cutoff, -1.0);
    cr_assert_eq(creq.solver.cmvm.mode, ALK_SOLVER_DEFAULT_MODE);
    cr_assert_eq(creq.max_input_elements, limits.max_tensor_elements);
    cr_assert(!opts.gzip);
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

Test(request, solver_options_become_typed_options_at_decode) {
    packer p;
    packer_init(&p);
    pack_envelope(&p, "convert", 4);
    pack_str(&p, "module"); /* the framework comes from the module's first component */
    pack_str(&p, "alkaid.converter.example");
    pack_str(&p, "model");
    msgpack_pack_map(&p.pk, 0);
    pack_str(&p, "hwconf");
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_int(&p.pk, -1);
    msgpack_pack_int(&p.pk, 3);
    msgpack_pack_int(&p.pk, 5);
    pack_str(&p, "solver_options");
    msgpack_pack_map(&p.pk, 7);
    pack_str(&p, "method0");
    pack_str(&p, "mc-pdc");
    pack_str(&p, "method1");
    pack_str(&p, "auto");
    pack_str(&p, "hard_dc");
    msgpack_pack_int(&p.pk, 3);
    pack_str(&p, "decompose_dc");
    msgpack_pack_int(&p.pk, -1);
    pack_str(&p, "binary_lut");
    msgpack_pack_false(&p.pk);
    pack_str(&p, "binary_lut_width");
    msgpack_pack_nil(&p.pk);
    pack_str(&p, "mode");
    pack_str(&p, "improved");
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_convert_request creq;
    alk_rpc_convert_options opts;
    decode_convert(&p, &arena, &creq, &opts);
    cr_assert_str_eq(creq.framework, "alkaid");
    cr_assert_eq(creq.hwconf.adder_size, -1);
    cr_assert_eq(creq.hwconf.carry_size, 3);
    cr_assert_eq(creq.hwconf.latency_cutoff, 5.0);
    cr_assert_eq(creq.solver.cmvm.method0, ALK_CMVM_MC_PDC);
    cr_assert_eq(creq.solver.cmvm.method1, ALK_CMVM_AUTO);
    cr_assert_eq(creq.solver.cmvm.hard_dc, 3);
    cr_assert_eq(creq.solver.cmvm.decompose_dc, -1);
    cr_assert(creq.solver.cmvm.search_all_decompose_dc, "untouched options keep their default");
    cr_assert(!creq.solver.binary_lut);
    cr_assert_eq(creq.solver.binary_lut_width, 6, "nil is the reference's default width");
    cr_assert_eq(creq.solver.cmvm.mode, ALK_CMVM_IMPROVED);
    cr_assert_eq(creq.solver.cmvm.threads, 1, "a conversion's solver stays on its worker");
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

/* One request with a field set by `fill`, expected to fail with `code` at `where`. */
typedef void (*fill_fn)(packer *p);

static void expect_failure(const char *method, size_t n_more, fill_fn fill, int code,
                           const char *where, const char *needle) {
    packer p;
    packer_init(&p);
    pack_envelope(&p, method, n_more);
    fill(&p);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_rpc_error err;
    int rv = decode_request(&p, &arena, &req, &err);
    if (rv == ALK_OK && strcmp(method, "convert") == 0) {
        alk_rpc_limits limits;
        alk_rpc_limits_default(&limits);
        limits.max_tensor_elements = 1000;
        alk_convert_request creq;
        alk_rpc_convert_options opts;
        rv = alk_rpc_convert_request(&req, &limits, &arena, &creq, &opts, &err);
    }
    cr_assert_eq(rv, code, "%s: got %s (%s)", where, alk_err_name(rv), err.diag.message);
    cr_assert_str_eq(err.where, where, "message: %s", err.diag.message);
    cr_assert(strstr(err.diag.message, needle) != NULL, "%s", err.diag.message);
    cr_assert_eq(err.id != NULL ? err.id->as.integer : -1, 7, "the id must be echoed");
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

static void model_ok(packer *p) {
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 0);
}

static void fill_missing_model(packer *p) {
    pack_str(p, "framework");
    pack_str(p, "alkaid");
}

static void fill_model_wrong_type(packer *p) {
    pack_str(p, "model");
    msgpack_pack_array(&p->pk, 0);
}

static void fill_hwconf_short(packer *p) {
    model_ok(p);
    pack_str(p, "hwconf");
    msgpack_pack_array(&p->pk, 2);
    msgpack_pack_int(&p->pk, 1);
    msgpack_pack_int(&p->pk, 1);
}

static void fill_hwconf_item(packer *p) {
    model_ok(p);
    pack_str(p, "hwconf");
    msgpack_pack_array(&p->pk, 3);
    msgpack_pack_int(&p->pk, 1);
    pack_str(p, "x");
    msgpack_pack_int(&p->pk, 1);
}

static void fill_encoding(packer *p) {
    model_ok(p);
    pack_str(p, "alir_encoding");
    pack_str(p, "zstd");
}

static void fill_inputs_shape(packer *p) {
    model_ok(p);
    pack_str(p, "inputs");
    msgpack_pack_array(&p->pk, 1);
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "shape");
    msgpack_pack_array(&p->pk, 9);
    for (int i = 0; i < 9; i++) {
        msgpack_pack_int(&p->pk, 1);
    }
}

static void fill_inputs_kif(packer *p) {
    model_ok(p);
    pack_str(p, "inputs");
    msgpack_pack_array(&p->pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(&p->pk, 2);
        pack_str(p, "shape");
        msgpack_pack_array(&p->pk, 1);
        msgpack_pack_int(&p->pk, 3);
        pack_str(p, "kif");
        msgpack_pack_array(&p->pk, 3);
        msgpack_pack_int(&p->pk, i == 1 ? 2 : 1); /* k = 2 in the second input */
        msgpack_pack_int(&p->pk, 3);
        msgpack_pack_int(&p->pk, 0);
    }
}

/* inputs_kif without inputs is valid (formats for the tracer's shapes), but checked. */
static void fill_inputs_kif_alone(packer *p) {
    model_ok(p);
    pack_str(p, "inputs_kif");
    msgpack_pack_array(&p->pk, 3);
    msgpack_pack_int(&p->pk, 5);
    msgpack_pack_int(&p->pk, 3);
    msgpack_pack_int(&p->pk, 0);
}

static void fill_tensor(packer *p, const char *dtype, uint64_t d0, uint64_t d1, size_t bytes) {
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "weights");
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "dense/kernel");
    msgpack_pack_map(&p->pk, 3);
    pack_str(p, "dtype");
    pack_str(p, dtype);
    pack_str(p, "shape");
    msgpack_pack_array(&p->pk, 2);
    msgpack_pack_uint64(&p->pk, d0);
    msgpack_pack_uint64(&p->pk, d1);
    pack_str(p, "data");
    msgpack_pack_bin(&p->pk, bytes);
    static char zeros[64];
    msgpack_pack_bin_body(&p->pk, zeros, bytes);
}

static void fill_tensor_too_big(packer *p) {
    fill_tensor(p, "f4", 1u << 20, 1u << 20, 0);
}

static void fill_tensor_overflow(packer *p) {
    fill_tensor(p, "f4", UINT64_C(1) << 40, UINT64_C(1) << 40, 0);
}

static void fill_tensor_bytes(packer *p) {
    fill_tensor(p, "f4", 2, 3, 20);
}

static void fill_tensor_dtype(packer *p) {
    fill_tensor(p, "q7", 2, 3, 24);
}

static void fill_bad_version(packer *p) {
    (void)p;
}

/* A convert request of the example model with one more field, written by `more`. */
static void example_with(packer *p, void (*more)(packer *p)) {
    pack_str(p, "framework");
    pack_str(p, "alkaid");
    model_ok(p);
    more(p);
}

static void hwconf(packer *p, int64_t adder, int64_t carry, double cutoff) {
    pack_str(p, "hwconf");
    msgpack_pack_array(&p->pk, 3);
    msgpack_pack_int64(&p->pk, adder);
    msgpack_pack_int64(&p->pk, carry);
    msgpack_pack_double(&p->pk, cutoff);
}

static void zero_carry(packer *p) {
    hwconf(p, 1, 0, -1);
}

static void zero_adder(packer *p) {
    hwconf(p, 0, 0, 7);
}

static void nan_cutoff(packer *p) {
    hwconf(p, 1, 1, NAN);
}

static void fill_zero_carry(packer *p) {
    example_with(p, zero_carry);
}

static void fill_zero_adder(packer *p) {
    example_with(p, zero_adder);
}

static void fill_nan_cutoff(packer *p) {
    example_with(p, nan_cutoff);
}

/* solver_options with one option: `key` = a string `text`, or the int `number`. */
static void solver_option(packer *p, const char *key, const char *text, int64_t number) {
    pack_str(p, "solver_options");
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, key);
    if (text != NULL) {
        pack_str(p, text);
    } else {
        msgpack_pack_int64(&p->pk, number);
    }
}

static void misspelled_option(packer *p) {
    solver_option(p, "hard_dcc", NULL, 2);
}

static void misspelled_method(packer *p) {
    solver_option(p, "method0", "wmcc", 0);
}

static void auto_method0(packer *p) {
    solver_option(p, "method0", "auto", 0);
}

static void misspelled_mode(packer *p) {
    solver_option(p, "mode", "compatible", 0);
}

static void huge_hard_dc(packer *p) {
    solver_option(p, "hard_dc", NULL, 1 << 30);
}

static void negative_hard_dc(packer *p) {
    solver_option(p, "hard_dc", NULL, -5);
}

static void wide_lut(packer *p) {
    solver_option(p, "binary_lut_width", NULL, 40);
}

static void string_hard_dc(packer *p) {
    solver_option(p, "hard_dc", "2", 0);
}

static void fill_misspelled_option(packer *p) {
    example_with(p, misspelled_option);
}
static void fill_misspelled_method(packer *p) {
    example_with(p, misspelled_method);
}
static void fill_auto_method0(packer *p) {
    example_with(p, auto_method0);
}
static void fill_misspelled_mode(packer *p) {
    example_with(p, misspelled_mode);
}
static void fill_huge_hard_dc(packer *p) {
    example_with(p, huge_hard_dc);
}
static void fill_negative_hard_dc(packer *p) {
    example_with(p, negative_hard_dc);
}
static void fill_wide_lut(packer *p) {
    example_with(p, wide_lut);
}
static void fill_string_hard_dc(packer *p) {
    example_with(p, string_hard_dc);
}

static void fill_no_framework(packer *p) {
    model_ok(p);
}

static void fill_empty_module(packer *p) {
    pack_str(p, "module");
    pack_str(p, ".keras");
    model_ok(p);
}

Test(request, errors_name_the_field) {
    expect_failure("convert", 1, fill_missing_model, ALK_EINVAL, "model", "missing field");
    expect_failure("convert", 1, fill_model_wrong_type, ALK_EINVAL, "model", "must be map");
    expect_failure("convert", 2, fill_hwconf_short, ALK_EINVAL, "hwconf", "3 items");
    expect_failure("convert", 2, fill_hwconf_item, ALK_EINVAL, "hwconf[1]", "int or float");
    expect_failure("convert", 2, fill_encoding, ALK_EINVAL, "alir_encoding", "'json', 'gzip'");
    expect_failure("convert", 2, fill_inputs_shape, ALK_ELIMIT, "inputs[0].shape", "9 dim");
    expect_failure("convert", 2, fill_inputs_kif, ALK_EINVAL, "inputs[1].kif", "k must be");
    expect_failure("convert", 2, fill_inputs_kif_alone, ALK_EINVAL, "inputs_kif", "k must be");
    expect_failure("convert", 1, fill_tensor_too_big, ALK_ELIMIT,
                   "model.weights.dense/kernel.shape", "max_tensor_elements");
    expect_failure("convert", 1, fill_tensor_overflow, ALK_ELIMIT,
                   "model.weights.dense/kernel.shape", "max_tensor_elements");
    expect_failure("convert", 1, fill_tensor_bytes, ALK_EINVAL, "model.weights.dense/kernel.data",
                   "need 24");
    expect_failure("convert", 1, fill_tensor_dtype, ALK_EINVAL, "model.weights.dense/kernel.dtype",
                   "unknown dtype");
    /* Values a conversion would divide by, or loop on, are refused at decode. */
    expect_failure("convert", 3, fill_zero_carry, ALK_EINVAL, "hwconf[1]", "carry_size");
    expect_failure("convert", 3, fill_zero_adder, ALK_EINVAL, "hwconf[0]", "nonzero");
    expect_failure("convert", 3, fill_nan_cutoff, ALK_EINVAL, "hwconf[2]", "finite");
    /* Solver options: names, types and ranges, each naming the option. */
    expect_failure("convert", 3, fill_misspelled_option, ALK_EINVAL, "solver_options.hard_dcc",
                   "unknown solver option 'hard_dcc' (known: method0, method1, hard_dc");
    expect_failure("convert", 3, fill_misspelled_method, ALK_EINVAL, "solver_options.method0",
                   "unknown method 'wmcc' (known: mc, mc-dc, mc-pdc, wmc, wmc-dc, wmc-pdc, dummy)");
    expect_failure("convert", 3, fill_auto_method0, ALK_EINVAL, "solver_options.method0",
                   "unknown method 'auto'");
    expect_failure("convert", 3, fill_misspelled_mode, ALK_EINVAL, "solver_options.mode",
                   "unknown mode 'compatible' (known: improved compat)");
    expect_failure("convert", 3, fill_huge_hard_dc, ALK_EINVAL, "solver_options.hard_dc",
                   "not 1073741824");
    expect_failure("convert", 3, fill_negative_hard_dc, ALK_EINVAL, "solver_options.hard_dc",
                   "not -5");
    expect_failure("convert", 3, fill_wide_lut, ALK_EINVAL, "solver_options.binary_lut_width",
                   "1 to 16, not 40");
    expect_failure("convert", 3, fill_string_hard_dc, ALK_EINVAL, "solver_options.hard_dc",
                   "must be int, not str");
    /* The framework: the request's, else its module's first component. */
    expect_failure("convert", 1, fill_no_framework, ALK_EINVAL, "module", "no framework");
    expect_failure("convert", 2, fill_empty_module, ALK_EINVAL, "module", "'.keras'");
    expect_failure("frobnicate", 0, fill_bad_version, ALK_ENOTSUP, "method", "convert");
    /* Control methods are not on the service socket; hidden test hooks are off. */
    expect_failure("reload", 0, fill_bad_version, ALK_ENOTSUP, "method", "unknown method");
    expect_failure("test.sleep", 0, fill_bad_version, ALK_ENOTSUP, "method", "unknown method");
}

Test(request, envelope_errors) {
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_rpc_error err;

    /* Version 2: EVERSION, id echoed, and the error reply lists the accepted versions. */
    packer p;
    packer_init(&p);
    msgpack_pack_map(&p.pk, 3);
    pack_str(&p, "v");
    msgpack_pack_uint64(&p.pk, 2);
    pack_str(&p, "id");
    pack_str(&p, "abc");
    pack_str(&p, "method");
    pack_str(&p, "ping");
    cr_assert_eq(alk_rpc_decode_request(p.sbuf.data, p.sbuf.size, ALK_RPC_SOCKET_SERVICE, false,
                                        &limits, &arena, &req, &err),
                 ALK_EVERSION);
    cr_assert_str_eq(err.id->as.str.bytes, "abc");
    alk_buf out;
    alk_buf_init(&out);
    cr_assert_eq(alk_rpc_encode_error(&err, &out), ALK_OK);
    const alk_value *reply;
    alk_rpc_error err2;
    cr_assert_eq(decode(out.data, out.len, NULL, &arena, &reply, &err2), ALK_OK);
    cr_assert(!alk_value_get(reply, "ok")->as.boolean);
    cr_assert_str_eq(alk_value_get(reply, "id")->as.str.bytes, "abc");
    const alk_value *e = alk_value_get(reply, "error");
    cr_assert_str_eq(alk_value_get(e, "name")->as.str.bytes, "EVERSION");
    cr_assert_eq(alk_value_get(e, "code")->as.integer, ALK_EVERSION);
    cr_assert_str_eq(alk_value_get(e, "where")->as.str.bytes, "v");
    const alk_value *supported = alk_value_get(e, "supported");
    cr_assert_eq(supported->as.array.len, 1);
    cr_assert_eq(supported->as.array.items[0]->as.integer, 1);
    msgpack_sbuffer_destroy(&p.sbuf);

    /* Duplicate key, not a map, id of the wrong type (nil in the reply). */
    packer_init(&p);
    pack_envelope(&p, "ping", 1);
    pack_str(&p, "method");
    pack_str(&p, "info");
    cr_assert_eq(alk_rpc_decode_request(p.sbuf.data, p.sbuf.size, ALK_RPC_SOCKET_SERVICE, false,
                                        &limits, &arena, &req, &err),
                 ALK_EINVAL);
    cr_assert_str_eq(err.where, "method");
    cr_assert(strstr(err.diag.message, "twice") != NULL);
    msgpack_sbuffer_destroy(&p.sbuf);

    unsigned char array[] = {0x91, 0x01};
    cr_assert_eq(alk_rpc_decode_request(array, sizeof(array), ALK_RPC_SOCKET_SERVICE, false,
                                        &limits, &arena, &req, &err),
                 ALK_EPROTO);
    cr_assert_null(err.id);

    packer_init(&p);
    msgpack_pack_map(&p.pk, 3);
    pack_str(&p, "v");
    msgpack_pack_uint64(&p.pk, 1);
    pack_str(&p, "id");
    msgpack_pack_double(&p.pk, 1.5);
    pack_str(&p, "method");
    pack_str(&p, "ping");
    cr_assert_eq(alk_rpc_decode_request(p.sbuf.data, p.sbuf.size, ALK_RPC_SOCKET_SERVICE, false,
                                        &limits, &arena, &req, &err),
                 ALK_EINVAL);
    cr_assert_str_eq(err.where, "id");
    cr_assert_null(err.id);
    msgpack_sbuffer_destroy(&p.sbuf);

    /* Over max_message_bytes: refused before decoding. */
    limits.max_message_bytes = 4;
    cr_assert_eq(alk_rpc_decode_request("\x80\x80\x80\x80\x80", 5, ALK_RPC_SOCKET_SERVICE, false,
                                        &limits, &arena, &req, &err),
                 ALK_ELIMIT);
    alk_buf_fini(&out);
    alk_arena_fini(&arena);
}

Test(request, framework_inferred_from_module_and_options) {
    packer p;
    packer_init(&p);
    pack_envelope(&p, "convert", 7);
    pack_str(&p, "module");
    pack_str(&p, "keras.src.models.functional");
    model_ok(&p);
    pack_str(&p, "hwconf");
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_int(&p.pk, 2);
    msgpack_pack_int(&p.pk, 3);
    msgpack_pack_double(&p.pk, 4.5);
    pack_str(&p, "inputs");
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_map(&p.pk, 1);
    pack_str(&p, "shape");
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_int(&p.pk, 1);
    msgpack_pack_int(&p.pk, 16);
    pack_str(&p, "inputs_kif");
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_int(&p.pk, 1);
    msgpack_pack_int(&p.pk, 4);
    msgpack_pack_int(&p.pk, 2);
    pack_str(&p, "dump");
    msgpack_pack_true(&p.pk);
    pack_str(&p, "alir_encoding");
    pack_str(&p, "gzip");
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_convert_request creq;
    alk_rpc_convert_options opts;
    decode_convert(&p, &arena, &creq, &opts);
    cr_assert_str_eq(creq.framework, "keras");
    cr_assert_eq(creq.hwconf.adder_size, 2);
    cr_assert_eq(creq.hwconf.carry_size, 3);
    cr_assert_eq(creq.hwconf.latency_cutoff, 4.5);
    cr_assert_eq(creq.n_inputs, 1);
    cr_assert_eq(creq.inputs[0].n_dims, 2);
    cr_assert_eq(creq.inputs[0].dims[1], 16);
    cr_assert(creq.inputs[0].has_kif);
    cr_assert_eq(creq.inputs[0].kif[0], 1);
    cr_assert_eq(creq.inputs[0].kif[1], 4);
    cr_assert_eq(creq.inputs[0].kif[2], 2);
    cr_assert(creq.dump);
    cr_assert(opts.gzip);
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
}

Test(schema, tables_match_the_method_list) {
    /* The generated tables carry every documented method with its socket. */
    static const struct {
        const char *name;
        uint32_t sockets;
    } expected[] = {
        {"convert", ALK_RPC_SOCKET_SERVICE},
        {"ping", ALK_RPC_SOCKET_SERVICE | ALK_RPC_SOCKET_CONTROL},
        {"info", ALK_RPC_SOCKET_SERVICE | ALK_RPC_SOCKET_CONTROL},
        {"plugins", ALK_RPC_SOCKET_SERVICE | ALK_RPC_SOCKET_CONTROL},
        {"reload", ALK_RPC_SOCKET_CONTROL},
        {"load", ALK_RPC_SOCKET_CONTROL},
        {"unload", ALK_RPC_SOCKET_CONTROL},
        {"stats", ALK_RPC_SOCKET_CONTROL},
        {"drain", ALK_RPC_SOCKET_CONTROL},
        {"shutdown", ALK_RPC_SOCKET_CONTROL},
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const alk_rpc_method *m = alk_rpc_method_find(expected[i].name);
        cr_assert_not_null(m, "%s", expected[i].name);
        cr_assert_eq(m->sockets, expected[i].sockets, "%s", expected[i].name);
        cr_assert(!(m->flags & ALK_RPC_METHOD_HIDDEN));
    }
    cr_assert(alk_rpc_method_find("test.sleep")->flags & ALK_RPC_METHOD_HIDDEN);
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    cr_assert_eq(limits.max_dims, 8);
    cr_assert_eq(limits.max_message_bytes, 64u << 20);
}

Test(reply, error_reply_without_id_and_where) {
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_rpc_error_set(&err, ALK_EBUSY, NULL, "queue full");
    alk_buf out;
    alk_buf_init(&out);
    cr_assert_eq(alk_rpc_encode_error(&err, &out), ALK_OK);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *reply;
    alk_rpc_error err2;
    cr_assert_eq(decode(out.data, out.len, NULL, &arena, &reply, &err2), ALK_OK);
    cr_assert_eq(alk_value_get(reply, "v")->as.integer, 1);
    cr_assert_eq(alk_value_get(reply, "id")->kind, ALK_VALUE_NIL);
    const alk_value *e = alk_value_get(reply, "error");
    cr_assert_eq(alk_value_get(e, "code")->as.integer, 6);
    cr_assert_str_eq(alk_value_get(e, "name")->as.str.bytes, "EBUSY");
    cr_assert_str_eq(alk_value_get(e, "message")->as.str.bytes, "queue full");
    cr_assert_eq(alk_value_get(e, "where")->kind, ALK_VALUE_NIL);
    cr_assert_null(alk_value_get(e, "supported"));
    alk_arena_fini(&arena);
    alk_buf_fini(&out);
}

/* A message cut in the middle of a character (a buffer's size) or quoting a file's bytes still
 * makes a reply every client decodes: each stray byte becomes U+FFFD. The decoder refuses a str
 * that is not UTF-8, so the decode below is the check. */
Test(rpc, error_message_that_is_not_utf8) {
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_rpc_error_set(&err, ALK_EINVAL, "layer \xff", "caf\xc3\xa9 \xc3");
    alk_buf out;
    alk_buf_init(&out);
    cr_assert_eq(alk_rpc_encode_error(&err, &out), ALK_OK);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *reply;
    alk_rpc_error err2;
    cr_assert_eq(decode(out.data, out.len, NULL, &arena, &reply, &err2), ALK_OK, "%s",
                 err2.diag.message);
    const alk_value *e = alk_value_get(reply, "error");
    cr_assert_str_eq(alk_value_get(e, "message")->as.str.bytes, "caf\xc3\xa9 \xef\xbf\xbd");
    cr_assert_str_eq(alk_value_get(e, "where")->as.str.bytes, "layer \xef\xbf\xbd");
    alk_arena_fini(&arena);
    alk_buf_fini(&out);
}
