#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc/ns_ids.h"
#include "util/grow.h"
#include "util/idmap.h"

static const char *const kinds[] = { "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
				     "time", "time_for_children", "user", "uts" };
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* What one process's kinds gave: err 0 and id, or the errno. */
struct proc_ns {
	pid_t pid;
	unsigned read;		/* a bit per kind */
	int err[NR_KINDS];
	struct ns_ident id[NR_KINDS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool keeping;
static pid_t self;		/* getpid() at ns_ids_keep: kept as pid 0 */
static struct proc_ns *procs;
static int nr_procs, cap_procs;
static struct idmap by_pid;

void ns_ids_keep(void)
{
	pthread_mutex_lock(&lock);
	keeping = true;
	self = getpid();
	pthread_mutex_unlock(&lock);
}

void ns_ids_drop(void)
{
	pthread_mutex_lock(&lock);
	keeping = false;
	free(procs);
	procs = NULL;
	nr_procs = cap_procs = 0;
	idmap_free(&by_pid);
	pthread_mutex_unlock(&lock);
}

static int read_ident(pid_t pid, const char *kind, struct ns_ident *id)
{
	char path[64];
	struct stat st;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	if (stat(path, &st) < 0)
		return -1;
	*id = (struct ns_ident){ st.st_dev, st.st_ino };
	return 0;
}

/* pid's record, made if new; NULL out of memory (then nothing is kept). */
static struct proc_ns *proc_of(pid_t pid)
{
	unsigned pos = 0;
	for (int i; (i = idmap_next(&by_pid, (uint64_t)pid, &pos)) >= 0;)
		if (procs[i].pid == pid)
			return &procs[i];
	if (grow_array(procs, cap_procs, nr_procs + 1, 16) < 0 || idmap_add(&by_pid, (uint64_t)pid, nr_procs) < 0)
		return NULL;
	procs[nr_procs] = (struct proc_ns){ .pid = pid };
	return &procs[nr_procs++];
}

static int kind_index(const char *kind)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (!strcmp(kinds[k], kind))
			return k;
	return -1;
}

int ns_ident(pid_t pid, const char *kind, struct ns_ident *id)
{
	int k = kind_index(kind);
	pthread_mutex_lock(&lock);
	if (keeping && pid == self)
		pid = 0;
	struct proc_ns *p = keeping && k >= 0 ? proc_of(pid) : NULL;
	if (!p) {
		pthread_mutex_unlock(&lock);
		return read_ident(pid, kind, id);
	}
	if (!(p->read & (1u << k))) {
		p->err[k] = read_ident(pid, kind, &p->id[k]) < 0 ? errno : 0;
		p->read |= 1u << k;
	}
	int err = p->err[k];
	*id = p->id[k];
	pthread_mutex_unlock(&lock);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

int ns_same(pid_t a, pid_t b, const char *kind)
{
	struct ns_ident ia, ib;
	if (ns_ident(a, kind, &ia) < 0 || ns_ident(b, kind, &ib) < 0)
		return -1;
	return ia.dev == ib.dev && ia.ino == ib.ino;
}
