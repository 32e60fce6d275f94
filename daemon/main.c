/*
 * alkaidd: the alkaid conversion daemon (or, with --broker, a REQ/REP proxy for a farm).
 *
 * Exit codes: 0 after a graceful stop, 1 when the daemon cannot start or stops on an error,
 * 2 for a bad command line or config file. `alkaidd --worker` is a worker process (worker.c),
 * started by the daemon only.
 */
#include "config.h"
#include "log.h"
#include "server.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    /* The daemon starts itself as its worker processes (workers.c). */
    if (argc == 2 && strcmp(argv[1], "--worker") == 0) {
        return alkd_worker_main();
    }
    alkd_config config;
    alkd_config_init(&config);
    alk_diag diag = {{0}};
    int rv = alkd_config_parse(&config, argc, argv, &diag);
    if (rv == ALK_ECANCELED) {
        alkd_config_fini(&config);
        return 0;
    }
    if (rv != ALK_OK) {
        fprintf(stderr, "alkaidd: %s\n(see 'alkaidd --help')\n",
                diag.message[0] != '\0' ? diag.message : alk_strerror(rv));
        alkd_config_fini(&config);
        return 2;
    }
    alkd_log_init(config.log_level);
    int code = config.broker ? alkd_broker_run(&config) : alkd_server_run(&config);
    alkd_config_fini(&config);
    return code;
}
