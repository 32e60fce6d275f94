/*
 * bench_hgq: HGQ2 model files converted through alkaidd, and where the time goes (see
 * bench/README.md). Default files: the two real HGQ2 fixtures (the jet tagger 16-64-32-32-5 and
 * the 64x64 random matrix).
 *
 * Through the daemon: ROUNDS `convert` requests carrying the file's bytes (model.file, as
 * `alkaidc convert model.keras` sends them), one at a time, each with a fresh id (the reply
 * cache would answer a repeated one); the median and the worst round-trip latency. Without
 * --connect the benchmark starts its own alkaidd on an ipc socket in a temporary directory.
 *
 * In process, the same conversion split into its parts (medians over ROUNDS):
 *   read    - the Keras file reader on the bytes (zip, HDF5, the payload tree);
 *   trace   - the keras tracer's replay minus the two below (the walk, the hgq handlers, the
 *             symbolic arrays; the reader runs inside the replay and is subtracted);
 *   solve   - the CMVM/SCM solvers asked for by the products;
 *   emit    - emitting the program (alk_fva_trace: the passes);
 *   encode  - writing the ALIR JSON text.
 */
#include "common.h"

#include "alir/json.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/io.h"
#include "core/vec.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "plugins/keras/model_file.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ALK_DEFAULT_ALKAIDD
#define ALK_DEFAULT_ALKAIDD "alkaidd"
#endif
#ifndef ALK_DEFAULT_FIXTURES
#define ALK_DEFAULT_FIXTURES "../shared/fixtures"
#endif

enum { MAX_ROUNDS = 10000 };

static double now_s(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof(*v), cmp_double);
    return n > 0 ? v[n / 2] : 0;
}

/* {v, id, method: convert, framework: keras, model: {file: bytes}} */
static void build_request(alk_buf *out, uint64_t id, const alk_buf *file) {
    alk_mp_map(out, 5);
    alk_mp_str(out, "v");
    alk_mp_uint(out, 1);
    alk_mp_str(out, "id");
    alk_mp_uint(out, id);
    alk_mp_str(out, "method");
    alk_mp_str(out, "convert");
    alk_mp_str(out, "framework");
    alk_mp_str(out, "keras");
    alk_mp_str(out, "model");
    alk_mp_map(out, 1);
    alk_mp_str(out, "file");
    alk_mp_bin(out, file->data, file->len);
}

/* Round-trip latencies of `rounds` conversions through the daemon at `url`; false on error. */
static bool through_daemon(const char *url, const alk_buf *file, int rounds, double *ret_median,
                           double *ret_max) {
    static uint64_t next_id = 1u << 20;
    nng_socket sock;
    if (nng_req0_open(&sock) != 0 || nng_dial(sock, url, NULL, 0) != 0) {
        fprintf(stderr, "cannot connect to %s\n", url);
        return false;
    }
    (void)nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 120000);
    double *lat = malloc((size_t)rounds * sizeof(*lat));
    alk_buf request;
    alk_buf_init(&request);
    bool ok = lat != NULL;
    for (int r = 0; ok && r < rounds; r++) {
        alk_buf_reset(&request);
        build_request(&request, next_id++, file);
        double start = now_s();
        void *reply = NULL;
        size_t len = 0;
        int rv = nng_send(sock, request.data, request.len, 0);
        rv = rv == 0 ? nng_recv(sock, &reply, &len, NNG_FLAG_ALLOC) : rv;
        lat[r] = now_s() - start;
        char error[512];
        if (rv != 0 || !bench_reply_ok(reply, len, error, sizeof(error))) {
            fprintf(stderr, "conversion failed: %s\n", rv != 0 ? nng_strerror(rv) : error);
            ok = false;
        }
        if (reply != NULL) {
            nng_free(reply, len);
        }
    }
    if (ok) {
        *ret_median = median(lat, (size_t)rounds);
        *ret_max = lat[rounds - 1];
    }
    free(lat);
    alk_buf_fini(&request);
    (void)nng_close(sock);
    return ok;
}

/* The medians of the in-process parts, in seconds. */
typedef struct parts {
    double read, trace, solve, emit, encode, total;
    size_t ops;
} parts;

static bool in_process(const alk_generation *generation, const alk_buf *file, int rounds,
                       parts *ret) {
    double *v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = calloc((size_t)rounds, sizeof(double));
    }
    alk_arena arena;
    alk_arena_init(&arena, 1 << 16);
    alk_value_pair pair = {alk_value_new_bytes(&arena, ALK_VALUE_STR, "file", 4),
                           alk_value_new_bytes(&arena, ALK_VALUE_BIN, file->data, file->len)};
    const alk_value *model = alk_value_new_map(&arena, &pair, 1);
    bool ok = model != NULL;
    alk_buf json;
    alk_buf_init(&json);
    for (int r = 0; ok && r < rounds; r++) {
        alk_diag diag = {{0}};
        alk_arena scratch;
        alk_arena_init(&scratch, 1 << 16);
        const alk_value *payload;
        double t0 = now_s();
        ok = alk_keras_file_read(file->data, file->len, NULL, &scratch, &payload, &diag) == ALK_OK;
        double read = now_s() - t0;
        alk_arena_fini(&scratch);
        alk_convert_request request;
        alk_convert_request_init(&request);
        request.framework = "keras";
        request.model = model;
        alk_convert_result result = {0};
        double t1 = now_s();
        ok = ok && alk_convert(generation, &request, &result, &diag) == ALK_OK;
        double t2 = now_s();
        alk_buf_reset(&json);
        ok = ok && alk_alir_to_json(result.program, &json) == ALK_OK;
        double t3 = now_s();
        if (!ok) {
            fprintf(stderr, "conversion failed: %s\n", diag.message);
        } else {
            v[0][r] = read;
            v[1][r] = result.replay_seconds - result.solve_seconds - read;
            v[2][r] = result.solve_seconds;
            v[3][r] = result.emit_seconds;
            v[4][r] = t3 - t2;
            v[5][r] = t3 - t1; /* the reader runs inside the conversion */
            ret->ops = result.program->n_ops;
        }
        alk_convert_result_fini(&result);
    }
    if (ok) {
        ret->read = median(v[0], (size_t)rounds);
        ret->trace = median(v[1], (size_t)rounds);
        ret->solve = median(v[2], (size_t)rounds);
        ret->emit = median(v[3], (size_t)rounds);
        ret->encode = median(v[4], (size_t)rounds);
        ret->total = median(v[5], (size_t)rounds);
    }
    for (int i = 0; i < 6; i++) {
        free(v[i]);
    }
    alk_buf_fini(&json);
    alk_arena_fini(&arena);
    return ok;
}

int main(int argc, char **argv) {
    int rounds = 30;
    const char *url = NULL, *alkaidd = ALK_DEFAULT_ALKAIDD;
    const char *files[16];
    size_t n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--alkaidd") == 0 && i + 1 < argc) {
            alkaidd = argv[++i];
        } else if (argv[i][0] != '-' && n_files < 16) {
            files[n_files++] = argv[i];
        } else {
            fprintf(stderr, "usage: bench_hgq [--rounds N] [--connect URL] [--alkaidd PATH] "
                            "[FILE.keras...]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "--rounds must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    if (n_files == 0) {
        files[n_files++] = ALK_DEFAULT_FIXTURES "/keras/hgq2_jsc_16-64-32-32-5.keras";
        files[n_files++] = ALK_DEFAULT_FIXTURES "/keras/hgq2_randmat_64x64_bw8.keras";
    }
    bench_daemon daemon = {0};
    if (url == NULL) {
        if (!bench_daemon_start(&daemon, "bench-hgq", alkaidd, NULL)) {
            return 1;
        }
        url = daemon.url;
    }
    char **dirs = NULL;
    size_t n_dirs = 0;
    alk_generation *generation = NULL;
    alk_diag diag = {{0}};
    alk_plugin_config config = {0};
    int status = 0;
    if (alk_plugin_search_path(NULL, 0, &dirs, &n_dirs) == ALK_OK) {
        config = (alk_plugin_config){.dirs = (const char *const *)dirs, .n_dirs = n_dirs};
    }
    if (dirs == NULL || alk_generation_build(&config, NULL, &generation, &diag) != ALK_OK) {
        fprintf(stderr, "plugins: %s\n", diag.message);
        status = 1;
    }
    printf("alkaidd at %s, %d rounds, %ld cores; milliseconds, medians\n\n", url, rounds,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-34s %6s %9s %9s | %7s %7s %7s %7s %7s %7s\n", "model", "ops", "daemon", "worst",
           "read", "trace", "solve", "emit", "encode", "total");
    for (size_t f = 0; status == 0 && f < n_files; f++) {
        alk_buf file;
        alk_buf_init(&file);
        parts p = {0};
        double daemon_median = 0, daemon_max = 0;
        const char *name = strrchr(files[f], '/') != NULL ? strrchr(files[f], '/') + 1 : files[f];
        if (alk_read_file(files[f], (size_t)1 << 30, &file, &diag) != ALK_OK) {
            fprintf(stderr, "%s: %s\n", files[f], diag.message);
            status = 1;
        } else if (!through_daemon(url, &file, rounds, &daemon_median, &daemon_max) ||
                   !in_process(generation, &file, rounds, &p)) {
            status = 1;
        } else {
            printf("%-34s %6zu %9.1f %9.1f | %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f\n", name, p.ops,
                   daemon_median * 1e3, daemon_max * 1e3, p.read * 1e3, p.trace * 1e3,
                   p.solve * 1e3, p.emit * 1e3, p.encode * 1e3, p.total * 1e3);
        }
        alk_buf_fini(&file);
    }
    alk_generation_unref(generation);
    alk_plugin_dirs_free(dirs, n_dirs);
    bench_daemon_stop(&daemon);
    return status;
}
