/*
 * The poison list: conversions that killed a worker process (a crash, or the memory ceiling),
 * remembered by their content for a while, so that the same conversion sent again (an nng
 * resend, a retry with a new id, a second client) gets the same error at once instead of killing
 * another worker, and a farm of daemons cannot be taken down one by one by one request.
 *
 * The content key is SHA-256 over the request's decoded fields except those that do not change
 * what is converted (`id`, `timeout_ms`): two requests that differ only there are the same
 * conversion. Entries live `ttl_ms`, at most ALKD_POISON_MAX, the oldest replaced first; a plugin
 * reload forgets them all (the new code may not crash).
 *
 * Thread rule: loop thread only.
 */
#ifndef ALKD_POISON_H
#define ALKD_POISON_H

#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ALKD_POISON_MAX = 1024 };

typedef struct alkd_poison_entry {
    uint8_t key[32];
    uint64_t expires; /* monotonic ns; 0: a free slot */
    int code;
    char message[480];
} alkd_poison_entry;

typedef struct alkd_poison {
    alkd_poison_entry *entries; /* ALKD_POISON_MAX slots, used as a ring */
    size_t next;
    size_t live;
    uint64_t ttl_ns;
} alkd_poison;

int alkd_poison_init(alkd_poison *poison, uint64_t ttl_ms);
void alkd_poison_fini(alkd_poison *poison);

/* Whether no entry is live (the key of a request need not be computed then). */
bool alkd_poison_empty(const alkd_poison *poison);

/* The content key of a request map (borrowed). */
void alkd_poison_key(const alk_value *request, uint8_t ret_key[32]);

/* The live entry for `key`, or NULL. */
const alkd_poison_entry *alkd_poison_find(alkd_poison *poison, const uint8_t key[32], uint64_t now);

/* Remembers that the conversion `key` failed with `code` and `message` (borrowed). */
void alkd_poison_add(alkd_poison *poison, const uint8_t key[32], int code, const char *message,
                     uint64_t now);

/* Forgets every entry. */
void alkd_poison_clear(alkd_poison *poison);

#endif
