/*
 * bench_daemon: requests per second and latency percentiles of alkaidd, for `ping` and for
 * conversions of the example model, with 1, 8 and 64 concurrent clients; and the in-process cost
 * of the same conversion, to report the RPC overhead (see bench/README.md).
 *
 * Each client is a thread with its own REQ socket (its own connection) sending one request at a
 * time. Without --connect the benchmark starts its own alkaidd (build tree) on an ipc path in a
 * temporary directory, with one worker per core, and stops it at the end.
 */
#include "common.h"

#include "core/alloc.h"
#include "core/arena.h"
#include "core/vec.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ALK_DEFAULT_ALKAIDD
#define ALK_DEFAULT_ALKAIDD "alkaidd"
#endif

typedef struct options {
    const char *url;
    double seconds;
} options;

static uint64_t now_ns(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds a request for `method` ("ping" or "convert" of the example model). */
static void build_request(alk_buf *out, const char *method, uint64_t id) {
    alk_mp_map_writer request;
    alk_mp_map_open(&request, out);
    alk_mp_key(&request, "v");
    alk_mp_uint(out, 1);
    alk_mp_key(&request, "id");
    alk_mp_uint(out, id);
    alk_mp_key(&request, "method");
    alk_mp_str(out, method);
    if (strcmp(method, "convert") == 0) {
        alk_mp_key(&request, "framework");
        alk_mp_str(out, "alkaid");
        alk_mp_key(&request, "model");
        alk_mp_map(out, 1);
        alk_mp_str(out, "input_shape");
        alk_mp_array(out, 2);
        alk_mp_uint(out, 4);
        alk_mp_uint(out, 5);
    }
    alk_mp_map_close(&request);
}

typedef struct client {
    const options *o;
    const char *method;
    uint64_t deadline;
    uint64_t *latencies;
    size_t n;
    size_t cap;
    size_t errors;
    char first_error[256];
    unsigned index;
} client;

static void *client_main(void *arg) {
    client *c = arg;
    nng_socket sock;
    if (nng_req0_open(&sock) != 0 || nng_dial(sock, c->o->url, NULL, 0) != 0) {
        (void)snprintf(c->first_error, sizeof(c->first_error), "cannot connect to %s", c->o->url);
        c->errors++;
        return NULL;
    }
    (void)nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 60000);
    alk_buf request;
    alk_buf_init(&request);
    /* Ids unique over the whole benchmark: identical requests would be answered from the
     * daemon's reply cache and measure nothing. */
    static atomic_uint_fast64_t next_id;
    uint64_t id = atomic_fetch_add(&next_id, 1) << 24;
    while (now_ns() < c->deadline) {
        alk_buf_reset(&request);
        build_request(&request, c->method, ++id);
        uint64_t start = now_ns();
        void *reply = NULL;
        size_t len = 0;
        int rv = nng_send(sock, request.data, request.len, 0);
        if (rv == 0) {
            rv = nng_recv(sock, &reply, &len, NNG_FLAG_ALLOC);
        }
        uint64_t end = now_ns();
        if (rv != 0 ||
            !bench_reply_ok(reply, len, c->first_error[0] == '\0' ? c->first_error : NULL,
                            sizeof(c->first_error))) {
            c->errors++;
            if (rv != 0 && c->first_error[0] == '\0') {
                (void)snprintf(c->first_error, sizeof(c->first_error), "%s", nng_strerror(rv));
            }
        } else {
            if (c->n == c->cap) {
                c->cap = c->cap > 0 ? c->cap * 2 : 4096;
                c->latencies = realloc(c->latencies, c->cap * sizeof(*c->latencies));
            }
            c->latencies[c->n++] = end - start;
        }
        if (reply != NULL) {
            nng_free(reply, len);
        }
        if (c->errors > 0 && strcmp(c->method, "convert") == 0) {
            break; /* conversions unavailable: one error says it */
        }
    }
    alk_buf_fini(&request);
    (void)nng_close(sock);
    return NULL;
}

typedef struct result {
    double rate;
    double p50_ms;
    double p99_ms;
    size_t errors;
    char error[256];
} result;

static result run(const options *o, const char *method, unsigned n_clients) {
    client *clients = calloc(n_clients, sizeof(*clients));
    pthread_t *threads = calloc(n_clients, sizeof(*threads));
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(o->seconds * 1e9);
    for (unsigned i = 0; i < n_clients; i++) {
        clients[i] = (client){.o = o, .method = method, .deadline = deadline, .index = i + 1};
        (void)pthread_create(&threads[i], NULL, client_main, &clients[i]);
    }
    size_t total = 0;
    result r = {0};
    for (unsigned i = 0; i < n_clients; i++) {
        (void)pthread_join(threads[i], NULL);
        total += clients[i].n;
        r.errors += clients[i].errors;
        if (r.error[0] == '\0' && clients[i].first_error[0] != '\0') {
            memcpy(r.error, clients[i].first_error, sizeof(r.error));
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    uint64_t *all = malloc((total > 0 ? total : 1) * sizeof(*all));
    size_t k = 0;
    for (unsigned i = 0; i < n_clients; i++) {
        memcpy(all + k, clients[i].latencies, clients[i].n * sizeof(*all));
        k += clients[i].n;
        free(clients[i].latencies);
    }
    qsort(all, total, sizeof(*all), cmp_u64);
    r.rate = (double)total / elapsed;
    if (total > 0) {
        r.p50_ms = (double)all[total / 2] / 1e6;
        r.p99_ms = (double)all[(size_t)((double)total * 0.99)] / 1e6;
    }
    free(all);
    free(threads);
    free(clients);
    return r;
}

/* The in-process path of `alkaidc convert --local`: decode, convert, encode, per request. */
static result in_process(double seconds) {
    result r = {0};
    char **dirs = NULL;
    size_t n_dirs = 0;
    alk_generation *generation = NULL;
    alk_diag diag = {{0}};
    if (alk_plugin_search_path(NULL, 0, &dirs, &n_dirs) != ALK_OK) {
        r.errors = 1;
        return r;
    }
    alk_plugin_config config = {.dirs = (const char *const *)dirs, .n_dirs = n_dirs};
    if (alk_generation_build(&config, NULL, &generation, &diag) != ALK_OK) {
        (void)snprintf(r.error, sizeof(r.error), "%.200s", diag.message);
        r.errors = 1;
        alk_plugin_dirs_free(dirs, n_dirs);
        return r;
    }
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    size_t cap = 1 << 16;
    size_t n = 0;
    uint64_t *lat = malloc(cap * sizeof(*lat));
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(seconds * 1e9);
    alk_buf request;
    alk_buf reply;
    alk_buf_init(&request);
    alk_buf_init(&reply);
    while (now_ns() < deadline && n < cap && r.errors == 0) {
        uint64_t t0 = now_ns();
        alk_buf_reset(&request);
        alk_buf_reset(&reply);
        build_request(&request, "convert", n + 1);
        alk_rpc_error err;
        alk_rpc_local how = {.limits = &limits, .generation = alk_generation_id(generation)};
        int rv = alk_rpc_convert_local(generation, request.data, request.len, &how, &reply, &err);
        if (rv != ALK_OK) {
            (void)snprintf(r.error, sizeof(r.error), "%.200s", err.diag.message);
            r.errors++;
        }
        lat[n++] = now_ns() - t0;
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    qsort(lat, n, sizeof(*lat), cmp_u64);
    r.rate = (double)n / elapsed;
    r.p50_ms = n > 0 ? (double)lat[n / 2] / 1e6 : 0;
    r.p99_ms = n > 0 ? (double)lat[(size_t)((double)n * 0.99)] / 1e6 : 0;
    free(lat);
    alk_buf_fini(&request);
    alk_buf_fini(&reply);
    alk_generation_unref(generation);
    alk_plugin_dirs_free(dirs, n_dirs);
    return r;
}

int main(int argc, char **argv) {
    options o = {.seconds = 3.0};
    const char *alkaidd = ALK_DEFAULT_ALKAIDD;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
            o.url = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            o.seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--alkaidd") == 0 && i + 1 < argc) {
            alkaidd = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_daemon [--connect URL] [--seconds S] [--alkaidd PATH]\n");
            return 2;
        }
    }
    bench_daemon daemon = {0};
    if (o.url == NULL) {
        static const char *const queue[] = {"--queue", "256", NULL};
        if (!bench_daemon_start(&daemon, "bench", alkaidd, queue)) {
            return 1;
        }
        o.url = daemon.url;
    }
    printf("alkaidd at %s, %.1f s per run, %ld cores\n\n", o.url, o.seconds,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-9s %8s %12s %10s %10s\n", "method", "clients", "requests/s", "p50 ms", "p99 ms");
    static const unsigned concurrency[] = {1, 8, 64};
    static const char *const methods[] = {"ping", "convert"};
    double convert_p99_one_client = -1;
    for (size_t m = 0; m < 2; m++) {
        for (size_t k = 0; k < 3; k++) {
            result r = run(&o, methods[m], concurrency[k]);
            if (r.errors > 0 && r.rate == 0) {
                printf("%-9s %8u   unavailable: %s\n", methods[m], concurrency[k], r.error);
                break;
            }
            printf("%-9s %8u %12.0f %10.3f %10.3f%s\n", methods[m], concurrency[k], r.rate,
                   r.p50_ms, r.p99_ms, r.errors > 0 ? "  (with errors)" : "");
            if (m == 1 && k == 0) {
                convert_p99_one_client = r.p99_ms;
            }
        }
    }
    result local = in_process(o.seconds);
    if (local.errors == 0) {
        printf("%-9s %8s %12.0f %10.3f %10.3f\n", "in-proc", "1", local.rate, local.p50_ms,
               local.p99_ms);
        if (convert_p99_one_client >= 0) {
            printf("\nRPC overhead at p99 (1 client): %.3f ms\n",
                   convert_p99_one_client - local.p99_ms);
        }
    } else {
        printf("in-process conversion unavailable: %s\n", local.error);
    }
    bench_daemon_stop(&daemon);
    return 0;
}
