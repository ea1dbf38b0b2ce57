/* Pages from the source machine: the dump --lazy-pages (stasis's or
 * CRIU's) that serves them on a page server, asked with PS_IOV_GET
 * (pagexfer/ps_client.h). One connection serves every process; a
 * process is named by its pid in the images, as CRIU's daemon does. The
 * server may send fewer pages than asked: what is missing is asked again. */
#include <stdlib.h>

#include "image/vma.h"
#include "lazy/source.h"
#include "pagexfer/ps_client.h"
#include "util/log.h"

struct ps_src {
	struct lazy_src s;
	int sk;
};

static const void *ps_src_get(struct lazy_src *s, uint64_t addr, void *buf, size_t len)
{
	struct ps_src *ps = (struct ps_src *)s;
	size_t done = 0;
	while (done < len) {
		uint64_t got;
		if (ps_get(ps->sk, s->pid, addr + done, (len - done) / PAGE_SZ, (char *)buf + done, &got) < 0)
			return NULL;
		if (!got) {
			pr_err("pid %d: the source's page server has no pages at %#lx", s->pid,
			       (unsigned long)(addr + done));
			return NULL;
		}
		done += got * PAGE_SZ;
	}
	return buf;
}

static void ps_src_free(struct lazy_src *s)
{
	free(s);
}

struct lazy_src *lazy_src_remote(int sk, pid_t pid)
{
	struct ps_src *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		pr_err("out of memory");
		return NULL;
	}
	ps->s = (struct lazy_src){ ps_src_get, ps_src_free, pid, 1 };
	ps->sk = sk;
	return &ps->s;
}
