/* The serving side of a remote lazy restore: answers the PS_IOV_GET
 * requests of a `lazy-pages --page-server` daemon (stasis's or CRIU's,
 * ps_proto.h) as CRIU's page server does, from whatever holds the pages:
 * a frozen tree (dump --lazy-pages, dump/lazy_serve.c) or a finished
 * dump's images (page-server --lazy-pages, ps_images.h).
 *
 * An answer is the request's header back as PS_IOV_ADD_F|PE_PRESENT
 * with the number of pages that follow, which may be fewer than asked
 * (up to the end of the lazy run holding the address); pages may be
 * asked again. The daemon ends its session with PS_IOV_CLOSE (or
 * FORCE_CLOSE), answered with an int32 0. */
#ifndef STASIS_PS_LAZY_H
#define STASIS_PS_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/opts.h"

struct ps_pages {
	/* How many of the nr pages at addr of the process the daemon names
	 * pid (its pid in the images) one answer may carry: up to the end
	 * of the lazy run holding addr; 0: addr is in no lazy run of it. */
	uint64_t (*avail)(struct ps_pages *src, uint64_t pid, uint64_t addr, uint64_t nr);
	/* len bytes of those pages into buf: 0, or -1 (said) */
	int (*read)(struct ps_pages *src, uint64_t pid, uint64_t addr, void *buf, size_t len);
	/* A session broken after pages went ends the serving with -1 (the
	 * tree's copy can't get the rest of its memory from another
	 * daemon); else it is dropped like one broken before. */
	bool fail_after_pages;
	/* Seconds a daemon may stay silent in the middle of a request, or
	 * between requests (0: no limit). */
	unsigned idle;
	/* An fd that turns readable when the pages' source is gone (a
	 * process of the frozen tree was killed), watched while a daemon is
	 * waited for; then gone() says so and the serving ends with -1.
	 * -1: nothing to watch. */
	int gone_fd;
	void (*gone)(struct ps_pages *src);
};

/* Serves src's pages to one daemon after another until one closes its
 * session (0). A connection that breaks the protocol (garbage, a request
 * for pages that are no lazy pages of src) is dropped and the next one
 * waited for, but see fail_after_pages (-1, said). sk >= 0: one session
 * on it, lsk unused (--ps-socket). */
int ps_lazy_serve(int lsk, int sk, const struct opts *o, struct ps_pages *src);

#endif
