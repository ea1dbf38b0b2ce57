/* Unix sockets: the kind's row of the table. Dump: the kernel's socket list (sock_diag) tells each
 * socket's name, peer, state, shutdown bits, queue lengths and, for a
 * listener, the clients waiting in its accept queue; the socket itself
 * (taken with pidfd_getfd) gives its options and, peeked with SO_PEEK_OFF
 * so the task loses nothing, its unread data (sk-queues.img). Once every
 * task is dumped, peers are checked: a peer outside the tree needs
 * --ext-unix-sk and gets an entry of its own (no fd) carrying its name.
 *
 * Restore: every socket is made once (the pool keeps it) together with
 * the sockets it is tied to: a socketpair for two sockets connected to
 * each other; a listener with, right away, the connections it had
 * accepted (connect to it and accept, so both ends keep the names they
 * had) and then the ones waiting to be accepted. Unread data goes back by
 * sending it from the peer (or a throwaway socket) before options and
 * shutdown are set. The modules: unix.h. */
#include <stdio.h>
#include <string.h>

#include "files/sock_diag.h"
#include "files/unix.h"

/* "@abstract" or "/path" or "unnamed", for messages. */
const char *name_str(const void *name, size_t len, char *buf, size_t size)
{
	const char *n = name;
	size_t i, o = 0;

	while (len && !n[len - 1] && n[0])	/* a path's trailing NULs */
		len--;
	if (!len)
		return "unnamed";
	for (i = 0; i < len && o + 1 < size; i++)
		buf[o++] = (n[i] >= 32 && n[i] < 127) ? n[i] : '@';
	buf[o] = 0;
	return buf;
}

static bool unix_owns(const struct fd_facts *f)
{
	return S_ISSOCK(f->st.st_mode) && !strncmp(f->proto, "UNIX", 4);
}

static bool unix_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->usk)
		return false;
	snprintf(buf, len, "socket:[%u]", fe->usk->ino);
	return true;
}

const struct fd_kind fd_kind_unix = {
	.name = "unix socket", .type = FD_TYPES__UNIXSK,
	.dump_state = sizeof(struct unix_dump), .rst_state = sizeof(struct unix_rst),
	.owns = unix_owns, .dump = unix_dump, .open = unix_open,
	.write_images = unix_write_images, .free_images = unix_free_images,
	.load_images = unix_load_images, .unload_images = unix_unload_images,
	.after_install = unix_after_install, .inherit_name = unix_inherit_name,
	.own_open = unix_own_open, .ties = unix_ties,
};
