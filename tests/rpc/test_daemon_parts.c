/* alkaidd's parts that need no socket: the reply cache, the worker pool and the config parser. */
#include "daemon/cache.h"
#include "daemon/config.h"
#include "daemon/pool.h"

#include "core/alloc.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- reply cache --------------------------------------------------------------------------- */

Test(cache, in_flight_then_done_then_expired) {
    alkd_cache c;
    cr_assert_eq(alkd_cache_init(&c, 1000, 1 << 20, 16), ALK_OK);
    uint64_t h = alkd_cache_hash(&c, "request", 7);
    cr_assert_eq(h, alkd_cache_hash(&c, "request", 7));
    cr_assert_neq(h, alkd_cache_hash(&c, "requesT", 7));
    cr_assert_null(alkd_cache_find(&c, h, 7, 0));
    int owner;
    alkd_cache_entry *e = alkd_cache_begin(&c, h, 7, &owner, 0);
    cr_assert_not_null(e);
    cr_assert_eq(alkd_cache_find(&c, h, 7, 0), e);
    cr_assert_eq(alkd_cache_find(&c, h, 7, 0)->owner, &owner);
    cr_assert_null(alkd_cache_find(&c, h, 8, 0), "the length is part of the key");
    alkd_cache_complete(&c, e, "reply", 5, 100);
    e = alkd_cache_find(&c, h, 7, 500);
    cr_assert_not_null(e);
    cr_assert_null(e->owner);
    cr_assert_eq(e->reply_len, 5);
    cr_assert_eq(memcmp(e->reply, "reply", 5), 0);
    cr_assert_null(alkd_cache_find(&c, h, 7, 1100), "expired after ttl");
    cr_assert_eq(c.n_entries, 0);
    alkd_cache_fini(&c);
}

Test(cache, budget_evicts_oldest_and_flush) {
    alkd_cache c;
    cr_assert_eq(alkd_cache_init(&c, 1000000, 10, 4), ALK_OK);
    char reply[6] = "abcdef";
    for (int i = 0; i < 4; i++) {
        alkd_cache_store(&c, (uint64_t)i, 1, 0, reply, 4, (uint64_t)i);
    }
    /* 4-byte replies in a 10-byte budget: only the last two stay. */
    cr_assert_null(alkd_cache_find(&c, 0, 1, 10));
    cr_assert_null(alkd_cache_find(&c, 1, 1, 10));
    cr_assert_not_null(alkd_cache_find(&c, 2, 1, 10));
    cr_assert_not_null(alkd_cache_find(&c, 3, 1, 10));
    cr_assert_eq(c.bytes, 8);
    /* A reply bigger than the budget is not kept; the in-flight entry goes. */
    alkd_cache_entry *e = alkd_cache_begin(&c, 9, 1, &c, 0);
    alkd_cache_complete(&c, e, "0123456789abc", 13, 10);
    cr_assert_null(alkd_cache_find(&c, 9, 1, 10));
    /* Entries are capped: in-flight ones are never evicted. */
    int owners[4];
    alkd_cache_flush_done(&c);
    cr_assert_eq(c.n_entries, 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_not_null(alkd_cache_begin(&c, 100 + (uint64_t)i, 1, &owners[i], 0));
    }
    cr_assert_null(alkd_cache_begin(&c, 200, 1, &owners[0], 0), "full of in-flight entries");
    alkd_cache_fini(&c);
}

/* ---- worker pool --------------------------------------------------------------------------- */

typedef struct test_job {
    alkd_pool_item item;
    int ran;
    int done;
} test_job;

static atomic_int release_workers;

static void run_job(alkd_pool_item *item) {
    test_job *j = (test_job *)item;
    while (!atomic_load(&release_workers)) {
        usleep(1000);
    }
    j->ran = 1;
}

static int n_done;

static void done_job(alkd_pool_item *item) {
    ((test_job *)item)->done = 1;
    n_done++;
}

Test(pool, bounded_queue_busy_and_cancel) {
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    alkd_pool pool;
    atomic_store(&release_workers, 0);
    n_done = 0;
    cr_assert_eq(alkd_pool_init(&pool, &loop, 2, 2, run_job, done_job), ALK_OK);
    test_job jobs[6] = {0};
    /* 2 workers + 2 queued = 4 accepted; the 5th is refused at once. */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(alkd_pool_submit(&pool, &jobs[i].item), ALK_OK, "job %d", i);
    }
    cr_assert_eq(alkd_pool_submit(&pool, &jobs[4].item), ALK_EBUSY);
    cr_assert_eq(alkd_pool_pending(&pool), 4);
    /* Wait until the two workers hold two jobs, then take a queued one back. */
    for (int tries = 0; tries < 1000 && alkd_pool_running(&pool) < 2; tries++) {
        usleep(1000);
    }
    cr_assert_eq(alkd_pool_running(&pool), 2);
    cr_assert_eq(alkd_pool_queued(&pool), 2);
    cr_assert(alkd_pool_cancel(&pool, &jobs[3].item));
    cr_assert(!alkd_pool_cancel(&pool, &jobs[0].item), "a running job cannot be taken back");
    cr_assert_eq(alkd_pool_submit(&pool, &jobs[5].item), ALK_OK, "the freed slot is usable");
    atomic_store(&release_workers, 1);
    for (int tries = 0; tries < 2000 && n_done < 4; tries++) {
        (void)uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(n_done, 4);
    cr_assert(jobs[0].done && jobs[1].done && jobs[2].done && jobs[5].done);
    cr_assert(!jobs[3].ran && !jobs[3].done && !jobs[4].ran);
    alkd_pool_stop(&pool);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- config -------------------------------------------------------------------------------- */

Test(config, file_then_flags_override) {
    char path[] = "/tmp/alkaidd-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# a comment\nlisten = ipc:///tmp/a.sock\nlisten = tcp://127.0.0.1:5555\n"
               "workers = 3\nqueue=9   # trailing comment\nmax-dims = 4\ntimeout = 2.5\n"
               "plugin-dir = /opt/p\nlog-level = debug\nsocket-mode = 0640\nbroker = false\n");
    fclose(f);
    char *argv[] = {"alkaidd",     "--config", path,
                    "--queue",     "11",       "--listen=ipc:///tmp/b.sock",
                    "--max-depth", "9",        "--test-hooks"};
    alkd_config c;
    alkd_config_init(&c);
    alk_diag diag = {{0}};
    cr_assert_eq(alkd_config_parse(&c, 9, argv, &diag), ALK_OK, "%s", diag.message);
    cr_assert_eq(c.workers, 3);
    cr_assert_eq(c.queue, 11, "the flag overrides the file");
    cr_assert_eq(c.listen.len, 1, "a list flag replaces the file's list");
    cr_assert_str_eq(c.listen.items[0], "ipc:///tmp/b.sock");
    cr_assert_eq(c.limits.max_dims, 4);
    cr_assert_eq(c.limits.max_depth, 9);
    cr_assert_eq(c.limits.default_timeout_ms, 2500);
    cr_assert_eq(c.plugin_dirs.len, 1);
    cr_assert_eq(c.log_level, ALKD_LOG_DEBUG);
    cr_assert_eq(c.socket_mode, 0640);
    cr_assert(c.test_hooks);
    cr_assert(!c.broker);
    alkd_config_fini(&c);
    unlink(path);
}

Test(config, errors_name_the_key_and_line) {
    char path[] = "/tmp/alkaidd-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "workers = 2\nmax-dims = 99\n");
    fclose(f);
    char *argv[] = {"alkaidd", "--config", path};
    alkd_config c;
    alkd_config_init(&c);
    alk_diag diag = {{0}};
    cr_assert_eq(alkd_config_parse(&c, 3, argv, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, ":2:") != NULL || strstr(diag.message, ":2") != NULL, "%s",
              diag.message);
    alkd_config_fini(&c);

    char *bad_flag[] = {"alkaidd", "--frobnicate", "1"};
    alkd_config_init(&c);
    cr_assert_eq(alkd_config_parse(&c, 3, bad_flag, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "frobnicate") != NULL, "%s", diag.message);
    alkd_config_fini(&c);

    char *bad_value[] = {"alkaidd", "--workers", "many"};
    alkd_config_init(&c);
    cr_assert_eq(alkd_config_parse(&c, 3, bad_value, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "--workers") != NULL, "%s", diag.message);
    alkd_config_fini(&c);

    char *missing[] = {"alkaidd", "--queue"};
    alkd_config_init(&c);
    cr_assert_eq(alkd_config_parse(&c, 2, missing, &diag), ALK_EINVAL);
    alkd_config_fini(&c);
    unlink(path);
}

Test(config, reload_reads_only_the_plugin_keys) {
    char path[] = "/tmp/alkaidd-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "workers = 2\nplugin-dir = /a\n");
    fclose(f);
    alkd_config c;
    alkd_config_init(&c);
    char *argv[] = {"alkaidd", "--config", path};
    alk_diag diag = {{0}};
    cr_assert_eq(alkd_config_parse(&c, 3, argv, &diag), ALK_OK);
    f = fopen(path, "w");
    fprintf(f, "workers = 7\nplugin-dir = /b\nplugin-dir = /c\ndisable = hgq\n");
    fclose(f);
    cr_assert_eq(alkd_config_reload_plugins(&c, path, &diag), ALK_OK);
    cr_assert_eq(c.workers, 2, "only plugin keys change on reload");
    cr_assert_eq(c.plugin_dirs.len, 2);
    cr_assert_str_eq(c.plugin_dirs.items[1], "/c");
    cr_assert_eq(c.disabled.len, 1);
    alkd_config_fini(&c);
    unlink(path);
}
