/* Regular files, directories, the harmless memory devices (/dev/null,
 * /dev/zero, ...) and symlinks (an O_PATH | O_NOFOLLOW fd is the only
 * kind an fd on a symlink can be): reopened by path, with flags and
 * position. Also every
 * file used by path (mapped, executed, cwd and root) that no kind before
 * it in the table claims. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/buildid.h"
#include "files/ghost.h"
#include "files/reg.h"
#include "proc/proc.h"
#include "util/log.h"

/* The bit of O_TMPFILE that is not O_DIRECTORY (glibc's __O_TMPFILE
 * holds both) */
#define O_TMPFILE_ONLY 020000000
#define MEM_MAJOR 1	/* /dev/null, /dev/zero, /dev/full, /dev/[u]random */

/* (memfds, regular files too, are claimed first: memfd.c) */
static bool reg_owns(const struct fd_facts *f)
{
	return S_ISREG(f->st.st_mode) || S_ISDIR(f->st.st_mode) || S_ISLNK(f->st.st_mode) ||
	       (S_ISCHR(f->st.st_mode) && major(f->st.st_rdev) == MEM_MAJOR);
}

static const char deleted_suffix[] = " (deleted)";

static bool path_is_deleted(const char *path)
{
	size_t n = strlen(path), s = sizeof(deleted_suffix) - 1;
	return n > s && !strcmp(path + n - s, deleted_suffix);
}

RegFileEntry *reg_entry_new(uint32_t id, const char *path, uint32_t flags, uint64_t pos)
{
	RegFileEntry *r = calloc(1, sizeof(*r));
	FownEntry *fown = calloc(1, sizeof(*fown));
	char *name = strdup(path);
	if (!r || !fown || !name) {
		free(r); free(fown); free(name);
		return NULL;
	}
	reg_file_entry__init(r);
	fown_entry__init(fown);
	r->id = id;
	r->flags = flags & ~O_CLOEXEC;	/* close-on-exec is the fd's, in fdinfo */
	r->pos = pos;
	r->fown = fown;
	r->name = name;
	return r;
}

/* CRIU's name of a file for --external and --inherit-fd. */
static void external_name(const struct fd_facts *f, char *buf, size_t len)
{
	snprintf(buf, len, "file[%x:%llx]", f->fi.mnt_id, (unsigned long long)f->st.st_ino);
}

static bool is_external(const struct opts *o, const char *name)
{
	for (int i = 0; i < o->nr_external; i++)
		if (!strcmp(o->external[i], name))
			return true;
	return false;
}

/* A deleted path under /proc: an entry of a process that is gone. */
static bool on_procfs(const char *path)
{
	return !strncmp(path, "/proc/", 6);
}

/* The pid of a /proc/PID[/...] path (on procfs, as src, a /proc link to
 * the file, shows); 0 if it is no process's entry. */
static pid_t proc_entry_pid(const char *path, const char *src)
{
	struct statfs sf;
	char *end;

	if (!on_procfs(path) || statfs(src, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
		return 0;
	long pid = strtol(path + 6, &end, 10);
	if (end == path + 6 || (*end && *end != '/' && *end != ' ') || pid <= 0 || pid > INT32_MAX)
		return 0;
	return pid;
}

/* The entry of a dead process's /proc entry (path without " (deleted)"):
 * opened again on restore while a helper holds its pid (as CRIU). */
static int dead_proc_add(struct file_table *t, const char *path, pid_t pid, uint32_t flags, uint64_t pos,
			 const char *what, FileEntry **out)
{
	FileEntry *fe = files_new_entry(t, FD_TYPES__REG);
	if (!fe)
		return -1;
	if (!(fe->reg = reg_entry_new(fe->id, path, flags, pos))) {
		pr_err("%s: out of memory recording it", what);
		return -1;
	}
	*out = fe;
	return ghost_save_dead_pid(t, fe->id, pid, what);
}

/* 1: mount id is one of pid's mount namespace. */
static bool mount_of_ns(pid_t pid, int id)
{
	char p[64], *l = NULL;
	size_t cap = 0;
	bool found = false;
	snprintf(p, sizeof(p), "/proc/%d/mountinfo", pid);
	FILE *mi = fopen(p, "re");
	if (!mi)
		return true;	/* unknown: as if it were */
	while (!found && getline(&l, &cap, mi) > 0)
		found = atoi(l) == id;
	free(l);
	fclose(mi);
	return found;
}

/* The path must also lead to the fd's mount: one hidden by another mount
 * of the same file system would be reopened on that one (refused, as
 * CRIU refuses a file on an overmounted mount). A file of a mount of
 * another namespace (opened before the process's unshare -m) is reopened
 * by its path in the process's own, where check_path_names_fd finds it
 * the same file. */
static int check_mount_of_fd(const struct fd_facts *f, const char *path)
{
	struct statx sx;
	if (f->fi.mnt_id < 0 || statx(AT_FDCWD, path, S_ISLNK(f->st.st_mode) ? AT_SYMLINK_NOFOLLOW : 0,
				      STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID) ||
	    sx.stx_mnt_id == (uint64_t)f->fi.mnt_id || !mount_of_ns(f->pid, f->fi.mnt_id))
		return 0;
	pr_err("pid %d: fd %d: %s is a file of mount %d, which another mount at its path hides; stasis, as "
	       "CRIU, can't reopen a file of an overmounted mount", f->pid, f->fd, f->path, f->fi.mnt_id);
	return -1;
}

/* The path must still name the open file, or restore would open another
 * one (the file was moved and something else put at its path, or a mount
 * now hides it). */
static int check_path_names_fd(const struct fd_facts *f)
{
	struct stat st;
	char at[PATH_MAX + 32];
	const char *path = proc_tree_path(f->pid, f->path, at, sizeof(at));
	int ret = S_ISLNK(f->st.st_mode) ? lstat(path, &st) : stat(path, &st);
	if (ret == 0 && st.st_dev == f->st.st_dev && st.st_ino == f->st.st_ino)
		return check_mount_of_fd(f, path);
	pr_err("pid %d: fd %d: path %s no longer names the open file (it was moved or replaced, "
	       "or is hidden by a mount); give it with --external file[%x:%llx] and restore with --inherit-fd",
	       f->pid, f->fd, f->path, f->fi.mnt_id, (unsigned long long)f->st.st_ino);
	return -1;
}

static void set_mnt_id(const struct file_table *t, RegFileEntry *r, int mnt_id)
{
	if (!t->mnt_ids || mnt_id < 0)
		return;
	r->has_mnt_id = true;
	r->mnt_id = mnt_id;
}

/* The mount of the file a /proc link (map_files, exe, cwd) opens. */
static int link_mnt_id(const char *link)
{
	struct statx sx;
	if (!link || statx(AT_FDCWD, link, 0, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
		return -1;
	return (int)sx.stx_mnt_id;
}

/* Restore refuses a file whose size changed since the dump (it is not
 * the file the task had), but for one only appended to (a log: as
 * CRIU, its size is not saved). */
static bool size_matters(uint32_t flags)
{
	return !((flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND));
}

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* The build-id of a regular file whose size a restore checks (files/
 * buildid.h), read through fd: not on FUSE, whose server may be a
 * frozen process of the tree (the read would never return). */
static int save_build_id(const struct opts *o, RegFileEntry *r, int fd)
{
	struct statfs sf;
	if (o->validate_size_only || !r->has_size || r->size < sizeof(Elf64_Ehdr) || fstatfs(fd, &sf) < 0 ||
	    sf.f_type == FUSE_SUPER_MAGIC)
		return 0;
	return buildid_save(r, fd);
}

/* A mapped file's entry gets its size and build-id: restore refuses one
 * that changed since (as CRIU). */
static int save_mapped_facts(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t id)
{
	struct stat st;
	RegFileEntry *r = NULL;
	for (int i = t->nr - 1; i >= 0 && !r; i--)
		if (t->e[i]->id == id)
			r = t->e[i]->reg;
	if (!r || r->has_size || !p->mapped || stat(p->link, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	r->has_size = 1;
	r->size = st.st_size;
	int fd = open(p->link, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;	/* sizes only */
	int ret = save_build_id(o, r, fd);
	close(fd);
	return ret;
}

static int reg_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	char path[PATH_MAX], ext[64], src[64], what[PATH_MAX + 64];
	bool deleted = path_is_deleted(f->path);

	snprintf(path, sizeof(path), "%s", f->path);
	if (deleted)
		path[strlen(path) - (sizeof(deleted_suffix) - 1)] = 0;
	external_name(f, ext, sizeof(ext));
	bool external = is_external(o, ext);
	snprintf(what, sizeof(what), "pid %d: fd %d (%s)", f->pid, f->fd, f->path);

	if (!external && f->path[0] != '/') {
		pr_err("%s has no reachable path", what);
		return -1;
	}
	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	pid_t dead = !external && deleted ? proc_entry_pid(path, src) : 0;
	if (!external && deleted && on_procfs(path) && !dead) {
		pr_err("%s is a deleted entry of /proc: stasis can't restore it "
		       "(or give it with --external %s)", what, ext);
		return -1;
	}
	if (!external && !deleted && check_path_names_fd(f) < 0)
		return -1;
	/* An external file is found by its file[...] name on restore (its
	 * path may be gone), as CRIU records it. */
	fe->reg = reg_entry_new(fe->id, external ? ext : path, f->fi.flags, f->fi.pos);
	if (!fe->reg)
		return files_oom(f);
	/* mnt_id as CRIU: only when it dumps mount namespaces (otherwise its
	 * restore looks the mount up and fails, ghosts) */
	set_mnt_id(t, fe->reg, f->fi.mnt_id);
	fe->reg->has_size = S_ISREG(f->st.st_mode) && size_matters(f->fi.flags);
	fe->reg->size = f->st.st_size;
	fe->reg->has_mode = 1;
	fe->reg->mode = f->st.st_mode;
	if (external) {
		fe->reg->has_ext = 1;
		fe->reg->ext = 1;
		return 0;
	}
	if (!deleted && fe->reg->has_size && fd_reads(f->fi.flags)) {
		int fd = files_take(f);
		int ret = fd < 0 ? -1 : save_build_id(o, fe->reg, fd);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!deleted)
		return 0;
	if (dead)
		return ghost_save_dead_pid(t, fe->id, dead, what);
	/* still named elsewhere: the same file on restore, if asked (as
	 * CRIU; without --link-remap CRIU refuses it, stasis saves a copy) */
	if (o->link_remap && S_ISREG(f->st.st_mode) && f->st.st_nlink > 0)
		return link_remap_save(t, f->pid, src, fe->reg, what);
	return ghost_save(t, o, src, fd_reads(f->fi.flags), &f->st, fe->id, what);
}

int reg_file_add_at(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, mode_t mode,
			   int mnt_id, uint32_t *id)
{
	int want = t->mnt_ids && mnt_id >= 0 ? mnt_id : -1;
	/* The same path opened the same way is one entry (shared libraries
	 * appear in several mappings); of the same mount, in a tree of
	 * several mount namespaces. */
	for (int i = 0; i < t->nr; i++) {
		RegFileEntry *r = t->e[i]->reg;
		if (r && t->e[i]->type == FD_TYPES__REG && !strcmp(r->name, path) &&
		    (r->has_mnt_id ? r->mnt_id : -1) == want &&
		    r->flags == flags && r->pos == pos && (!mode || r->mode == mode) && !ghost_is_remapped(t, r->id)) {
			*id = r->id;
			return 0;
		}
	}
	if (path_is_deleted(path)) {
		pr_err("%s is deleted: it needs its bytes saved (stasis bug: reg_ghost_add is the way)", path);
		return -1;
	}
	FileEntry *fe = files_new_entry(t, FD_TYPES__REG);
	if (!fe)
		return -1;
	if (!(fe->reg = reg_entry_new(fe->id, path, flags, pos))) {
		pr_err("out of memory recording %s", path);
		return -1;
	}
	fe->reg->has_mode = mode != 0;
	fe->reg->mode = mode;
	set_mnt_id(t, fe->reg, mnt_id);
	*id = fe->id;
	return 0;
}

int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, mode_t mode,
		 uint32_t *id)
{
	return reg_file_add_at(t, path, flags, pos, mode, -1, id);
}

int reg_ghost_add(struct file_table *t, const struct opts *o, const char *path, const char *src,
		  uint32_t flags, const char *use, uint32_t *id)
{
	char name[PATH_MAX], what[PATH_MAX + 128];
	struct stat st;

	snprintf(what, sizeof(what), "%s (%s: %s)", path, use, src);
	if (stat(src, &st) < 0) {
		pr_perror("can't inspect deleted file %s (through %s)", path, src);
		return -1;
	}
	snprintf(name, sizeof(name), "%s", path);
	if (path_is_deleted(name))
		name[strlen(name) - (sizeof(deleted_suffix) - 1)] = 0;
	pid_t dead = proc_entry_pid(name, src);
	if (dead) {
		FileEntry *fe;
		if (dead_proc_add(t, name, dead, flags, 0, what, &fe) < 0)
			return -1;
		*id = fe->id;
		return 0;
	}
	if (on_procfs(name)) {
		pr_err("%s is a deleted entry of /proc: stasis can't restore it", what);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		pr_err("%s is a deleted %s; stasis can't save it", what, files_mode_name(st.st_mode));
		return -1;
	}
	FileEntry *fe = files_new_entry(t, FD_TYPES__REG);
	if (!fe)
		return -1;
	if (!(fe->reg = reg_entry_new(fe->id, name, flags, 0))) {
		pr_err("out of memory recording %s", what);
		return -1;
	}
	fe->reg->has_size = S_ISREG(st.st_mode);
	fe->reg->size = st.st_size;
	fe->reg->has_mode = 1;
	fe->reg->mode = st.st_mode;
	*id = fe->id;
	/* a mapping: mmap needs a file opened for reading */
	return ghost_save(t, o, src, true, &st, fe->id, what);
}

static bool reg_owns_path(const struct path_facts *p)
{
	return true;	/* the last resort */
}

static int reg_dump_path(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id)
{
	if (path_is_deleted(p->path))
		return reg_ghost_add(t, o, p->path, p->link, p->flags,
				     p->flags & O_DIRECTORY ? "working or root directory" : "mapped or executed", id);
	if (reg_file_add_at(t, p->path, p->flags, 0, 0, t->mnt_ids ? link_mnt_id(p->link) : -1, id) < 0)
		return -1;
	return save_mapped_facts(t, o, p, *id);
}

/* The file at the path must still be the kind of file that was open, and
 * of the same size if it was saved (as CRIU: files on /proc and /sys
 * are 0 bytes both times, whatever they read). */
static int check_reopened(int fd, const RegFileEntry *r, bool build_id, const char *who)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		pr_perror("%s: can't stat reopened %s", who, r->name);
		return -1;
	}
	if (r->has_mode && (st.st_mode & S_IFMT) != (r->mode & S_IFMT)) {
		pr_err("%s: %s was a %s at dump and is now a %s", who, r->name, files_mode_name(r->mode),
		       files_mode_name(st.st_mode));
		return -1;
	}
	if (S_ISREG(st.st_mode) && r->has_size && r->size != (uint64_t)st.st_size) {
		pr_err("%s: %s is now %lld bytes, it was %llu at dump: not the file the task had "
		       "(it changed since the dump)", who, r->name, (long long)st.st_size,
		       (unsigned long long)r->size);
		return -1;
	}
	return build_id && S_ISREG(st.st_mode) && r->has_size ? buildid_check(r, fd, who) : 0;
}

/* r opened by name (r's own, or where it was put back), an absolute path
 * from dir (AT_FDCWD: our root); who names the user of the file in
 * messages. */
static int reopen_at(const struct rst_files *rf, const RegFileEntry *r, int dir, const char *name, uint32_t flags)
{
	const char *who = rf->who;
	flags &= ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY);
	const char *rel = name + (dir == AT_FDCWD ? 0 : strspn(name, "/"));
	int fd = openat(dir, *rel ? rel : ".", flags | O_NOCTTY, 0);
	if (fd < 0) {
		pr_perror("%s: can't reopen %s", who, name);
		return -1;
	}
	bool build_id = rf->o && !rf->o->validate_size_only && fd_reads(flags);
	if (check_reopened(fd, r, build_id, who) < 0) {
		close(fd);
		return -1;
	}
	if (r->pos && lseek(fd, r->pos, SEEK_SET) != (off_t)r->pos) {
		pr_perror("%s: can't seek %s to %lu", who, r->name, (unsigned long)r->pos);
		close(fd);
		return -1;
	}
	return fd;
}

static int mnt_dir(const struct rst_files *rf, const RegFileEntry *r)
{
	int dir = rf->mnt_root && r->has_mnt_id ? rf->mnt_root(rf->mnt_ctx, r->mnt_id) : -1;
	return dir >= 0 ? dir : AT_FDCWD;
}

int reg_open_name(const struct rst_files *rf, const RegFileEntry *r, int flags)
{
	int dir = mnt_dir(rf, r);
	const char *rel = r->name + (dir == AT_FDCWD ? 0 : strspn(r->name, "/"));
	return openat(dir, *rel ? rel : ".", flags);
}

const char *reg_ns_path(const struct rst_files *rf, const RegFileEntry *r, char *buf, size_t len)
{
	int dir = mnt_dir(rf, r);
	if (dir == AT_FDCWD || access("/proc/self/fd", F_OK) < 0)
		return r->name;
	snprintf(buf, len, "/proc/self/fd/%d%s", dir, r->name);
	return buf;
}

/* In its mount's namespace (files.h, mnt_root). */
static int reopen(const struct rst_files *rf, const RegFileEntry *r, uint32_t flags)
{
	return reopen_at(rf, r, mnt_dir(rf, r), r->name, flags);
}

/* A file kept by a link remap: put back at its path, opened there, and
 * unlinked again (deleted, as the task had it). -2 if r is not one. */
static int reopen_linked(const struct rst_files *rf, const RegFileEntry *r, uint32_t flags)
{
	char made[PATH_MAX + 16];
	int placed = link_remap_place(rf, r, made, sizeof(made));
	if (placed < 0)
		return placed;
	int fd = reopen_at(rf, r, AT_FDCWD, made, flags);
	if (placed == 0 && unlink(made) < 0 && fd >= 0) {
		pr_perror("%s: can't unlink %s again", rf->who, made);
		close(fd);
		return -1;
	}
	return fd;
}

/* The file, recreated first if it was saved deleted, opened anew. */
static int reg_open_path(struct rst_files *rf, const FileEntry *fe, uint32_t flags)
{
	if (!fe->reg || !fe->reg->name) {
		pr_err("image files.img: regular file %u has no path", fe->id);
		return -1;
	}
	int fd = ghost_open(rf, fe->reg, flags);
	return fd != -2 ? fd : reopen(rf, fe->reg, flags);
}

/* Only a ghost is made (recreated) rather than reopened. */
static int reg_make_path(struct rst_files *rf, const FileEntry *fe)
{
	int fd = fe->reg ? ghost_open(rf, fe->reg, O_RDONLY) : -2;
	if (fd == -1)
		return -1;
	if (fd >= 0)
		close(fd);
	return 0;
}

static int reg_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	if (!fe->reg || !fe->reg->name) {
		pr_err("image files.img: regular file %u has no path", fe->id);
		return -1;
	}
	if (fe->reg->ext) {
		pr_err("%s: file %s was external at dump: give it with --inherit-fd fd[N]:%s",
		       rf->who, fe->reg->name, fe->reg->name);
		return -1;
	}
	uint32_t flags = fe->reg->flags;
	/* An unnamed temporary file comes back as a ghost: opened, not made
	 * anew (O_TMPFILE holds O_DIRECTORY) */
	if (flags & O_TMPFILE_ONLY)
		flags &= ~O_TMPFILE;
	int fd = ghost_open(rf, fe->reg, flags);
	if (fd == -2)
		fd = reopen_linked(rf, fe->reg, flags);
	if (fd != -2)
		return fd;
	return reopen(rf, fe->reg, flags);
}

static bool reg_inherit_name(const struct rst_files *rf, const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->reg || !fe->reg->name)
		return false;
	snprintf(buf, len, "%s", fe->reg->name);
	return true;
}

/* A file of /proc may name a process of the tree (opened once it is
 * there: restore/tree.c), or the opener (self): those stay in the pool,
 * opened as before. A deleted file's ghost is made in the root first
 * (files_make_path), so all its files share it. */
static bool reg_own_open(const struct rst_files *rf, const FileEntry *fe)
{
	(void)rf;
	return fe->reg && fe->reg->name && !fe->reg->ext && strncmp(fe->reg->name, "/proc/", 6) != 0;
}

const struct fd_kind fd_kind_reg = {
	.name = "reg", .type = FD_TYPES__REG,
	.owns = reg_owns, .dump = reg_dump, .open = reg_open,
	.inherit_name = reg_inherit_name, .own_open = reg_own_open,
	.owns_path = reg_owns_path, .dump_path = reg_dump_path, .open_path = reg_open_path,
	.make_path = reg_make_path,
};
