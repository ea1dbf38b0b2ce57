/* Socket activation: the listening socket systemd hands to `stasis
 * service` (see listen_fds.c). */
#ifndef STASIS_CLI_LISTEN_FDS_H
#define STASIS_CLI_LISTEN_FDS_H

/* The socket systemd passed to this process: its fd (3), close-on-exec
 * from now on; -1 if none was passed to us; -2 if what was passed can't
 * be served (reported). LISTEN_* are removed from the environment either
 * way, so nothing started later takes them for its own. */
int systemd_listen_fd(void);

#endif
