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
};

#endif
