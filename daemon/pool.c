/*
 * The worker pool (see pool.h): a mutex-protected FIFO, a condition variable to wake workers and
 * a uv_async to hand finished jobs back to the loop.
 *
 * Thread rule: `lock` guards every field but `threads` (loop thread only) and the callbacks
 * (constant). `done` runs on the loop thread from the async callback.
 */
#include "pool.h"

#include "core/alloc.h"
#include "core/err.h"

static void on_done(uv_async_t *handle) {
    alkd_pool *pool = handle->data;
    uv_mutex_lock(&pool->lock);
    alkd_pool_item *item = pool->done_head;
    pool->done_head = NULL;
    pool->done_tail = NULL;
    uv_mutex_unlock(&pool->lock);
    while (item != NULL) {
        alkd_pool_item *next = item->next;
        pool->done(item);
        item = next;
    }
}

static void worker(void *arg) {
    alkd_pool *pool = arg;
    uv_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->head == NULL) {
            uv_cond_wait(&pool->wake, &pool->lock);
        }
        if (pool->stopping) {
            break;
        }
        alkd_pool_item *item = pool->head;
        pool->head = item->next;
        if (pool->head == NULL) {
            pool->tail = NULL;
        }
        pool->n_queued--;
        pool->n_running++;
        uv_mutex_unlock(&pool->lock);

        pool->run(item);

        uv_mutex_lock(&pool->lock);
        pool->n_running--;
        item->next = NULL;
        if (pool->done_tail != NULL) {
            pool->done_tail->next = item;
        } else {
            pool->done_head = item;
        }
        pool->done_tail = item;
        uv_mutex_unlock(&pool->lock);
        (void)uv_async_send(&pool->done_async);
        uv_mutex_lock(&pool->lock);
    }
    uv_mutex_unlock(&pool->lock);
}

int alkd_pool_init(alkd_pool *pool, uv_loop_t *loop, size_t n_workers, size_t capacity,
                   alkd_pool_fn run, alkd_pool_fn done) {
    *pool = (alkd_pool){.capacity = capacity, .n_workers = n_workers, .run = run, .done = done};
    pool->threads = alk_calloc(n_workers, sizeof(*pool->threads));
    if (pool->threads == NULL) {
        return ALK_ENOMEM;
    }
    if (uv_mutex_init(&pool->lock) != 0) {
        alk_free(pool->threads);
        return ALK_EINTERNAL;
    }
    if (uv_cond_init(&pool->wake) != 0) {
        uv_mutex_destroy(&pool->lock);
        alk_free(pool->threads);
        return ALK_EINTERNAL;
    }
    pool->done_async.data = pool;
    int rv = uv_async_init(loop, &pool->done_async, on_done);
    if (rv != 0) {
        uv_cond_destroy(&pool->wake);
        uv_mutex_destroy(&pool->lock);
        alk_free(pool->threads);
        return ALK_EINTERNAL;
    }
    for (size_t i = 0; i < n_workers; i++) {
        if (uv_thread_create(&pool->threads[i], worker, pool) != 0) {
            alkd_pool_stop(pool);
            return ALK_EINTERNAL;
        }
        pool->n_threads++;
    }
    return ALK_OK;
}

int alkd_pool_submit(alkd_pool *pool, alkd_pool_item *item) {
    uv_mutex_lock(&pool->lock);
    if (pool->stopping || pool->n_queued + pool->n_running >= pool->n_workers + pool->capacity) {
        uv_mutex_unlock(&pool->lock);
        return ALK_EBUSY;
    }
    item->next = NULL;
    if (pool->tail != NULL) {
        pool->tail->next = item;
    } else {
        pool->head = item;
    }
    pool->tail = item;
    pool->n_queued++;
    uv_cond_signal(&pool->wake);
    uv_mutex_unlock(&pool->lock);
    return ALK_OK;
}

void alkd_pool_stop(alkd_pool *pool) {
    uv_mutex_lock(&pool->lock);
    pool->stopping = true;
    uv_cond_broadcast(&pool->wake);
    uv_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->n_threads; i++) {
        (void)uv_thread_join(&pool->threads[i]);
    }
    pool->n_threads = 0;
    alk_free(pool->threads);
    pool->threads = NULL;
    uv_close((uv_handle_t *)&pool->done_async, NULL);
    uv_cond_destroy(&pool->wake);
    uv_mutex_destroy(&pool->lock);
}
