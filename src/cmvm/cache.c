/*
 * Per-job memo cache of CMVM and SCM solutions (spec cmvm.md §14.1 item 6).
 *
 * Design: a convolution asks the solver the same question once per output position, and a
 * network multiplies by the same scalars many times. Entries are keyed by the exact bytes of
 * everything that changes a result (kernel shape and values, intervals, latencies, and the
 * options except the thread count) and found through a 64-bit FNV-1a hash; the full key is
 * compared, so a hash collision can never return a wrong solution. The table is a flat array
 * scanned by hash: a job holds a few hundred distinct problems at most.
 *
 * Thread rule: one mutex guards the table. A solve runs outside the lock; when two threads solve
 * the same new problem at once, the first insert wins and the other result is freed. Results are
 * never removed before alk_cmvm_cache_free, so returned pointers stay valid.
 */
#include "cmvm/cmvm.h"
#include "core/alloc.h"

#include <pthread.h>
#include <string.h>

typedef struct entry {
    uint64_t hash;
    unsigned char *key;
    size_t key_len;
    bool is_scm;
    alk_cmvm_result *result; /* CMVM */
    alk_program *program;    /* SCM */
} entry;

struct alk_cmvm_cache {
    pthread_mutex_t lock;
    entry *entries;
    size_t len;
    size_t cap;
    size_t hits;
    size_t misses;
};

int alk_cmvm_cache_new(alk_cmvm_cache **ret_cache) {
    alk_cmvm_cache *c = alk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return ALK_ENOMEM;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        alk_free(c);
        return ALK_ENOMEM;
    }
    *ret_cache = c;
    return ALK_OK;
}

void alk_cmvm_cache_free(alk_cmvm_cache *cache) {
    if (cache == NULL) {
        return;
    }
    for (size_t i = 0; i < cache->len; i++) {
        entry *e = &cache->entries[i];
        alk_free(e->key);
        alk_cmvm_result_fini(e->result);
        alk_free(e->result);
        alk_program_free(e->program);
    }
    alk_free(cache->entries);
    (void)pthread_mutex_destroy(&cache->lock);
    alk_free(cache);
}

void alk_cmvm_cache_stats(const alk_cmvm_cache *cache, size_t *ret_hits, size_t *ret_misses) {
    pthread_mutex_t *lock = (pthread_mutex_t *)&cache->lock;
    (void)pthread_mutex_lock(lock);
    *ret_hits = cache->hits;
    *ret_misses = cache->misses;
    (void)pthread_mutex_unlock(lock);
}

static uint64_t fnv1a(const unsigned char *bytes, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ bytes[i]) * 0x100000001b3ull;
    }
    return h;
}

/* A key under construction: a growable byte string. */
typedef struct keybuf {
    unsigned char *bytes;
    size_t len;
    size_t cap;
    int rv;
} keybuf;

static void key_put(keybuf *k, const void *bytes, size_t n) {
    if (k->rv != ALK_OK || n == 0) {
        return;
    }
    void *items = k->bytes;
    k->rv = alk_grow(&items, &k->cap, 1, k->len + n);
    k->bytes = items;
    if (k->rv == ALK_OK) {
        memcpy(k->bytes + k->len, bytes, n);
        k->len += n;
    }
}

/* Looks a key up under the lock; returns the entry or NULL. */
static entry *find(alk_cmvm_cache *c, uint64_t hash, const keybuf *k, bool is_scm) {
    for (size_t i = 0; i < c->len; i++) {
        entry *e = &c->entries[i];
        if (e->hash == hash && e->is_scm == is_scm && e->key_len == k->len &&
            memcmp(e->key, k->bytes, k->len) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Inserts under the lock; takes ownership of the key bytes and the result on success. */
static int insert(alk_cmvm_cache *c, uint64_t hash, keybuf *k, bool is_scm, alk_cmvm_result *result,
                  alk_program *program) {
    if (c->len == c->cap) {
        void *items = c->entries;
        int rv = alk_grow(&items, &c->cap, sizeof(entry), c->len + 1);
        c->entries = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    c->entries[c->len++] = (entry){hash, k->bytes, k->len, is_scm, result, program};
    k->bytes = NULL;
    return ALK_OK;
}

int alk_cmvm_cache_solve(alk_cmvm_cache *cache, const alk_cmvm_problem *problem,
                         const alk_cmvm_options *options, const alk_cmvm_result **ret_result,
                         bool *ret_hit, alk_diag *diag) {
    alk_cmvm_options opts;
    if (options == NULL) {
        alk_cmvm_options_init(&opts);
    } else {
        opts = *options;
    }
    keybuf k = {0};
    size_t n_values;
    if (!alk_mul_size(problem->n_in, problem->n_out, &n_values)) {
        return alk_diag_set(diag, ALK_ELIMIT, "kernel too large");
    }
    int32_t fields[8] = {(int32_t)problem->n_in,
                         (int32_t)problem->n_out,
                         (int32_t)opts.method0,
                         (int32_t)opts.method1,
                         opts.hard_dc,
                         opts.decompose_dc,
                         opts.search_all_decompose_dc,
                         (int32_t)opts.mode};
    key_put(&k, fields, sizeof(fields));
    key_put(&k, problem->kernel, n_values * sizeof(double));
    unsigned char present[2] = {problem->intervals != NULL, problem->latencies != NULL};
    key_put(&k, present, sizeof(present));
    if (problem->intervals != NULL) {
        key_put(&k, problem->intervals, problem->n_in * sizeof(alk_qint));
    }
    if (problem->latencies != NULL) {
        key_put(&k, problem->latencies, problem->n_in * sizeof(double));
    }
    if (k.rv != ALK_OK) {
        alk_free(k.bytes);
        return alk_diag_set(diag, k.rv, "out of memory in the CMVM cache");
    }
    uint64_t hash = fnv1a(k.bytes, k.len);

    (void)pthread_mutex_lock(&cache->lock);
    entry *e = find(cache, hash, &k, false);
    if (e != NULL) {
        cache->hits++;
        *ret_result = e->result;
    }
    (void)pthread_mutex_unlock(&cache->lock);
    if (e != NULL) {
        alk_free(k.bytes);
        if (ret_hit != NULL) {
            *ret_hit = true;
        }
        return ALK_OK;
    }

    alk_cmvm_result *result = alk_calloc(1, sizeof(*result));
    int rv = result == NULL ? ALK_ENOMEM : alk_cmvm_solve(problem, &opts, result, diag);
    if (rv != ALK_OK) {
        alk_free(result);
        alk_free(k.bytes);
        return rv;
    }
    (void)pthread_mutex_lock(&cache->lock);
    e = find(cache, hash, &k, false);
    if (e != NULL) {
        *ret_result = e->result; /* another thread won the race */
    } else {
        rv = insert(cache, hash, &k, false, result, NULL);
        if (rv == ALK_OK) {
            *ret_result = result;
            result = NULL;
        }
    }
    cache->misses++;
    (void)pthread_mutex_unlock(&cache->lock);
    alk_cmvm_result_fini(result);
    alk_free(result);
    alk_free(k.bytes);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory in the CMVM cache");
    }
    if (ret_hit != NULL) {
        *ret_hit = false;
    }
    return ALK_OK;
}

int alk_cmvm_cache_scm(alk_cmvm_cache *cache, double constant, const alk_scm_options *options,
                       const alk_program **ret_program, bool *ret_hit, alk_diag *diag) {
    alk_scm_options defaults;
    if (options == NULL) {
        alk_scm_options_init(&defaults);
        options = &defaults;
    }
    keybuf key = {0};
    key_put(&key, &constant, sizeof(constant));
    key_put(&key, &options->k, sizeof(options->k));
    key_put(&key, &options->interval, sizeof(options->interval));
    key_put(&key, &options->mode, sizeof(options->mode));
    if (key.rv != ALK_OK) {
        alk_free(key.bytes);
        return alk_diag_set(diag, key.rv, "out of memory in the SCM cache");
    }
    uint64_t hash = fnv1a(key.bytes, key.len);
    (void)pthread_mutex_lock(&cache->lock);
    entry *e = find(cache, hash, &key, true);
    if (e != NULL) {
        cache->hits++;
        *ret_program = e->program;
    }
    (void)pthread_mutex_unlock(&cache->lock);
    if (e != NULL) {
        alk_free(key.bytes);
        if (ret_hit != NULL) {
            *ret_hit = true;
        }
        return ALK_OK;
    }
    alk_program *program = NULL;
    int rv = alk_scm_solve(constant, options, &program, diag);
    if (rv != ALK_OK) {
        alk_free(key.bytes);
        return rv;
    }
    (void)pthread_mutex_lock(&cache->lock);
    e = find(cache, hash, &key, true);
    if (e != NULL) {
        *ret_program = e->program;
    } else {
        rv = insert(cache, hash, &key, true, NULL, program);
        if (rv == ALK_OK) {
            *ret_program = program;
            program = NULL;
        }
    }
    cache->misses++;
    (void)pthread_mutex_unlock(&cache->lock);
    alk_program_free(program);
    alk_free(key.bytes);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory in the SCM cache");
    }
    if (ret_hit != NULL) {
        *ret_hit = false;
    }
    return ALK_OK;
}
