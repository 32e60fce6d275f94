/*
 * File and gzip helpers (see io.h). zlib allocates through alk_malloc so that fault injection
 * reaches it.
 */
#include "core/io.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int alk_read_file(const char *path, size_t limit, alk_buf *out, alk_diag *diag) {
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return alk_diag_set(diag, errno == ENOENT ? ALK_ENOENT : ALK_EIO, "%s: %s", path,
                            strerror(errno));
    }
    int rv = ALK_OK;
    char chunk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = alk_diag_set(diag, ALK_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
        if (total > limit) {
            rv = alk_diag_set(diag, ALK_ELIMIT, "%s: larger than the limit of %zu bytes", path,
                              limit);
            break;
        }
        alk_buf_append(out, chunk, (size_t)n);
        if (alk_buf_error(out) != ALK_OK) {
            rv = alk_diag_set(diag, alk_buf_error(out), "%s: out of memory after %zu bytes", path,
                              total);
            break;
        }
    }
    if (!is_stdin) {
        (void)close(fd);
    }
    return rv;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int alk_write_file(const char *path, const void *data, size_t len, alk_diag *diag) {
    if (strcmp(path, "-") == 0) {
        if (write_all(STDOUT_FILENO, data, len) != 0) {
            return alk_diag_set(diag, ALK_EIO, "standard output: %s", strerror(errno));
        }
        return ALK_OK;
    }
    alk_buf tmp;
    alk_buf_init(&tmp);
    alk_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    if (alk_buf_error(&tmp) != ALK_OK) {
        alk_buf_fini(&tmp);
        return alk_diag_set(diag, ALK_ENOMEM, "%s: out of memory", path);
    }
    int rv = ALK_OK;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rv = alk_diag_set(diag, ALK_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (write_all(fd, data, len) != 0 || close(fd) != 0) {
        rv = alk_diag_set(diag, ALK_EIO, "%s: %s", path, strerror(errno));
        (void)unlink(tmp.data);
        goto done;
    }
    if (rename(tmp.data, path) != 0) {
        rv = alk_diag_set(diag, ALK_EIO, "%s: %s", path, strerror(errno));
        (void)unlink(tmp.data);
    }
done:
    alk_buf_fini(&tmp);
    return rv;
}

bool alk_is_gzip(const void *bytes, size_t len) {
    const unsigned char *b = bytes;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return alk_calloc(items, size);
}

static void zlib_free(voidpf opaque, voidpf address) {
    (void)opaque;
    alk_free(address);
}

/* Hands zlib the next slice of input (zlib counts in uInt) once it has used the previous one. */
static void refill(z_stream *zs, const unsigned char **next, size_t *remaining) {
    if (zs->avail_in == 0 && *remaining > 0) {
        uInt take = *remaining > 1u << 30 ? 1u << 30 : (uInt)*remaining;
        zs->next_in = (Bytef *)*next;
        zs->avail_in = take;
        *next += take;
        *remaining -= take;
    }
}

int alk_gunzip(const void *in, size_t len, size_t limit, alk_buf *out, alk_diag *diag) {
    z_stream zs = {.zalloc = zlib_alloc, .zfree = zlib_free};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return alk_diag_set(diag, ALK_ENOMEM, "gzip: cannot start the decompressor");
    }
    int rv = ALK_OK;
    const unsigned char *next = in;
    size_t remaining = len;
    size_t produced = 0;
    unsigned char chunk[65536];
    int zrv = Z_OK;
    while (zrv != Z_STREAM_END) {
        refill(&zs, &next, &remaining);
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zrv = inflate(&zs, Z_NO_FLUSH);
        if (zrv == Z_STREAM_END) {
            /* What follows a member: nothing, zero padding, or another member (files written
             * by `cat a.gz b.gz`), as gzip(1) and Python's gzip module read them. */
            const unsigned char *bytes = in;
            size_t at = len - remaining - zs.avail_in;
            while (at < len && bytes[at] == 0) {
                at++;
            }
            if (at < len && (len - at < 2 || bytes[at] != 0x1f || bytes[at + 1] != 0x8b)) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "gzip: %zu bytes after the end of the stream (at byte %zu) "
                                  "are not another gzip member",
                                  len - at, at);
                break;
            }
            if (at < len) {
                (void)inflateReset(&zs);
                next = bytes + at;
                remaining = len - at;
                zs.avail_in = 0;
                zrv = Z_OK;
            }
        }
        if (zrv == Z_MEM_ERROR) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
            break;
        }
        if (zrv == Z_BUF_ERROR && zs.avail_in == 0 && remaining == 0) {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "gzip: truncated stream (ends after %zu compressed bytes)", len);
            break;
        }
        if (zrv != Z_OK && zrv != Z_STREAM_END && zrv != Z_BUF_ERROR) {
            rv = alk_diag_set(diag, ALK_EINVAL, "gzip: corrupt stream at compressed byte %zu: %s",
                              (size_t)zs.total_in, zs.msg != NULL ? zs.msg : "data error");
            break;
        }
        size_t n = sizeof(chunk) - zs.avail_out;
        produced += n;
        if (produced > limit) {
            rv = alk_diag_set(diag, ALK_ELIMIT,
                              "gzip: decompresses to more than the limit of %zu bytes", limit);
            break;
        }
        alk_buf_append(out, chunk, n);
        if (alk_buf_error(out) != ALK_OK) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
            break;
        }
    }
    (void)inflateEnd(&zs);
    return rv;
}

int alk_gzip(const void *in, size_t len, alk_buf *out, alk_diag *diag) {
    z_stream zs = {.zalloc = zlib_alloc, .zfree = zlib_free};
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return alk_diag_set(diag, ALK_ENOMEM, "gzip: cannot start the compressor");
    }
    int rv = ALK_OK;
    const unsigned char *next = in;
    size_t remaining = len;
    unsigned char chunk[65536];
    int zrv = Z_OK;
    while (zrv != Z_STREAM_END) {
        refill(&zs, &next, &remaining);
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zrv = deflate(&zs, remaining == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (zrv == Z_STREAM_ERROR) {
            rv = alk_diag_set(diag, ALK_EINTERNAL, "gzip: compressor error");
            break;
        }
        alk_buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
        if (alk_buf_error(out) != ALK_OK) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
            break;
        }
    }
    (void)deflateEnd(&zs);
    return rv;
}
