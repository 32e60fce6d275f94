/*
 * The ipc listeners' guards (see ipc_guard.h): the lock file and the self-probe.
 *
 * A probe is one connection through libuv speaking nng's ipc transport: it sends the 8-byte SP
 * header of a REQ peer (protocol 0x30; the daemon is REP, 0x31), reads the daemon's, then polls
 * the handed-over count every POLL_MS until its pipe is in or the deadline passes, and closes.
 * It completes the handshake before closing, so that it never causes the failure it looks for,
 * and sends no request, so that the daemon's statistics see nothing of it.
 *
 * Thread rule: loop thread only.
 */
#include "ipc_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the lock ------------------------------------------------------------------------------- */

int alkd_ipc_lock(const char *path, int *ret_fd, alk_diag *diag) {
    char lock_path[4200];
    (void)snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return alk_diag_set(diag, ALK_EIO, "cannot open the lock %s: %s", lock_path,
                            strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        (void)close(fd);
        if (err == EWOULDBLOCK) {
            return alk_diag_set(diag, ALK_EBUSY,
                                "ipc://%s is served by another alkaidd (pid %s, holding %s)", path,
                                pid[0] != '\0' ? pid : "unknown", lock_path);
        }
        return alk_diag_set(diag, ALK_EIO, "cannot lock %s: %s", lock_path, strerror(err));
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        (void)close(fd);
        return alk_diag_set(diag, ALK_EIO, "cannot write the lock %s: %s", lock_path,
                            strerror(errno));
    }
    /* We hold the lock: whatever socket is at `path` belongs to a daemon that has died. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            (void)close(fd);
            return alk_diag_set(diag, ALK_EIO, "%s exists and is not a socket", path);
        }
        (void)unlink(path);
    }
    *ret_fd = fd;
    return ALK_OK;
}

void alkd_ipc_unlock(int fd) {
    if (fd >= 0) {
        (void)close(fd); /* the file stays: removing it would race with the next daemon */
    }
}

/* ---- the probe ------------------------------------------------------------------------------ */

enum { POLL_MS = 5 };

/* After alkd_ipc_probe_close, each handle's close counts down to `closed`. */
static void count_closed(alkd_ipc_probe *probe) {
    if (probe->closed != NULL && --probe->closing == 0) {
        probe->closed(probe);
    }
}

static void on_pipe_closed(uv_handle_t *handle) {
    alkd_ipc_probe *probe = handle->data;
    probe->busy = false;
    count_closed(probe);
}

static void on_timer_closed(uv_handle_t *handle) {
    count_closed(handle->data);
}

/* Reports the outcome (once) and closes the connection. */
static void settle(alkd_ipc_probe *probe, bool ok) {
    if (probe->settled) {
        return;
    }
    probe->settled = true;
    (void)uv_timer_stop(&probe->timer);
    if (!uv_is_closing((uv_handle_t *)&probe->pipe)) {
        uv_close((uv_handle_t *)&probe->pipe, on_pipe_closed);
    }
    probe->done(probe, ok);
}

static void on_timeout(uv_timer_t *timer) {
    settle(timer->data, false);
}

/* After the handshake: is the probe's pipe in the daemon's socket yet? */
static void on_poll(uv_timer_t *timer) {
    alkd_ipc_probe *probe = timer->data;
    if (atomic_load(probe->handed_over) >= probe->expected) {
        settle(probe, true);
    } else if (uv_now(probe->loop) >= probe->deadline) {
        settle(probe, false);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    alkd_ipc_probe *probe = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)probe->header + probe->got,
                       (unsigned)(sizeof(probe->header) - probe->got));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    alkd_ipc_probe *probe = stream->data;
    (void)buf;
    if (nread < 0) {
        settle(probe, false);
        return;
    }
    probe->got += (size_t)nread;
    if (probe->got < sizeof(probe->header)) {
        return;
    }
    (void)uv_read_stop(stream);
    /* "\0SP\0", then the peer's protocol: the daemon's REP socket is 0x31. */
    if (memcmp(probe->header, "\0SP\0\x00\x31", 6) != 0) {
        settle(probe, false);
        return;
    }
    (void)uv_timer_start(&probe->timer, on_poll, 0, POLL_MS);
}

static void on_written(uv_write_t *req, int status) {
    (void)req;
    (void)status; /* a failure shows as a read error or the deadline */
}

static void on_connected(uv_connect_t *req, int status) {
    alkd_ipc_probe *probe = req->data;
    if (probe->settled) {
        return;
    }
    if (status != 0) {
        settle(probe, false);
        return;
    }
    static const char req_header[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
    uv_buf_t buf = uv_buf_init((char *)req_header, sizeof(req_header));
    if (uv_write(&probe->write, (uv_stream_t *)&probe->pipe, &buf, 1, on_written) != 0 ||
        uv_read_start((uv_stream_t *)&probe->pipe, on_alloc, on_read) != 0) {
        settle(probe, false);
    }
}

int alkd_ipc_probe_init(alkd_ipc_probe *probe, uv_loop_t *loop, const char *path,
                        const atomic_uint_fast64_t *handed_over, alkd_ipc_probe_cb done) {
    void *data = probe->data;
    *probe = (alkd_ipc_probe){.loop = loop, .done = done, .data = data, .handed_over = handed_over};
    if (strlen(path) >= sizeof(probe->path)) {
        return ALK_EINVAL;
    }
    (void)snprintf(probe->path, sizeof(probe->path), "%s", path);
    probe->timer.data = probe;
    return uv_timer_init(loop, &probe->timer) == 0 ? ALK_OK : ALK_EINTERNAL;
}

void alkd_ipc_probe_start(alkd_ipc_probe *probe, uint64_t timeout_ms) {
    if (probe->busy) {
        return;
    }
    probe->busy = true;
    probe->settled = false;
    probe->got = 0;
    probe->expected = atomic_load(probe->handed_over) + 1;
    probe->deadline = uv_now(probe->loop) + timeout_ms;
    probe->pipe.data = probe;
    probe->connect.data = probe;
    (void)uv_pipe_init(probe->loop, &probe->pipe, 0);
    (void)uv_timer_start(&probe->timer, on_timeout, timeout_ms, 0);
    uv_pipe_connect(&probe->connect, &probe->pipe, probe->path, on_connected);
}

void alkd_ipc_probe_close(alkd_ipc_probe *probe, void (*closed)(alkd_ipc_probe *probe)) {
    probe->settled = true; /* no more reports */
    probe->closed = closed;
    /* The pipe counts while it is open or still closing from the last probe. */
    probe->closing = 1 + probe->busy;
    if (probe->busy && !uv_is_closing((uv_handle_t *)&probe->pipe)) {
        uv_close((uv_handle_t *)&probe->pipe, on_pipe_closed);
    }
    uv_close((uv_handle_t *)&probe->timer, on_timer_closed);
}
