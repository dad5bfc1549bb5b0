/* The thread behind ocipy/cgroups/graceperiod.py's start(keep=True), for create: it writes "0" (this process) into
 * the cgroup.procs of the cgroup the process is already in, which moves nothing but takes the kernel's cgroup write
 * lock, whose first taker waits an RCU grace period; then it writes again every GRACE_EVERY_NS, which no longer waits
 * and keeps the lock in its no-wait state, until ocipy_grace_stop() or GRACE_REWRITES rewrites.
 *
 * A native thread rather than a Python one: it never needs the GIL, so the create's main thread neither waits for
 * it to be scheduled nor hands it the GIL at each rewrite (~1.3 ms of wall and ~0.3 ms of CPU per create under
 * load). It makes system calls only (no malloc, no stdio), so a fork by the main thread finds no lock it holds. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define GRACE_EVERY_NS 3000000L /* below the shortest grace period seen (~6 ms): the no-wait state outlasts it */
#define GRACE_REWRITES 20       /* ~60 ms, past a loaded create's plan and spawn: each write takes the host-wide lock */

static atomic_uint generation; /* ocipy_grace_stop bumps it; a thread started before stops */

static void *rewrite(void *arg)
{
	uintptr_t packed = (uintptr_t)arg;
	int fd = (int)(packed & 0xffffffffu);
	unsigned gen = (unsigned)(packed >> 32);
	struct timespec every = {0, GRACE_EVERY_NS};
	int i;

	if (write(fd, "0", 1) == 1) {
		for (i = 0; i < GRACE_REWRITES && atomic_load(&generation) == gen; i++) {
			nanosleep(&every, NULL);
			if (atomic_load(&generation) != gen || write(fd, "0", 1) != 1)
				break;
		}
	}
	close(fd);
	return NULL;
}

int ocipy_grace_start(int fd)
{
	uintptr_t packed = ((uintptr_t)(atomic_load(&generation) & 0xffffffffu) << 32) | (uint32_t)fd;
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int err;

	if (fd < 0)
		return -EBADF;
	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/* signals stay the main thread's (Python runs its handlers there) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&thread, &attr, rewrite, (void *)packed);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err ? -err : 0;
}

void ocipy_grace_stop(void)
{
	atomic_fetch_add(&generation, 1);
}
