#ifndef STASIS_UTIL_SCM_H
#define STASIS_UTIL_SCM_H

#include <sys/types.h>

/* One sendmsg of len bytes with nfds (0..2) fds as SCM_RIGHTS, retried on
 * EINTR, never raising SIGPIPE: what sendmsg returns. */
ssize_t scm_send(int sk, const void *buf, size_t len, const int *fds, int nfds);

#endif
