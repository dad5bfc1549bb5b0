/* bpf(2) for ocipy/cgroups/devices.py (the cgroup v2 device program): the one system call, so that create does not
 * import ctypes (~1.5 ms of its CPU) to make it. The caller lays out `union bpf_attr` itself. */
#define _GNU_SOURCE
#include "spawn.h"

#include <sys/syscall.h>
#include <unistd.h>

long ocipy_bpf(int cmd, void *attr, unsigned int size)
{
	return syscall(SYS_bpf, cmd, attr, size);
}
