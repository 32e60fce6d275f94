/*
 * File and gzip helpers (see io.h). zlib allocates through alk_malloc so that fault injection
 * reaches it.
 */
#include "core/io.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

struct alk_gunzip_reader {
    z_stream zs;
    const unsigned char *in; /* the whole compressed stream, borrowed */
    size_t len;
    const unsigned char *next; /* input not yet handed to zlib */
    size_t remaining;
    size_t produced; /* decompressed bytes so far, against `limit` */
    size_t limit;
    bool finished; /* the last member ended, and nothing but padding followed */
};

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

int alk_gunzip_reader_new(const void *in, size_t len, size_t limit, alk_gunzip_reader **ret_reader,
                          alk_diag *diag) {
    alk_gunzip_reader *r = alk_calloc(1, sizeof(*r));
    if (r == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
    }
    r->zs.zalloc = zlib_alloc;
    r->zs.zfree = zlib_free;
    if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) {
        alk_free(r);
        return alk_diag_set(diag, ALK_ENOMEM, "gzip: cannot start the decompressor");
    }
    r->in = in;
    r->len = len;
    r->next = in;
    r->remaining = len;
    r->limit = limit;
    *ret_reader = r;
    return ALK_OK;
}

/* At the end of a member: what follows is nothing, zero padding, or another member (files
 * written by `cat a.gz b.gz`), as gzip(1) and Python's gzip module read them. */
static int next_member(alk_gunzip_reader *r, alk_diag *diag) {
    size_t at = r->len - r->remaining - r->zs.avail_in;
    while (at < r->len && r->in[at] == 0) {
        at++;
    }
    if (at == r->len) {
        r->finished = true;
        return ALK_OK;
    }
    if (r->len - at < 2 || r->in[at] != 0x1f || r->in[at + 1] != 0x8b) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "gzip: %zu bytes after the end of the stream (at byte %zu) are not "
                            "another gzip member",
                            r->len - at, at);
    }
    (void)inflateReset(&r->zs);
    r->next = r->in + at;
    r->remaining = r->len - at;
    r->zs.avail_in = 0;
    return ALK_OK;
}

int alk_gunzip_read(alk_gunzip_reader *r, void *out, size_t cap, size_t *ret_n, alk_diag *diag) {
    unsigned char *to = out;
    size_t filled = 0;
    while (filled < cap && !r->finished) {
        refill(&r->zs, &r->next, &r->remaining);
        size_t room = cap - filled > UINT_MAX ? UINT_MAX : cap - filled;
        r->zs.next_out = to + filled;
        r->zs.avail_out = (uInt)room;
        int zrv = inflate(&r->zs, Z_NO_FLUSH);
        size_t n = room - r->zs.avail_out;
        filled += n;
        r->produced += n;
        if (r->produced > r->limit) {
            return alk_diag_set(diag, ALK_ELIMIT,
                                "gzip: decompresses to more than the limit of %zu bytes", r->limit);
        }
        if (zrv == Z_STREAM_END) {
            int rv = next_member(r, diag);
            if (rv != ALK_OK) {
                return rv;
            }
        } else if (zrv == Z_MEM_ERROR) {
            return alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
        } else if (zrv == Z_BUF_ERROR && r->zs.avail_in == 0 && r->remaining == 0) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "gzip: truncated stream (ends after %zu compressed bytes)", r->len);
        } else if (zrv != Z_OK && zrv != Z_BUF_ERROR) {
            return alk_diag_set(diag, ALK_EINVAL, "gzip: corrupt stream at compressed byte %zu: %s",
                                (size_t)r->zs.total_in,
                                r->zs.msg != NULL ? r->zs.msg : "data error");
        }
    }
    *ret_n = filled;
    return ALK_OK;
}

void alk_gunzip_reader_free(alk_gunzip_reader *r) {
    if (r != NULL) {
        (void)inflateEnd(&r->zs);
        alk_free(r);
    }
}

int alk_gunzip(const void *in, size_t len, size_t limit, alk_buf *out, alk_diag *diag) {
    alk_gunzip_reader *r;
    int rv = alk_gunzip_reader_new(in, len, limit, &r, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t n;
    do {
        rv = alk_buf_reserve(out, 65536);
        if (rv != ALK_OK) {
            rv = alk_diag_set(diag, ALK_ENOMEM, "gzip: out of memory");
            break;
        }
        rv = alk_gunzip_read(r, out->data + out->len, 65536, &n, diag);
        if (rv == ALK_OK) {
            out->len += n;
            out->data[out->len] = '\0';
        }
    } while (rv == ALK_OK && n > 0);
    alk_gunzip_reader_free(r);
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
