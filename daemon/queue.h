/*
 * The jobs waiting for a worker, served round-robin by peer: one client's flood waits behind
 * its own jobs, not in front of everyone else's.
 *
 * A peer is the process at the other end of an ipc connection (its pid) or the host of a tcp
 * one, so that a client opening many connections is still one peer. Each peer has its FIFO;
 * the peers with waiting jobs form a ring, and each pop takes the oldest job of the next peer.
 * When the queue is full, a newcomer takes the place of the newest job of the peer that holds
 * the most (alkd_queue_evict): one peer alone may use the whole queue, but a flood cannot keep
 * others out.
 *
 * Thread rule: loop thread only.
 */
#ifndef ALKD_QUEUE_H
#define ALKD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alkd_queue_peer alkd_queue_peer;

/* Embedded in the caller's job. */
typedef struct alkd_queue_item {
    struct alkd_queue_item *next;
    alkd_queue_peer *peer; /* while waiting */
} alkd_queue_item;

typedef struct alkd_queue {
    alkd_queue_peer *turn; /* the peer served next; the ring of peers with waiting jobs */
    size_t n;              /* waiting jobs */
} alkd_queue;

void alkd_queue_init(alkd_queue *queue);
/* Frees the peers; the items stay the caller's. */
void alkd_queue_fini(alkd_queue *queue);

/* Queues `item` (borrowed until popped or removed) for `peer`; ALK_ENOMEM. */
int alkd_queue_push(alkd_queue *queue, alkd_queue_item *item, uint64_t peer);

/* Makes room for `peer` in a full queue: takes out and returns the newest item of the peer with
 * the most waiting items, when that peer holds at least two more than `peer`; else NULL. */
alkd_queue_item *alkd_queue_evict(alkd_queue *queue, uint64_t peer);

/* The next item in turn, or NULL when nothing waits. */
alkd_queue_item *alkd_queue_pop(alkd_queue *queue);

/* Takes `item` out (a deadline passed); false when it is not waiting. */
bool alkd_queue_remove(alkd_queue *queue, alkd_queue_item *item);

#endif
