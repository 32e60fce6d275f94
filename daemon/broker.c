/*
 * `alkaidd --broker`: one address in front of a farm of daemons.
 *
 * nng's device forwards between a raw REP socket listening on every --listen URL and a raw REQ
 * socket dialed to every --upstream URL: requests are spread over the connected daemons and each
 * reply finds its way back by the backtrace nng keeps in the message header. nng 1.5's device is
 * blocking, so it runs on its own thread (nng_device_aio is newer than the 1.5.2 we target); the
 * main thread runs a libuv loop for the signals. Stopping closes both sockets, which ends the
 * device. A raw REQ socket does not resend: a request lost with a dying daemon is resent by the
 * client's own REQ socket after its resend time.
 *
 * Thread rule: the device thread only runs nng_device; everything else is on the main thread.
 */
#include "server.h"

#include "common.h"
#include "log.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

typedef struct broker {
    nng_socket front;
    nng_socket back;
    bool front_open;
    bool back_open;
    int device_result;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
} broker;

static void run_device(void *arg) {
    broker *b = arg;
    b->device_result = nng_device(b->front, b->back);
}

static void close_sockets(broker *b) {
    if (b->front_open) {
        (void)nng_close(b->front);
        b->front_open = false;
    }
    if (b->back_open) {
        (void)nng_close(b->back);
        b->back_open = false;
    }
}

static void on_signal(uv_signal_t *handle, int signum) {
    broker *b = handle->data;
    alkd_info("%s received: stopping the broker", strsignal(signum));
    (void)sd_notify(0, "STOPPING=1");
    close_sockets(b);
    uv_close((uv_handle_t *)&b->sig_term, NULL);
    uv_close((uv_handle_t *)&b->sig_int, NULL);
}

static int open_sockets(broker *b, const alkd_config *config) {
    int rv = nng_rep0_open_raw(&b->front);
    if (rv != 0) {
        alkd_error("cannot open the broker's REP socket: %s", nng_strerror(rv));
        return rv;
    }
    b->front_open = true;
    rv = nng_req0_open_raw(&b->back);
    if (rv != 0) {
        alkd_error("cannot open the broker's REQ socket: %s", nng_strerror(rv));
        return rv;
    }
    b->back_open = true;
    size_t max = alkd_recv_limit(config->limits.max_message_bytes);
    if ((rv = nng_socket_set_size(b->front, NNG_OPT_RECVMAXSZ, max)) != 0 ||
        (rv = nng_socket_set_size(b->back, NNG_OPT_RECVMAXSZ, max)) != 0) {
        alkd_error("cannot set the receive limit: %s", nng_strerror(rv));
        return rv;
    }
    for (size_t i = 0; i < config->listen.len; i++) {
        const char *url = config->listen.items[i];
        nng_listener listener;
        rv = nng_listener_create(&listener, b->front, url);
        if (rv == 0 && strncmp(url, "ipc://", 6) == 0) {
            rv = nng_listener_set_int(listener, NNG_OPT_IPC_PERMISSIONS, (int)config->socket_mode);
        }
        if (rv == 0) {
            rv = nng_listener_start(listener, 0);
        }
        if (rv != 0) {
            alkd_error("cannot listen on %s: %s", url, nng_strerror(rv));
            return rv;
        }
        alkd_info("broker listening on %s", url);
    }
    for (size_t i = 0; i < config->upstream.len; i++) {
        /* Non-blocking: a daemon that is down now is dialed again by nng until it comes up. */
        rv = nng_dial(b->back, config->upstream.items[i], NULL, NNG_FLAG_NONBLOCK);
        if (rv != 0) {
            alkd_error("cannot dial %s: %s", config->upstream.items[i], nng_strerror(rv));
            return rv;
        }
        alkd_info("broker forwarding to %s", config->upstream.items[i]);
    }
    return 0;
}

int alkd_broker_run(alkd_config *config) {
    if (config->listen.len == 0 || config->upstream.len == 0) {
        alkd_error("--broker needs at least one --listen and one --upstream URL");
        return 2;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    broker b = {0};
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        alkd_error("cannot create the event loop");
        return 1;
    }
    int exit_code = 0;
    uv_thread_t device;
    bool device_started = false;
    if (open_sockets(&b, config) != 0) {
        exit_code = 1;
        goto done;
    }
    if (uv_thread_create(&device, run_device, &b) != 0) {
        alkd_error("cannot start the device thread");
        exit_code = 1;
        goto done;
    }
    device_started = true;
    b.sig_term.data = &b;
    b.sig_int.data = &b;
    (void)uv_signal_init(&loop, &b.sig_term);
    (void)uv_signal_init(&loop, &b.sig_int);
    (void)uv_signal_start(&b.sig_term, on_signal, SIGTERM);
    (void)uv_signal_start(&b.sig_int, on_signal, SIGINT);
    (void)sd_notify(0, "READY=1\nSTATUS=brokering");
    (void)uv_run(&loop, UV_RUN_DEFAULT);
done:
    close_sockets(&b);
    if (device_started) {
        (void)uv_thread_join(&device);
        if (b.device_result != 0 && b.device_result != NNG_ECLOSED) {
            alkd_error("the device stopped: %s", nng_strerror(b.device_result));
            exit_code = 1;
        }
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    alkd_info("broker stopped");
    return exit_code;
}
