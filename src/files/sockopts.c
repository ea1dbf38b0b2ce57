/* The generic options of a socket, as CRIU's sk_opts_entry keeps them.
 * Which ones are saved and how they come back follow CRIU (sockets.c):
 * buffer sizes (the kernel reports them doubled), timeouts, priority,
 * low-water mark, mark, the boolean flags, linger, the device the socket
 * is bound to and a classic BPF filter. */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/filter.h>

#include "files/sockopts.h"
#include "util/log.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

SkOptsEntry *skopts_new(void)
{
	SkOptsEntry *so = calloc(1, sizeof(*so));
	if (so)
		sk_opts_entry__init(so);
	return so;
}

static int get_int(int sk, int name, int *val)
{
	socklen_t l = sizeof(*val);
	*val = 0;
	return getsockopt(sk, SOL_SOCKET, name, val, &l);
}

static int get_bool(int sk, int name, protobuf_c_boolean *has, protobuf_c_boolean *val)
{
	int v;
	if (get_int(sk, name, &v) < 0)
		return -1;
	*has = true;
	*val = v != 0;
	return 0;
}

static int get_tmo(int sk, int name, uint64_t *sec, uint64_t *usec)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);
	if (getsockopt(sk, SOL_SOCKET, name, &tv, &l) < 0)
		return -1;
	*sec = tv.tv_sec;
	*usec = tv.tv_usec;
	return 0;
}

/* A classic BPF filter (SO_ATTACH_FILTER), one instruction a word as
 * CRIU packs it: code, jt, jf, k from the top. */
static int dump_filter(int sk, SkOptsEntry *so)
{
	socklen_t n = 0;
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &n) < 0)
		return -1;
	if (!n)
		return 0;
	struct sock_filter *f = calloc(n, sizeof(*f));
	so->so_filter = calloc(n, sizeof(*so->so_filter));
	if (!f || !so->so_filter) {
		free(f);
		errno = ENOMEM;
		return -1;
	}
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, f, &n) < 0) {
		free(f);
		return -1;
	}
	for (socklen_t i = 0; i < n; i++)
		so->so_filter[i] = (uint64_t)f[i].code << 48 | (uint64_t)f[i].jt << 40 |
				   (uint64_t)f[i].jf << 32 | f[i].k;
	so->n_so_filter = n;
	free(f);
	return 0;
}

static int dump_bound_dev(int sk, SkOptsEntry *so)
{
	char dev[IFNAMSIZ + 1] = { 0 };
	socklen_t l = IFNAMSIZ;
	if (getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) < 0)
		return -1;
	if (!l || !dev[0])
		return 0;
	if (!(so->so_bound_dev = strdup(dev))) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int skopts_dump(int sk, int family, SkOptsEntry *so)
{
	struct linger lg = { 0, 0 };
	socklen_t l = sizeof(lg);
	int v, ret = 0;

	ret |= get_int(sk, SO_SNDBUF, &v);
	so->so_sndbuf = v;
	ret |= get_int(sk, SO_RCVBUF, &v);
	so->so_rcvbuf = v;
	if (!get_int(sk, SO_BUF_LOCK, &v))	/* since Linux 5.14 */
		so->has_so_buf_lock = true, so->so_buf_lock = v;
	ret |= get_int(sk, SO_PRIORITY, &v);
	so->has_so_priority = true, so->so_priority = v;
	ret |= get_int(sk, SO_RCVLOWAT, &v);
	so->has_so_rcvlowat = true, so->so_rcvlowat = v;
	ret |= get_int(sk, SO_MARK, &v);	/* setting it needs CAP_NET_ADMIN: only if set */
	so->has_so_mark = v != 0, so->so_mark = v;
	ret |= get_tmo(sk, SO_SNDTIMEO, &so->so_snd_tmo_sec, &so->so_snd_tmo_usec);
	ret |= get_tmo(sk, SO_RCVTIMEO, &so->so_rcv_tmo_sec, &so->so_rcv_tmo_usec);
	ret |= get_bool(sk, SO_REUSEADDR, &so->has_reuseaddr, &so->reuseaddr);
	ret |= get_bool(sk, SO_REUSEPORT, &so->has_so_reuseport, &so->so_reuseport);
	if (family == AF_UNIX || family == AF_NETLINK) {
		ret |= get_bool(sk, SO_PASSCRED, &so->has_so_passcred, &so->so_passcred);
		ret |= get_bool(sk, SO_PASSSEC, &so->has_so_passsec, &so->so_passsec);
	}
	ret |= get_bool(sk, SO_DONTROUTE, &so->has_so_dontroute, &so->so_dontroute);
	ret |= get_bool(sk, SO_NO_CHECK, &so->has_so_no_check, &so->so_no_check);
	ret |= get_bool(sk, SO_BROADCAST, &so->has_so_broadcast, &so->so_broadcast);
	ret |= get_bool(sk, SO_KEEPALIVE, &so->has_so_keepalive, &so->so_keepalive);
	ret |= get_int(sk, SO_OOBINLINE, &v);
	so->has_so_oobinline = true, so->so_oobinline = v != 0;
	ret |= getsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, &l);
	if (lg.l_onoff)
		so->has_so_linger = true, so->so_linger = lg.l_linger;
	if (ret)
		return -1;
	return dump_bound_dev(sk, so) < 0 || dump_filter(sk, so) < 0 ? -1 : 0;
}

static int set_int(int sk, int name, int val)
{
	return setsockopt(sk, SOL_SOCKET, name, &val, sizeof(val));
}

/* The kernel doubles what it is given. FORCE passes the limits of
 * net.core.[rw]mem_max but needs CAP_NET_ADMIN: a task without gets what
 * the plain option allows. */
static int set_buf(int sk, int force, int plain, uint32_t doubled)
{
	int v = doubled / 2;
	if (!setsockopt(sk, SOL_SOCKET, force, &v, sizeof(v)))
		return 0;
	if (errno != EPERM)
		return -1;
	return setsockopt(sk, SOL_SOCKET, plain, &v, sizeof(v));
}

static int restore_filter(int sk, const SkOptsEntry *so)
{
	if (!so->n_so_filter)
		return 0;
	if (so->n_so_filter > BPF_MAXINSNS) {
		errno = EINVAL;
		return -1;
	}
	struct sock_filter f[BPF_MAXINSNS];
	for (size_t i = 0; i < so->n_so_filter; i++) {
		uint64_t w = so->so_filter[i];
		f[i] = (struct sock_filter){ w >> 48, w >> 40, w >> 32, (uint32_t)w };
	}
	struct sock_fprog p = { .len = so->n_so_filter, .filter = f };
	return setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p));
}

/* One option: on failure says which, on which socket. */
#define SET(what_opt, call)                                                         \
	do {                                                                        \
		if ((call) < 0) {                                                   \
			pr_perror("can't set %s on %s", what_opt, what);            \
			return -1;                                                  \
		}                                                                   \
	} while (0)

int skopts_restore(int sk, const SkOptsEntry *so, const char *what)
{
	struct timeval snd = { so->so_snd_tmo_sec, so->so_snd_tmo_usec };
	struct timeval rcv = { so->so_rcv_tmo_sec, so->so_rcv_tmo_usec };

	SET("SO_SNDBUF", set_buf(sk, SO_SNDBUFFORCE, SO_SNDBUF, so->so_sndbuf));
	SET("SO_RCVBUF", set_buf(sk, SO_RCVBUFFORCE, SO_RCVBUF, so->so_rcvbuf));
	if (so->has_so_buf_lock)
		SET("SO_BUF_LOCK", set_int(sk, SO_BUF_LOCK, so->so_buf_lock));
	if (so->has_so_priority)
		SET("SO_PRIORITY", set_int(sk, SO_PRIORITY, so->so_priority));
	if (so->has_so_rcvlowat)
		SET("SO_RCVLOWAT", set_int(sk, SO_RCVLOWAT, so->so_rcvlowat));
	if (so->has_so_mark)
		SET("SO_MARK", set_int(sk, SO_MARK, so->so_mark));
	if (so->has_so_passcred && so->so_passcred)
		SET("SO_PASSCRED", set_int(sk, SO_PASSCRED, 1));
	if (so->has_so_passsec && so->so_passsec)
		SET("SO_PASSSEC", set_int(sk, SO_PASSSEC, 1));
	if (so->has_so_dontroute && so->so_dontroute)
		SET("SO_DONTROUTE", set_int(sk, SO_DONTROUTE, 1));
	if (so->has_so_no_check && so->so_no_check)
		SET("SO_NO_CHECK", set_int(sk, SO_NO_CHECK, 1));
	if (so->has_so_broadcast && so->so_broadcast)
		SET("SO_BROADCAST", set_int(sk, SO_BROADCAST, 1));
	if (so->has_so_oobinline && so->so_oobinline)
		SET("SO_OOBINLINE", set_int(sk, SO_OOBINLINE, 1));
	if (so->has_so_keepalive && so->so_keepalive)
		SET("SO_KEEPALIVE", set_int(sk, SO_KEEPALIVE, 1));
	if (so->has_so_linger) {
		struct linger lg = { 1, so->so_linger };
		SET("SO_LINGER", setsockopt(sk, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	}
	SET("SO_SNDTIMEO", setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)));
	SET("SO_RCVTIMEO", setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)));
	if (so->so_bound_dev)
		SET("SO_BINDTODEVICE", setsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, so->so_bound_dev,
						  strlen(so->so_bound_dev)));
	SET("the socket filter", restore_filter(sk, so));
	return 0;
}
