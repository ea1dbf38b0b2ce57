/* Terminals: the kind's row of the table (its modules: tty.h).
 *
 * A tty file is a tty_file_entry (flags) pointing at a tty_info_entry
 * (the terminal: settings, session, foreground group). Infos are numbered
 * as CRIU numbers them: a pty is index * 2 for its slave side and
 * index * 2 + 1 for its master side, so the two sides of a pair find each
 * other; /dev/tty, the console and vts get fixed numbers above the ptys.
 *
 * A pty pair is the tree's own when some fd of the tree holds its master:
 * restore makes a new pair (the same index when it is free), gives it the
 * saved settings, and session leaders get it back as their controlling
 * terminal; so is a slave hung up by its closed master, restored hung up.
 * The console and virtual terminals are reopened by their path, as CRIU
 * does (a vt under --shell-job is the user's). Any other pty slave (or
 * terminal) whose master is not in the tree is the user's: with
 * --shell-job it is replaced on restore by the terminal stasis runs on;
 * --inherit-fd fd[N]:tty[RDEV:DEV] hands one in.
 *
 * Fds of the dumped tasks are read through pidfd_getfd(): opening
 * /proc/PID/fd/N of a master would make a brand new pair.
 *
 * Bytes in flight inside a pair of the tree (written at one side, not yet
 * read at the other) are copied into tty-data.img (CRIU's format) and put
 * back at once, so the tree keeps them whether it goes on running or not;
 * restore writes them into the new pair. Input for a slave reader in
 * canonical mode goes back in canonical mode, so its lines form again;
 * only input under external line editing (EXTPROC) is left alone, not
 * saved, and the dump says so. Bytes queued in a terminal that isn't the
 * tree's are never touched (nor saved). */
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "files/tty.h"

#define TTY_MAJOR 4
#define TTYAUX_MAJOR 5
#define PTM_MAJOR_FIRST 128
#define PTM_MAJOR_LAST 135
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143

enum tty_kind tty_kind_of(dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);
	if (maj == TTYAUX_MAJOR)
		return min == 2 ? TK_MASTER : min == 0 ? TK_CTTY : min == 1 ? TK_CONSOLE : TK_NONE;
	if (maj >= PTM_MAJOR_FIRST && maj <= PTM_MAJOR_LAST)
		return TK_MASTER;
	if (maj >= PTS_MAJOR_FIRST && maj <= PTS_MAJOR_LAST)
		return TK_SLAVE;
	if (maj == TTY_MAJOR)
		return min < 64 ? TK_VT : TK_OTHER;
	return TK_NONE;
}

static bool tty_owns(const struct fd_facts *f)
{
	return S_ISCHR(f->st.st_mode) && tty_kind_of(f->st.st_rdev) != TK_NONE;
}

int set_lock(int master, bool on)
{
	int v = on;
	return ioctl(master, TIOCSPTLCK, &v);
}

void tty_cc_pack(uint32_t *entries, const cc_t *cc)
{
	memset(entries, 0, KERNEL_NCCS * sizeof(*entries));
	memcpy(entries, cc, KERNEL_NCCS);
}

void tty_cc_unpack(cc_t *cc, const uint32_t *entries, size_t n)
{
	bool one_each = true;
	for (size_t i = 0; i < n; i++)
		one_each &= entries[i] <= 0xff;
	if (one_each) {
		for (size_t i = 0; i < n && i < KERNEL_NCCS; i++)
			cc[i] = entries[i];
		return;
	}
	memcpy(cc, entries, n * sizeof(*entries) < KERNEL_NCCS ? n * sizeof(*entries) : KERNEL_NCCS);
}

const struct fd_kind fd_kind_tty = {
	.name = "tty", .type = FD_TYPES__TTY,
	.dump_state = sizeof(struct tty_dump), .rst_state = sizeof(struct tty_rst),
	.owns = tty_owns, .dump = tty_dump, .open = tty_open,
	.inherit_name = tty_inherit_name, .before_fork = tty_restore_ctty,
	.write_images = tty_write_info, .free_images = tty_free_info,
	.load_images = tty_load_info, .unload_images = tty_unload_info,
};
