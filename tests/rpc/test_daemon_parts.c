/* alkaidd's parts that need no socket: the reply cache, the decode thread pool, the fair job
 * queue, the poison list and the config parser. */
#include "daemon/cache.h"
#include "daemon/common.h"
#include "daemon/config.h"
#include "daemon/poison.h"
#include "daemon/pool.h"
#include "daemon/queue.h"

#include "core/alloc.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

Test(pool, bounded_queue_answers_busy) {
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    alkd_pool pool;
    atomic_store(&release_workers, 0);
    n_done = 0;
    cr_assert_eq(alkd_pool_init(&pool, &loop, 2, 2, run_job, done_job), ALK_OK);
    test_job jobs[6] = {0};
    /* 2 threads + 2 queued = 4 accepted; the 5th is refused at once. */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(alkd_pool_submit(&pool, &jobs[i].item), ALK_OK, "job %d", i);
    }
    cr_assert_eq(alkd_pool_submit(&pool, &jobs[4].item), ALK_EBUSY);
    atomic_store(&release_workers, 1);
    for (int tries = 0; tries < 2000 && n_done < 4; tries++) {
        (void)uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(n_done, 4);
    cr_assert(jobs[0].done && jobs[1].done && jobs[2].done && jobs[3].done);
    cr_assert(!jobs[4].ran && !jobs[4].done, "a refused task never runs");
    /* The finished tasks freed their places. */
    cr_assert_eq(alkd_pool_submit(&pool, &jobs[5].item), ALK_OK);
    for (int tries = 0; tries < 2000 && n_done < 5; tries++) {
        (void)uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert(jobs[5].done);
    alkd_pool_stop(&pool);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- fair queue ---------------------------------------------------------------------------- */

typedef struct queued {
    alkd_queue_item item; /* first */
    int id;
} queued;

/* Pops everything; writes the ids in order and returns how many. */
static int drain(alkd_queue *q, int *ids) {
    int n = 0;
    alkd_queue_item *item;
    while ((item = alkd_queue_pop(q)) != NULL) {
        ids[n++] = ((queued *)item)->id;
    }
    return n;
}

Test(queue, peers_take_turns) {
    alkd_queue q;
    alkd_queue_init(&q);
    queued jobs[7];
    /* Peer 1 floods (ids 10-14), then peers 2 and 3 arrive with one job each. */
    for (int i = 0; i < 5; i++) {
        jobs[i].id = 10 + i;
        cr_assert_eq(alkd_queue_push(&q, &jobs[i].item, 1), ALK_OK);
    }
    jobs[5].id = 20;
    jobs[6].id = 30;
    cr_assert_eq(alkd_queue_push(&q, &jobs[5].item, 2), ALK_OK);
    cr_assert_eq(alkd_queue_push(&q, &jobs[6].item, 3), ALK_OK);
    cr_assert_eq(q.n, 7);
    int ids[7];
    cr_assert_eq(drain(&q, ids), 7);
    static const int expected[7] = {10, 20, 30, 11, 12, 13, 14};
    cr_assert_arr_eq(ids, expected, sizeof(expected), "each peer's oldest job in turn");
    cr_assert_eq(q.n, 0);
    alkd_queue_fini(&q);
}

Test(queue, remove_and_evict) {
    alkd_queue q;
    alkd_queue_init(&q);
    queued jobs[6];
    for (int i = 0; i < 4; i++) {
        jobs[i].id = i;
        cr_assert_eq(alkd_queue_push(&q, &jobs[i].item, 7), ALK_OK);
    }
    jobs[4].id = 4;
    cr_assert_eq(alkd_queue_push(&q, &jobs[4].item, 8), ALK_OK);
    cr_assert(alkd_queue_remove(&q, &jobs[1].item));
    cr_assert(!alkd_queue_remove(&q, &jobs[1].item), "not waiting any more");
    /* Peer 8 (1 job) may take the place of peer 7's newest (3 jobs); peer 7 may not. */
    cr_assert_null(alkd_queue_evict(&q, 7));
    alkd_queue_item *victim = alkd_queue_evict(&q, 8);
    cr_assert_eq(victim, &jobs[3].item);
    /* A peer with nothing waiting may take a place from one holding two. */
    cr_assert_eq(alkd_queue_evict(&q, 9), &jobs[2].item);
    cr_assert_null(alkd_queue_evict(&q, 9), "one against one: no eviction");
    int ids[6];
    cr_assert_eq(drain(&q, ids), 2);
    cr_assert_eq(ids[0], 0);
    cr_assert_eq(ids[1], 4);
    alkd_queue_fini(&q);
}

/* ---- poison list ---------------------------------------------------------------------------- */

static const alk_value *json_value(alk_arena *arena, const char *text) {
    const alk_value *v = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_value_from_json(text, strlen(text), NULL, arena, &v, &diag), ALK_OK, "%s",
                 diag.message);
    return v;
}

Test(poison, content_key_ignores_id_and_timeout) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    uint8_t a[32], b[32], c[32], d[32];
    alkd_poison_key(json_value(&arena, "{\"id\": 1, \"model\": {\"do\": \"x\"}}"), a);
    alkd_poison_key(
        json_value(&arena, "{\"id\": 99, \"timeout_ms\": 5, \"model\": {\"do\": \"x\"}}"), b);
    alkd_poison_key(json_value(&arena, "{\"id\": 1, \"model\": {\"do\": \"y\"}}"), c);
    alkd_poison_key(json_value(&arena, "{\"id\": 1, \"model\": {\"do\": [\"x\"]}}"), d);
    cr_assert_arr_eq(a, b, 32);
    cr_assert_arr_neq(a, c, 32);
    cr_assert_arr_neq(a, d, 32, "a string and an array of it differ");

    alkd_poison p;
    cr_assert_eq(alkd_poison_init(&p, 1000), ALK_OK);
    cr_assert(alkd_poison_empty(&p));
    alkd_poison_add(&p, a, ALK_EPLUGIN, "it crashed", 0);
    cr_assert(!alkd_poison_empty(&p));
    const alkd_poison_entry *e = alkd_poison_find(&p, b, 500000000);
    cr_assert_not_null(e);
    cr_assert_eq(e->code, ALK_EPLUGIN);
    cr_assert_str_eq(e->message, "it crashed");
    cr_assert_null(alkd_poison_find(&p, c, 0));
    cr_assert_null(alkd_poison_find(&p, a, 1000000001), "expired after the ttl");
    cr_assert(alkd_poison_empty(&p));
    alkd_poison_add(&p, a, ALK_ENOMEM, "too big", 0);
    alkd_poison_clear(&p);
    cr_assert_null(alkd_poison_find(&p, a, 0));
    alkd_poison_fini(&p);
    alk_arena_fini(&arena);
}

/* ---- the shared-/tmp runtime directory ------------------------------------------------------ */

Test(common, private_dir_must_be_ours_and_closed) {
    char dir[] = "/tmp/alkaid-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    alk_diag diag = {{0}};
    cr_assert(alkd_private_dir_ok(dir, (unsigned)geteuid(), &diag), "%s", diag.message);
    cr_assert_eq(chmod(dir, 0777), 0);
    cr_assert(!alkd_private_dir_ok(dir, (unsigned)geteuid(), &diag));
    cr_assert(strstr(diag.message, "mode 0777") != NULL, "%s", diag.message);
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_assert(!alkd_private_dir_ok(dir, (unsigned)geteuid() + 1, &diag), "another user's");
    char link[64];
    (void)snprintf(link, sizeof(link), "%s.link", dir);
    cr_assert_eq(symlink(dir, link), 0);
    cr_assert(!alkd_private_dir_ok(link, (unsigned)geteuid(), &diag), "a symlink is refused");
    cr_assert_eq(unlink(link), 0);
    cr_assert_eq(rmdir(dir), 0);
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
