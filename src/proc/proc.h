/* Parsers for /proc/PID files. Everything here reads text the kernel wrote;
 * nothing is trusted to be well formed. */
#ifndef STASIS_PROC_H
#define STASIS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <limits.h>
#include <sys/resource.h>

enum vma_special { VMA_NORMAL, VMA_HEAP, VMA_STACK, VMA_VDSO, VMA_VVAR, VMA_VSYSCALL, VMA_OTHER };

struct proc_vma {
	uint64_t start, end, pgoff;
	int prot;		/* PROT_* */
	bool shared;		/* 's' in maps */
	bool growsdown;		/* "gd" in VmFlags */
	bool uffd_wp;		/* "uw": registered for userfaultfd write-protect */
	bool has_file;		/* backed by a file (map_files has it) */
	enum vma_special special;
	uint64_t madv;		/* 1 << MADV_* hints seen in VmFlags */
	int mapflags;		/* MAP_LOCKED, MAP_NORESERVE, MAP_HUGETLB, MAP_DROPPABLE seen there */
	unsigned long page_kb;	/* KernelPageSize: its pages' size (hugetlb: the huge one) */
	bool sizes_known;	/* Rss and Swap below were read */
	uint64_t rss_kb, swap_kb;	/* its pages in memory, and in swap */
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];	/* file path or [name] */
};

struct proc_vmas {
	struct proc_vma *v;
	int nr, cap;
};

int proc_parse_smaps(pid_t pid, struct proc_vmas *out);
void proc_vmas_free(struct proc_vmas *v);

struct proc_stat {
	char state;
	pid_t ppid, pgid, sid;
	int tty_nr;
	unsigned long start_code, end_code, start_stack;
	unsigned long start_data, end_data, start_brk;
	unsigned long arg_start, arg_end, env_start, env_end;
	int exit_signal;
	int exit_code;		/* wait status of a zombie */
};

int proc_parse_stat(pid_t pid, struct proc_stat *st);
/* When pid started, in clock ticks since boot (field 22 of its stat):
 * with the pid, it names one process. Quiet: -1 if the process is gone
 * (errno) or its stat makes no sense (EINVAL). */
int proc_start_time(pid_t pid, uint64_t *t);
/* The state letter of /proc/PID/stat (R, S, Z, ...), 0 if no such pid.
 * Quiet: a missing pid is an answer, not an error. */
char proc_state(pid_t pid);

struct proc_status {
	uid_t uid[4];		/* real, effective, saved, fs */
	gid_t gid[4];
	gid_t groups[NGROUPS_MAX > 256 ? 256 : NGROUPS_MAX];
	int ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	unsigned umask;
	int no_new_privs;
	int threads;
	int seccomp;
	uint64_t sig_blk;
	uint64_t sig_ign, sig_cgt;	/* ignored / caught signals */
	pid_t nspid[8];		/* NSpid: our level first, innermost last */
	int nr_nspid;
	uint64_t anon_kb;	/* RssAnon + VmSwap: about what a dump saves */
};

int proc_parse_status(pid_t pid, struct proc_status *st);
/* pid (or tid) as seen at pid namespace level (0: ours); 0 if not there. */
pid_t proc_ns_pid(pid_t pid, int level);
/* Children of one thread, from /proc/PID/task/TID/children. */
int proc_list_children(pid_t pid, pid_t tid, pid_t **kids, int *nr);

/* Reads a whole small /proc file into buf (NUL-terminated). Returns length. */
ssize_t proc_read_file(pid_t pid, const char *name, char *buf, size_t size);
/* The same from fd, an open /proc file, which it closes. */
ssize_t proc_read_fd(int fd, char *buf, size_t size);

struct proc_fdinfo {
	uint64_t pos;
	int flags;		/* open flags, octal in fdinfo */
	int mnt_id;
};

/* /proc/PID/limits, in RLIMIT_* order. */
int proc_parse_limits(pid_t pid, struct rlimit *lims, int nr);

/* The fields above from the text of /proc/PID/fdinfo/N; -1 if it lacks
 * pos or flags. */
int proc_fdinfo_parse(const char *text, struct proc_fdinfo *fi);
/* Our own duplicate of fd N of pid (the same open file description), by
 * pidfd_getfd; -1 with errno, not reported. */
int proc_take_fd(pid_t pid, int fd);
/* Lists the fd numbers a task has open, sorted. */
int proc_list_fds(pid_t pid, int **fds, int *nr);
/* Lists thread ids of a process. */
int proc_list_threads(pid_t pid, pid_t **tids, int *nr);
/* /proc is that of our own pid namespace: /proc/self is us. Otherwise
 * /proc/PID names another process than PID does for us, and a dump or
 * restore would mix two processes' state: -1 (reported). */
int proc_check_ours(void);

/* One POSIX timer of /proc/PID/timers (what timer_create was given). */
struct proc_timer {
	int id;
	int clock;
	int signo;
	int notify;		/* SIGEV_*, with SIGEV_THREAD_ID when tid is a thread */
	pid_t tid;		/* the task signalled, in our pid namespace */
	uint64_t sival;		/* sigev_value */
};
/* Every timer of a process, in *out (malloc'd, free it), 0 or -1 (errno). */
int proc_parse_timers(pid_t pid, struct proc_timer **out, int *nr);

/* A path the process's /proc files show (maps, fd links), as stasis can
 * reach it: itself when the process shares our mount namespace, else
 * through /proc/PID/root (paths of a namespace of its own are shown from
 * its root). Written into buf; returns buf. */
const char *proc_tree_path(pid_t pid, const char *path, char *buf, size_t len);

#endif
