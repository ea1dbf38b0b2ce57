/* Helpers shared by the anonymous-inode fd kinds. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files/anonfd.h"
#include "proc/proc.h"
#include "util/log.h"

bool anon_link_is(const struct fd_facts *f, const char *name)
{
	return !strncmp(f->path, "anon_inode:", 11) && !strcmp(f->path + 11, name);
}

FownEntry *anon_fown_new(void)
{
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (fown)
		fown_entry__init(fown);
	return fown;
}

int anon_fdinfo_read(pid_t pid, int fd, char *buf, size_t size)
{
	char name[64];
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	ssize_t n = proc_read_file(pid, name, buf, size);
	if (n <= 0) {
		pr_perror("pid %d: can't read /proc/%d/fdinfo/%d", pid, pid, fd);
		return -1;
	}
	if ((size_t)n == size - 1) {
		pr_err("pid %d: /proc/%d/fdinfo/%d is larger than the %zu bytes stasis reads",
		       pid, pid, fd, size);
		return -1;
	}
	return 0;
}

#define FDINFO_LIST_MAX (1 << 20)

char *anon_fdinfo_load(const struct fd_facts *f)
{
	char *buf = malloc(FDINFO_LIST_MAX);
	if (!buf) {
		files_oom(f);
		return NULL;
	}
	if (anon_fdinfo_read(f->pid, f->fd, buf, FDINFO_LIST_MAX) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

const char *anon_fdinfo_value(const char *text, const char *key)
{
	size_t len = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, key, len) || l[len] != ':')
			continue;
		l += len + 1;
		while (*l == ' ' || *l == '\t')
			l++;
		return l;
	}
	return NULL;
}

int anon_set_status_flags(int fd, uint32_t flags)
{
	return fcntl(fd, F_SETFL, flags & O_NONBLOCK);
}
