/* Terminals: what the modules of the kind share (tty.c: the row; tty_dump.c;
 * tty_queue.c: bytes in flight inside a pair, both ways; tty_restore.c).
 * Only they include this. */
#ifndef STASIS_FILES_TTY_H
#define STASIS_FILES_TTY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "files/kind.h"
#include "tty.pb-c.h"

/* tty_info ids (CRIU's numbering, so images of either tool pair up). */
#define MAX_PTY_INDEX 1000
#define CONSOLE_ID (1002 << 1)
#define VT_ID (1004 << 1)
#define CTTY_ID (1006 << 1)
#define SERIAL_ID (1010 << 1)
#define PTY_ID(index, master) (((index) << 1) + ((master) ? 1 : 0))
#define PTY_IS_MASTER(id) ((id) & 1)
/* c_cc entries of the kernel's struct termios (TCGETS), as CRIU saves. */
#define KERNEL_NCCS 19
/* Most bytes saved from one side of a pty (the kernel queues far less). */
#define TTY_DATA_MAX (1u << 20)

enum tty_kind { TK_NONE, TK_MASTER, TK_SLAVE, TK_CTTY, TK_CONSOLE, TK_VT, TK_OTHER };

/* Who holds a terminal, to name it in messages (dump side). */
struct tty_holder {
	pid_t pid;
	int fd;
	char path[PATH_MAX];
	bool foreign_ok;	/* --shell-job or --external tty[..]: may be the user's */
	bool orphan;		/* orphan_pts_master: a slave side, master outside */
	uint32_t index;		/* the pty (of /dev/tty: the one it stands for), or ~0 */
	uint8_t *queued;	/* bytes waiting to be read at this side */
	size_t nr_queued;
};

/* tty-data.img loaded for restore. */
struct tty_queued {
	uint32_t id;
	uint8_t *data;
	size_t len;
};

/* A pty pair made on restore (kept per process across fork). */
struct made_pty {
	uint32_t index;		/* the index in the image */
	int master, slave;	/* slave: for TIOCSCTTY / TIOCSPGRP */
	bool locked;
	const TtyInfoEntry *info;	/* the slave's info, else the master's */
};

/* Dump: tty-info.img's entries, and per entry an fd holding it. */
struct tty_dump {
	TtyInfoEntry **ttys;
	int nr_ttys;
	struct tty_holder *holders;
};

/* Restore: tty-info.img, tty-data.img, the pairs made so far. */
struct tty_rst {
	TtyInfoEntry **ttys;
	int nr_ttys;
	int shell_tty_fd;	/* restorer's terminal for --shell-job, or -1 */
	struct made_pty *ptys;
	int nr_ptys;
	struct tty_queued *queued;
	int nr_queued;
};

extern const struct fd_kind fd_kind_tty;

/* tty.c */
enum tty_kind tty_kind_of(dev_t rdev);
int set_lock(int master, bool on);	/* TIOCSPTLCK */
/* The special characters in CRIU's layout. TermiosEntry.c_cc says
 * "repeated uint32", but CRIU copies c_cc's bytes into it with memcpy
 * (four characters to an entry, in host order) and back the same way,
 * with n_c_cc 19 (it refuses fewer) and the entries past the bytes
 * whatever its heap held. Read one character to an entry, a CRIU image
 * gave a terminal garbage from VSTART on (an XON/XOFF stop character
 * that froze a shell's output, now and then); written so, CRIU's restore
 * spread the characters four bytes apart. cc: KERNEL_NCCS of them;
 * entries: KERNEL_NCCS, past the bytes zero. */
void tty_cc_pack(uint32_t *entries, const cc_t *cc);
/* n entries; an image of stasis before this layout, one character to an
 * entry, is read as such (every entry fits a byte, which a packed entry
 * holding any but its first character does not). */
void tty_cc_unpack(cc_t *cc, const uint32_t *entries, size_t n);

/* tty_dump.c */
int tty_info_index(const struct file_table *t, uint32_t id);
/* The pty a slave-side info i belongs to, if the tree holds its master. */
const TtyInfoEntry *dump_master_of(const struct file_table *t, int i);
int tty_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe);
int tty_write_info(struct file_table *t, int dirfd);
void tty_free_info(struct file_table *t);

/* tty_queue.c */
int tty_copy_queues(struct file_table *t);	/* of the pairs the tree owns */
int tty_write_queued(struct file_table *t, int dirfd);
int tty_load_queued(struct rst_files *rf, int dirfd);
/* The saved queued bytes into the new pair p, before its settings. */
int pty_queues_restore(struct rst_files *rf, struct made_pty *p);

/* tty_restore.c */
int tty_load_info(struct rst_files *rf, int dirfd);
void tty_unload_info(struct rst_files *rf);
void termios_from_entry(struct termios *tio, const TermiosEntry *e);
int tty_open(struct rst_files *rf, const FileEntry *fe, int fdflags);
int tty_restore_ctty(struct rst_files *rf, pid_t pid, pid_t sid, pid_t pgid);
bool tty_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len);

#endif
