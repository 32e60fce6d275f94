/*
 * alkaidd's two modes: the conversion server and the broker.
 *
 * Thread rule: both run on the calling (main) thread and return when the daemon stops.
 */
#ifndef ALKD_SERVER_H
#define ALKD_SERVER_H

#include "config.h"

typedef struct alkd_server alkd_server;

/* Runs the server with `config` (borrowed; the plugin lists change on reload) until it stops;
 * returns the process exit code. */
int alkd_server_run(alkd_config *config);

/* Runs the broker: nng's device between a raw REP socket on every --listen URL and a raw REQ
 * socket dialed to every --upstream URL, until SIGTERM/SIGINT; returns the exit code. */
int alkd_broker_run(alkd_config *config);

#endif
