/*
 * Guards of the daemon's ipc listeners against nng 1.5.2's "disconnect during negotiation breaks
 * listener" (nanomsg/nng#1518, fixed in nng 1.6.0; Debian 12 ships 1.5.2): one connection that
 * closes before the SP handshake ends the listener's accept loop for good, and the socket path
 * then takes connections that are never answered.
 *
 * Two guards. A lock file beside each socket (`PATH.lock`, flock, holding the pid) is taken
 * before listening: a second daemon started on the same path fails at once, naming the first,
 * instead of probing the socket (nng's stale-socket check connects and closes, which is exactly
 * the connection that breaks the first daemon's listener); a socket file found under a lock we
 * hold is stale and removed. And a probe connects to the socket like a client (the SP handshake
 * of a REQ peer) and watches for its connection to reach the daemon's socket (the daemon's
 * pipe-add notification counts the pipes whose peer is the daemon itself): a wedged listener
 * still accepts and negotiates, but never hands the connection over. A listener whose probe is
 * not handed over in time is re-created by the caller (server.c), and the systemd watchdog is
 * fed only while the probes pass, so that a listener that cannot be revived gets the daemon
 * restarted.
 *
 * Thread rule: loop thread only.
 */
#ifndef ALKD_IPC_GUARD_H
#define ALKD_IPC_GUARD_H

#include "core/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/*
 * Takes the lock of the ipc socket `path` (PATH.lock, created 0600 beside it) and removes a stale
 * socket file at `path`. On success *ret_fd holds the lock until alkd_ipc_unlock. ALK_EBUSY when
 * another process holds it (the message names its pid), ALK_EIO when the lock cannot be made or
 * `path` is something other than a socket.
 */
int alkd_ipc_lock(const char *path, int *ret_fd, alk_diag *diag);
void alkd_ipc_unlock(int fd);

typedef struct alkd_ipc_probe alkd_ipc_probe;

/* The outcome of one probe: `ok` when its connection reached the daemon's socket in time. */
typedef void (*alkd_ipc_probe_cb)(alkd_ipc_probe *probe, bool ok);

struct alkd_ipc_probe {
    uv_loop_t *loop;
    char path[108]; /* sun_path */
    alkd_ipc_probe_cb done;
    void *data; /* the caller's */
    uv_timer_t timer;
    uv_pipe_t pipe;
    uv_connect_t connect;
    uv_write_t write;
    uint8_t header[8]; /* the daemon's SP header, as it arrives */
    size_t got;
    const atomic_uint_fast64_t *handed_over; /* the daemon's count of its own pipes */
    uint_fast64_t expected;                  /* the count once this probe's pipe is in */
    uint64_t deadline;                       /* uv_now() by which it must be */
    bool busy;                               /* a probe runs (or its pipe is still closing) */
    bool settled;                            /* the outcome of the current probe is known */
    int closing;                             /* handles still closing after alkd_ipc_probe_close */
    void (*closed)(alkd_ipc_probe *probe);
};

/*
 * Prepares a probe of the socket `path` (copied) on `loop`; `done` gets each outcome.
 * `handed_over` (borrowed for the probe's life) is incremented, on any thread, for every pipe
 * of the daemon's own process that reaches the socket.
 */
int alkd_ipc_probe_init(alkd_ipc_probe *probe, uv_loop_t *loop, const char *path,
                        const atomic_uint_fast64_t *handed_over, alkd_ipc_probe_cb done);

/* Starts a probe unless one runs; `done` runs once, within about `timeout_ms`. */
void alkd_ipc_probe_start(alkd_ipc_probe *probe, uint64_t timeout_ms);

/* Closes the probe's handles (a running probe reports nothing more); `closed(probe)` runs once
 * they are closed, when the probe's memory may go. */
void alkd_ipc_probe_close(alkd_ipc_probe *probe, void (*closed)(alkd_ipc_probe *probe));

#endif
