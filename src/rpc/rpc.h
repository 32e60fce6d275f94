/*
 * Requests and replies of the wire protocol (docs/protocol.md, generated from schemas/).
 *
 * A request is decoded (wire.h) and validated against the generated tables (schema.h): the
 * envelope (`v`, `id`, `method`), then the method's fields. Replies are written here too, so that
 * the daemon, the in-process path of `alkaidc convert --local` and the tests produce the same
 * bytes: error replies `{v, id, ok: false, error: {code, name, message, where}}` with the stable
 * names of ALK_ERR_MAP, and the conversion reply.
 *
 * Thread rule: reentrant. A conversion reply may be encoded on a worker thread.
 */
#ifndef ALK_RPC_RPC_H
#define ALK_RPC_RPC_H

#include "core/arena.h"
#include "core/vec.h"
#include "graph/value.h"
#include "plugin/convert.h"
#include "rpc/schema.h"
#include "rpc/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A decoded, validated request. Every pointer points into the arena it was decoded in. */
typedef struct alk_rpc_request {
    uint64_t version;
    const alk_value *id;          /* uint or str */
    const alk_rpc_method *method; /* from the generated table */
    const alk_value *body;        /* the whole request map */
} alk_rpc_request;

/* The value-tree limits implied by `limits` (for alk_value_from_msgpack/_from_json). */
void alk_rpc_value_limits(const alk_rpc_limits *limits, alk_value_limits *ret_limits);

/*
 * Decodes and validates the request in `bytes` (len bytes, borrowed) for a socket of kind
 * `socket` (ALK_RPC_SOCKET_*); hidden test methods are accepted only with `allow_hidden`. The
 * tree is allocated in `arena` (borrowed). On failure `err` (owned by the caller) holds the code,
 * the field path and, when it could be read, the request's id for the error reply.
 */
int alk_rpc_decode_request(const void *bytes, size_t len, uint32_t socket, bool allow_hidden,
                           const alk_rpc_limits *limits, alk_arena *arena,
                           alk_rpc_request *ret_request, alk_rpc_error *err);

/* Validates the fields of `body` (borrowed) against `method`'s table. */
int alk_rpc_validate(const alk_rpc_method *method, const alk_value *body, alk_rpc_error *err);

/*
 * Appends the error reply for `err` (borrowed; its `id` is echoed, nil when NULL) to `out`.
 * EVERSION replies also list the accepted versions. Returns the buffer's sticky error.
 */
int alk_rpc_encode_error(const alk_rpc_error *err, alk_buf *out);

/*
 * Opens a success reply in `out`: a map holding `v`, `id` (borrowed; nil when NULL) and
 * `ok: true`. The caller adds its fields (alk_mp_key, then the value) and closes it with
 * alk_mp_map_close, which writes the count.
 */
void alk_rpc_reply_open(alk_mp_map_writer *reply, alk_buf *out, const alk_value *id);

/* Protocol versions accepted in `v`, for `info` and EVERSION replies. */
size_t alk_rpc_accepted_versions(const uint64_t **ret_versions);

/* ---- convert ----------------------------------------------------------------------------- */

/* Options of a conversion request that are not part of alk_convert_request. */
typedef struct alk_rpc_convert_options {
    bool gzip;           /* alir_encoding = "gzip" */
    uint64_t timeout_ms; /* 0: the server's default */
} alk_rpc_convert_options;

/*
 * Builds the conversion request of a validated `convert` request (borrowed), checking the model
 * payload against `limits` (tensor elements and dims, graph nodes, inputs), the hwconf (no zero
 * sizes, a finite cutoff) and the solver options (alk_rpc_solver_options), so that every value
 * a conversion reads is refused here, naming its field, before the request is queued. Strings
 * and values point into the request's tree; arrays are allocated in `arena` (borrowed). The
 * framework key is resolved here (alk_convert_framework: `framework`, else `module`).
 */
int alk_rpc_convert_request(const alk_rpc_request *request, const alk_rpc_limits *limits,
                            alk_arena *arena, alk_convert_request *ret_request,
                            alk_rpc_convert_options *ret_options, alk_rpc_error *err);

/*
 * Reads a `solver_options` map (borrowed) over `options` (owned by the caller, initialised with
 * its defaults): every key must be a known option of the right type and range, else ALK_EINVAL
 * with `where` = "solver_options.KEY" and a message naming the option or value. On failure
 * `options` is unchanged.
 */
int alk_rpc_solver_options(const alk_value *map, alk_solver_options *options, alk_rpc_error *err);

/* Times a reply reports, in milliseconds. */
typedef struct alk_rpc_timings {
    double queue_ms;
    double run_ms;
} alk_rpc_timings;

/*
 * Appends the reply to a successful conversion to `out`: `result` (borrowed) as ALIR JSON v4
 * text (gzip-compressed with options->gzip), its output names, summary and timings. Errors:
 * ALK_ENOMEM, or whatever the ALIR writer reports.
 */
int alk_rpc_encode_convert_reply(const alk_value *id, const alk_convert_result *result,
                                 const alk_rpc_convert_options *options, uint64_t generation,
                                 const alk_rpc_timings *timings, alk_buf *out, alk_rpc_error *err);

/* How alk_rpc_convert_local runs (every pointer borrowed for the call). */
typedef struct alk_rpc_local {
    const alk_rpc_limits *limits;
    uint64_t generation;                           /* reported in the reply */
    double queue_ms;                               /* reported in the reply's timings */
    const atomic_bool *cancel;                     /* see alk_convert_request.cancel; NULL: never */
    void (*on_trace)(void *ctx, const char *name); /* see alk_convert_request.on_trace */
    void *on_trace_ctx;
} alk_rpc_local;

/*
 * Handles one `convert` request in process, as the daemon's worker processes do: decodes and
 * validates `bytes` (len bytes, borrowed), converts with `generation` (borrowed), and writes the
 * reply, or the error reply, to `reply` (reset first on error). Returns the conversion's result
 * (ALK_OK, or the code also in err->code, with err->diag saying why), or ALK_ENOMEM when not
 * even a reply could be written.
 */
int alk_rpc_convert_local(const alk_generation *generation, const void *bytes, size_t len,
                          const alk_rpc_local *how, alk_buf *reply, alk_rpc_error *err);

#endif
