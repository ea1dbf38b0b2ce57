/* The client side of the page-server protocol (ps_proto.h): a dump
 * sending pages to `stasis page-server` or `criu page-server`, and (for
 * lazy restore) asking a dump side's server for pages with ps_get. */
#ifndef STASIS_PS_CLIENT_H
#define STASIS_PS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pagexfer/ps_proto.h"

/* A TCP connection to ADDR:PORT (IPv4 or IPv6 literal, or a host name);
 * the socket, or -1 (said). */
int ps_connect(const char *addr, unsigned port);
/* A server that takes nothing and says nothing for timeout seconds
 * fails the call that waits for it (a dump must not hang, its tree
 * frozen, on a server that stalled). */
void ps_set_timeout(int sk, unsigned timeout);
/* Opens the image of dst on the server; *has_parent: the server found
 * a parent image for it. */
int ps_open(int sk, uint64_t dst, bool *has_parent);
/* Whether the server has a parent image for dst, opening nothing. */
int ps_has_parent(int sk, uint64_t dst, bool *has_parent);
/* One run of the open image: flags PE_*; with PE_PRESENT the caller
 * sends nr_pages pages of bytes next (ps_send). */
int ps_add(int sk, uint64_t dst, uint64_t vaddr, uint64_t nr_pages, uint32_t flags);
int ps_send(int sk, const void *buf, size_t len);
/* The n pieces of iov one after the other, as ps_send each (iov is used up). */
int ps_sendv(int sk, struct iovec *iov, int n);
/* Ends the session: the server has written everything when it answers
 * 0. force: FORCE_CLOSE (a socket the caller got from elsewhere). */
int ps_close(int sk, bool force);
/* Lazy restore: asks for nr_pages pages at vaddr of dst and reads the
 * answer into buf (nr_pages pages); *got: how many pages came (0: the
 * server has none there). */
int ps_get(int sk, uint64_t dst, uint64_t vaddr, uint64_t nr_pages, void *buf, uint64_t *got);

#endif
