/*
 * A thread pool: N threads taking tasks from one bounded FIFO queue. The daemon decodes large
 * requests on it (requests.c), so that decoding one client's heavy messages does not stall the
 * loop thread that serves everyone.
 *
 * A task is submitted on the loop thread and runs on a pool thread; its completion is handed
 * back to the loop thread (uv_async), where the `done` callback runs. A submission beyond the
 * capacity (every thread busy and `capacity` tasks waiting) is refused at once with ALK_EBUSY,
 * so the daemon can answer EBUSY rather than let a backlog grow.
 *
 * Thread rule: submit and stop are for the loop thread; `run` runs on a pool thread, `done` on
 * the loop thread. The queue is behind the pool's one mutex.
 */
#ifndef ALKD_POOL_H
#define ALKD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct alkd_pool_item {
    struct alkd_pool_item *next;
} alkd_pool_item;

typedef void (*alkd_pool_fn)(alkd_pool_item *item);

typedef struct alkd_pool {
    uv_mutex_t lock;
    uv_cond_t wake;
    alkd_pool_item *head; /* waiting jobs */
    alkd_pool_item *tail;
    size_t n_queued;
    size_t n_running;
    size_t capacity;
    size_t n_workers;
    bool stopping;
    uv_thread_t *threads;
    size_t n_threads;
    alkd_pool_item *done_head; /* finished, waiting for the loop */
    alkd_pool_item *done_tail;
    uv_async_t done_async;
    alkd_pool_fn run;
    alkd_pool_fn done;
} alkd_pool;

/*
 * Starts `n_workers` threads and registers the completion handle on `loop` (borrowed). `run`
 * executes a job on a worker; `done` reports it on the loop thread.
 */
int alkd_pool_init(alkd_pool *pool, uv_loop_t *loop, size_t n_workers, size_t capacity,
                   alkd_pool_fn run, alkd_pool_fn done);

/* Queues `item` (the pool borrows it until `done` runs); ALK_EBUSY when full: then `done` never
 * runs for it. */
int alkd_pool_submit(alkd_pool *pool, alkd_pool_item *item);

/* Stops the workers (each finishes its current job; jobs still queued are not run) and joins
 * them, then closes the completion handle. Call on the loop thread; the loop must run once more
 * for the handle to close. */
void alkd_pool_stop(alkd_pool *pool);

#endif
