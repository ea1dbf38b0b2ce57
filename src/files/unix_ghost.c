/* Unix sockets, restore: a socket whose file was deleted (or replaced:
 * its path now names another file, or its directory is gone). It is
 * bound at its path for a moment, with the directories that are missing
 * made and whatever is at the path moved aside, so that it gets back its
 * name; then its file goes again and everything is put back as it was.
 * An O_PATH fd on its file is kept: the sockets connected to it by name
 * connect through /proc/self/fd/N, which still reaches it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/unix.h"
#include "util/log.h"

#define PARKED "%s.stasis-sk-ghost"

/* Makes the missing directories of path dir (each component in turn);
 * *made: the length of the first one made (a prefix of dir), or -1. */
static int make_dirs(char *dir, int *made)
{
	*made = -1;
	for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
		if (p)
			*p = 0;
		int r = mkdir(dir, 0755);
		if (r == 0 && *made < 0)
			*made = strlen(dir);
		int err = errno;
		if (p)
			*p = '/';
		if (r < 0 && err != EEXIST) {
			errno = err;
			pr_perror("can't make directory %s for a deleted unix socket", dir);
			return -1;
		}
		if (!p)
			return 0;
	}
}

/* Removes the directories make_dirs made, the deepest first. */
static void remove_dirs(char *dir, int made)
{
	while (made >= 0 && strlen(dir) >= (size_t)made) {
		if (rmdir(dir) < 0)
			pr_warn("can't remove directory %s, made for a deleted unix socket: %m", dir);
		char *p = strrchr(dir, '/');
		if (!p || p == dir)
			return;
		*p = 0;
	}
}

/* The directory of ue's file, whole (name_dir joined to a relative
 * name); "" if it is the restore's own. */
static void file_dir(const UnixSkEntry *ue, char *buf, size_t size)
{
	int n = (int)ue->name.len;
	while (n && !ue->name.data[n - 1])
		n--;
	if (ue->name.data[0] != '/' && ue->name_dir)
		snprintf(buf, size, "%s/%.*s", ue->name_dir, n, (const char *)ue->name.data);
	else
		snprintf(buf, size, "%.*s", n, (const char *)ue->name.data);
	char *slash = strrchr(buf, '/');
	if (slash)
		*(slash == buf ? slash + 1 : slash) = 0;
	else
		buf[0] = 0;
}

/* In the socket's directory: binds fd at path (moving aside what is
 * there), keeps an O_PATH fd on its file, removes it, puts back what was
 * there. The O_PATH fd or -1 (reported). */
static int bind_here(int fd, const UnixSkEntry *ue, const struct sockaddr_un *a, socklen_t len,
		     const char *path)
{
	char parked[PATH_MAX];
	struct stat st;
	bool moved = false;
	int ghost = -1;

	snprintf(parked, sizeof(parked), PARKED, path);
	if (lstat(path, &st) == 0) {
		unlink(parked);	/* a leftover of ours */
		if (rename(path, parked) < 0) {
			pr_perror("can't move %s aside to bind deleted unix socket %u there", path, ue->ino);
			return -1;
		}
		moved = true;
	}
	if (bind(fd, (const struct sockaddr *)a, len) < 0) {
		pr_perror("can't bind deleted unix socket %u to %s for a moment", ue->ino, path);
	} else {
		restore_perms(ue, path);
		ghost = open(path, O_PATH | O_CLOEXEC);
		if (ghost < 0)
			pr_perror("can't open the file of deleted unix socket %u (%s)", ue->ino, path);
		if (unlink(path) < 0) {
			pr_perror("can't remove %s again (unix socket %u was deleted)", path, ue->ino);
			if (ghost >= 0)
				close(ghost);
			ghost = -1;
		}
	}
	if (moved && rename(parked, path) < 0) {
		pr_perror("can't put %s back in its place (moved aside to %s)", path, parked);
		if (ghost >= 0)
			close(ghost);
		ghost = -1;
	}
	return ghost;
}

int bind_deleted(int fd, const UnixSkEntry *ue, const struct sockaddr_un *a, socklen_t len)
{
	char dir[PATH_MAX], path[sizeof(a->sun_path) + 1];
	int made = -1, ghost = -1;

	memcpy(path, a->sun_path, sizeof(a->sun_path));
	path[sizeof(a->sun_path)] = 0;
	file_dir(ue, dir, sizeof(dir));
	if (dir[0] && make_dirs(dir, &made) < 0)
		return -1;
	int back = enter_name_dir(ue);
	if (back != -1) {
		ghost = bind_here(fd, ue, a, len, path);
		leave_name_dir(back);
	}
	if (dir[0])
		remove_dirs(dir, made);
	if (ghost >= 0)
		pr_info("unix socket %u bound to %s, deleted again", ue->ino, NAME(ue));
	return ghost;
}
