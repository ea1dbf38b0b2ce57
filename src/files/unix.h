/* Unix sockets: what the modules of the kind share (unix.c: the row;
 * unix_dump.c, unix_peers.c: dump; unix_queue.c: unread data both ways;
 * unix_restore.c: restore). Only they include this. */
#ifndef STASIS_FILES_UNIX_H
#define STASIS_FILES_UNIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>

#include "files/kind.h"
#include "util/idmap.h"

#ifndef SIOCUNIXFILE
#define SIOCUNIXFILE (SIOCPROTOPRIVATE + 0)	/* O_PATH fd of a bound socket's file */
#endif
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

/* The kernel's socket states as sock_diag reports them. */
#define ST_ESTABLISHED 1
#define ST_LISTEN 10

#define USK_EXTERN 1u			/* uflags: a peer outside the tree, no fd */
#define USK_SERVICE (1u << 1)		/* uflags: the task's connection to the RPC
					 * service that dumps it (a self-dump) */
#define ST_CLOSE 7
#define SCM_MAX_FD 253			/* the kernel's bound on fds in one message */
#define QUEUE_MAX (256u << 20)		/* sanity bound on one socket's saved queue */

extern const struct fd_kind fd_kind_unix;

static inline bool connection_type(uint32_t type)
{
	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

/* "@abstract" or "/path" or "unnamed", for messages (unix.c). */
const char *name_str(const void *name, size_t len, char *buf, size_t size);
#define NAME(ue) name_str((ue)->name.data, (ue)->name.len, (char[128]){ 0 }, 128)

/* ---- dump ---- */

/* A socket as sock_diag lists it. */
struct usk_diag {
	uint32_t ino, peer;
	uint8_t type, state, shutdown;
	uint32_t rq, wq;
	uint32_t vfs_ino;	/* a path name's file */
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int namelen;
	uint32_t *icons;
	int nr_icons;
};

/* A socket dumped through an fd of the tree. */
struct usk_dumped {
	pid_t pid;
	int fd;
	UnixSkEntry *ue;	/* in the file table */
	const struct usk_diag *d;
};

/* Unread data for socket file id_for: a message, or stream bytes, and
 * the files passed with it (SCM_RIGHTS), by file id. */
struct usk_packet {
	uint32_t id_for, len;
	uint8_t *buf;
	uint32_t *rights;
	int nr_rights;
	int seq;	/* its place in the image: the order within a socket */
};

/* The kind's state in a dump. */
struct unix_dump {
	const struct opts *o;
	bool loaded;
	struct usk_diag *diag;
	int nr_diag;
	struct usk_dumped *sk;
	int nr_sk;
	struct idmap sk_by_ino;	/* ino -> index in sk, once all are dumped */
	struct usk_packet *pk;
	int nr_pk;
	uint32_t *ext;		/* peers given an external entry */
	int nr_ext;
};

/* unix_dump.c */
const struct usk_diag *diag_find(const struct unix_dump *u, uint32_t ino);
UnixSkEntry *new_usk(void);
int set_name(UnixSkEntry *ue, const struct usk_diag *d);
int unix_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
void unix_free_images(struct file_table *t);
/* unix_peers.c */
int unix_write_images(struct file_table *t, int dirfd);
/* unix_queue.c */
int peek_queue(struct file_table *t, struct unix_dump *u, int sk, uint32_t id, const struct usk_diag *d, const struct fd_facts *f);
int write_queues(struct unix_dump *u, int dirfd);

/* ---- restore ---- */

struct usk_made {
	uint32_t ino;
	int fd;
	int ghost;	/* O_PATH fd of its deleted file (unix_ghost.c), or -1 */
};

/* The kind's state in a restore. */
struct unix_rst {
	struct usk_made *m;
	int nr_m;
	struct idmap made_by_ino;	/* ino -> index in m */
	struct idmap file_by_ino;	/* ino -> index in the files, of the first nr_indexed */
	int nr_indexed;
	int *listeners, nr_listeners;	/* indexes in the files, of the first nr_indexed */
	struct usk_packet *q;	/* sk-queues.img */
	int nr_q;
};

static inline int set_int(int fd, int name, int val)
{
	return setsockopt(fd, SOL_SOCKET, name, &val, sizeof(val));
}

/* unix_restore.c: for the modules of the restore */
bool is_path(const UnixSkEntry *ue);
int enter_name_dir(const UnixSkEntry *ue);
void leave_name_dir(int back);
void restore_perms(const UnixSkEntry *ue, const char *path);
/* For the pool's plan (files/kind.h's own_open and ties) */
bool unix_own_open(const struct rst_files *rf, const FileEntry *fe);
void unix_ties(const struct rst_files *rf, files_tie_fn tie, void *arg);
/* unix_ghost.c: binds fd to the name of ue, whose file was deleted, for
 * a moment; the O_PATH fd of its file, to connect to it, or -1 (reported). */
int bind_deleted(int fd, const UnixSkEntry *ue, const struct sockaddr_un *a, socklen_t len);
/* unix_queue.c */
int unix_load_images(struct rst_files *rf, int dirfd);
int fill_queue(struct rst_files *rf, int from, const UnixSkEntry *to, int to_fd);
bool has_queue(const struct rst_files *rf, const UnixSkEntry *ue);
/* The after_install of the files in flight in the socket's queue, in
 * the process holding it (an epoll's targets are its fd numbers). */
int unix_after_install(struct rst_files *rf, const FileEntry *fe, int fd, pid_t pid);
/* unix_restore.c */
void unix_unload_images(struct rst_files *rf);
int unix_open(struct rst_files *rf, const FileEntry *fe, int fdflags);

#endif
