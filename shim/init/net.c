/* ocipy-init in a new network namespace: the loopback device comes up (as runc does), since nothing else in the
 * container's setup would, and programs expect 127.0.0.1 to work (`podman run --network none`). */
#include "init.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int op_loopback_up(struct ctx *c, const struct plan_op *op)
{
	struct ifreq ifr;
	int s, e = 0;

	(void)op;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(c, errno, "socket for lo");
	memset(&ifr, 0, sizeof ifr);
	str_copy(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		e = errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			e = errno;
	}
	close(s);
	return e ? fail(c, e, "lo") : 0;
}
