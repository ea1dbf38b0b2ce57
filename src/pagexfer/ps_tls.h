/* The page server's connection, plain or TLS (--tls, with GnuTLS and
 * X.509 certificates on both ends, as CRIU): ps_client.c and
 * ps_server.c send and receive through here. One connection per
 * process, as CRIU has it. */
#ifndef STASIS_PS_TLS_H
#define STASIS_PS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/opts.h"

/* With o->tls: the handshake on sk (server: the peer must show a
 * certificate), then the peer's certificate checked against the CA
 * (--tls-cacert, else the system's and CRIU's /etc/pki/CA/cacert.pem),
 * and its name against --address unless --tls-no-cn-verify. 0, or -1
 * (said). Without o->tls: nothing. */
int ps_tls_start(int sk, bool server, const struct opts *o);
/* Ends the TLS session (its close notify, unless failed). */
void ps_tls_end(bool failed);
/* send/recv on sk, through TLS when it was started: n >= 0, or -1 with
 * errno (EAGAIN: the socket's timeout ran out). recv: 0 at the peer's end. */
ssize_t ps_io_send(int sk, const void *buf, size_t len);
ssize_t ps_io_recv(int sk, void *buf, size_t len);
/* Bytes TLS has read off the socket and not yet handed out: a poll of
 * the socket would not show them. */
bool ps_io_pending(void);
/* The same for the n pieces of iov in order (sendmsg; through TLS, as
 * ps_io_send of the first piece): how many bytes went. */
ssize_t ps_io_sendv(int sk, const struct iovec *iov, int n);

#endif
