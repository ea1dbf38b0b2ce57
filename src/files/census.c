/* The census of a task's fds: one walk of /proc/PID/fd, before any fd is
 * dumped, that notes its sockets' inodes (files.c and tcp_dump.c then
 * take each socket and ask it, without reading its link again: a dump of
 * a thousand connections read each link four times) and shows every
 * other link to the dump's own scans (shared memory, memory trackers).
 * The tree is stopped: what the census saw stays, but a user checks the
 * socket it takes is the inode noted (files_census_sock). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/kind.h"
#include "util/log.h"
#include "util/grow.h"

struct census_sock {
	int fd;
	uint64_t ino;
};

struct files_census {
	pid_t pid;
	struct census_sock *socks;	/* in the order of the walk: by fd */
	int nr, cap;
};

static struct files_census *census_slot(struct file_table *t, pid_t pid)
{
	for (int i = 0; i < t->nr_census; i++)
		if (t->census[i].pid == pid) {
			t->census[i].nr = 0;	/* taken again */
			return &t->census[i];
		}
	struct files_census *n = realloc(t->census, (t->nr_census + 1) * sizeof(*n));
	if (!n)
		return NULL;
	t->census = n;
	n = &t->census[t->nr_census++];
	*n = (struct files_census){ .pid = pid };
	return n;
}

static int add_sock(struct files_census *c, int fd, uint64_t ino)
{
	if (grow_array(c->socks, c->cap, c->nr + 1, 64) < 0)
		return -1;
	c->socks[c->nr++] = (struct census_sock){ fd, ino };
	return 0;
}

/* A socket's link: "socket:[INODE]"; 0 for any other. */
static uint64_t sock_ino(const char *link)
{
	char *end;
	if (strncmp(link, "socket:[", 8))
		return 0;
	uint64_t ino = strtoull(link + 8, &end, 10);
	return strcmp(end, "]") ? 0 : ino;
}

int files_census(struct file_table *t, pid_t pid, files_link_fn fn, void *arg)
{
	char dir[32], link[PATH_MAX];
	struct files_census *c = census_slot(t, pid);
	int ret = 0;

	if (!c) {
		pr_err("pid %d: out of memory for the census of its fds", pid);
		return -1;
	}
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	if (!d) {
		pr_perror("pid %d: can't list its fds", pid);
		return -1;
	}
	for (struct dirent *de; !ret && (de = readdir(d));) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end)
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;	/* closed since: the dump of its fds says so */
		link[n] = 0;
		uint64_t ino = sock_ino(link);
		if (ino && add_sock(c, fd, ino) < 0) {
			pr_err("pid %d: out of memory for the census of its fds", pid);
			ret = -1;
		} else if (!ino && fn) {
			ret = fn(arg, dirfd(d), de->d_name, fd, link);
		}
	}
	closedir(d);
	return ret;
}

const struct files_census *files_census_of(const struct file_table *t, pid_t pid)
{
	for (int i = 0; i < t->nr_census; i++)
		if (t->census[i].pid == pid)
			return &t->census[i];
	return NULL;
}

int files_census_nr(const struct files_census *c)
{
	return c ? c->nr : 0;
}

int files_census_fd(const struct files_census *c, int i, uint64_t *ino)
{
	*ino = c->socks[i].ino;
	return c->socks[i].fd;
}

uint64_t files_census_sock(const struct files_census *c, int fd, int *from)
{
	if (!c)
		return 0;
	/* both in increasing order (else a socket is missed: its link read) */
	while (*from < c->nr && c->socks[*from].fd < fd)
		(*from)++;
	if (*from < c->nr && c->socks[*from].fd == fd)
		return c->socks[(*from)++].ino;
	return 0;
}

void files_census_free(struct file_table *t)
{
	for (int i = 0; i < t->nr_census; i++)
		free(t->census[i].socks);
	free(t->census);
	t->census = NULL;
	t->nr_census = 0;
}
