/*
 * The methods answered on the loop thread: ping, info, plugins (both sockets) and the control
 * methods reload, load, unload, stats, drain and shutdown; plus the plugin generations.
 *
 * Generations are built on the loop thread: the plugin contract (alk_plugin.h) runs a plugin's
 * init and fini on the thread that loads and unloads it, and a build takes milliseconds. The
 * first build is lenient (a refused plugin is listed with its reason and the others serve); every
 * later build (reload, load, unload, SIGHUP) is strict: if any plugin is refused, the current
 * generation stays and the reply lists the reasons. Jobs hold the generation they started with,
 * so a swap never disturbs them; the old generation goes when its last job ends. Finished replies
 * in the reply cache are dropped at every swap, since they may be stale.
 *
 * Thread rule: loop thread only.
 */
#include "server_int.h"

#include "log.h"

#include "core/alloc.h"
#include "plugin/alk_plugin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define SERVER_NAME "alkaidd " ALKAID_VERSION

static uint64_t generation_id(const alkd_server *server) {
    return server->generation != NULL ? alk_generation_id(server->generation) : 0;
}

/* ---- generations --------------------------------------------------------------------------- */

static int build_generation(alkd_server *server, bool strict, alk_diag *diag) {
    char **dirs = NULL;
    size_t n_dirs = 0;
    int rv = alk_plugin_search_path((const char *const *)server->plugin_dirs.items,
                                    server->plugin_dirs.len, &dirs, &n_dirs);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot list the plugin directories");
    }
    alk_plugin_config config = {
        .dirs = (const char *const *)dirs,
        .n_dirs = n_dirs,
        .disabled = (const char *const *)server->disabled.items,
        .n_disabled = server->disabled.len,
        .strict = strict,
    };
    if (strict) {
        (void)sd_notify(0, "RELOADING=1");
    }
    alk_generation *generation = NULL;
    rv = alk_generation_build(&config, server->generation, &generation, diag);
    if (rv == ALK_OK) {
        alk_generation *old = server->generation;
        bool changed = old == NULL || !alk_generation_same_plugins(old, generation);
        server->generation = generation;
        alk_generation_unref(old);
        alkd_cache_flush_done(&server->cache);
        if (alkd__jobs_generation(server, (const char *const *)dirs, n_dirs, changed) != ALK_OK) {
            alkd_error("out of memory while starting the workers of a new generation");
        }
        if (old != NULL) {
            server->stats.reloads++;
        }
        size_t refused = alk_generation_n_refused(generation);
        alkd_info("plugin generation %" PRIu64 " in use%s", alk_generation_id(generation),
                  refused > 0 ? " (some plugins were refused; see `alkaidc plugins`)" : "");
    } else if (strict) {
        server->stats.reload_failures++;
        alkd_warn("plugin reload refused, generation %" PRIu64 " stays: %s", generation_id(server),
                  diag->message);
    }
    alk_plugin_dirs_free(dirs, n_dirs);
    if (strict) {
        (void)sd_notify(0, "READY=1");
        alkd__notify_status(server);
    }
    return rv;
}

int alkd__generation_init(alkd_server *server, alk_diag *diag) {
    int rv = alkd_strings_copy(&server->config->plugin_dirs, &server->plugin_dirs);
    if (rv == ALK_OK) {
        rv = alkd_strings_copy(&server->config->disabled, &server->disabled);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    rv = build_generation(server, false, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_plugin_info *infos = NULL;
    size_t n = 0;
    if (alk_generation_plugins(server->generation, &infos, &n) == ALK_OK) {
        for (size_t i = 0; i < n; i++) {
            if (infos[i].state == ALK_PLUGIN_REFUSED) {
                alkd_warn("plugin %s (%s) refused: %s", infos[i].name, infos[i].group,
                          infos[i].error != NULL ? infos[i].error : "unknown reason");
            } else {
                alkd_info("plugin %s (%s) %s", infos[i].name, infos[i].group,
                          infos[i].state == ALK_PLUGIN_LOADED ? "loaded" : "on demand");
            }
        }
        alk_free(infos);
    }
    return ALK_OK;
}

void alkd__reload_from_signal(alkd_server *server) {
    alk_diag diag = {{0}};
    alkd_info("SIGHUP: reloading plugins");
    if (server->config->config_path != NULL) {
        int rv = alkd_config_reload_plugins(server->config, server->config->config_path, &diag);
        if (rv != ALK_OK) {
            alkd_error("reload: %s; plugins unchanged", diag.message);
            return;
        }
        alkd_strings dirs;
        alkd_strings disabled;
        if (alkd_strings_copy(&server->config->plugin_dirs, &dirs) != ALK_OK) {
            alkd_error("reload: out of memory");
            return;
        }
        if (alkd_strings_copy(&server->config->disabled, &disabled) != ALK_OK) {
            alkd_strings_fini(&dirs);
            alkd_error("reload: out of memory");
            return;
        }
        alkd_strings_fini(&server->plugin_dirs);
        alkd_strings_fini(&server->disabled);
        server->plugin_dirs = dirs;
        server->disabled = disabled;
    }
    (void)build_generation(server, true, &diag);
}

/* ---- encoding helpers ---------------------------------------------------------------------- */

static const char *state_name(alk_plugin_state state) {
    switch (state) {
    case ALK_PLUGIN_LOADED:
        return "loaded";
    case ALK_PLUGIN_ON_DEMAND:
        return "on_demand";
    default:
        return "refused";
    }
}

/* The `plugins` array; `full` adds library, manifest and error. */
static void put_plugins(alk_buf *out, const alkd_server *server, bool full) {
    alk_plugin_info *infos = NULL;
    size_t n = 0;
    if (server->generation == NULL ||
        alk_generation_plugins(server->generation, &infos, &n) != ALK_OK) {
        n = 0;
    }
    alk_mp_array(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const alk_plugin_info *p = &infos[i];
        alk_mp_map_writer plugin;
        alk_mp_map_open(&plugin, out);
        alk_mp_key(&plugin, "group");
        alk_mp_str(out, p->group);
        alk_mp_key(&plugin, "name");
        alk_mp_str(out, p->name);
        alk_mp_key(&plugin, "abi_version");
        alk_mp_uint(out, p->abi_version);
        alk_mp_key(&plugin, "version");
        alk_mp_str(out, p->version);
        alk_mp_key(&plugin, "state");
        alk_mp_str(out, state_name(p->state));
        if (full) {
            alk_mp_key(&plugin, "library");
            alk_mp_str(out, p->library);
            alk_mp_key(&plugin, "manifest");
            alk_mp_str(out, p->manifest);
            alk_mp_key(&plugin, "error");
            alk_mp_str(out, p->error);
        }
        alk_mp_map_close(&plugin);
    }
    alk_free(infos);
}

static void put_methods(alk_buf *out, uint32_t socket) {
    uint32_t n = 0;
    for (size_t i = 0; i < alk_rpc_n_methods; i++) {
        n += (alk_rpc_methods[i].sockets & socket) &&
             !(alk_rpc_methods[i].flags & ALK_RPC_METHOD_HIDDEN);
    }
    alk_mp_array(out, n);
    for (size_t i = 0; i < alk_rpc_n_methods; i++) {
        if ((alk_rpc_methods[i].sockets & socket) &&
            !(alk_rpc_methods[i].flags & ALK_RPC_METHOD_HIDDEN)) {
            alk_mp_str(out, alk_rpc_methods[i].name);
        }
    }
}

static double uptime_s(const alkd_server *server) {
    return (double)(alkd__now() - server->started) / 1e9;
}

static size_t worker_count(alkd_server *server) {
    return server->workers.config.n;
}

/* ---- listing methods ----------------------------------------------------------------------- */

static int reply_ping(alkd_server *server, const slot *s, const alk_rpc_request *request,
                      alk_buf *out) {
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "server");
    alk_mp_str(out, SERVER_NAME);
    alk_mp_key(&reply, "uptime_s");
    alk_mp_float(out, uptime_s(server));
    alk_mp_map_close(&reply);
    return ALK_OK;
}

static int reply_info(alkd_server *server, const slot *s, const alk_rpc_request *request,
                      alk_buf *out) {
    const alk_rpc_limits *limits = &server->config->limits;
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "server");
    alk_mp_str(out, SERVER_NAME);
    alk_mp_key(&reply, "protocol");
    alk_mp_uint(out, ALK_RPC_PROTOCOL);
    alk_mp_key(&reply, "accepted");
    const uint64_t *versions;
    size_t n_versions = alk_rpc_accepted_versions(&versions);
    alk_mp_array(out, (uint32_t)n_versions);
    for (size_t i = 0; i < n_versions; i++) {
        alk_mp_uint(out, versions[i]);
    }
    alk_mp_key(&reply, "plugin_abi");
    alk_mp_uint(out, ALK_PLUGIN_ABI_VERSION);
    alk_mp_key(&reply, "methods");
    put_methods(out, s->owner->control ? ALK_RPC_SOCKET_CONTROL : ALK_RPC_SOCKET_SERVICE);
    alk_mp_key(&reply, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_key(&reply, "plugins");
    put_plugins(out, server, false);
    alk_mp_key(&reply, "limits");
    alk_mp_map_writer limit_map;
    alk_mp_map_open(&limit_map, out);
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        alk_mp_key(&limit_map, alk_rpc_limit_fields[i].name);
        alk_mp_uint(out,
                    *(const uint64_t *)((const char *)limits + alk_rpc_limit_fields[i].offset));
    }
    alk_mp_map_close(&limit_map);
    alk_mp_key(&reply, "workers");
    alk_mp_uint(out, worker_count(server));
    alk_mp_key(&reply, "queue");
    alk_mp_uint(out, server->config->queue);
    alk_mp_map_close(&reply);
    return ALK_OK;
}

static int reply_plugins(alkd_server *server, const slot *s, const alk_rpc_request *request,
                         alk_buf *out) {
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_key(&reply, "plugins");
    put_plugins(out, server, true);
    alk_mp_map_close(&reply);
    return ALK_OK;
}

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long pages = 0;
    unsigned long long resident = 0;
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%llu %llu", &pages, &resident) != 2) {
        resident = 0;
    }
    (void)fclose(f);
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static const char *server_state_name(server_state state) {
    switch (state) {
    case STATE_SERVING:
        return "serving";
    case STATE_DRAINING:
        return "draining";
    default:
        return "stopping";
    }
}

/* A map of counters that are not zero: name(i) -> counts[i] for i in [from, n). */
static void put_nonzero(alk_buf *out, const uint64_t *counts, size_t from, size_t n,
                        const char *(*name)(size_t i)) {
    alk_mp_map_writer map;
    alk_mp_map_open(&map, out);
    for (size_t i = from; i < n; i++) {
        if (counts[i] > 0) {
            alk_mp_key(&map, name(i));
            alk_mp_uint(out, counts[i]);
        }
    }
    alk_mp_map_close(&map);
}

static const char *method_name(size_t i) {
    return i < alk_rpc_n_methods ? alk_rpc_methods[i].name : "other";
}

static const char *error_name(size_t i) {
    return alk_err_name((int)i);
}

static int reply_stats(alkd_server *server, const slot *s, const alk_rpc_request *request,
                       alk_buf *out) {
    const stats *st = &server->stats;
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "uptime_s");
    alk_mp_float(out, uptime_s(server));
    alk_mp_key(&reply, "state");
    alk_mp_str(out, server_state_name(server->state));
    alk_mp_key(&reply, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_key(&reply, "workers");
    alk_mp_uint(out, worker_count(server));
    alk_mp_key(&reply, "busy_workers");
    alk_mp_uint(out, alkd_workers_busy(&server->workers));
    alk_mp_key(&reply, "queued");
    alk_mp_uint(out, server->queue.n + server->heavy_queue.n);
    alk_mp_key(&reply, "queue");
    alk_mp_uint(out, server->config->queue);
    alk_mp_key(&reply, "inflight");
    alk_mp_uint(out, server->service_inflight);
    alk_mp_key(&reply, "requests");
    put_nonzero(out, st->requests_by_method, 0, alk_rpc_n_methods + 1, method_name);
    alk_mp_key(&reply, "errors");
    put_nonzero(out, st->errors, 1, N_ERROR_CODES, error_name);
    alk_mp_key(&reply, "replies");
    alk_mp_uint(out, st->replies);
    alk_mp_key(&reply, "cache_hits");
    alk_mp_uint(out, st->cache_hits);
    alk_mp_key(&reply, "cache_entries");
    alk_mp_uint(out, server->cache.n_done);
    alk_mp_key(&reply, "reloads");
    alk_mp_uint(out, st->reloads);
    alk_mp_key(&reply, "reload_failures");
    alk_mp_uint(out, st->reload_failures);
    alk_mp_key(&reply, "abandoned");
    alk_mp_uint(out, st->abandoned);
    alk_mp_key(&reply, "worker_jobs");
    alk_mp_uint(out, st->worker_jobs);
    alk_mp_key(&reply, "worker_starts");
    alk_mp_uint(out, server->workers.started);
    alk_mp_key(&reply, "worker_crashes");
    alk_mp_uint(out, server->workers.crashed);
    alk_mp_key(&reply, "worker_kills");
    alk_mp_uint(out, server->workers.killed);
    alk_mp_key(&reply, "poison_hits");
    alk_mp_uint(out, st->poison_hits);
    alk_mp_key(&reply, "listener_restarts");
    alk_mp_uint(out, st->listener_restarts);
    alk_mp_key(&reply, "rss_bytes");
    alk_mp_uint(out, rss_bytes());
    alk_mp_key(&reply, "job_ms");
    alk_mp_map_writer jobs;
    alk_mp_map_open(&jobs, out);
    alk_mp_key(&jobs, "count");
    alk_mp_uint(out, st->job_count);
    alk_mp_key(&jobs, "sum");
    alk_mp_float(out, st->job_ms_sum);
    static const char *const bucket_names[] = {"le_1",    "le_10",    "le_100",
                                               "le_1000", "le_10000", "le_inf"};
    uint64_t cumulative = 0;
    for (size_t b = 0; b < 6; b++) {
        cumulative += st->job_buckets[b];
        alk_mp_key(&jobs, bucket_names[b]);
        alk_mp_uint(out, cumulative);
    }
    alk_mp_map_close(&jobs);
    alk_mp_map_close(&reply);
    return ALK_OK;
}

/* ---- control methods ----------------------------------------------------------------------- */

static bool has_plugin(const alkd_server *server, const char *name) {
    alk_plugin_info *infos = NULL;
    size_t n = 0;
    bool found = false;
    if (server->generation != NULL &&
        alk_generation_plugins(server->generation, &infos, &n) == ALK_OK) {
        for (size_t i = 0; i < n && !found; i++) {
            found = strcmp(infos[i].name, name) == 0;
        }
        alk_free(infos);
    }
    return found;
}

static void reply_generation(alkd_server *server, const alk_rpc_request *request, uint64_t previous,
                             alk_buf *out) {
    alk_plugin_info *infos = NULL;
    size_t n = 0;
    if (alk_generation_plugins(server->generation, &infos, &n) != ALK_OK) {
        n = 0;
    }
    alk_free(infos);
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_key(&reply, "previous");
    alk_mp_uint(out, previous);
    alk_mp_key(&reply, "plugins");
    alk_mp_uint(out, n);
    alk_mp_map_close(&reply);
}

/* Writes the error reply for (code, where, message) to `out`; returns code. */
static int reply_error(const alk_rpc_request *request, int code, const char *where,
                       const char *message, alk_buf *out) {
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_rpc_error_set(&err, code, where, "%s", message);
    err.id = request->id;
    alk_buf_reset(out);
    (void)alk_rpc_encode_error(&err, out);
    return code;
}

/* Rebuilds strictly; on failure restores the plugin lists saved in `dirs`/`disabled`. */
static int rebuild_or_restore(alkd_server *server, const alk_rpc_request *request,
                              alkd_strings *dirs, alkd_strings *disabled, alk_buf *out) {
    uint64_t previous = generation_id(server);
    alk_diag diag = {{0}};
    int rv = build_generation(server, true, &diag);
    if (rv != ALK_OK) {
        alkd_strings_fini(&server->plugin_dirs);
        alkd_strings_fini(&server->disabled);
        server->plugin_dirs = *dirs;
        server->disabled = *disabled;
        return reply_error(request, rv, NULL, diag.message, out);
    }
    alkd_strings_fini(dirs);
    alkd_strings_fini(disabled);
    reply_generation(server, request, previous, out);
    return ALK_OK;
}

/* Copies the plugin directories and disabled names (to restore them if a rebuild fails); on
 * success the caller owns both copies. */
static int save_plugin_config(const alkd_server *server, alkd_strings *ret_dirs,
                              alkd_strings *ret_disabled) {
    if (alkd_strings_copy(&server->plugin_dirs, ret_dirs) != ALK_OK) {
        return ALK_ENOMEM;
    }
    if (alkd_strings_copy(&server->disabled, ret_disabled) != ALK_OK) {
        alkd_strings_fini(ret_dirs);
        return ALK_ENOMEM;
    }
    return ALK_OK;
}

static int control_reload(alkd_server *server, const slot *s, const alk_rpc_request *request,
                          alk_buf *out) {
    const alk_value *name = alk_value_get(request->body, "name");
    if (name != NULL && name->kind == ALK_VALUE_STR && !has_plugin(server, name->as.str.bytes)) {
        char message[200];
        (void)snprintf(message, sizeof(message), "no plugin named '%.128s' is loaded",
                       name->as.str.bytes);
        return reply_error(request, ALK_ENOENT, "name", message, out);
    }
    alkd_strings dirs;
    alkd_strings disabled;
    if (save_plugin_config(server, &dirs, &disabled) != ALK_OK) {
        return reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
    }
    return rebuild_or_restore(server, request, &dirs, &disabled, out);
}

static int control_load(alkd_server *server, const slot *s, const alk_rpc_request *request,
                        alk_buf *out) {
    const char *path = alk_value_get(request->body, "path")->as.str.bytes;
    char message[4300];
    if (path[0] != '/') {
        return reply_error(request, ALK_EINVAL, "path", "the path must be absolute", out);
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        (void)snprintf(message, sizeof(message), "%s: %s", path, strerror(errno));
        return reply_error(request, errno == ENOENT ? ALK_ENOENT : ALK_EIO, "path", message, out);
    }
    char dir[4097];
    char name[256] = "";
    if (S_ISDIR(st.st_mode)) {
        (void)snprintf(dir, sizeof(dir), "%s", path);
    } else {
        size_t len = strlen(path);
        const char *slash = strrchr(path, '/');
        const char *base = slash + 1;
        size_t base_len = strlen(base);
        if (len < 8 || strcmp(path + len - 7, ".plugin") != 0 || base_len <= 7 ||
            base_len - 7 >= sizeof(name)) {
            return reply_error(request, ALK_EINVAL, "path",
                               "the path must be a directory or a NAME.plugin manifest", out);
        }
        memcpy(name, base, base_len - 7);
        name[base_len - 7] = '\0';
        (void)snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    }
    alkd_strings dirs;
    alkd_strings disabled;
    if (save_plugin_config(server, &dirs, &disabled) != ALK_OK) {
        return reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
    }
    int rv = ALK_OK;
    if (!alkd_strings_contains(&server->plugin_dirs, dir)) {
        rv = alkd_strings_push(&server->plugin_dirs, dir);
    }
    if (name[0] != '\0') {
        (void)alkd_strings_remove(&server->disabled, name);
    }
    if (rv != ALK_OK) {
        alkd_strings_fini(&server->plugin_dirs);
        alkd_strings_fini(&server->disabled);
        server->plugin_dirs = dirs;
        server->disabled = disabled;
        return reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
    }
    return rebuild_or_restore(server, request, &dirs, &disabled, out);
}

static int control_unload(alkd_server *server, const slot *s, const alk_rpc_request *request,
                          alk_buf *out) {
    const char *name = alk_value_get(request->body, "name")->as.str.bytes;
    if (!has_plugin(server, name)) {
        char message[200];
        (void)snprintf(message, sizeof(message), "no plugin named '%.128s' is loaded", name);
        return reply_error(request, ALK_ENOENT, "name", message, out);
    }
    alkd_strings dirs;
    alkd_strings disabled;
    if (save_plugin_config(server, &dirs, &disabled) != ALK_OK) {
        return reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
    }
    if (alkd_strings_push(&server->disabled, name) != ALK_OK) {
        alkd_strings_fini(&dirs);
        alkd_strings_fini(&disabled);
        return reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
    }
    return rebuild_or_restore(server, request, &dirs, &disabled, out);
}

static void reply_drain_state(const alk_rpc_request *request, const char *state, alk_buf *out) {
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "state");
    alk_mp_str(out, state);
    alk_mp_map_close(&reply);
}

void alkd__drains_check(alkd_server *server) {
    if (server->drains == NULL || server->service_inflight > 0 || server->n_jobs > 0) {
        return;
    }
    pending_reply *p = server->drains;
    server->drains = NULL;
    while (p != NULL) {
        pending_reply *next = p->next;
        alk_buf out;
        alk_buf_init(&out);
        reply_drain_state(&p->request, "draining", &out);
        alkd__send_reply(server, p->requester, out.data, out.len);
        alk_buf_fini(&out);
        alk_arena_fini(&p->arena);
        alk_free(p);
        p = next;
    }
}

void alkd__drains_cancel(alkd_server *server) {
    pending_reply *p = server->drains;
    server->drains = NULL;
    while (p != NULL) {
        pending_reply *next = p->next;
        alk_rpc_error err;
        alk_rpc_error_clear(&err);
        alk_rpc_error_set(&err, ALK_ECANCELED, NULL, "the daemon is stopping");
        err.id = p->request.id;
        alkd__send_error(server, p->requester, &err);
        alk_arena_fini(&p->arena);
        alk_free(p);
        p = next;
    }
}

/* drain: answered now (resume, or nothing in flight) or when the last request is answered. */
static bool control_drain(alkd_server *server, slot *s, alk_arena *arena,
                          const alk_rpc_request *request, alk_buf *out, int *ret_code) {
    const alk_value *resume = alk_value_get(request->body, "resume");
    *ret_code = ALK_OK;
    if (resume != NULL && resume->kind == ALK_VALUE_BOOL && resume->as.boolean) {
        if (server->state == STATE_DRAINING) {
            server->state = STATE_SERVING;
            alkd_info("drain: serving again");
            alkd__drains_cancel(server);
            alkd__update_receivers(server);
        }
        reply_drain_state(request, server_state_name(server->state), out);
        return true;
    }
    if (server->state == STATE_SERVING) {
        server->state = STATE_DRAINING;
        alkd_info("drain: no new requests; %zu in flight", server->service_inflight);
        alkd__update_receivers(server);
        alkd__notify_status(server);
    }
    pending_reply *p = alk_calloc(1, sizeof(*p));
    if (p == NULL) {
        *ret_code = reply_error(request, ALK_ENOMEM, NULL, "out of memory", out);
        return true;
    }
    p->requester = s;
    p->arena = *arena;
    p->request = *request;
    *arena = (alk_arena){0};
    p->next = server->drains;
    server->drains = p;
    alkd__drains_check(server);
    return false;
}

static int reply_shutdown(alkd_server *server, const slot *s, const alk_rpc_request *request,
                          alk_buf *out) {
    alk_mp_map_writer reply;
    alk_rpc_reply_open(&reply, out, request->id);
    alk_mp_key(&reply, "inflight");
    alk_mp_uint(out, server->service_inflight);
    alk_mp_map_close(&reply);
    return ALK_OK;
}

/*
 * How the daemon answers each method of the schemas, indexed by the generated method ids: at
 * once on the loop thread (`reply`, which returns the reply's code), later (`deferred`: drain),
 * or as a job (`job`: the schema's queued methods). alkd__methods_check proves at start-up that
 * every method has exactly one way.
 */
static const alkd_method methods[ALK_RPC_N_METHODS] = {
    [ALK_RPC_METHOD_CONVERT] = {.job = ALKD_JOB_CONVERT},
    [ALK_RPC_METHOD_TEST_SLEEP] = {.job = ALKD_JOB_SLEEP},
    [ALK_RPC_METHOD_PING] = {.reply = reply_ping},
    [ALK_RPC_METHOD_INFO] = {.reply = reply_info},
    [ALK_RPC_METHOD_PLUGINS] = {.reply = reply_plugins},
    [ALK_RPC_METHOD_STATS] = {.reply = reply_stats},
    [ALK_RPC_METHOD_RELOAD] = {.reply = control_reload},
    [ALK_RPC_METHOD_LOAD] = {.reply = control_load},
    [ALK_RPC_METHOD_UNLOAD] = {.reply = control_unload},
    [ALK_RPC_METHOD_DRAIN] = {.deferred = control_drain},
    [ALK_RPC_METHOD_SHUTDOWN] = {.reply = reply_shutdown, .stops = true},
};

const alkd_method *alkd__method(const alk_rpc_method *method) {
    return &methods[method->id];
}

int alkd__methods_check(alk_diag *diag) {
    for (size_t i = 0; i < alk_rpc_n_methods; i++) {
        const alkd_method *m = &methods[i];
        bool queued = (alk_rpc_methods[i].flags & ALK_RPC_METHOD_QUEUED) != 0;
        int ways = (m->reply != NULL) + (m->deferred != NULL) + (m->job != ALKD_JOB_NONE);
        if (ways != 1 || queued != (m->job != ALKD_JOB_NONE)) {
            return alk_diag_set(diag, ALK_EINTERNAL,
                                "method '%s' has no single handler in the daemon's table",
                                alk_rpc_methods[i].name);
        }
    }
    return ALK_OK;
}

void alkd__notify_status(alkd_server *server) {
    char status[256];
    (void)snprintf(status, sizeof(status),
                   "STATUS=%s; generation %" PRIu64 "; %zu in flight; %" PRIu64 " replies",
                   server_state_name(server->state), generation_id(server), server->inflight,
                   server->stats.replies);
    (void)sd_notify(0, status);
}
