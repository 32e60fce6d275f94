/*
 * Every limit of docs/protocol.md, and every length constraint of a request field, at exactly
 * the limit and one past it, through the request decoder (alk_rpc_decode_request) and the
 * convert request's checks (alk_rpc_convert_request). At the limit the request must pass those
 * checks; one past it the request must be refused with the documented code, naming the field and
 * the limit. tests/rpc/test_limits.py checks the same boundaries through a running daemon.
 *
 * Messages are built with msgpack-c, not with our encoder, and their sizes are counted here.
 */
#include "core/arena.h"
#include "rpc/rpc.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

typedef struct packer {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} packer;

static void pack_str_n(packer *p, const char *s, size_t len) {
    msgpack_pack_str(&p->pk, len);
    msgpack_pack_str_body(&p->pk, s, len);
}

static void pack_str(packer *p, const char *s) {
    pack_str_n(p, s, strlen(s));
}

/* A str of `len` bytes of 'a'. */
static void pack_filler_str(packer *p, size_t len) {
    char buf[8192];
    cr_assert_leq(len, sizeof(buf));
    memset(buf, 'a', len);
    pack_str_n(p, buf, len);
}

/* {v: 1, id: 7, method: M} and the map header for n_more further fields. */
static void pack_envelope(packer *p, const char *method, size_t n_more) {
    msgpack_pack_map(&p->pk, 3 + n_more);
    pack_str(p, "v");
    msgpack_pack_uint64(&p->pk, 1);
    pack_str(p, "id");
    msgpack_pack_uint64(&p->pk, 7);
    pack_str(p, "method");
    pack_str(p, method);
}

/* A convert of the example model, {framework: alkaid, model: {input_shape: [4, 5], ...}}, with
 * `n_model_more` further model fields and `n_more` further top-level fields to pack. */
static void pack_convert(packer *p, size_t n_model_more, size_t n_more) {
    pack_envelope(p, "convert", 2 + n_more);
    pack_str(p, "framework");
    pack_str(p, "alkaid");
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 1 + n_model_more);
    pack_str(p, "input_shape");
    msgpack_pack_array(&p->pk, 2);
    msgpack_pack_uint64(&p->pk, 4);
    msgpack_pack_uint64(&p->pk, 5);
}

/* A tensor {dtype: f4, shape, data} of `n_dims` dimensions of extents `dims` (4 bytes each). */
static void pack_tensor(packer *p, size_t n_dims, const uint64_t *dims) {
    uint64_t elements = 1;
    msgpack_pack_map(&p->pk, 3);
    pack_str(p, "dtype");
    pack_str(p, "f4");
    pack_str(p, "shape");
    msgpack_pack_array(&p->pk, n_dims);
    for (size_t i = 0; i < n_dims; i++) {
        msgpack_pack_uint64(&p->pk, dims[i]);
        elements *= dims[i];
    }
    pack_str(p, "data");
    static const char zeros[4096];
    cr_assert_leq(elements * 4, sizeof(zeros));
    msgpack_pack_bin(&p->pk, elements * 4);
    msgpack_pack_bin_body(&p->pk, zeros, elements * 4);
}

/* ---- the messages, each parametrised by the size n under test --------------------------- */

/* ping with a bin `pad` that makes the message exactly n bytes long (n >= 300). */
static void msg_bytes(packer *p, uint64_t n) {
    static const char zeros[8192];
    packer probe;
    msgpack_sbuffer_init(&probe.sbuf);
    msgpack_packer_init(&probe.pk, &probe.sbuf, msgpack_sbuffer_write);
    pack_envelope(&probe, "ping", 1);
    pack_str(&probe, "pad");
    size_t head = probe.sbuf.size + 3; /* bin16 header: pads of 256..65535 bytes */
    msgpack_sbuffer_destroy(&probe.sbuf);
    cr_assert(n - head >= 256 && n - head <= sizeof(zeros));
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    msgpack_pack_bin(&p->pk, n - head);
    msgpack_pack_bin_body(&p->pk, zeros, n - head);
    cr_assert_eq(p->sbuf.size, n);
}

/* n nested containers counting the top-level map: ping's pad holds n - 1 nested arrays, the
 * innermost empty (empty_inner) or holding a nil. */
static void nest(packer *p, uint64_t n, bool empty_inner) {
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    for (uint64_t i = 1; i < n; i++) {
        bool innermost = i + 1 == n;
        msgpack_pack_array(&p->pk, innermost && empty_inner ? 0 : 1);
    }
    if (!empty_inner) {
        msgpack_pack_nil(&p->pk);
    }
}
static void msg_depth_empty(packer *p, uint64_t n) {
    nest(p, n, true);
}
static void msg_depth_nil(packer *p, uint64_t n) {
    nest(p, n, false);
}

static void msg_array_items(packer *p, uint64_t n) {
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    msgpack_pack_array(&p->pk, n);
    for (uint64_t i = 0; i < n; i++) {
        msgpack_pack_nil(&p->pk);
    }
}

static void msg_map_items(packer *p, uint64_t n) {
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    msgpack_pack_map(&p->pk, n);
    for (uint64_t i = 0; i < n; i++) {
        char key[24];
        (void)snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        pack_str(p, key);
        msgpack_pack_nil(&p->pk);
    }
}

/* n values in all: the top map, 4 keys, 3 envelope values, pad's array and n - 9 nils. */
static void msg_nodes(packer *p, uint64_t n) {
    msg_array_items(p, n - 9);
}

static void msg_str(packer *p, uint64_t n) {
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    pack_filler_str(p, n);
}

static void msg_bin(packer *p, uint64_t n) {
    static const char zeros[256];
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    msgpack_pack_bin(&p->pk, n);
    msgpack_pack_bin_body(&p->pk, zeros, n);
}

static void msg_key(packer *p, uint64_t n) {
    pack_envelope(p, "ping", 1);
    pack_str(p, "pad");
    msgpack_pack_map(&p->pk, 1);
    pack_filler_str(p, n);
    msgpack_pack_nil(&p->pk);
}

/* model.w is a tensor of n elements. */
static void msg_tensor_elements(packer *p, uint64_t n) {
    pack_convert(p, 1, 0);
    pack_str(p, "w");
    pack_tensor(p, 1, &n);
}

/* model.w is a tensor of n dimensions of 1. */
static void msg_tensor_dims(packer *p, uint64_t n) {
    static const uint64_t ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    pack_convert(p, 1, 0);
    pack_str(p, "w");
    pack_tensor(p, n, ones);
}

/* inputs: [{shape: S}] with S = [n] (elements) or n ones (dims). */
static void pack_one_input(packer *p, uint64_t n, bool dims) {
    pack_convert(p, 0, 1);
    pack_str(p, "inputs");
    msgpack_pack_array(&p->pk, 1);
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "shape");
    msgpack_pack_array(&p->pk, dims ? n : 1);
    for (uint64_t i = 0; i < (dims ? n : 1); i++) {
        msgpack_pack_uint64(&p->pk, dims ? 1 : n);
    }
}
static void msg_input_elements(packer *p, uint64_t n) {
    pack_one_input(p, n, false);
}
static void msg_input_dims(packer *p, uint64_t n) {
    pack_one_input(p, n, true);
}

static void msg_graph_nodes(packer *p, uint64_t n) {
    pack_convert(p, 1, 0);
    pack_str(p, "graph");
    msgpack_pack_map(&p->pk, 1);
    pack_str(p, "nodes");
    msgpack_pack_array(&p->pk, n);
    for (uint64_t i = 0; i < n; i++) {
        msgpack_pack_map(&p->pk, 0);
    }
}

static void msg_inputs(packer *p, uint64_t n) {
    pack_convert(p, 0, 1);
    pack_str(p, "inputs");
    msgpack_pack_array(&p->pk, n);
    for (uint64_t i = 0; i < n; i++) {
        msgpack_pack_map(&p->pk, 1);
        pack_str(p, "shape");
        msgpack_pack_array(&p->pk, 1);
        msgpack_pack_uint64(&p->pk, 2);
    }
}

static void msg_inputs_kif(packer *p, uint64_t n) {
    pack_convert(p, 0, 1);
    pack_str(p, "inputs_kif");
    msgpack_pack_array(&p->pk, n);
    for (uint64_t i = 0; i < n; i++) {
        msgpack_pack_array(&p->pk, 3);
        msgpack_pack_uint64(&p->pk, 1);
        msgpack_pack_uint64(&p->pk, 3);
        msgpack_pack_uint64(&p->pk, 2);
    }
}

/* Field constraints of the schemas (docs/protocol.md, "constraints" columns). */
static void msg_id_str(packer *p, uint64_t n) {
    msgpack_pack_map(&p->pk, 3);
    pack_str(p, "v");
    msgpack_pack_uint64(&p->pk, 1);
    pack_str(p, "id");
    pack_filler_str(p, n);
    pack_str(p, "method");
    pack_str(p, "ping");
}

/* id = n - 1: ids "below 2^63" are accepted, so n = 2^63 packs the largest accepted id. */
static void msg_id_uint(packer *p, uint64_t n) {
    msgpack_pack_map(&p->pk, 3);
    pack_str(p, "v");
    msgpack_pack_uint64(&p->pk, 1);
    pack_str(p, "id");
    msgpack_pack_uint64(&p->pk, n - 1);
    pack_str(p, "method");
    pack_str(p, "ping");
}

static void msg_method(packer *p, uint64_t n) {
    msgpack_pack_map(&p->pk, 3);
    pack_str(p, "v");
    msgpack_pack_uint64(&p->pk, 1);
    pack_str(p, "id");
    msgpack_pack_uint64(&p->pk, 7);
    pack_str(p, "method");
    pack_filler_str(p, n);
}

static void msg_framework(packer *p, uint64_t n) {
    pack_envelope(p, "convert", 2);
    pack_str(p, "framework");
    pack_filler_str(p, n);
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 0);
}

static void msg_module(packer *p, uint64_t n) {
    pack_envelope(p, "convert", 2);
    pack_str(p, "module");
    pack_filler_str(p, n);
    pack_str(p, "model");
    msgpack_pack_map(&p->pk, 0);
}

static void msg_load_path(packer *p, uint64_t n) {
    pack_envelope(p, "load", 1);
    pack_str(p, "path");
    char path[8192];
    cr_assert_lt(n, sizeof(path));
    memset(path, 'p', n);
    path[0] = '/';
    pack_str_n(p, path, n);
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef struct limit_case {
    const char *name;
    size_t limit_offset; /* field of alk_rpc_limits set to `limit`; SIZE_MAX: none */
    uint64_t limit;
    void (*build)(packer *p, uint64_t n);
    uint32_t socket;
    int past_code;     /* the code one past the limit */
    const char *where; /* error.where one past the limit ("" = none) */
    const char *says;  /* the message names this */
    int at_code;       /* the code at the limit (ALK_OK, or an error not about the size) */
} limit_case;

#define LIMIT(field) offsetof(alk_rpc_limits, field)
#define SVC ALK_RPC_SOCKET_SERVICE

static const limit_case cases[] = {
    {"message bytes", LIMIT(max_message_bytes), 1024, msg_bytes, SVC, ALK_ELIMIT, "",
     "max_message_bytes", ALK_OK},
    {"depth, innermost empty", LIMIT(max_depth), 6, msg_depth_empty, SVC, ALK_ELIMIT,
     "pad[0][0][0][0][0]", "max_depth", ALK_OK},
    {"depth, innermost holds nil", LIMIT(max_depth), 6, msg_depth_nil, SVC, ALK_ELIMIT,
     "pad[0][0][0][0][0]", "max_depth", ALK_OK},
    {"array items", LIMIT(max_items), 40, msg_array_items, SVC, ALK_ELIMIT, "pad", "max_items",
     ALK_OK},
    {"map entries", LIMIT(max_items), 40, msg_map_items, SVC, ALK_ELIMIT, "pad", "max_items",
     ALK_OK},
    {"values", LIMIT(max_nodes), 100, msg_nodes, SVC, ALK_ELIMIT, "pad[91]", "max_nodes", ALK_OK},
    {"str bytes", LIMIT(max_string_bytes), 16, msg_str, SVC, ALK_ELIMIT, "pad", "max_string_bytes",
     ALK_OK},
    {"bin bytes", LIMIT(max_string_bytes), 16, msg_bin, SVC, ALK_ELIMIT, "pad", "max_string_bytes",
     ALK_OK},
    {"key bytes", LIMIT(max_string_bytes), 16, msg_key, SVC, ALK_ELIMIT, "pad[0]",
     "max_string_bytes", ALK_OK},
    {"tensor elements", LIMIT(max_tensor_elements), 24, msg_tensor_elements, SVC, ALK_ELIMIT,
     "model.w.shape", "max_tensor_elements", ALK_OK},
    {"input elements", LIMIT(max_tensor_elements), 24, msg_input_elements, SVC, ALK_ELIMIT,
     "inputs[0].shape", "max_tensor_elements", ALK_OK},
    {"tensor dims", LIMIT(max_dims), 3, msg_tensor_dims, SVC, ALK_ELIMIT, "model.w.shape",
     "max_dims", ALK_OK},
    {"input dims", LIMIT(max_dims), 3, msg_input_dims, SVC, ALK_ELIMIT, "inputs[0].shape",
     "max_dims", ALK_OK},
    {"input dims at the default", LIMIT(max_dims), 8, msg_input_dims, SVC, ALK_ELIMIT,
     "inputs[0].shape", "max_dims", ALK_OK},
    {"graph nodes", LIMIT(max_graph_nodes), 5, msg_graph_nodes, SVC, ALK_ELIMIT,
     "model.graph.nodes", "max_graph_nodes", ALK_OK},
    {"inputs", LIMIT(max_inputs), 4, msg_inputs, SVC, ALK_ELIMIT, "inputs", "4", ALK_OK},
    {"inputs_kif triples", LIMIT(max_inputs), 4, msg_inputs_kif, SVC, ALK_ELIMIT, "inputs_kif", "4",
     ALK_OK},
    {"id length", SIZE_MAX, 128, msg_id_str, SVC, ALK_EINVAL, "id", "128", ALK_OK},
    {"id below 2^63", SIZE_MAX, (uint64_t)1 << 63, msg_id_uint, SVC, ALK_EINVAL, "id",
     "uint or str", ALK_OK},
    /* A 64-byte method name is a valid name of no method: ENOTSUP, not a length error. */
    {"method length", SIZE_MAX, 64, msg_method, SVC, ALK_EINVAL, "method", "64", ALK_ENOTSUP},
    {"framework length", SIZE_MAX, 64, msg_framework, SVC, ALK_EINVAL, "framework", "64", ALK_OK},
    {"module length", SIZE_MAX, 256, msg_module, SVC, ALK_EINVAL, "module", "256", ALK_OK},
    {"load path length", SIZE_MAX, 4096, msg_load_path, ALK_RPC_SOCKET_CONTROL, ALK_EINVAL, "path",
     "4096", ALK_OK},
};

/* Decodes the message for n and, for convert, builds the conversion request. */
static int check(const limit_case *c, uint64_t n, alk_rpc_error *err) {
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    if (c->limit_offset != SIZE_MAX) {
        *(uint64_t *)((char *)&limits + c->limit_offset) = c->limit;
    }
    packer p;
    msgpack_sbuffer_init(&p.sbuf);
    msgpack_packer_init(&p.pk, &p.sbuf, msgpack_sbuffer_write);
    c->build(&p, n);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request req;
    alk_rpc_error_clear(err);
    int rv = alk_rpc_decode_request(p.sbuf.data, p.sbuf.size, c->socket, false, &limits, &arena,
                                    &req, err);
    if (rv == ALK_OK && strcmp(req.method->name, "convert") == 0) {
        alk_convert_request creq;
        alk_rpc_convert_options opts;
        rv = alk_rpc_convert_request(&req, &limits, &arena, &creq, &opts, err);
    }
    alk_arena_fini(&arena);
    msgpack_sbuffer_destroy(&p.sbuf);
    return rv;
}

Test(limits, each_at_the_limit_and_one_past) {
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const limit_case *c = &cases[i];
        alk_rpc_error err;
        int at = check(c, c->limit, &err);
        cr_expect_eq(at, c->at_code, "%s: %llu is the limit, yet the request got code %d: %s",
                     c->name, (unsigned long long)c->limit, at, err.diag.message);
        int past = check(c, c->limit + 1, &err);
        cr_expect_eq(past, c->past_code, "%s: %llu is past the limit, yet got code %d (%s)",
                     c->name, (unsigned long long)c->limit + 1, past, err.diag.message);
        if (past == c->past_code) {
            cr_expect_str_eq(err.where, c->where, "%s: where is %s", c->name, err.where);
            cr_expect(strstr(err.diag.message, c->says) != NULL, "%s: '%s' does not name '%s'",
                      c->name, err.diag.message, c->says);
        }
    }
}

/* The documented defaults, so that the table above tests the limits clients see. */
Test(limits, defaults_are_the_documented_ones) {
    alk_rpc_limits l;
    alk_rpc_limits_default(&l);
    cr_expect_eq(l.max_message_bytes, 67108864u);
    cr_expect_eq(l.max_depth, 32u);
    cr_expect_eq(l.max_items, 1048576u);
    cr_expect_eq(l.max_nodes, 4194304u);
    cr_expect_eq(l.max_string_bytes, 67108864u);
    cr_expect_eq(l.max_tensor_elements, 16777216u);
    cr_expect_eq(l.max_dims, 8u);
    cr_expect_eq(l.max_graph_nodes, 100000u);
    cr_expect_eq(l.max_inputs, 64u);
    cr_expect_eq(l.default_timeout_ms, 300000u);
    cr_expect_eq(l.max_timeout_ms, 3600000u);
}
