/* Options shared by every command, filled by the command line (and later RPC). */
#ifndef STASIS_OPTS_H
#define STASIS_OPTS_H

#include <stdbool.h>
#include <sys/types.h>

struct opts {
	const char *images_dir;	/* -D */
	const char *work_dir;	/* -W */
	const char *log_file;	/* -o */
	int log_level;		/* -v */
	pid_t pid;		/* -t */
	bool leave_running;
	bool shell_job;
	bool detach;		/* restore -d */
	const char *pidfile;
	bool new_pidns;		/* restore into a fresh pid namespace */
	/* --inherit-fd fd[N]:RESOURCE: our fd N stands for RESOURCE */
	struct inherit_fd { int fd; const char *res; } *inherit;
	int nr_inherit;
	/* --external RES (repeatable): resources the tree uses from outside,
	 * e.g. file[MNT_ID:INODE]; kept as given */
	const char **external;
	int nr_external;
	/* --ext-unix-sk[=INO]: unix sockets with a peer outside the tree are
	 * allowed (all of them, or the listed socket inodes) */
	bool ext_unix_sk;
	unsigned long *ext_unix_sk_ino;
	int nr_ext_unix_sk_ino;
	bool file_locks;	/* --file-locks: dump and restore file locks */
	unsigned long long ghost_limit;	/* --ghost-limit: largest deleted file saved */
};

#endif
