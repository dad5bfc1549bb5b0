/* ocipy-init: id lists ("0-3,7") as bit masks, and the NUMA memory policy (linux.memoryPolicy), set with
 * set_mempolicy(2) in the init so the container's process inherits it across fork and execve (as runc does). */
#include "init.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int parse_id_list(const char *s, unsigned long *mask, unsigned bits)
{
	const unsigned per = sizeof mask[0] * 8;

	memset(mask, 0, bits / 8);
	while (s && *s) {
		uint64_t lo, hi, i;
		if (parse_u64(&s, &lo))
			return EINVAL;
		hi = lo;
		if (*s == '-') {
			s++;
			if (parse_u64(&s, &hi))
				return EINVAL;
		}
		if (hi < lo || hi >= bits || (*s && *s != ','))
			return EINVAL;
		for (i = lo; i <= hi; i++)
			mask[i / per] |= 1UL << (i % per);
		if (*s == ',')
			s++;
	}
	return 0;
}

int op_mempolicy(struct ctx *c, const struct plan_op *op)
{
	unsigned long mask[MEMPOLICY_MAX_NODES / (sizeof(unsigned long) * 8)];
	const char *nodes = op_str(c, op, 0);
	long r;

	if (parse_id_list(nodes, mask, MEMPOLICY_MAX_NODES))
		return fail2(c, EINVAL, "memory policy nodes ", nodes);
	/* maxnode counts one past the last bit the kernel reads; no nodes: a NULL mask */
	do {
		if (nodes && *nodes)
			r = syscall(SYS_set_mempolicy, (int)op->a[0], mask, (unsigned long)MEMPOLICY_MAX_NODES + 1);
		else
			r = syscall(SYS_set_mempolicy, (int)op->a[0], NULL, 0UL);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return fail(c, errno, "set_mempolicy");
	return 0;
}
