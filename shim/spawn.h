/* Parent side of ocipy's shim, exposed to Python through cffi as ocipy._shim_c (see ocipy/_shim.py).
 * Every function returns -1 on failure with errno set (or *err_out for ocipy_spawn). */
#ifndef OCIPY_SPAWN_H
#define OCIPY_SPAWN_H

#include <sys/types.h>

/* A new memfd (MFD_CLOEXEC|MFD_ALLOW_SEALING) holding the embedded ocipy-init, sealed with
 * F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE so nobody (a container writing /proc/PID/exe) can change it. */
int ocipy_init_memfd(void);

/* Start execveat(exec_fd, "", argv, {NULL}, AT_EMPTY_PATH) in a child whose fds are exactly the dst of the
 * (src, dst) pairs in fdmap (npairs pairs), with default signal dispositions and an empty signal mask. Returns the
 * pid and a pidfd in *pidfd_out; -1 with *err_out = errno if the child could not be started or failed before exec
 * (the child is then reaped). */
pid_t ocipy_spawn(int exec_fd, char *const argv[], const int *fdmap, int npairs, int *pidfd_out, int *err_out);

/* Size of the embedded ocipy-init in bytes. */
unsigned long ocipy_init_size(void);

/* A detached copy of the mount (tree, if recursive) at `path`, idmapped with the user namespace `userns_fd`
 * (open_tree OPEN_TREE_CLONE + mount_setattr MOUNT_ATTR_IDMAP), submounts cloned and idmapped as asked; its fd,
 * or -errno. The caller must hold
 * CAP_SYS_ADMIN over the source mount: the runtime does this for the init, which no longer can. */
int ocipy_idmapped_tree(const char *path, int userns_fd, int clone_recursive, int idmap_recursive);

/* shim/userns.c: an fd of a new user namespace with these uid_map/gid_map texts ("0 100000 65536\n"; setgroups
 * denied), made through a short-lived child that is reaped before this returns; -errno on failure with *step_out
 * saying which step failed (USERNS_STEP_*). The caller needs CAP_SETUID/CAP_SETGID for the mapped ids. */
enum {
	USERNS_STEP_CLONE = 1,
	USERNS_STEP_UID_MAP = 2,
	USERNS_STEP_SETGROUPS = 3,
	USERNS_STEP_GID_MAP = 4,
	USERNS_STEP_OPEN = 5
};
int ocipy_userns_fd(const char *uid_map, const char *gid_map, int *step_out);

/* shim/bpf.c: bpf(cmd, attr, size); -1 with errno set on failure. */
long ocipy_bpf(int cmd, void *attr, unsigned int size);

/* shim/graceperiod.c: a detached thread writes "0" into `fd` (a cgroup.procs the process is in), then again every
 * 3 ms until ocipy_grace_stop(); it closes `fd`. 0, or -errno (the caller still owns `fd`). */
int ocipy_grace_start(int fd);
void ocipy_grace_stop(void);

#endif
