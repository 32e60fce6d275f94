/*
 * The `convert` method's reply: an alk_convert_result as ALIR JSON v4 text (or its gzip stream),
 * the output names, a summary and the timings. The daemon and `alkaidc convert --local` both
 * write their replies here, so the two give the same bytes.
 *
 * Thread rule: reentrant; runs on a worker thread in the daemon.
 */
#include "rpc/rpc.h"

#include "alir/json.h"
#include "core/io.h"

#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Appends the ALIR text of `program`, or its gzip stream, to `out` as str or bin. */
static int put_alir(alk_buf *out, const alk_program *program, bool gzip, alk_buf *scratch,
                    alk_rpc_error *err) {
    alk_buf_reset(scratch);
    int rv = alk_alir_to_json(program, scratch);
    if (rv == ALK_OK) {
        rv = alk_buf_error(scratch);
    }
    if (rv != ALK_OK) {
        return alk_rpc_error_set(err, rv, NULL, "writing the ALIR program failed: %s",
                                 alk_strerror(rv));
    }
    if (!gzip) {
        alk_mp_strn(out, scratch->data, scratch->len);
        return ALK_OK;
    }
    alk_buf compressed;
    alk_buf_init(&compressed);
    rv = alk_gzip(scratch->data, scratch->len, &compressed, err != NULL ? &err->diag : NULL);
    if (rv == ALK_OK) {
        alk_mp_bin(out, compressed.data, compressed.len);
    } else if (err != NULL) {
        err->code = rv;
    }
    alk_buf_fini(&compressed);
    return rv;
}

int alk_rpc_encode_convert_reply(const alk_value *id, const alk_convert_result *result,
                                 const alk_rpc_convert_options *options, uint64_t generation,
                                 const alk_rpc_timings *timings, alk_buf *out, alk_rpc_error *err) {
    double start = now_ms();
    alk_buf scratch;
    alk_buf_init(&scratch);
    bool gzip = options != NULL && options->gzip;
    bool dump = result->n_dump > 0;
    const alk_program *program = result->program;
    int rv = ALK_OK;

    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, id);
    alk_mp_key(&reply, "alir");
    rv = put_alir(out, program, gzip, &scratch, err);
    if (rv != ALK_OK) {
        goto done;
    }
    alk_mp_key(&reply, "alir_encoding");
    alk_mp_str(out, gzip ? "gzip" : "json");
    alk_mp_key(&reply, "output_names");
    alk_mp_array(out, (uint32_t)result->n_output_names);
    for (size_t i = 0; i < result->n_output_names; i++) {
        alk_mp_str(out, result->output_names[i]);
    }
    alk_mp_key(&reply, "n_inputs");
    alk_mp_uint(out, program->n_in);
    alk_mp_key(&reply, "n_outputs");
    alk_mp_uint(out, program->n_out);
    alk_mp_key(&reply, "cost");
    alk_mp_float(out, alk_program_cost(program));
    double latency_min;
    double latency_max;
    alk_program_latency(program, &latency_min, &latency_max);
    alk_mp_key(&reply, "latency");
    alk_mp_array(out, 2);
    alk_mp_float(out, latency_min);
    alk_mp_float(out, latency_max);
    alk_mp_key(&reply, "generation");
    alk_mp_uint(out, generation);
    if (dump) {
        alk_mp_key(&reply, "dump");
        alk_mp_map_writer traces;
        alk_mp_map_open(&traces, out);
        for (size_t i = 0; i < result->n_dump; i++) {
            alk_mp_key(&traces, result->dump[i].name);
            rv = put_alir(out, result->dump[i].program, false, &scratch, err);
            if (rv != ALK_OK) {
                goto done;
            }
        }
        alk_mp_map_close(&traces);
    }
    alk_mp_key(&reply, "timings");
    alk_mp_map_writer times;
    alk_mp_map_open(&times, out);
    alk_mp_key(&times, "queue_ms");
    alk_mp_float(out, timings != NULL ? timings->queue_ms : 0.0);
    alk_mp_key(&times, "run_ms");
    alk_mp_float(out, timings != NULL ? timings->run_ms : 0.0);
    alk_mp_key(&times, "solve_ms");
    alk_mp_float(out, result->solve_seconds * 1000.0);
    alk_mp_key(&times, "encode_ms");
    alk_mp_float(out, now_ms() - start);
    alk_mp_map_close(&times);
    alk_mp_map_close(&reply);
    rv = alk_buf_error(out);
    if (rv != ALK_OK) {
        alk_rpc_error_set(err, rv, NULL, "out of memory while encoding the reply");
    }
done:
    alk_buf_fini(&scratch);
    return rv;
}
