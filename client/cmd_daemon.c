/*
 * alkaidc's daemon commands: `ping` and the plugin listing on the service socket, and the
 * control commands `stats [--prometheus]`, `reload [NAME]`, `load PATH`, `unload NAME`, `drain
 * [--resume]`, `shutdown` on the control socket (ipc only, mode 0600).
 *
 * Each sends one request and prints the reply: results on stdout, messages on stderr. Exit codes
 * are those of README.md: 6 when no daemon can be reached, 7 when the daemon is busy or the
 * deadline passed (try again), otherwise as for every command.
 */
#include "cli.h"
#include "rpc_client.h"

#include "core/alloc.h"
#include "rpc/wire.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_URLS = 16 };

typedef struct common_options {
    const char *urls[MAX_URLS];
    size_t n_urls;
    double timeout_s;
    bool prometheus;
    bool resume;
    const char *positional;
} common_options;

typedef struct command_spec {
    const char *name;
    cli_target target;
    const char *positional; /* "NAME", "PATH" or NULL */
    bool positional_required;
    const char *summary;
} command_spec;

static void usage(const command_spec *spec, FILE *to) {
    const char *flag = spec->target == CLI_SERVICE ? "--connect" : "--control";
    fprintf(to, "usage: alkaidc %s%s%s%s%s [%s URL]... [--timeout S]%s%s\n\n%s\n", spec->name,
            spec->positional != NULL ? " " : "",
            spec->positional != NULL && !spec->positional_required ? "[" : "",
            spec->positional != NULL ? spec->positional : "",
            spec->positional != NULL && !spec->positional_required ? "]" : "", flag,
            strcmp(spec->name, "stats") == 0 ? " [--prometheus]" : "",
            strcmp(spec->name, "drain") == 0 ? " [--resume]" : "", spec->summary);
    fprintf(to, "  %s URL   the daemon's %s socket (default: %s)\n", flag,
            spec->target == CLI_SERVICE ? "service" : "control",
            spec->target == CLI_SERVICE ? "ALKAID_CONNECT, then the default socket"
                                        : "the default control socket");
    fprintf(to, "  --timeout S     give up after S seconds (default 30)\n");
}

/* Parses the options every daemon command shares. Returns EXIT_OK, a usage error, or -1 after
 * --help. */
static int parse_common(const command_spec *spec, int argc, char **argv, common_options *o) {
    enum { OPT_TIMEOUT = 256, OPT_PROMETHEUS, OPT_RESUME };
    static const struct option long_options[] = {
        {"connect", required_argument, NULL, 'c'},
        {"control", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (common_options){.timeout_s = 30.0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
        case 'C':
            if ((c == 'c') != (spec->target == CLI_SERVICE)) {
                return cli_usage_error(spec->name, "'%s' talks to the %s socket: use %s",
                                       spec->name,
                                       spec->target == CLI_SERVICE ? "service" : "control",
                                       spec->target == CLI_SERVICE ? "--connect" : "--control");
            }
            if (!cli_url_push(o->urls, &o->n_urls, MAX_URLS, optarg)) {
                return cli_usage_error(spec->name, "at most %d URLs", MAX_URLS);
            }
            break;
        case OPT_TIMEOUT:
            errno = 0;
            o->timeout_s = strtod(optarg, &end);
            if (*end != '\0' || errno != 0 || !(o->timeout_s > 0.0)) {
                return cli_usage_error(spec->name, "'%s' is not a positive number of seconds",
                                       optarg);
            }
            break;
        case OPT_PROMETHEUS:
            if (strcmp(spec->name, "stats") != 0) {
                return cli_usage_error(spec->name, "--prometheus is an option of 'stats'");
            }
            o->prometheus = true;
            break;
        case OPT_RESUME:
            if (strcmp(spec->name, "drain") != 0) {
                return cli_usage_error(spec->name, "--resume is an option of 'drain'");
            }
            o->resume = true;
            break;
        case 'h':
            usage(spec, stdout);
            return -1;
        default:
            return cli_usage_error(spec->name, "bad option");
        }
    }
    if (optind < argc) {
        if (spec->positional == NULL || optind + 1 < argc) {
            return cli_usage_error(spec->name, "unexpected argument '%s'", argv[argc - 1]);
        }
        o->positional = argv[optind];
    } else if (spec->positional_required) {
        return cli_usage_error(spec->name, "%s is missing", spec->positional);
    }
    return EXIT_OK;
}

/* Connects, sends `request` and returns the reply in `arena`, or an exit code. */
static int round_trip(const command_spec *spec, const common_options *o, const alk_buf *request,
                      alk_arena *arena, const alk_value **ret_reply, char *ret_url,
                      size_t url_cap) {
    alk_diag diag = {{0}};
    cli_conn conn;
    int rv = cli_conn_open(&conn, spec->target, o->urls, o->n_urls, CLI_DEFAULT_RESEND_S, &diag);
    if (rv != ALK_OK) {
        conn.unreachable = true;
        return cli_conn_fail(&conn, rv, &diag);
    }
    if (ret_url != NULL) {
        (void)snprintf(ret_url, url_cap, "%s", conn.url);
    }
    rv = alk_buf_error(request);
    if (rv == ALK_OK) {
        rv = cli_conn_call(&conn, request, o->timeout_s, true, arena, ret_reply, &diag);
    }
    int code = rv == ALK_OK ? EXIT_OK : cli_conn_fail(&conn, rv, &diag);
    cli_conn_close(&conn);
    return code;
}

static double now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- ping ------------------------------------------------------------------------------- */

int cmd_ping(int argc, char **argv) {
    static const command_spec spec = {"ping", CLI_SERVICE, NULL, false,
                                      "Checks that a daemon answers; prints its version and "
                                      "the round-trip time."};
    common_options o;
    int code = parse_common(&spec, argc, argv, &o);
    if (code != EXIT_OK) {
        return code < 0 ? EXIT_OK : code;
    }
    alk_buf request;
    alk_buf_init(&request);
    cli_request_simple(&request, "ping", NULL, NULL);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *reply = NULL;
    char url[512] = "";
    double start = now_ms();
    code = round_trip(&spec, &o, &request, &arena, &reply, url, sizeof(url));
    if (code == EXIT_OK) {
        const char *server = cli_get_str(reply, "server");
        printf("%s at %s: %.3f ms, up %.0f s\n", server != NULL ? server : "?", url,
               now_ms() - start, cli_get_number(reply, "uptime_s"));
    }
    alk_arena_fini(&arena);
    alk_buf_fini(&request);
    return code;
}

/* ---- plugins (remote) --------------------------------------------------------------------- */

static void print_plugins(const alk_value *list) {
    printf("%-20s %-14s %-4s %-10s %s\n", "GROUP", "NAME", "ABI", "STATE", "LIBRARY");
    for (size_t i = 0; list != NULL && list->kind == ALK_VALUE_ARRAY && i < list->as.array.len;
         i++) {
        const alk_value *p = list->as.array.items[i];
        const char *group = cli_get_str(p, "group");
        const char *name = cli_get_str(p, "name");
        const char *state = cli_get_str(p, "state");
        const char *library = cli_get_str(p, "library");
        const char *error = cli_get_str(p, "error");
        printf("%-20s %-14s %-4llu %-10s %s\n", group != NULL ? group : "?",
               name != NULL ? name : "?", (unsigned long long)cli_get_uint(p, "abi_version"),
               state != NULL ? (strcmp(state, "on_demand") == 0 ? "on-demand" : state) : "?",
               library != NULL ? library : "?");
        if (error != NULL) {
            printf("    refused: %s\n", error);
        }
    }
}

/* Removes argv[i] (argc shrinks by one). */
static void drop_arg(int *argc, char **argv, int i) {
    for (int k = i; k < *argc - 1; k++) {
        argv[k] = argv[k + 1];
    }
    (*argc)--;
}

int cli_plugins_remote(int *argc, char **argv) {
    bool local = false;
    bool explicit_url = false;
    bool plugin_dirs = false;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--local") == 0) {
            local = true;
            drop_arg(argc, argv, i--);
        } else if (strncmp(argv[i], "--connect", 9) == 0 || strncmp(argv[i], "--control", 9) == 0 ||
                   strcmp(argv[i], "-c") == 0) {
            explicit_url = true;
        } else if (strncmp(argv[i], "--plugin-dir", 12) == 0 || strcmp(argv[i], "-p") == 0) {
            plugin_dirs = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return -1;
        }
    }
    if (local || plugin_dirs) {
        if (explicit_url) {
            return cli_usage_error("plugins", "--local/--plugin-dir and a URL exclude each other");
        }
        return -1;
    }
    /* --control URL asks the control socket; otherwise the service socket. */
    bool control = false;
    for (int i = 1; i < *argc; i++) {
        control = control || strncmp(argv[i], "--control", 9) == 0;
    }
    command_spec spec = {"plugins", control ? CLI_CONTROL : CLI_SERVICE, NULL, false,
                         "Lists the plugins of the daemon's current generation."};
    common_options o;
    int code = parse_common(&spec, *argc, argv, &o);
    if (code != EXIT_OK) {
        return code < 0 ? EXIT_OK : code;
    }
    alk_diag diag = {{0}};
    cli_conn conn;
    int rv = cli_conn_open(&conn, spec.target, o.urls, o.n_urls, CLI_DEFAULT_RESEND_S, &diag);
    bool configured =
        o.n_urls > 0 || (getenv("ALKAID_CONNECT") != NULL && getenv("ALKAID_CONNECT")[0] != '\0');
    if (rv == ALK_ENOENT && !configured) {
        return -1; /* no daemon: list what this machine would load */
    }
    if (rv != ALK_OK) {
        conn.unreachable = true;
        return cli_conn_fail(&conn, rv, &diag);
    }
    alk_buf request;
    alk_buf_init(&request);
    cli_request_simple(&request, "plugins", NULL, NULL);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *reply = NULL;
    rv = alk_buf_error(&request);
    if (rv == ALK_OK) {
        rv = cli_conn_call(&conn, &request, o.timeout_s, true, &arena, &reply, &diag);
    }
    code = rv == ALK_OK ? EXIT_OK : cli_conn_fail(&conn, rv, &diag);
    if (rv == ALK_OK) {
        print_plugins(alk_value_get(reply, "plugins"));
    }
    cli_conn_close(&conn);
    alk_arena_fini(&arena);
    alk_buf_fini(&request);
    return code;
}

/* ---- stats -------------------------------------------------------------------------------- */

static void print_value(const alk_value *v) {
    switch (v->kind) {
    case ALK_VALUE_INT:
        printf("%lld", (long long)v->as.integer);
        break;
    case ALK_VALUE_FLOAT:
        printf("%.6g", v->as.number);
        break;
    case ALK_VALUE_STR:
        printf("%s", v->as.str.bytes);
        break;
    case ALK_VALUE_BOOL:
        printf("%s", v->as.boolean ? "true" : "false");
        break;
    default:
        printf("-");
    }
}

static void print_stats_text(const alk_value *reply) {
    for (size_t i = 0; i < reply->as.map.len; i++) {
        const char *key = reply->as.map.pairs[i].key->as.str.bytes;
        const alk_value *v = reply->as.map.pairs[i].value;
        if (!strcmp(key, "v") || !strcmp(key, "id") || !strcmp(key, "ok")) {
            continue;
        }
        if (v->kind == ALK_VALUE_MAP) {
            for (size_t k = 0; k < v->as.map.len; k++) {
                printf("%s.%s: ", key, v->as.map.pairs[k].key->as.str.bytes);
                print_value(v->as.map.pairs[k].value);
                printf("\n");
            }
            continue;
        }
        printf("%s: ", key);
        print_value(v);
        printf("\n");
    }
}

static void prom_metric(const char *name, const char *type, const char *help, double value) {
    printf("# HELP alkaidd_%s %s\n# TYPE alkaidd_%s %s\nalkaidd_%s %.17g\n", name, help, name, type,
           name, value);
}

/* The Prometheus text exposition format (version 0.0.4). */
static void print_stats_prometheus(const alk_value *reply) {
    prom_metric("uptime_seconds", "gauge", "Seconds since the daemon started.",
                cli_get_number(reply, "uptime_s"));
    /* The counters and gauges that are plain unsigned fields of the reply. */
    static const struct {
        const char *name;
        const char *type;
        const char *help;
        const char *field;
    } fields[] = {
        {"generation", "gauge", "Id of the plugin generation in use.", "generation"},
        {"workers", "gauge", "Worker processes of the current generation.", "workers"},
        {"busy_workers", "gauge", "Worker processes running a job.", "busy_workers"},
        {"queued_jobs", "gauge", "Jobs waiting for a worker.", "queued"},
        {"queue_capacity", "gauge", "Capacity of the job queue.", "queue"},
        {"inflight_requests", "gauge", "Requests received and not yet answered.", "inflight"},
        {"replies_total", "counter", "Replies sent.", "replies"},
        {"cache_hits_total", "counter", "Requests answered from the reply cache.", "cache_hits"},
        {"cache_entries", "gauge", "Replies held in the reply cache.", "cache_entries"},
        {"reloads_total", "counter", "Plugin generations built after the first.", "reloads"},
        {"reload_failures_total", "counter", "Plugin reloads refused.", "reload_failures"},
        {"abandoned_jobs_total", "counter", "Jobs answered ETIMEDOUT while running.", "abandoned"},
        {"worker_jobs_total", "counter", "Jobs handed to a worker process.", "worker_jobs"},
        {"worker_starts_total", "counter", "Worker processes started.", "worker_starts"},
        {"worker_crashes_total", "counter", "Jobs lost to a worker's death.", "worker_crashes"},
        {"worker_kills_total", "counter", "Workers killed (memory ceiling, deadline).",
         "worker_kills"},
        {"poison_hits_total", "counter", "Requests answered from the poison list.", "poison_hits"},
        {"listener_restarts_total", "counter", "ipc listeners re-created after a wedge.",
         "listener_restarts"},
        {"resident_memory_bytes", "gauge", "Resident set size.", "rss_bytes"},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        prom_metric(fields[i].name, fields[i].type, fields[i].help,
                    (double)cli_get_uint(reply, fields[i].field));
    }
    const char *state = cli_get_str(reply, "state");
    printf("# HELP alkaidd_state The daemon's state (1 for the current one).\n"
           "# TYPE alkaidd_state gauge\n");
    static const char *const states[] = {"serving", "draining", "stopping"};
    for (size_t i = 0; i < 3; i++) {
        printf("alkaidd_state{state=\"%s\"} %d\n", states[i],
               state != NULL && strcmp(state, states[i]) == 0);
    }
    const alk_value *requests = alk_value_get(reply, "requests");
    printf("# HELP alkaidd_requests_total Requests received, by method.\n"
           "# TYPE alkaidd_requests_total counter\n");
    for (size_t i = 0; requests != NULL && i < requests->as.map.len; i++) {
        printf("alkaidd_requests_total{method=\"%s\"} %lld\n",
               requests->as.map.pairs[i].key->as.str.bytes,
               (long long)requests->as.map.pairs[i].value->as.integer);
    }
    const alk_value *errors = alk_value_get(reply, "errors");
    printf("# HELP alkaidd_errors_total Error replies sent, by error name.\n"
           "# TYPE alkaidd_errors_total counter\n");
    for (size_t i = 0; errors != NULL && i < errors->as.map.len; i++) {
        printf("alkaidd_errors_total{name=\"%s\"} %lld\n",
               errors->as.map.pairs[i].key->as.str.bytes,
               (long long)errors->as.map.pairs[i].value->as.integer);
    }
    const alk_value *job = alk_value_get(reply, "job_ms");
    static const struct {
        const char *key;
        const char *le;
    } buckets[] = {{"le_1", "0.001"}, {"le_10", "0.01"},  {"le_100", "0.1"},
                   {"le_1000", "1"},  {"le_10000", "10"}, {"le_inf", "+Inf"}};
    printf("# HELP alkaidd_job_duration_seconds Time from receipt to reply of queued jobs.\n"
           "# TYPE alkaidd_job_duration_seconds histogram\n");
    for (size_t b = 0; b < sizeof(buckets) / sizeof(buckets[0]); b++) {
        printf("alkaidd_job_duration_seconds_bucket{le=\"%s\"} %llu\n", buckets[b].le,
               (unsigned long long)cli_get_uint(job, buckets[b].key));
    }
    printf("alkaidd_job_duration_seconds_sum %.17g\n", cli_get_number(job, "sum") / 1000.0);
    printf("alkaidd_job_duration_seconds_count %llu\n",
           (unsigned long long)cli_get_uint(job, "count"));
}

/* ---- control commands --------------------------------------------------------------------- */

static int control_command(const command_spec *spec, int argc, char **argv) {
    common_options o;
    int code = parse_common(spec, argc, argv, &o);
    if (code != EXIT_OK) {
        return code < 0 ? EXIT_OK : code;
    }
    alk_buf request;
    alk_buf_init(&request);
    char path[PATH_MAX];
    if (strcmp(spec->name, "load") == 0) {
        /* The daemon needs an absolute path; it may run in another directory. */
        if (realpath(o.positional, path) == NULL) {
            fprintf(stderr, "alkaidc: %s: %s\n", o.positional, strerror(errno));
            alk_buf_fini(&request);
            return errno == ENOENT ? EXIT_IO : EXIT_INPUT;
        }
        alk_value text = {.kind = ALK_VALUE_STR, .as.str = {path, strlen(path)}};
        cli_request_simple(&request, "load", "path", &text);
    } else if (strcmp(spec->name, "drain") == 0 && o.resume) {
        alk_value yes = {.kind = ALK_VALUE_BOOL, .as.boolean = true};
        cli_request_simple(&request, "drain", "resume", &yes);
    } else if (o.positional != NULL) {
        alk_value name = {.kind = ALK_VALUE_STR, .as.str = {o.positional, strlen(o.positional)}};
        cli_request_simple(&request, spec->name, "name", &name);
    } else {
        cli_request_simple(&request, spec->name, NULL, NULL);
    }
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *reply = NULL;
    code = round_trip(spec, &o, &request, &arena, &reply, NULL, 0);
    if (code == EXIT_OK) {
        if (strcmp(spec->name, "stats") == 0) {
            if (o.prometheus) {
                print_stats_prometheus(reply);
            } else {
                print_stats_text(reply);
            }
        } else if (strcmp(spec->name, "drain") == 0) {
            printf("%s\n", cli_get_str(reply, "state") != NULL ? cli_get_str(reply, "state") : "?");
        } else if (strcmp(spec->name, "shutdown") == 0) {
            printf("stopping after %llu requests in flight\n",
                   (unsigned long long)cli_get_uint(reply, "inflight"));
        } else {
            printf("generation %llu (was %llu), %llu plugins\n",
                   (unsigned long long)cli_get_uint(reply, "generation"),
                   (unsigned long long)cli_get_uint(reply, "previous"),
                   (unsigned long long)cli_get_uint(reply, "plugins"));
        }
    }
    alk_arena_fini(&arena);
    alk_buf_fini(&request);
    return code;
}

int cmd_stats(int argc, char **argv) {
    static const command_spec spec = {"stats", CLI_CONTROL, NULL, false,
                                      "Prints the daemon's counters (--prometheus: in the "
                                      "Prometheus text format)."};
    return control_command(&spec, argc, argv);
}

int cmd_reload(int argc, char **argv) {
    static const command_spec spec = {"reload", CLI_CONTROL, "NAME", false,
                                      "Rebuilds the plugin generation (like SIGHUP); with NAME, "
                                      "checks that plugin exists first. A refused plugin keeps "
                                      "the old generation."};
    return control_command(&spec, argc, argv);
}

int cmd_load(int argc, char **argv) {
    static const command_spec spec = {"load", CLI_CONTROL, "PATH", true,
                                      "Adds a plugin: a NAME.plugin manifest or a directory of "
                                      "them joins the daemon's plugin directories."};
    return control_command(&spec, argc, argv);
}

int cmd_unload(int argc, char **argv) {
    static const command_spec spec = {"unload", CLI_CONTROL, "NAME", true,
                                      "Disables a plugin; running jobs keep it until they end."};
    return control_command(&spec, argc, argv);
}

int cmd_drain(int argc, char **argv) {
    static const command_spec spec = {"drain", CLI_CONTROL, NULL, false,
                                      "Stops taking requests and returns once every request in "
                                      "flight is answered (--resume: serve again)."};
    return control_command(&spec, argc, argv);
}

int cmd_shutdown(int argc, char **argv) {
    static const command_spec spec = {"shutdown", CLI_CONTROL, NULL, false,
                                      "Stops the daemon gracefully, like SIGTERM."};
    return control_command(&spec, argc, argv);
}
