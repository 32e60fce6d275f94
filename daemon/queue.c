/*
 * The fair queue (see queue.h): a doubly linked ring of peers, each with a singly linked FIFO.
 * Peers are found by a walk of the ring: there are as many as clients with waiting jobs, a few.
 *
 * Thread rule: loop thread only.
 */
#include "queue.h"

#include "core/alloc.h"
#include "core/err.h"

struct alkd_queue_peer {
    uint64_t key;
    alkd_queue_item *head;
    alkd_queue_item *tail;
    size_t n;
    alkd_queue_peer *prev;
    alkd_queue_peer *next;
};

void alkd_queue_init(alkd_queue *queue) {
    *queue = (alkd_queue){0};
}

static void unlink_peer(alkd_queue *queue, alkd_queue_peer *peer) {
    if (peer->next == peer) {
        queue->turn = NULL;
    } else {
        peer->prev->next = peer->next;
        peer->next->prev = peer->prev;
        if (queue->turn == peer) {
            queue->turn = peer->next;
        }
    }
    alk_free(peer);
}

void alkd_queue_fini(alkd_queue *queue) {
    while (queue->turn != NULL) {
        unlink_peer(queue, queue->turn);
    }
    queue->n = 0;
}

static alkd_queue_peer *find_peer(const alkd_queue *queue, uint64_t key) {
    alkd_queue_peer *p = queue->turn;
    if (p == NULL) {
        return NULL;
    }
    do {
        if (p->key == key) {
            return p;
        }
        p = p->next;
    } while (p != queue->turn);
    return NULL;
}

int alkd_queue_push(alkd_queue *queue, alkd_queue_item *item, uint64_t key) {
    alkd_queue_peer *peer = find_peer(queue, key);
    if (peer == NULL) {
        peer = alk_calloc(1, sizeof(*peer));
        if (peer == NULL) {
            return ALK_ENOMEM;
        }
        peer->key = key;
        if (queue->turn == NULL) {
            peer->prev = peer->next = peer;
            queue->turn = peer;
        } else { /* a new peer takes its turn last */
            peer->next = queue->turn;
            peer->prev = queue->turn->prev;
            peer->prev->next = peer;
            queue->turn->prev = peer;
        }
    }
    item->next = NULL;
    item->peer = peer;
    if (peer->tail != NULL) {
        peer->tail->next = item;
    } else {
        peer->head = item;
    }
    peer->tail = item;
    peer->n++;
    queue->n++;
    return ALK_OK;
}

/* Detaches `item`, which follows `prev` (NULL: the head) in its peer's FIFO. */
static void detach(alkd_queue *queue, alkd_queue_item *item, alkd_queue_item *prev) {
    alkd_queue_peer *peer = item->peer;
    if (prev != NULL) {
        prev->next = item->next;
    } else {
        peer->head = item->next;
    }
    if (peer->tail == item) {
        peer->tail = prev;
    }
    item->next = NULL;
    item->peer = NULL;
    peer->n--;
    queue->n--;
    if (peer->n == 0) {
        unlink_peer(queue, peer);
    }
}

alkd_queue_item *alkd_queue_pop(alkd_queue *queue) {
    alkd_queue_peer *peer = queue->turn;
    if (peer == NULL) {
        return NULL;
    }
    alkd_queue_item *item = peer->head;
    queue->turn = peer->next; /* the next peer's turn, whether this one stays or goes */
    detach(queue, item, NULL);
    return item;
}

alkd_queue_item *alkd_queue_evict(alkd_queue *queue, uint64_t key) {
    alkd_queue_peer *mine = find_peer(queue, key);
    alkd_queue_peer *largest = queue->turn;
    for (alkd_queue_peer *p = queue->turn; p != NULL && p->next != queue->turn;) {
        p = p->next;
        largest = p->n > largest->n ? p : largest;
    }
    size_t own = mine != NULL ? mine->n : 0;
    if (largest == NULL || largest == mine || largest->n < own + 2) {
        return NULL;
    }
    alkd_queue_item *item = largest->tail;
    (void)alkd_queue_remove(queue, item);
    return item;
}

bool alkd_queue_remove(alkd_queue *queue, alkd_queue_item *item) {
    alkd_queue_peer *peer = item->peer;
    if (peer == NULL) {
        return false;
    }
    alkd_queue_item *prev = NULL;
    for (alkd_queue_item *it = peer->head; it != item; prev = it, it = it->next) {
    }
    detach(queue, item, prev);
    return true;
}
