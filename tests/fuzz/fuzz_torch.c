/*
 * libFuzzer harness for the torch tracer (src/plugins/torch): every input is read as a graph
 * message in msgpack (the body of a `convert` request, as `alkaidc convert graph.msgpack` reads
 * an exported file), sent as a `convert` request for framework torch and handled as a daemon's
 * worker handles it: decoded and validated with the limits (alk_rpc_decode_request), its payload
 * checked (alk_rpc_convert_request: tensor byte counts, node count, input shapes), then converted
 * in process by the torch tracer of a plugin generation built once (alk_convert).
 *
 * What must hold: a conversion either succeeds with a program that the interpreter accepts (it
 * validates every op, address and table) and runs on one sample, or fails with one of the
 * documented codes and a message; a failed request's error reply can be written. The payload is
 * untrusted structure: node references (dangling, cycles, forward), argument trees, tensors
 * whose bytes must match shape and dtype, module entries; the walk must name the culprit of each.
 *
 * Small limits keep one execution fast: 1024 elements per tensor or input, 32 graph nodes, 4
 * inputs. The graph comes from the message, the framework is always torch (a message naming
 * another one still reaches this tracer).
 *
 * The generation holds the torch plugin of FUZZ_TORCH_PLUGIN_DIR: under libFuzzer a copy of the
 * plugin compiled with the fuzzer's instrumentation (its coverage steers the fuzzer), in the
 * replay runner the build's own plugin directory. It is built by LLVMFuzzerInitialize, which
 * libFuzzer and replay.c call before the first input, and lives until the process exits.
 */
#include "alir/interp.h"
#include "core/alloc.h"
#include "plugin/registry.h"
#include "rpc/rpc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_RUN_OPS = 1 << 16 };

static alk_generation *generation;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dirs[] = {FUZZ_TORCH_PLUGIN_DIR};
    alk_plugin_config config = {.dirs = dirs, .n_dirs = 1, .strict = true};
    alk_diag diag = {{0}};
    if (alk_generation_build(&config, NULL, &generation, &diag) != ALK_OK ||
        !alk_generation_has_tracer(generation, "torch")) {
        fprintf(stderr, "fuzz_torch: no torch tracer in %s: %s\n", FUZZ_TORCH_PLUGIN_DIR,
                diag.message);
        exit(1);
    }
    return 0;
}

static void small_limits(alk_rpc_limits *limits) {
    alk_rpc_limits_default(limits);
    limits->max_message_bytes = 1 << 20;
    limits->max_items = 4096;
    limits->max_nodes = 65536;
    limits->max_string_bytes = 1 << 16;
    limits->max_tensor_elements = 1024;
    limits->max_graph_nodes = 32;
    limits->max_inputs = 4;
}

/* The request a client sends for `message` (a map): the envelope, the message's fields but
 * the envelope's and the framework's own, then framework torch. */
static void write_request(const alk_value *message, alk_buf *out) {
    static const char *const replaced[] = {"v", "id", "method", "framework"};
    alk_mp_map_writer request;
    alk_mp_map_open(&request, out);
    alk_mp_key(&request, "v");
    alk_mp_uint(out, ALK_RPC_PROTOCOL);
    alk_mp_key(&request, "id");
    alk_mp_uint(out, 1);
    alk_mp_key(&request, "method");
    alk_mp_str(out, "convert");
    for (size_t i = 0; i < message->as.map.len; i++) {
        const alk_value_pair *p = &message->as.map.pairs[i];
        bool skip = p->key->kind != ALK_VALUE_STR;
        for (size_t k = 0; !skip && k < sizeof(replaced) / sizeof(replaced[0]); k++) {
            skip = strcmp(p->key->as.str.bytes, replaced[k]) == 0;
        }
        if (!skip) {
            alk_mp_keyn(&request, p->key->as.str.bytes, p->key->as.str.len);
            alk_mp_value(out, p->value);
        }
    }
    alk_mp_key(&request, "framework");
    alk_mp_str(out, "torch");
    alk_mp_map_close(&request);
}

/* A converted program is valid (alk_interp_new validates it) and runs on one sample. */
static void check_program(const alk_convert_result *result) {
    const alk_program *program = result->program;
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    if (program == NULL || alk_interp_new(program, &interp, &diag) != ALK_OK) {
        fprintf(stderr, "fuzz_torch: the tracer emitted an invalid program: %s\n", diag.message);
        abort();
    }
    if (program->n_ops <= MAX_RUN_OPS) {
        double *in = alk_calloc((size_t)program->n_in + 1, sizeof(double));
        double *out = alk_calloc((size_t)program->n_out + 1, sizeof(double));
        for (size_t i = 0; in != NULL && i < program->n_in; i++) {
            in[i] = i % 3 == 0 ? 0.75 : (i % 3 == 1 ? -1.5 : 2.0);
        }
        if (in != NULL && out != NULL) {
            (void)alk_interp_run(interp, in, 1, out, &diag);
        }
        alk_free(in);
        alk_free(out);
    }
    alk_interp_free(interp);
}

/* A refused request or conversion: a documented code, a message, and a writable reply. */
static void check_failure(int rv, alk_rpc_error *err) {
    bool documented = rv == ALK_EINVAL || rv == ALK_ELIMIT || rv == ALK_ENOTSUP ||
                      rv == ALK_ENOMEM || rv == ALK_EPROTO || rv == ALK_EVERSION;
    if (!documented || err->diag.message[0] == '\0') {
        fprintf(stderr, "fuzz_torch: %s (%d): '%s'\n", alk_strerror(rv), rv, err->diag.message);
        abort();
    }
    err->code = rv;
    alk_buf reply;
    alk_buf_init(&reply);
    if (alk_rpc_encode_error(err, &reply) != ALK_OK && alk_buf_error(&reply) != ALK_ENOMEM) {
        abort();
    }
    alk_buf_fini(&reply);
}

static void convert(const alk_value *message, const alk_rpc_limits *limits) {
    alk_buf bytes;
    alk_buf_init(&bytes);
    write_request(message, &bytes);
    if (alk_buf_error(&bytes) != ALK_OK) {
        alk_buf_fini(&bytes);
        return;
    }
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_rpc_request request;
    alk_convert_request creq;
    alk_rpc_convert_options options;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    int rv = alk_rpc_decode_request(bytes.data, bytes.len, ALK_RPC_SOCKET_SERVICE, false, limits,
                                    &arena, &request, &err);
    if (rv == ALK_OK) {
        rv = alk_rpc_convert_request(&request, limits, &arena, &creq, &options, &err);
    }
    if (rv == ALK_OK) {
        alk_convert_result result = {0};
        rv = alk_convert(generation, &creq, &result, &err.diag);
        if (rv == ALK_OK) {
            check_program(&result);
        }
        alk_convert_result_fini(&result);
    }
    if (rv != ALK_OK) {
        check_failure(rv, &err);
    }
    alk_arena_fini(&arena);
    alk_buf_fini(&bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    alk_rpc_limits limits;
    small_limits(&limits);
    alk_value_limits value_limits;
    alk_rpc_value_limits(&limits, &value_limits);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *message = NULL;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    if (alk_value_from_msgpack(data, size, &value_limits, &arena, &message, &err) == ALK_OK &&
        message->kind == ALK_VALUE_MAP) {
        convert(message, &limits);
    }
    alk_arena_fini(&arena);
    return 0;
}
