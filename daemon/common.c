/*
 * nng error conversion and default socket paths (see common.h).
 *
 * Thread rule: reentrant (getenv only).
 */
#include "common.h"

#include "core/err.h"

#include <errno.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int alkd_err_from_nng(int nng_err) {
    switch (nng_err) {
    case 0:
        return ALK_OK;
    case NNG_ENOMEM:
        return ALK_ENOMEM;
    case NNG_ETIMEDOUT:
        return ALK_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return ALK_ECANCELED;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_EBADTYPE:
        return ALK_EINVAL;
    case NNG_ENOTSUP:
        return ALK_ENOTSUP;
    case NNG_EBUSY:
    case NNG_EAGAIN:
        return ALK_EBUSY;
    case NNG_EMSGSIZE:
        return ALK_ELIMIT;
    case NNG_ENOENT:
        return ALK_ENOENT;
    case NNG_EPROTO:
        return ALK_EPROTO;
    case NNG_ECONNREFUSED:
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
    case NNG_ECONNABORTED:
    case NNG_EADDRINUSE:
    case NNG_EPERM:
    case NNG_EUNREACHABLE:
    case NNG_ENOFILES:
    case NNG_ENOSPC:
    case NNG_EREADONLY:
    case NNG_EWRITEONLY:
        return ALK_EIO;
    default:
        return (nng_err & NNG_ESYSERR) ? ALK_EIO : ALK_EINTERNAL;
    }
}

const char *alkd_system_runtime_dir(void) {
    const char *dir = getenv("ALKAID_SYSTEM_RUNTIME_DIR");
    return dir != NULL && dir[0] == '/' ? dir : "/run/alkaid";
}

bool alkd_runtime_dir(char *ret_dir, size_t cap) {
    const char *systemd = getenv("RUNTIME_DIRECTORY");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (systemd != NULL && systemd[0] == '/') {
        /* Several RuntimeDirectory= entries are separated by colons: the first is ours. */
        n = snprintf(ret_dir, cap, "%.*s", (int)strcspn(systemd, ":"), systemd);
    } else if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(ret_dir, cap, "%s/alkaid", xdg);
    } else if (geteuid() == 0) {
        n = snprintf(ret_dir, cap, "%s", alkd_system_runtime_dir());
    } else {
        n = snprintf(ret_dir, cap, "/tmp/alkaid-%u", (unsigned)geteuid());
    }
    return n > 0 && (size_t)n < cap;
}

bool alkd_private_dir_ok(const char *dir, unsigned uid, alk_diag *diag) {
    struct stat st;
    if (lstat(dir, &st) != 0) {
        (void)alk_diag_set(diag, ALK_EIO, "%s: %s", dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        (void)alk_diag_set(diag, ALK_EIO, "%s is not a directory", dir);
        return false;
    }
    if (st.st_uid != uid || (st.st_mode & 0022) != 0) {
        (void)alk_diag_set(diag, ALK_EIO,
                           "refusing %s: it must belong to uid %u and be writable by it alone "
                           "(owner %u, mode %04o)",
                           dir, uid, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return false;
    }
    return true;
}

/* The fallback directory is in the shared /tmp: only a private one of ours is used. */
static bool runtime_dir_usable(const char *dir) {
    alk_diag diag = {{0}};
    return strncmp(dir, "/tmp/", 5) != 0 || alkd_private_dir_ok(dir, (unsigned)geteuid(), &diag);
}

size_t alkd_default_urls(const char *name, char *urls, size_t max, size_t cap) {
    size_t count = 0;
    char dir[512] = "";
    if (count < max && alkd_runtime_dir(dir, sizeof(dir)) && runtime_dir_usable(dir)) {
        int n = snprintf(urls + count * cap, cap, "ipc://%s/%s", dir, name);
        count += n > 0 && (size_t)n < cap;
    }
    const char *system = alkd_system_runtime_dir();
    if (count < max && strcmp(dir, system) != 0) {
        int n = snprintf(urls + count * cap, cap, "ipc://%s/%s", system, name);
        count += n > 0 && (size_t)n < cap;
    }
    return count;
}
