/* Regular files, directories and the harmless memory devices (/dev/null,
 * /dev/zero, ...): reopened by path, with flags and position. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files/files.h"
#include "util/log.h"

#define MEM_MAJOR 1	/* /dev/null, /dev/zero, /dev/full, /dev/[u]random */

static bool reg_owns(const struct fd_facts *f)
{
	return S_ISREG(f->st.st_mode) || S_ISDIR(f->st.st_mode) ||
	       (S_ISCHR(f->st.st_mode) && major(f->st.st_rdev) == MEM_MAJOR);
}

static const char deleted_suffix[] = " (deleted)";

static bool path_is_deleted(const char *path)
{
	size_t n = strlen(path), s = sizeof(deleted_suffix) - 1;
	return n > s && !strcmp(path + n - s, deleted_suffix);
}

static RegFileEntry *reg_entry_new(uint32_t id, const char *path, uint32_t flags, uint64_t pos)
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

static int reg_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	if (path_is_deleted(f->path)) {
		pr_err("pid %d: fd %d refers to a deleted file (%s); deleted files are not supported yet",
		       f->pid, f->fd, f->path);
		return -1;
	}
	if (f->path[0] != '/') {
		pr_err("pid %d: fd %d has no reachable path (%s)", f->pid, f->fd, f->path);
		return -1;
	}
	fe->reg = reg_entry_new(fe->id, f->path, f->fi.flags, f->fi.pos);
	if (!fe->reg)
		return -1;
	fe->reg->has_mnt_id = f->fi.mnt_id >= 0;
	fe->reg->mnt_id = f->fi.mnt_id;
	fe->reg->has_size = S_ISREG(f->st.st_mode);
	fe->reg->size = f->st.st_size;
	fe->reg->has_mode = 1;
	fe->reg->mode = f->st.st_mode;
	return 0;
}

int reg_file_add(struct file_table *t, const char *path, uint32_t flags, uint64_t pos, uint32_t *id)
{
	/* The same path opened the same way is one entry (shared libraries
	 * appear in several mappings). */
	for (int i = 0; i < t->nr; i++) {
		RegFileEntry *r = t->e[i]->reg;
		if (r && t->e[i]->type == FD_TYPES__REG && !strcmp(r->name, path) &&
		    r->flags == flags && r->pos == pos) {
			*id = r->id;
			return 0;
		}
	}
	if (path_is_deleted(path)) {
		pr_err("%s is deleted; deleted files are not supported yet", path);
		return -1;
	}
	FileEntry *fe = files_new_entry(t, FD_TYPES__REG);
	if (!fe || !(fe->reg = reg_entry_new(fe->id, path, flags, pos))) {
		pr_err("out of memory");
		return -1;
	}
	*id = fe->id;
	return 0;
}

int reg_file_open(const RegFileEntry *r, uint32_t flags)
{
	flags &= ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY);
	int fd = open(r->name, flags | O_NOCTTY, 0);
	if (fd < 0) {
		pr_perror("can't reopen %s", r->name);
		return -1;
	}
	if (r->pos && lseek(fd, r->pos, SEEK_SET) != (off_t)r->pos) {
		pr_perror("can't seek %s to %lu", r->name, (unsigned long)r->pos);
		close(fd);
		return -1;
	}
	return fd;
}

static int reg_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	if (!fe->reg || !fe->reg->name) {
		pr_err("image files.img: regular file %u has no path", fe->id);
		return -1;
	}
	return reg_file_open(fe->reg, fe->reg->flags);
}

static bool reg_inherit_name(const FileEntry *fe, char *buf, size_t len)
{
	if (!fe->reg || !fe->reg->name)
		return false;
	snprintf(buf, len, "%s", fe->reg->name);
	return true;
}

const struct fd_kind fd_kind_reg = {
	.name = "reg", .type = FD_TYPES__REG,
	.owns = reg_owns, .dump = reg_dump, .open = reg_open,
	.inherit_name = reg_inherit_name,
};
