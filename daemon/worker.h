/*
 * The worker process's side (see worker.c and worker_proto.h): `alkaidd --worker`.
 *
 * Thread rule: the whole process is one thread.
 */
#ifndef ALKD_WORKER_H
#define ALKD_WORKER_H

/* Runs a worker on the descriptors its daemon passed (fd 3 and 4) until the daemon closes the
 * socket; returns the process's exit code. */
int alkd_worker_main(void);

#endif
