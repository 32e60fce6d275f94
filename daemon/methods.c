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
    alk_plugin_dirs_free(dirs, n_dirs);
    if (rv == ALK_OK) {
        alk_generation *old = server->generation;
        server->generation = generation;
        alk_generation_unref(old);
        alkd_cache_flush_done(&server->cache);
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
        alk_mp_map(out, full ? 8 : 5);
        alk_mp_str(out, "group");
        alk_mp_str(out, p->group);
        alk_mp_str(out, "name");
        alk_mp_str(out, p->name);
        alk_mp_str(out, "abi_version");
        alk_mp_uint(out, p->abi_version);
        alk_mp_str(out, "version");
        alk_mp_str(out, p->version);
        alk_mp_str(out, "state");
        alk_mp_str(out, state_name(p->state));
        if (full) {
            alk_mp_str(out, "library");
            alk_mp_str(out, p->library);
            alk_mp_str(out, "manifest");
            alk_mp_str(out, p->manifest);
            alk_mp_str(out, "error");
            alk_mp_str(out, p->error);
        }
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
    return server->pool.n_workers;
}

/* ---- listing methods ----------------------------------------------------------------------- */

static void reply_ping(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
    alk_rpc_reply_begin(out, request->id, 2);
    alk_mp_str(out, "server");
    alk_mp_str(out, SERVER_NAME);
    alk_mp_str(out, "uptime_s");
    alk_mp_float(out, uptime_s(server));
}

static void reply_info(alkd_server *server, const slot *s, const alk_rpc_request *request,
                       alk_buf *out) {
    const alk_rpc_limits *limits = &server->config->limits;
    alk_rpc_reply_begin(out, request->id, 10);
    alk_mp_str(out, "server");
    alk_mp_str(out, SERVER_NAME);
    alk_mp_str(out, "protocol");
    alk_mp_uint(out, ALK_RPC_PROTOCOL);
    alk_mp_str(out, "accepted");
    const uint64_t *versions;
    size_t n_versions = alk_rpc_accepted_versions(&versions);
    alk_mp_array(out, (uint32_t)n_versions);
    for (size_t i = 0; i < n_versions; i++) {
        alk_mp_uint(out, versions[i]);
    }
    alk_mp_str(out, "plugin_abi");
    alk_mp_uint(out, ALK_PLUGIN_ABI_VERSION);
    alk_mp_str(out, "methods");
    put_methods(out, s->owner->control ? ALK_RPC_SOCKET_CONTROL : ALK_RPC_SOCKET_SERVICE);
    alk_mp_str(out, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_str(out, "plugins");
    put_plugins(out, server, false);
    alk_mp_str(out, "limits");
    alk_mp_map(out, (uint32_t)alk_rpc_n_limit_fields);
    for (size_t i = 0; i < alk_rpc_n_limit_fields; i++) {
        alk_mp_str(out, alk_rpc_limit_fields[i].name);
        alk_mp_uint(out,
                    *(const uint64_t *)((const char *)limits + alk_rpc_limit_fields[i].offset));
    }
    alk_mp_str(out, "workers");
    alk_mp_uint(out, worker_count(server));
    alk_mp_str(out, "queue");
    alk_mp_uint(out, server->config->queue);
}

static void reply_plugins(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
    alk_rpc_reply_begin(out, request->id, 2);
    alk_mp_str(out, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_str(out, "plugins");
    put_plugins(out, server, true);
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

static void reply_stats(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
    const stats *st = &server->stats;
    alk_rpc_reply_begin(out, request->id, 18);
    alk_mp_str(out, "uptime_s");
    alk_mp_float(out, uptime_s(server));
    alk_mp_str(out, "state");
    alk_mp_str(out, server_state_name(server->state));
    alk_mp_str(out, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_str(out, "workers");
    alk_mp_uint(out, worker_count(server));
    alk_mp_str(out, "busy_workers");
    alk_mp_uint(out, alkd_pool_running(&server->pool));
    alk_mp_str(out, "queued");
    alk_mp_uint(out, alkd_pool_queued(&server->pool));
    alk_mp_str(out, "queue");
    alk_mp_uint(out, server->config->queue);
    alk_mp_str(out, "inflight");
    alk_mp_uint(out, server->service_inflight);

    uint32_t n_methods = 0;
    for (size_t i = 0; i <= alk_rpc_n_methods; i++) {
        n_methods += st->requests_by_method[i] > 0;
    }
    alk_mp_str(out, "requests");
    alk_mp_map(out, n_methods);
    for (size_t i = 0; i <= alk_rpc_n_methods; i++) {
        if (st->requests_by_method[i] > 0) {
            alk_mp_str(out, i < alk_rpc_n_methods ? alk_rpc_methods[i].name : "other");
            alk_mp_uint(out, st->requests_by_method[i]);
        }
    }
    uint32_t n_errors = 0;
    for (size_t i = 1; i < N_ERROR_CODES; i++) {
        n_errors += st->errors[i] > 0;
    }
    alk_mp_str(out, "errors");
    alk_mp_map(out, n_errors);
    for (size_t i = 1; i < N_ERROR_CODES; i++) {
        if (st->errors[i] > 0) {
            alk_mp_str(out, alk_err_name((int)i));
            alk_mp_uint(out, st->errors[i]);
        }
    }
    alk_mp_str(out, "replies");
    alk_mp_uint(out, st->replies);
    alk_mp_str(out, "cache_hits");
    alk_mp_uint(out, st->cache_hits);
    alk_mp_str(out, "cache_entries");
    alk_mp_uint(out, server->cache.n_done);
    alk_mp_str(out, "reloads");
    alk_mp_uint(out, st->reloads);
    alk_mp_str(out, "reload_failures");
    alk_mp_uint(out, st->reload_failures);
    alk_mp_str(out, "abandoned");
    alk_mp_uint(out, st->abandoned);
    alk_mp_str(out, "rss_bytes");
    alk_mp_uint(out, rss_bytes());
    alk_mp_str(out, "job_ms");
    alk_mp_map(out, 8);
    alk_mp_str(out, "count");
    alk_mp_uint(out, st->job_count);
    alk_mp_str(out, "sum");
    alk_mp_float(out, st->job_ms_sum);
    static const char *const bucket_names[] = {"le_1",    "le_10",    "le_100",
                                               "le_1000", "le_10000", "le_inf"};
    uint64_t cumulative = 0;
    for (size_t b = 0; b < 6; b++) {
        cumulative += st->job_buckets[b];
        alk_mp_str(out, bucket_names[b]);
        alk_mp_uint(out, cumulative);
    }
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
    alk_rpc_reply_begin(out, request->id, 3);
    alk_mp_str(out, "generation");
    alk_mp_uint(out, generation_id(server));
    alk_mp_str(out, "previous");
    alk_mp_uint(out, previous);
    alk_mp_str(out, "plugins");
    alk_mp_uint(out, n);
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

static int control_reload(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
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

static int control_load(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
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

static int control_unload(alkd_server *server, const alk_rpc_request *request, alk_buf *out) {
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
    alk_rpc_reply_begin(out, request->id, 1);
    alk_mp_str(out, "state");
    alk_mp_str(out, state);
}

void alkd__drains_check(alkd_server *server) {
    if (server->drains == NULL || server->service_inflight > 0 ||
        alkd_pool_pending(&server->pool) > 0) {
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

bool alkd__handle_method(alkd_server *server, slot *s, alk_arena *arena,
                         const alk_rpc_request *request, alk_buf *reply, int *ret_code) {
    const char *name = request->method->name;
    *ret_code = ALK_OK;
    if (strcmp(name, "ping") == 0) {
        reply_ping(server, request, reply);
    } else if (strcmp(name, "info") == 0) {
        reply_info(server, s, request, reply);
    } else if (strcmp(name, "plugins") == 0) {
        reply_plugins(server, request, reply);
    } else if (strcmp(name, "stats") == 0) {
        reply_stats(server, request, reply);
    } else if (strcmp(name, "reload") == 0) {
        *ret_code = control_reload(server, request, reply);
    } else if (strcmp(name, "load") == 0) {
        *ret_code = control_load(server, request, reply);
    } else if (strcmp(name, "unload") == 0) {
        *ret_code = control_unload(server, request, reply);
    } else if (strcmp(name, "drain") == 0) {
        return control_drain(server, s, arena, request, reply, ret_code);
    } else if (strcmp(name, "shutdown") == 0) {
        alk_rpc_reply_begin(reply, request->id, 1);
        alk_mp_str(reply, "inflight");
        alk_mp_uint(reply, server->service_inflight);
    } else {
        *ret_code = reply_error(request, ALK_ENOTSUP, "method", "method not implemented", reply);
    }
    return true;
}

void alkd__notify_status(alkd_server *server) {
    char status[256];
    (void)snprintf(status, sizeof(status),
                   "STATUS=%s; generation %" PRIu64 "; %zu in flight; %" PRIu64 " replies",
                   server_state_name(server->state), generation_id(server), server->inflight,
                   server->stats.replies);
    (void)sd_notify(0, status);
}
