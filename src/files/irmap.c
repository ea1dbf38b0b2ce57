/* irmap: an inode back to a path, by scanning directories (CRIU's name,
 * "inode reverse map"), for the watches of inotify and fanotify whose
 * handle gives no path (--force-irmap). The directories the user names
 * (--irmap-scan-path) come first, then CRIU's list of where watches are
 * usually put. Symlinks are not followed, so a scan ends. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/irmap.h"
#include "util/log.h"

#define KDEV(d) ((major(d) << 20) | minor(d))
#define MAX_DEPTH 64

/* CRIU's hints: each scanned whole, but "/" itself only. */
static const struct {
	const char *path;
	bool whole;
} hints[] = {
	{ "/etc", true }, { "/var/spool", true }, { "/var/log", true },
	{ "/usr/share/dbus-1/services", true }, { "/usr/share/dbus-1/system-services", true },
	{ "/var/lib/polkit-1/localauthority", true }, { "/usr/share/polkit-1/actions", true },
	{ "/lib/udev", true }, { "/", false },
};

static bool is(const struct stat *st, uint32_t kdev, uint64_t ino)
{
	return st->st_ino == ino && KDEV(st->st_dev) == kdev;
}

/* Depth first under path (len bytes of room), which is not the inode. */
static bool scan_dir(char *path, size_t len, uint32_t kdev, uint64_t ino, int depth)
{
	DIR *d;
	struct dirent *de;
	size_t at = strlen(path);
	bool found = false;

	if (depth > MAX_DEPTH || !(d = opendir(path)))
		return false;
	while (!found && (de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(path + at, len - at, "%s%s", at > 1 ? "/" : "", de->d_name) >= len - at)
			continue;
		if (lstat(path, &st) < 0)
			continue;
		if (is(&st, kdev, ino))
			found = true;
		else if (S_ISDIR(st.st_mode))
			found = scan_dir(path, len, kdev, ino, depth + 1);
	}
	closedir(d);
	if (!found)
		path[at] = 0;
	return found;
}

static bool scan(const char *top, bool whole, uint32_t kdev, uint64_t ino, char *path, size_t len)
{
	struct stat st;

	if ((size_t)snprintf(path, len, "%s", top) >= len || lstat(path, &st) < 0)
		return false;
	if (is(&st, kdev, ino))
		return true;
	return whole && S_ISDIR(st.st_mode) && scan_dir(path, len, kdev, ino, 0);
}

int irmap_lookup(const struct opts *o, uint32_t kdev, uint64_t ino, char *path, size_t len)
{
	for (int i = 0; i < o->nr_irmap_scan_paths; i++)
		if (scan(o->irmap_scan_paths[i], true, kdev, ino, path, len))
			goto found;
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (scan(hints[i].path, hints[i].whole, kdev, ino, path, len))
			goto found;
	return -1;
found:
	pr_debug("irmap: inode %llu on device %u:%u is %s", (unsigned long long)ino, kdev >> 20,
		 kdev & 0xfffff, path);
	return 0;
}
