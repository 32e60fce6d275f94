/*
 * Pieces alkaidd and alkaidc share: converting nng's error codes into alk_err (the one place
 * this happens, CONVENTIONS.md) and the default socket locations.
 *
 * Thread rule: reentrant.
 */
#ifndef ALKD_COMMON_H
#define ALKD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The alk_err for an nng error code (NNG_ETIMEDOUT -> ALK_ETIMEDOUT, ...). */
int alkd_err_from_nng(int nng_err);

/*
 * The directory of the default sockets: $RUNTIME_DIRECTORY (set by systemd's RuntimeDirectory=),
 * else $XDG_RUNTIME_DIR/alkaid, else /run/alkaid as root, else /tmp/alkaid-UID. Writes at most
 * `cap` bytes into `ret_dir`; false when it does not fit.
 */
bool alkd_runtime_dir(char *ret_dir, size_t cap);

/*
 * Room for the SP header in nng's receive limit (NNG_OPT_RECVMAXSZ counts it): a REQ's
 * backtrace of 4 bytes per hop, at most 16 entries. The daemon checks max_message_bytes on the
 * message body itself, so a message of exactly the limit is read and one a little over gets an
 * ELIMIT reply instead of a closed connection.
 */
#define ALKD_SP_HEADER_ROOM 64

/* NNG_OPT_RECVMAXSZ for a daemon whose max_message_bytes is `max_message_bytes` (saturating). */
static inline size_t alkd_recv_limit(uint64_t max_message_bytes) {
    return max_message_bytes > SIZE_MAX - ALKD_SP_HEADER_ROOM
               ? SIZE_MAX
               : (size_t)max_message_bytes + ALKD_SP_HEADER_ROOM;
}

/* File names of the default sockets inside the runtime directory. */
#define ALKD_SERVICE_SOCKET "alkaidd.sock"
#define ALKD_CONTROL_SOCKET "alkaidd.ctl"

/*
 * Default URLs a client tries, in order: the user's daemon ($XDG_RUNTIME_DIR/alkaid/NAME), then
 * the system daemon (/run/alkaid/NAME). Fills up to `max` URLs of `cap` bytes each into `urls`
 * (rows of a char[max][cap] array) and returns how many were written.
 */
size_t alkd_default_urls(const char *name, char *urls, size_t max, size_t cap);

#endif
