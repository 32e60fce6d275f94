/*
 * The reply cache (see cache.h): a fixed array of hash buckets with chaining, plus a FIFO of
 * done entries in completion order. Because every done entry lives `ttl` from completion, the
 * FIFO is also in expiry order: sweeping and budget eviction both pop from its head.
 *
 * Thread rule: loop thread only.
 */
#include "cache.h"

#include "core/alloc.h"
#include "core/err.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

enum { N_BUCKETS = 4096 };

/* ---- SipHash-2-4 (Aumasson & Bernstein), 64-bit output -------------------------------------- */

static inline uint64_t rotl(uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t siphash(const uint64_t key[2], const uint8_t *in, size_t len) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
    uint64_t v3 = 0x7465646279746573ULL ^ key[1];
    const uint8_t *end = in + (len - len % 8);
    for (; in != end; in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++) {
        b |= (uint64_t)in[i] << (8 * i);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the cache ------------------------------------------------------------------------------ */

int alkd_cache_init(alkd_cache *cache, uint64_t ttl_ns, size_t max_bytes, size_t max_entries) {
    *cache = (alkd_cache){.ttl_ns = ttl_ns, .max_bytes = max_bytes, .max_entries = max_entries};
    cache->buckets = alk_calloc(N_BUCKETS, sizeof(*cache->buckets));
    if (cache->buckets == NULL) {
        return ALK_ENOMEM;
    }
    cache->n_buckets = N_BUCKETS;
    if (getrandom(cache->key, sizeof(cache->key), 0) != (ssize_t)sizeof(cache->key)) {
        /* No entropy source: fall back to the clock; only collision-resistance suffers. */
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        cache->key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
        cache->key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)cache;
    }
    return ALK_OK;
}

uint64_t alkd_cache_hash(const alkd_cache *cache, const void *bytes, size_t len) {
    return siphash(cache->key, bytes, len);
}

static alkd_cache_entry **bucket_of(alkd_cache *cache, uint64_t hash) {
    return &cache->buckets[hash & (cache->n_buckets - 1)];
}

static void done_unlink(alkd_cache *cache, alkd_cache_entry *e) {
    if (e->done_prev != NULL) {
        e->done_prev->done_next = e->done_next;
    } else {
        cache->done_head = e->done_next;
    }
    if (e->done_next != NULL) {
        e->done_next->done_prev = e->done_prev;
    } else {
        cache->done_tail = e->done_prev;
    }
    e->done_prev = NULL;
    e->done_next = NULL;
}

void alkd_cache_remove(alkd_cache *cache, alkd_cache_entry *entry) {
    alkd_cache_entry **link = bucket_of(cache, entry->hash);
    while (*link != NULL && *link != entry) {
        link = &(*link)->bucket_next;
    }
    if (*link == entry) {
        *link = entry->bucket_next;
    }
    if (entry->owner == NULL) {
        done_unlink(cache, entry);
        cache->bytes -= entry->reply_len;
        cache->n_done--;
    }
    cache->n_entries--;
    alk_free(entry->reply);
    alk_free(entry);
}

void alkd_cache_sweep(alkd_cache *cache, uint64_t now) {
    while (cache->done_head != NULL && cache->done_head->expires <= now) {
        alkd_cache_remove(cache, cache->done_head);
    }
}

void alkd_cache_flush_done(alkd_cache *cache) {
    while (cache->done_head != NULL) {
        alkd_cache_remove(cache, cache->done_head);
    }
}

alkd_cache_entry *alkd_cache_find(alkd_cache *cache, uint64_t hash, size_t len, uint64_t now) {
    alkd_cache_sweep(cache, now);
    for (alkd_cache_entry *e = *bucket_of(cache, hash); e != NULL; e = e->bucket_next) {
        if (e->hash == hash && e->len == len) {
            return e;
        }
    }
    return NULL;
}

alkd_cache_entry *alkd_cache_begin(alkd_cache *cache, uint64_t hash, size_t len, void *owner,
                                   size_t tag) {
    while (cache->n_entries >= cache->max_entries && cache->done_head != NULL) {
        alkd_cache_remove(cache, cache->done_head);
    }
    if (cache->n_entries >= cache->max_entries) {
        return NULL; /* every entry is in flight: serve without deduplication */
    }
    alkd_cache_entry *e = alk_calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->hash = hash;
    e->len = len;
    e->owner = owner;
    e->tag = tag;
    alkd_cache_entry **bucket = bucket_of(cache, hash);
    e->bucket_next = *bucket;
    *bucket = e;
    cache->n_entries++;
    return e;
}

void alkd_cache_complete(alkd_cache *cache, alkd_cache_entry *entry, const void *reply,
                         size_t reply_len, uint64_t now) {
    if (cache->ttl_ns == 0 || reply_len > cache->max_bytes) {
        alkd_cache_remove(cache, entry);
        return;
    }
    while (cache->bytes + reply_len > cache->max_bytes && cache->done_head != NULL) {
        alkd_cache_remove(cache, cache->done_head);
    }
    uint8_t *copy = alk_malloc(reply_len > 0 ? reply_len : 1);
    if (copy == NULL) {
        alkd_cache_remove(cache, entry);
        return;
    }
    memcpy(copy, reply, reply_len);
    entry->owner = NULL;
    entry->reply = copy;
    entry->reply_len = reply_len;
    entry->expires = now + cache->ttl_ns;
    entry->done_prev = cache->done_tail;
    if (cache->done_tail != NULL) {
        cache->done_tail->done_next = entry;
    } else {
        cache->done_head = entry;
    }
    cache->done_tail = entry;
    cache->bytes += reply_len;
    cache->n_done++;
}

void alkd_cache_store(alkd_cache *cache, uint64_t hash, size_t len, size_t tag, const void *reply,
                      size_t reply_len, uint64_t now) {
    alkd_cache_entry *entry = alkd_cache_begin(cache, hash, len, cache, tag);
    if (entry != NULL) {
        alkd_cache_complete(cache, entry, reply, reply_len, now);
    }
}

void alkd_cache_fini(alkd_cache *cache) {
    if (cache->buckets != NULL) {
        for (size_t i = 0; i < cache->n_buckets; i++) {
            alkd_cache_entry *e = cache->buckets[i];
            while (e != NULL) {
                alkd_cache_entry *next = e->bucket_next;
                alk_free(e->reply);
                alk_free(e);
                e = next;
            }
        }
    }
    alk_free(cache->buckets);
    *cache = (alkd_cache){0};
}
