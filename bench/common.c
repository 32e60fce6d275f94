/*
 * Helpers of the daemon benchmarks (common.h). The daemon runs as a child process; its sockets
 * live in a temporary directory that bench_daemon_stop removes.
 */
#include "common.h"

#include "core/arena.h"
#include "rpc/rpc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

bool bench_daemon_start(bench_daemon *d, const char *name, const char *alkaidd,
                        const char *const *extra) {
    enum { MAX_ARGS = 16 };
    d->pid = 0;
    (void)snprintf(d->dir, sizeof(d->dir), "/tmp/alkaid-%s-XXXXXX", name);
    if (mkdtemp(d->dir) == NULL) {
        perror("mkdtemp");
        d->dir[0] = '\0';
        return false;
    }
    (void)snprintf(d->url, sizeof(d->url), "ipc://%s/bench.sock", d->dir);
    char control[600];
    (void)snprintf(control, sizeof(control), "ipc://%s/bench.ctl", d->dir);
    const char *argv[MAX_ARGS] = {alkaidd, "--listen",    d->url, "--control",
                                  control, "--log-level", "warn"};
    size_t argc = 7;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && argc + 1 < MAX_ARGS; i++) {
        argv[argc++] = extra[i];
    }
    pid_t pid = fork();
    if (pid == 0) {
        execv(alkaidd, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid > 0 ? pid : 0;
    /* Wait for the socket to appear. */
    char path[600];
    (void)snprintf(path, sizeof(path), "%s/bench.sock", d->dir);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++) {
        usleep(10000);
    }
    return true;
}

void bench_daemon_stop(bench_daemon *d) {
    if (d->pid > 0) {
        (void)kill(d->pid, SIGTERM);
        int status;
        (void)waitpid(d->pid, &status, 0);
        d->pid = 0;
    }
    if (d->dir[0] != '\0') {
        char cmd[128];
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        (void)system(cmd);
        d->dir[0] = '\0';
    }
}

bool bench_reply_ok(const void *bytes, size_t len, char *error, size_t cap) {
    alk_arena arena;
    alk_arena_init(&arena, 4096);
    const alk_value *reply;
    alk_rpc_error err;
    bool ok = alk_value_from_msgpack(bytes, len, NULL, &arena, &reply, &err) == ALK_OK &&
              alk_value_get(reply, "ok") != NULL && alk_value_get(reply, "ok")->as.boolean;
    if (!ok && error != NULL) {
        const alk_value *m = alk_value_get(alk_value_get(reply, "error"), "message");
        (void)snprintf(error, cap, "%s",
                       m != NULL && m->kind == ALK_VALUE_STR ? m->as.str.bytes : "bad reply");
    }
    alk_arena_fini(&arena);
    return ok;
}
