/*
 * alkaidc's side of the wire protocol: one nng REQ socket dialed to one daemon or several (a
 * farm; nng spreads requests and resends on a dead peer), requests built with the msgpack
 * encoder of src/rpc, replies decoded with its decoder.
 *
 * Which daemon: the URLs given (--connect / --control, repeatable), else ALKAID_CONNECT (commas
 * between URLs; service socket only), else the default socket — the user's daemon
 * ($XDG_RUNTIME_DIR/alkaid/), then the system's (/run/alkaid/) — if a daemon answers there.
 *
 * Thread rule: one connection per thread.
 */
#ifndef ALKAIDC_RPC_CLIENT_H
#define ALKAIDC_RPC_CLIENT_H

#include "core/arena.h"
#include "core/err.h"
#include "core/vec.h"
#include "graph/value.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

/* Default seconds after which nng resends a request that got no reply (docs/protocol.md). */
#define CLI_DEFAULT_RESEND_S 10.0

/* Requests above this size are checked against the daemon's max_message_bytes first. */
#define CLI_CHECK_SIZE_ABOVE ((size_t)1 << 20)

/* The largest reply accepted (NNG_OPT_RECVMAXSZ of the client's socket). */
#define CLI_MAX_REPLY_BYTES ((size_t)1 << 30)

typedef struct cli_conn {
    nng_socket socket;
    bool open;
    bool unreachable; /* the failure was reaching the daemon, not the request */
    char url[512];    /* the first URL, for messages */
} cli_conn;

typedef enum cli_target { CLI_SERVICE, CLI_CONTROL } cli_target;

/*
 * Connects to `urls` (n > 0, borrowed), or with n == 0 to the defaults of `target`. A URL that
 * cannot be dialed now is still dialed in the background (nng retries) as long as one of them
 * answered; when none did, fails with ALK_EIO and conn->unreachable. ALK_ENOENT: no URL given and
 * no daemon at the defaults (the caller may then work in-process).
 */
int cli_conn_open(cli_conn *conn, cli_target target, const char *const *urls, size_t n,
                  double resend_s, alk_diag *diag);

void cli_conn_close(cli_conn *conn);

/* Appends the header of a request map with `n_fields` fields besides v, id and method. */
void cli_request_begin(alk_buf *out, const char *method, size_t n_fields);

/*
 * Sends `request` (borrowed) and waits up to `timeout_s` seconds (0: forever) for the reply,
 * showing the elapsed time on stderr when `progress` and stderr is a terminal. On success
 * *ret_reply is the reply map, allocated in `arena`. An error reply returns its code with the
 * daemon's message in `diag` ("EINVAL at inputs[0].shape: ..."); a transport failure returns
 * ALK_EIO or ALK_ETIMEDOUT with conn->unreachable set. A request over CLI_CHECK_SIZE_ABOVE bytes
 * is first checked against the daemon's `info.limits.max_message_bytes` (ALK_ELIMIT).
 */
int cli_conn_call(cli_conn *conn, const alk_buf *request, double timeout_s, bool progress,
                  alk_arena *arena, const alk_value **ret_reply, alk_diag *diag);

/* The exit code for a failure of a remote command: EXIT_UNAVAILABLE when the daemon could not
 * be reached, else the code cli_fail gives. Prints the message. */
int cli_conn_fail(const cli_conn *conn, int err, const alk_diag *diag);

/* Reads repeatable URL options into `urls`, for commands: returns false when full. */
bool cli_url_push(const char **urls, size_t *n, size_t cap, const char *url);

/* Small helpers for reading replies. */
uint64_t cli_get_uint(const alk_value *map, const char *key);
double cli_get_number(const alk_value *map, const char *key);
const char *cli_get_str(const alk_value *map, const char *key);

#endif
