#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc/proc.h"
#include "util/compat.h"
#include "util/log.h"
#include "util/grow.h"
#include "proc/ns_ids.h"

ssize_t proc_read_fd(int fd, char *buf, size_t size)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
		if (got == size - 1)
			break;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

ssize_t proc_read_file(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[96];	/* names up to 63 characters (callers' buffers of 64) */
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -1 : proc_read_fd(fd, buf, size);
}

static void vma_set_special(struct proc_vma *v)
{
	static const struct { const char *name; enum vma_special kind; } names[] = {
		{ "[heap]", VMA_HEAP }, { "[stack]", VMA_STACK }, { "[vdso]", VMA_VDSO },
		{ "[vvar]", VMA_VVAR }, { "[vvar_vclock]", VMA_VVAR }, { "[vsyscall]", VMA_VSYSCALL },
	};
	v->special = VMA_NORMAL;
	if (v->path[0] != '[')
		return;
	v->special = VMA_OTHER;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v->path, names[i].name))
			v->special = names[i].kind;
}

/* VmFlags two-letter codes we keep: madvise hints (CRIU's madv bits) and
 * the mmap flags the mapping was made with (CRIU's VmaEntry.flags). */
static void vma_parse_vmflags(struct proc_vma *v, const char *flags)
{
	static const struct { const char code[3]; int flag; } mmap_flags[] = {
		{ "lo", MAP_LOCKED }, { "nr", MAP_NORESERVE }, { "ht", MAP_HUGETLB },
		{ "dp", MAP_DROPPABLE },
	};
	static const struct { const char code[3]; int madv; } hints[] = {
		{ "sr", MADV_SEQUENTIAL }, { "rr", MADV_RANDOM }, { "dc", MADV_DONTFORK },
		{ "dd", MADV_DONTDUMP }, { "mg", MADV_MERGEABLE }, { "hg", MADV_HUGEPAGE },
		{ "nh", MADV_NOHUGEPAGE }, { "wf", MADV_WIPEONFORK },
	};
	for (const char *p = flags; *p; ) {
		while (*p == ' ')
			p++;
		if (!p[0] || !p[1])
			break;
		if (p[0] == 'g' && p[1] == 'd')
			v->growsdown = true;
		if (p[0] == 'u' && p[1] == 'w')
			v->uffd_wp = true;
		for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
			if (p[0] == hints[i].code[0] && p[1] == hints[i].code[1])
				v->madv |= 1ull << hints[i].madv;
		for (size_t i = 0; i < sizeof(mmap_flags) / sizeof(mmap_flags[0]); i++)
			if (p[0] == mmap_flags[i].code[0] && p[1] == mmap_flags[i].code[1])
				v->mapflags |= mmap_flags[i].flag;
		p += 2;
	}
}

static int vma_parse_line(const char *line, struct proc_vma *v)
{
	char perms[5];
	unsigned maj, min;
	unsigned long ino;
	int off = 0;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", (unsigned long *)&v->start,
		   (unsigned long *)&v->end, perms, (unsigned long *)&v->pgoff, &maj, &min, &ino, &off) < 7)
		return -1;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	v->dev = makedev(maj, min);
	v->ino = ino;
	const char *p = line + off;
	snprintf(v->path, sizeof(v->path), "%s", p);
	v->path[strcspn(v->path, "\n")] = 0;
	vma_set_special(v);
	return 0;
}

static int vmas_push(struct proc_vmas *out, const struct proc_vma *v)
{
	if (grow_array(out->v, out->cap, out->nr + 1, 64) < 0)
		return -1;
	out->v[out->nr++] = *v;
	return 0;
}

static bool is_vma_header(const char *line)
{
	/* "start-end perms ..." : a hex digit run followed by '-' */
	const char *p = line;
	while (isxdigit((unsigned char)*p))
		p++;
	return p != line && *p == '-';
}

int proc_parse_smaps(pid_t pid, struct proc_vmas *out)
{
	char path[64], line[PATH_MAX + 256];
	struct proc_vma cur;
	bool have = false;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		pr_perror("pid %d: can't open %s", pid, path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (is_vma_header(line)) {
			if (have && vmas_push(out, &cur) < 0)
				goto nomem;
			if (vma_parse_line(line, &cur) < 0) {
				pr_err("pid %d: can't parse smaps line: %s", pid, line);
				goto err;
			}
			have = true;
		} else if (have && !strncmp(line, "KernelPageSize:", 15)) {
			cur.page_kb = strtoul(line + 15, NULL, 10);
		} else if (have && !strncmp(line, "Rss:", 4)) {
			cur.rss_kb = strtoull(line + 4, NULL, 10);
			cur.sizes_known = true;
		} else if (have && !strncmp(line, "Swap:", 5)) {
			cur.swap_kb = strtoull(line + 5, NULL, 10);
		} else if (have && !strncmp(line, "VmFlags:", 8)) {
			vma_parse_vmflags(&cur, line + 8);
		}
	}
	if (have && vmas_push(out, &cur) < 0)
		goto nomem;
	fclose(f);
	return 0;
nomem:
	pr_err("pid %d: out of memory listing mappings", pid);
err:
	fclose(f);
	proc_vmas_free(out);
	return -1;
}

int proc_start_time(pid_t pid, uint64_t *t)
{
	char buf[1024];
	ssize_t n = proc_read_file(pid, "stat", buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *s = strrchr(buf, ')');	/* comm may hold spaces and parens */
	/* after ") ": state is field 3, start time field 22 */
	for (int field = 2; s && field < 22; field++)
		s = strchr(s + 1, ' ');
	if (!s || sscanf(s + 1, "%lu", (unsigned long *)t) != 1) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void proc_vmas_free(struct proc_vmas *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

int proc_parse_stat(pid_t pid, struct proc_stat *st)
{
	char buf[4096];
	if (proc_read_file(pid, "stat", buf, sizeof(buf)) <= 0) {
		pr_perror("pid %d: can't read /proc/%d/stat", pid, pid);
		return -1;
	}
	/* comm may hold spaces and parens: parse after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		goto bad;
	memset(st, 0, sizeof(*st));
	unsigned long v[52] = { 0 };
	char state;
	int n = 0, consumed;
	p += 2;
	if (sscanf(p, "%c%n", &state, &consumed) != 1)
		goto bad;
	p += consumed;
	/* fields 4.. as numbers; index i here is field number i+4 */
	while (n < 49 && sscanf(p, " %lu%n", &v[n], &consumed) == 1) {
		p += consumed;
		n++;
	}
	if (n < 48)
		goto bad;
	st->state = state;
	st->ppid = v[0];
	st->pgid = v[1];
	st->sid = v[2];
	st->tty_nr = v[3];
	st->start_code = v[22];
	st->end_code = v[23];
	st->start_stack = v[24];
	st->exit_signal = v[34];
	st->start_data = v[41];
	st->end_data = v[42];
	st->start_brk = v[43];
	st->arg_start = v[44];
	st->arg_end = v[45];
	st->env_start = v[46];
	st->env_end = v[47];
	st->exit_code = n > 48 ? (int)v[48] : 0;
	return 0;
bad:
	pr_err("pid %d: can't parse /proc/%d/stat", pid, pid);
	return -1;
}

char proc_state(pid_t pid)
{
	char buf[512];
	if (proc_read_file(pid, "stat", buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strrchr(buf, ')');	/* comm may hold spaces and parens */
	return p && p[1] ? p[2] : 0;
}

static void parse_ids(const char *s, unsigned *ids)
{
	sscanf(s, "%u %u %u %u", &ids[0], &ids[1], &ids[2], &ids[3]);
}

int proc_parse_status(pid_t pid, struct proc_status *st)
{
	char buf[8192];
	if (proc_read_file(pid, "status", buf, sizeof(buf)) <= 0) {
		pr_perror("pid %d: can't read /proc/%d/status", pid, pid);
		return -1;
	}
	memset(st, 0, sizeof(*st));
	int found = 0;
	char *save;
	/* strtok_r: restore's rebuild threads parse at the same time */
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ':');
		if (!val)
			continue;
		*val++ = 0;
		while (*val == ' ' || *val == '\t')
			val++;
		if (!strcmp(line, "Uid"))
			parse_ids(val, st->uid), found++;
		else if (!strcmp(line, "Gid"))
			parse_ids(val, st->gid), found++;
		else if (!strcmp(line, "CapInh"))
			st->cap_inh = strtoull(val, NULL, 16), found++;
		else if (!strcmp(line, "CapPrm"))
			st->cap_prm = strtoull(val, NULL, 16), found++;
		else if (!strcmp(line, "CapEff"))
			st->cap_eff = strtoull(val, NULL, 16), found++;
		else if (!strcmp(line, "CapBnd"))
			st->cap_bnd = strtoull(val, NULL, 16), found++;
		else if (!strcmp(line, "CapAmb"))
			st->cap_amb = strtoull(val, NULL, 16);
		else if (!strcmp(line, "Umask"))
			st->umask = strtoul(val, NULL, 8);
		else if (!strcmp(line, "NoNewPrivs"))
			st->no_new_privs = atoi(val);
		else if (!strcmp(line, "Threads"))
			st->threads = atoi(val), found++;
		else if (!strcmp(line, "Seccomp"))
			st->seccomp = atoi(val);
		else if (!strcmp(line, "RssAnon") || !strcmp(line, "VmSwap"))
			st->anon_kb += strtoull(val, NULL, 10);
		else if (!strcmp(line, "NSpid")) {
			char *end;
			for (char *p = val; st->nr_nspid < 8; p = end) {
				long n = strtol(p, &end, 10);
				if (end == p)
					break;
				st->nspid[st->nr_nspid++] = n;
			}
		} else if (!strcmp(line, "SigIgn"))
			st->sig_ign = strtoull(val, NULL, 16);
		else if (!strcmp(line, "SigCgt"))
			st->sig_cgt = strtoull(val, NULL, 16);
		else if (!strcmp(line, "SigBlk"))
			st->sig_blk = strtoull(val, NULL, 16);
		else if (!strcmp(line, "Groups")) {
			char *end;
			for (char *p = val; st->ngroups < (int)(sizeof(st->groups) / sizeof(st->groups[0])); p = end) {
				unsigned long g = strtoul(p, &end, 10);
				if (end == p)
					break;
				st->groups[st->ngroups++] = g;
			}
		}
	}
	if (found < 7) {
		pr_err("pid %d: /proc/%d/status lacks Uid/Gid/Cap/Threads lines", pid, pid);
		return -1;
	}
	return 0;
}

int proc_fdinfo_parse(const char *text, struct proc_fdinfo *fi)
{
	memset(fi, 0, sizeof(*fi));
	const char *p = strstr(text, "pos:");
	const char *f = strstr(text, "flags:");
	const char *m = strstr(text, "mnt_id:");
	if (!p || !f)
		return -1;
	fi->pos = strtoull(p + 4, NULL, 10);
	fi->flags = strtol(f + 6, NULL, 8);
	fi->mnt_id = m ? atoi(m + 7) : -1;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_numeric_dir(const char *path, int **out, int *nr)
{
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int cap = 64, n = 0;
	int *v = malloc(cap * sizeof(int));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (grow_array(v, cap, n + 1, 64) < 0) {
			free(v);
			v = NULL;
			break;
		}
		v[n++] = atoi(de->d_name);
	}
	closedir(d);
	if (!v) {
		errno = ENOMEM;
		return -1;
	}
	qsort(v, n, sizeof(int), cmp_int);
	*out = v;
	*nr = n;
	return 0;
}

int proc_list_fds(pid_t pid, int **fds, int *nr)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (list_numeric_dir(path, fds, nr) < 0) {
		pr_perror("pid %d: can't list %s", pid, path);
		return -1;
	}
	return 0;
}

int proc_list_threads(pid_t pid, pid_t **tids, int *nr)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (list_numeric_dir(path, tids, nr) < 0) {
		pr_perror("pid %d: can't list %s", pid, path);
		return -1;
	}
	return 0;
}

pid_t proc_ns_pid(pid_t pid, int level)
{
	struct proc_status st;
	if (level == 0)
		return pid;
	if (proc_parse_status(pid, &st) < 0 || level >= st.nr_nspid)
		return 0;
	return st.nspid[level];
}

int proc_list_children(pid_t pid, pid_t tid, pid_t **kids, int *nr)
{
	char name[64], buf[65536];
	snprintf(name, sizeof(name), "task/%d/children", tid);
	*kids = NULL;
	*nr = 0;
	if (proc_read_file(pid, name, buf, sizeof(buf)) < 0) {
		pr_perror("pid %d: can't list children of thread %d", pid, tid);
		return -1;
	}
	int cap = 0;
	char *end;
	for (char *p = buf;; p = end) {
		long c = strtol(p, &end, 10);
		if (end == p)
			break;
		if (grow_array(*kids, cap, *nr + 1, 16) < 0) {
			free(*kids);
			return -1;
		}
		(*kids)[(*nr)++] = c;
	}
	return 0;
}

static int parse_limit(const char *s, rlim_t *v)
{
	char *end;
	if (!strncmp(s, "unlimited", 9)) {
		*v = RLIM_INFINITY;
		return 0;
	}
	*v = strtoull(s, &end, 10);
	return end == s ? -1 : 0;
}

/* Lines are "%-25s %-20s %-20s %-10s": name, soft, hard, unit, one per
 * limit in RLIMIT_* order after a header line. */
int proc_parse_limits(pid_t pid, struct rlimit *lims, int nr)
{
	char buf[4096];
	if (proc_read_file(pid, "limits", buf, sizeof(buf)) <= 0) {
		pr_perror("pid %d: can't read /proc/%d/limits", pid, pid);
		return -1;
	}
	char *line = strchr(buf, '\n');
	for (int r = 0; r < nr; r++) {
		if (!line || strlen(++line) < 47)
			goto bad;
		char *soft = line + 26, *hard = soft;
		while (*hard && *hard != ' ')
			hard++;
		while (*hard == ' ')
			hard++;
		if (parse_limit(soft, &lims[r].rlim_cur) < 0 || parse_limit(hard, &lims[r].rlim_max) < 0)
			goto bad;
		line = strchr(line, '\n');
	}
	return 0;
bad:
	pr_err("pid %d: can't parse /proc/%d/limits", pid, pid);
	return -1;
}

int proc_take_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int ours = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int err = errno;
	close(pidfd);
	errno = err;
	return ours;
}

int proc_check_ours(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	if (n <= 0) {
		pr_perror("can't read /proc/self (is /proc mounted?)");
		return -1;
	}
	buf[n] = 0;
	if (atoi(buf) != getpid()) {
		pr_err("/proc belongs to another pid namespace than stasis runs in (/proc/self is %s, stasis is "
		       "pid %d here): mount this namespace's own /proc first (unshare --mount-proc, or "
		       "mount -t proc proc /proc in a new mount namespace)", buf, getpid());
		return -1;
	}
	return 0;
}

/* "notify: signal/pid.N": how (none, signal or thread, SIGEV_THREAD
 * being glibc's, which the kernel treats as signal) and to whom (pid: the
 * process, tid: one thread, SIGEV_THREAD_ID). */
static int timer_notify(const char *how, const char *whom)
{
	int n = !strcmp(how, "none") ? SIGEV_NONE : !strcmp(how, "thread") ? SIGEV_THREAD : SIGEV_SIGNAL;
	return strcmp(whom, "tid") ? n : n | SIGEV_THREAD_ID;
}

/* Four lines a timer: "ID: N", "signal: SIG/VALUE", "notify: HOW/WHOM.TID",
 * "ClockID: N" (fs/proc/base.c, show_timer). */
int proc_parse_timers(pid_t pid, struct proc_timer **out, int *nr)
{
	char path[64], line[128], how[8], whom[4], val[24];
	struct proc_timer *t = NULL, cur = { 0 };
	int n = 0, cap = 0, field = 0;

	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		bool ok;
		switch (field) {
		case 0: ok = sscanf(line, "ID: %d", &cur.id) == 1; break;
		case 1: ok = sscanf(line, "signal: %d/%23s", &cur.signo, val) == 2; break;
		case 2: ok = sscanf(line, "notify: %7[a-z]/%3[a-z].%d", how, whom, &cur.tid) == 3; break;
		default: ok = sscanf(line, "ClockID: %d", &cur.clock) == 1; break;
		}
		if (!ok)
			goto bad;
		if (++field < 4)
			continue;
		field = 0;
		cur.notify = timer_notify(how, whom);
		cur.sival = strcmp(val, "(null)") ? strtoull(val, NULL, 16) : 0;
		if (grow_array(t, cap, n + 1, 8) < 0)
			goto fail;
		t[n++] = cur;
	}
	if (field)
		goto bad;
	fclose(f);
	*out = t;
	*nr = n;
	return 0;
bad:
	errno = EINVAL;
fail:
	fclose(f);
	free(t);
	return -1;
}

const char *proc_tree_path(pid_t pid, const char *path, char *buf, size_t len)
{
	if (path[0] != '/' || ns_same(pid, 0, "mnt") != 0)
		snprintf(buf, len, "%s", path);
	else
		snprintf(buf, len, "/proc/%d/root%s", pid, path);
	return buf;
}
