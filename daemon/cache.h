/*
 * The reply cache: answers nng REQ resends (and any identical request) once.
 *
 * nng's REQ socket resends a request when its connection closes or its resend timer fires, so
 * the same bytes can arrive twice. Entries are keyed by a keyed 64-bit hash (SipHash-2-4 with a
 * per-process random key, so that no client can aim a collision at another's request) plus the
 * length of the request bytes, which include the client's id. An entry is either in flight
 * (`owner` is the job computing the reply: a duplicate attaches to it) or done (a copy of the
 * reply, kept `ttl` and within a byte budget, oldest evicted first).
 *
 * Thread rule: loop thread only.
 */
#ifndef ALKD_CACHE_H
#define ALKD_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct alkd_cache_entry {
    uint64_t hash;
    size_t len;
    void *owner;    /* the job in flight, or NULL when done */
    size_t tag;     /* the caller's label (the method), for statistics */
    uint8_t *reply; /* done: the reply bytes */
    size_t reply_len;
    uint64_t expires; /* done: monotonic ns */
    struct alkd_cache_entry *bucket_next;
    struct alkd_cache_entry *done_prev; /* done entries in completion order */
    struct alkd_cache_entry *done_next;
} alkd_cache_entry;

typedef struct alkd_cache {
    alkd_cache_entry **buckets;
    size_t n_buckets;
    size_t n_entries;
    size_t n_done;
    size_t bytes; /* reply bytes held */
    size_t max_bytes;
    size_t max_entries;
    uint64_t ttl_ns;
    uint64_t key[2];
    alkd_cache_entry *done_head;
    alkd_cache_entry *done_tail;
} alkd_cache;

/* Prepares an empty cache; ttl_ns == 0 or max_bytes == 0 keeps no finished replies (in-flight
 * duplicates still attach). */
int alkd_cache_init(alkd_cache *cache, uint64_t ttl_ns, size_t max_bytes, size_t max_entries);
void alkd_cache_fini(alkd_cache *cache);

/* The keyed hash of a request's bytes (borrowed). */
uint64_t alkd_cache_hash(const alkd_cache *cache, const void *bytes, size_t len);

/* The live entry for (hash, len), or NULL; expired entries are dropped first. */
alkd_cache_entry *alkd_cache_find(alkd_cache *cache, uint64_t hash, size_t len, uint64_t now);

/* Adds an in-flight entry owned by `owner` (borrowed) and labelled `tag`; NULL when out of
 * memory or full. */
alkd_cache_entry *alkd_cache_begin(alkd_cache *cache, uint64_t hash, size_t len, void *owner,
                                   size_t tag);

/* Turns an in-flight entry into a done one holding a copy of `reply` (borrowed), or drops it
 * when the copy does not fit the budget. The entry pointer is invalid afterwards. */
void alkd_cache_complete(alkd_cache *cache, alkd_cache_entry *entry, const void *reply,
                         size_t reply_len, uint64_t now);

/* Stores a copy of a reply computed at once (no in-flight phase), when the budget allows. */
void alkd_cache_store(alkd_cache *cache, uint64_t hash, size_t len, size_t tag, const void *reply,
                      size_t reply_len, uint64_t now);

/* Removes an entry (in flight or done) and frees it. */
void alkd_cache_remove(alkd_cache *cache, alkd_cache_entry *entry);

/* Drops expired done entries. */
void alkd_cache_sweep(alkd_cache *cache, uint64_t now);

/* Drops every done entry (after a plugin reload, old answers may be stale). */
void alkd_cache_flush_done(alkd_cache *cache);

#endif
