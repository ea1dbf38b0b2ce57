/* The unix socket between `restore --lazy-pages` and the lazy-pages
 * daemon, as CRIU speaks it: the daemon listens on LAZY_SOCK_NAME in its
 * work directory; the restore connects and sends, for each process of the
 * tree, its pid (an int; a zombie's negated, with nothing after it), then
 * one byte carrying the process's userfaultfd (SCM_RIGHTS); when the whole
 * tree runs, the word LAZY_RESTORE_FINISHED.
 *
 * Stasis's daemon also talks back, in words CRIU's restore never reads:
 * LAZY_HELLO as soon as it accepts (the restore then knows it may guard
 * the tree against the daemon's death), LAZY_FORKED with the userfaultfd
 * of each process forked during the lazy phase, and LAZY_DONE once every
 * page is in place. */
#ifndef STASIS_LAZY_PROTO_H
#define STASIS_LAZY_PROTO_H

#include <stdint.h>
#include <sys/types.h>

#define LAZY_SOCK_NAME "lazy-pages.socket"
#define LAZY_RESTORE_FINISHED 0x52535446u	/* CRIU's "ReSTore Finished" */
#define LAZY_HELLO 0x5a4c5453u		/* "STLZ" */
#define LAZY_FORKED 0x4b524f46u		/* "FORK", an fd attached */
#define LAZY_DONE 0x454e4f44u		/* "DONE" */

/* The non-cooperative events a lazy restore needs (CRIU's set). */
#define LAZY_UFFD_FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
			    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

/* n bytes of data with fd attached (fd < 0: none); 0 or -1 (errno). */
int lazy_send(int sk, const void *data, size_t n, int fd);
/* Exactly n bytes, and the fd attached to them if any (*fd = -1 if none;
 * fd NULL: one attached is closed). 1: done, 0: EOF, -1: error (errno). */
int lazy_recv(int sk, void *data, size_t n, int *fd);

#endif
