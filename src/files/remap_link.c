/* Linked remaps (CRIU's, with --link-remap): a regular file deleted at
 * the path the task opened it by but still named elsewhere (another hard
 * link) is the same file on restore, not a copy. Dump gives it a new name
 * next to its old path, "link_remap.ID" (ID: the reg_file_entry of that
 * name), made as the client inside the task's root (/proc/PID/root, its
 * paths resolved there: a container's symlinks can't lead the link out
 * into the host's tree); remap-fpath.img ties the task's file to it
 * (ghost.c writes and reads that image). Restore links it back at the old
 * path, opens it there and unlinks it again, so the task sees the name it
 * had, "(deleted)"; once the restore succeeded the link_remap names go.
 * A failed dump removes them; a failed restore leaves them for the next. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/ghost.h"
#include "proc/ns_ids.h"
#include "files/reg.h"
#include "util/fsop.h"
#include "util/log.h"

extern const struct fd_kind fd_kind_link_remap;

struct made_link { char *dir, *name; int root; };	/* root: of the task that held it */

struct link_dump {
	struct made_link *made;
	int nr;
};

/* Cuts the last component off dir; false at the root. */
static bool up_dir(char *dir)
{
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return false;
	*slash = 0;
	return true;
}

/* The new name of the file at src in dir (or, if dir is gone too, in
 * the nearest directory above, as CRIU), as the client, dir resolved
 * inside root: dir is left naming the directory used. */
static int make_link(int root, const char *src, char *dir, const char *name, const char *what)
{
	for (;;) {
		int dfd = fs_open_dir_in(root, dir);
		if (dfd < 0 && errno == ENOENT && up_dir(dir))
			continue;
		if (dfd < 0) {
			pr_perror("%s: can't open directory %s (in its root) for its link remap", what, dir);
			return -1;
		}
		int ret = fs_link(src, dfd, name);
		int err = errno;
		close(dfd);
		if (ret == 0)
			return 0;
		errno = err;
		pr_perror("%s: can't link it as %s/%s (a linked remap, --link-remap)", what, dir, name);
		return -1;
	}
}

/* Where the paths of pid's files start: ours for a task of our mount
 * namespace (the kernel names its files from our root, a chroot's
 * too); for one of another (a container), that namespace's root, taken
 * to be the task's own (pivot_root; as CRIU, a task chrooted below its
 * namespace's root is not foreseen). */
static int task_root(pid_t pid, const char *what)
{
	char root[32];
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	int fd = open(ns_same(pid, 0, "mnt") == 1 ? "/" : root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("%s: can't open the root of pid %d for its link remap", what, pid);
	return fd;
}

int link_remap_save(struct file_table *t, pid_t pid, const char *src, const RegFileEntry *of,
		    const char *what)
{
	struct link_dump *s = files_dump_state(t, &fd_kind_link_remap);
	char dir[PATH_MAX], name[32], full[PATH_MAX + 32];

	FileEntry *fe = files_new_entry(t, FD_TYPES__REG);
	if (!fe)
		return -1;
	snprintf(dir, sizeof(dir), "%s", of->name);
	if (!up_dir(dir))
		snprintf(dir, sizeof(dir), "/");
	snprintf(name, sizeof(name), "link_remap.%u", fe->id);
	struct made_link *m = realloc(s->made, (s->nr + 1) * sizeof(*m));
	if (!m) {
		pr_err("%s: out of memory making its link remap", what);
		return -1;
	}
	s->made = m;
	int root = task_root(pid, what);
	if (root < 0 || make_link(root, src, dir, name, what) < 0) {
		if (root >= 0)
			close(root);
		return -1;
	}
	/* kept, for the undo of a failed dump */
	s->made[s->nr++] = (struct made_link){ strdup(dir), strdup(name), root };
	snprintf(full, sizeof(full), "%s/%s", strcmp(dir, "/") ? dir : "", name);
	if (!(fe->reg = reg_entry_new(fe->id, full, O_RDONLY, 0))) {
		pr_err("%s: out of memory recording its link remap", what);
		return -1;
	}
	pr_info("%s: deleted, kept by the link %s", what, full);
	return ghost_save_linked(t, of->id, fe->id, what);
}

/* Unlinks dir/name (dir inside root) as the client; quiet if it is
 * gone already. */
static void remove_link(int root, const char *dir, const char *name)
{
	int dfd = fs_open_dir_in(root, dir);
	if (dfd < 0 || (fs_unlink(dfd, name) < 0 && errno != ENOENT))
		pr_warn("can't remove the link remap %s/%s: %m", dir, name);
	if (dfd >= 0)
		close(dfd);
}

static void link_dump_failed(struct file_table *t)
{
	struct link_dump *s = files_dump_state(t, &fd_kind_link_remap);
	for (int i = 0; i < s->nr; i++)
		if (s->made[i].dir && s->made[i].name)
			remove_link(s->made[i].root, s->made[i].dir, s->made[i].name);
}

static void link_free(struct file_table *t)
{
	struct link_dump *s = files_dump_state(t, &fd_kind_link_remap);
	for (int i = 0; i < s->nr; i++) {
		free(s->made[i].dir);
		free(s->made[i].name);
		close(s->made[i].root);
	}
	free(s->made);
}

/* ---- restore ---- */

int link_remap_place(const struct rst_files *rf, const RegFileEntry *r, char *made, size_t len)
{
	const RegFileEntry *l = ghost_link_of(rf, r->id, 0);
	if (!l)
		return -2;
	snprintf(made, len, "%s", r->name);
	if (link(l->name, made) == 0)
		return 0;
	if (errno == EEXIST) {
		/* another file has the name now: a name of our own, as CRIU */
		snprintf(made, len, "%s.cr_link", r->name);
		if (link(l->name, made) == 0)
			return 0;
	}
	if (errno == ENOENT && access(l->name, F_OK) == 0) {
		/* its directory is gone: opened by the link's name */
		pr_info("%s: %s opened as %s (its directory is gone)", rf->who, r->name, l->name);
		snprintf(made, len, "%s", l->name);
		return 1;
	}
	pr_perror("%s: can't link %s back at %s (its link remap)", rf->who, l->name, made);
	return -1;
}

/* The link_remap names go, found inside the restored tree's root (its
 * root task's: a container's tree, not ours). */
static void link_restored(struct rst_files *rf)
{
	const RegFileEntry *l;
	int root = -1;
	for (int i = 0; (l = ghost_link_of(rf, 0, i)); i++) {
		char *dir;
		const char *name;
		if (root < 0 && (root = task_root(rf->real_root_pid, "the restored tree")) < 0)
			return;
		if (fs_split(l->name, &dir, &name) < 0)
			continue;
		remove_link(root, dir, name);
		free(dir);
	}
	if (root >= 0)
		close(root);
}

const struct fd_kind fd_kind_link_remap = {
	.name = "link_remap", .dump_state = sizeof(struct link_dump),
	.free_images = link_free, .dump_failed = link_dump_failed, .restored = link_restored,
};
