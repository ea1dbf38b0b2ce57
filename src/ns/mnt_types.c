/* The file system kinds of a mount namespace by CRIU's numbers, and the
 * external mounts of the options (see mnt.h). */
#include <stdio.h>
#include <string.h>

#include "ns/mnt.h"

/* fresh: mounted anew at restore (a virtual file system whose contents
 * are the kernel's, or a tmpfs whose files are saved); the others come
 * back only as bind mounts (of the root, or external ones). */
static const struct {
	const char *name;
	uint32_t code;
	bool fresh;
} kinds[] = {
	{ "proc", 1, true },	   { "sysfs", 2, true },       { "devtmpfs", 3, false }, { "binfmt_misc", 4, false },
	{ "tmpfs", 5, true },	   { "devpts", 6, true },      { "simfs", 7, false },	 { "pstore", 8, false },
	{ "securityfs", 9, true }, { "fusectl", 10, false },   { "debugfs", 11, true },	 { "cgroup", 12, true },
	{ "aufs", 13, false },	   { "mqueue", 14, true },     { "fuse", 15, false },	 { "overlay", 17, false },
	{ "autofs", 18, false },   { "tracefs", 19, true },    { "cgroup2", 23, true },
};
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *mnt_fs_name(uint32_t code)
{
	for (size_t i = 0; i < NR_KINDS; i++)
		if (kinds[i].code == code)
			return kinds[i].fresh ? kinds[i].name : NULL;
	return NULL;
}

uint32_t mnt_fs_code(const char *name, bool *fresh)
{
	*fresh = false;
	for (size_t i = 0; i < NR_KINDS; i++)
		if (!strcmp(kinds[i].name, name)) {
			*fresh = kinds[i].fresh;
			return kinds[i].code;
		}
	return MNT_FS_UNSUPPORTED;
}

const char *mnt_ext_lookup(const struct opts *o, const char *key)
{
	size_t k = strlen(key);
	for (int i = 0; i < o->nr_external; i++) {
		const char *x = o->external[i];
		if (!strncmp(x, "mnt[", 4) && !strncmp(x + 4, key, k) && !strncmp(x + 4 + k, "]:", 2))
			return x + 4 + k + 2;
	}
	return NULL;
}
