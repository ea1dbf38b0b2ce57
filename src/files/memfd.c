/* memfds (memfd_create): a memfd_file_entry per open file description
 * (flags, position) pointing to a memfd_inode_entry (memfd.img: name, size,
 * mode, seals), once per inode. As CRIU does, the bytes are stored like
 * shared memory: pagemap-shmem-SHMID.img (offsets in the file as vaddr,
 * all-zero pages left out) and its pages-N.img. On restore the first to
 * open an inode (the root, filling the pool) makes the memfd (bytes, then
 * seals); every open, that one too, reopens it through /proc, so it stays
 * one file shared by all. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "files/kind.h"
#include "util/io.h"
#include "image/img.h"
#include "image/pagemap.h"
#include "image/vma.h"
#include "memfd.pb-c.h"
#include "pagemap.pb-c.h"
#include "util/fsop.h"
#include "ns/user.h"
#include "util/log.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define MEMFD_PREFIX "/memfd:"
#define MEMFD_PAGE 4096u
/* pages-N.img ids of memfd contents, clear of the tasks' ids (1, 2, ...) */
#define MEMFD_PAGES_ID_BASE 0x40000000u

struct dump_inode {
	ino_t ino;
	uint32_t id;
	int fd;			/* ours, open on the memfd until the images are written */
	char *name;
	struct stat st;
	unsigned seals;
	unsigned huge_flag;	/* MFD_HUGETLB and its page size, or 0 */
};

struct memfd_dump_state {
	struct dump_inode *in;
	int nr;
};

/* The images of one memfd's contents, opened by stasis at load: the
 * process that makes the memfd (the root of the tree, before it forks;
 * maybe a non-root client's, which can't open stasis's images, see
 * restore/unpriv.c) reads them once from here. */
struct memfd_content {
	struct img pm;		/* pagemap-shmem-SHMID.img, past its head; fd -1: no image */
	struct img pg;		/* its pages-N.img */
	bool used;
};

struct memfd_rst_state {
	MemfdInodeEntry **in;
	int nr;
	int *made;		/* per inode: the memfd made (here or by an ancestor), or -1 */
	bool *rw_given;		/* per inode: its original description went to an fd */
	struct memfd_content *content;	/* per inode */
};

extern const struct fd_kind fd_kind_memfd;

/* How /proc names a memfd: "/memfd:NAME (deleted)". */
static bool is_memfd_path(const char *path)
{
	return !strncmp(path, MEMFD_PREFIX, strlen(MEMFD_PREFIX));
}

#define ANON_SHMEM_PATH "/dev/zero (deleted)"

/* The device of the kernel's internal shmem mount, where memfds and the
 * objects of shared anonymous memory live: a memfd of ours tells. */
static dev_t shmem_dev(void)
{
	static dev_t dev;
	static bool known;
	struct stat st;

	if (known)
		return dev;
	int fd = memfd_create("stasis-shmem-dev", MFD_CLOEXEC);
	if (fd >= 0 && !fstat(fd, &st)) {
		dev = st.st_dev;
		known = true;
	}
	if (fd >= 0)
		close(fd);
	return dev;
}

bool files_is_anon_shmem(const char *path, const struct stat *st)
{
	return S_ISREG(st->st_mode) && !strcmp(path, ANON_SHMEM_PATH) && st->st_dev == shmem_dev();
}

/* A memfd, or the object of shared anonymous memory opened as a file
 * (through /proc/PID/map_files): that is a memfd in all but name, and
 * CRIU saves it as one, named "/dev/zero". */
static bool memfd_owns(const struct fd_facts *f)
{
	return S_ISREG(f->st.st_mode) && (is_memfd_path(f->path) || files_is_anon_shmem(f->path, &f->st));
}

/* A mapped memfd. (A memfd run as the executable is saved as a deleted
 * file, by path.) */
static bool memfd_owns_path(const struct path_facts *p)
{
	struct stat st;
	if (!p->mapped)
		return false;
	if (is_memfd_path(p->path))
		return true;
	return !strcmp(p->path, ANON_SHMEM_PATH) && !stat(p->link, &st) && files_is_anon_shmem(p->path, &st);
}

/* "/memfd:NAME (deleted)" -> NAME, "/dev/zero (deleted)" -> "/dev/zero" */
static char *memfd_name(const char *path)
{
	const char *name = is_memfd_path(path) ? path + strlen(MEMFD_PREFIX) : path;
	size_t n = strlen(name);
	const char *suffix = " (deleted)";
	if (n >= strlen(suffix) && !strcmp(name + n - strlen(suffix), suffix))
		n -= strlen(suffix);
	return strndup(name, n);
}

/* A MFD_HUGETLB memfd lives on hugetlbfs, in pages of its block size:
 * memfd_create's flags for it, as CRIU saves them (MFD_HUGE_* are
 * MAP_HUGE_*: log2 of the size above MFD_HUGE_SHIFT). */
static unsigned huge_flag(int fd)
{
	struct statfs sf;
	int shift = 0;

	if (fstatfs(fd, &sf) < 0 || sf.f_type != HUGETLBFS_MAGIC)
		return 0;
	while (shift < 63 && (1ul << shift) < (unsigned long)sf.f_bsize)
		shift++;
	return MFD_HUGETLB | ((shift & MAP_HUGE_MASK) << MAP_HUGE_SHIFT);
}

/* The memfd open at src (a /proc link), named path in /proc. */
static struct dump_inode *add_inode(struct memfd_dump_state *s, const char *path, const char *src,
				    bool readable, const struct stat *st, const char *what)
{
	struct dump_inode *n = realloc(s->in, (s->nr + 1) * sizeof(*n));
	if (!n) {
		pr_err("%s: out of memory saving the memfd", what);
		return NULL;
	}
	s->in = n;
	struct dump_inode *d = &s->in[s->nr];
	*d = (struct dump_inode){ .ino = st->st_ino, .id = s->nr + 1, .st = *st };
	d->fd = fs_open_task_file(src, readable);
	if (d->fd < 0) {
		pr_perror("%s: can't open the memfd to save it", what);
		return NULL;
	}
	int seals = fcntl(d->fd, F_GET_SEALS);
	if (seals < 0) {
		pr_perror("%s: can't read the memfd's seals", what);
		close(d->fd);
		return NULL;
	}
	d->seals = seals;
	d->huge_flag = huge_flag(d->fd);
	if (!(d->name = memfd_name(path))) {
		pr_err("%s: out of memory saving the memfd", what);
		close(d->fd);
		return NULL;
	}
	s->nr++;
	return d;
}

static struct dump_inode *find_inode(struct file_table *t, const char *path, const char *src,
				     bool readable, const struct stat *st, const char *what)
{
	struct memfd_dump_state *s = files_dump_state(t, &fd_kind_memfd);
	for (int i = 0; i < s->nr; i++)
		if (s->in[i].ino == st->st_ino)
			return &s->in[i];
	return add_inode(s, path, src, readable, st, what);
}

static MemfdFileEntry *file_entry_new(uint32_t id, uint32_t flags, uint64_t pos, uint32_t inode_id)
{
	MemfdFileEntry *e = calloc(1, sizeof(*e));
	FownEntry *fown = calloc(1, sizeof(*fown));
	if (!e || !fown) {
		free(e);
		free(fown);
		return NULL;
	}
	memfd_file_entry__init(e);
	fown_entry__init(fown);
	e->id = id;
	e->flags = flags & ~O_CLOEXEC;
	e->pos = pos;
	e->fown = fown;
	e->inode_id = inode_id;
	return e;
}

static int memfd_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	char what[PATH_MAX + 64], src[64];

	snprintf(what, sizeof(what), "pid %d: fd %d (%s)", f->pid, f->fd, f->path);
	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	struct dump_inode *d = find_inode(t, f->path, src, fd_reads(f->fi.flags), &f->st, what);
	if (!d)
		return -1;
	if (!(fe->memfd = file_entry_new(fe->id, f->fi.flags, f->fi.pos, d->id)))
		return files_oom(f);
	return 0;
}

/* Mappings of a memfd: one entry per inode and open mode, as for files. */
static int memfd_dump_path(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id)
{
	char what[PATH_MAX + 128];
	const char *path = p->path, *src = p->link;
	uint32_t flags = p->flags;
	struct stat st;

	snprintf(what, sizeof(what), "mapping of %s (%s)", path, src);
	if (stat(src, &st) < 0) {
		pr_perror("%s: can't inspect the memfd", what);
		return -1;
	}
	struct dump_inode *d = find_inode(t, path, src, true, &st, what);	/* mmap reads */
	if (!d)
		return -1;
	/* Restore maps after the seals are back, and this seal forbids new
	 * writable shared mappings. */
	if ((flags & O_ACCMODE) == O_RDWR && (d->seals & F_SEAL_FUTURE_WRITE)) {
		pr_err("%s: the memfd is mapped shared and writable but sealed with F_SEAL_FUTURE_WRITE; "
		       "stasis can't restore that", what);
		return -1;
	}
	for (int i = 0; i < t->nr; i++) {
		const MemfdFileEntry *m = t->e[i]->memfd;
		if (m && m->inode_id == d->id && m->flags == flags && m->pos == 0) {
			*id = m->id;
			return 0;
		}
	}
	FileEntry *fe = files_new_entry(t, FD_TYPES__MEMFD);
	if (!fe)
		return -1;
	if (!(fe->memfd = file_entry_new(fe->id, flags, 0, d->id))) {
		pr_err("%s: out of memory recording it", what);
		return -1;
	}
	*id = fe->id;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* pagemap-shmem-SHMID.img and pages-ID.img of one memfd. */
static int write_content(int dirfd, const struct dump_inode *d, uint32_t shmid, uint64_t *pages)
{
	struct img pm, pg;
	uint8_t page[MEMFD_PAGE];
	PagemapHead head = PAGEMAP_HEAD__INIT;
	uint64_t size = d->st.st_size, run_start = 0, run_pages = 0;

	head.pages_id = MEMFD_PAGES_ID_BASE + d->id;
	if (img_create(dirfd, &pm, IMG_PAGEMAP_SHMEM, shmid) < 0)
		return -1;
	if (img_create(dirfd, &pg, IMG_PAGES, head.pages_id) < 0) {
		img_abort(&pm);
		return -1;
	}
	if (img_write(&pm, &head.base) < 0)
		goto err;
	for (uint64_t off = 0; off < size; off += MEMFD_PAGE) {
		/* holes (never written) are skipped whole */
		off_t data = lseek(d->fd, off, SEEK_DATA);
		if (data < 0 && errno == EINVAL)
			data = off;	/* no holes to find (hugetlbfs): every page is read */
		if (data < 0 || (uint64_t)data >= size)
			break;
		if ((uint64_t)data >= off + MEMFD_PAGE) {
			if (run_pages && pagemap_write_run(&pm, run_start, run_pages, PE_PRESENT) < 0)
				goto err;
			run_pages = 0;
			off = (data & ~(off_t)(MEMFD_PAGE - 1)) - MEMFD_PAGE;
			continue;
		}
		memset(page, 0, sizeof(page));
		ssize_t n = pread(d->fd, page, sizeof(page), off);
		if (n < 0) {
			pr_perror("memfd %s: can't read its bytes at %llu", d->name, (unsigned long long)off);
			goto err;
		}
		if (n == 0 || all_zero(page, n)) {
			if (run_pages && pagemap_write_run(&pm, run_start, run_pages, PE_PRESENT) < 0)
				goto err;
			run_pages = 0;
			continue;
		}
		if (!run_pages)
			run_start = off;
		run_pages++;
		if (img_write_raw(&pg, page, sizeof(page)) < 0)
			goto err;
		*pages += MEMFD_PAGE / 4096;
	}
	if (run_pages && pagemap_write_run(&pm, run_start, run_pages, PE_PRESENT) < 0)
		goto err;
	if (img_finish(&pm) < 0) {
		img_abort(&pg);
		return -1;
	}
	return img_finish(&pg);
err:
	img_abort(&pm);
	img_abort(&pg);
	return -1;
}

static int memfd_write_images(struct file_table *t, int dirfd)
{
	struct memfd_dump_state *s = files_dump_state(t, &fd_kind_memfd);
	struct img img;

	if (!s->nr)
		return 0;
	if (img_create(dirfd, &img, IMG_MEMFD_INODE, 0) < 0)
		return -1;
	for (int i = 0; i < s->nr; i++) {
		const struct dump_inode *d = &s->in[i];
		MemfdInodeEntry e = MEMFD_INODE_ENTRY__INIT;
		e.name = d->name;
		e.uid = userns_dump_id(USERNS_UID, d->st.st_uid);
		e.gid = userns_dump_id(USERNS_GID, d->st.st_gid);
		e.size = d->st.st_size;
		e.shmid = d->ino;	/* as CRIU: the inode, the id shared memory has */
		e.seals = d->seals;
		e.inode_id = d->id;
		e.has_mode = 1;
		e.mode = d->st.st_mode;
		if (d->huge_flag) {
			e.has_hugetlb_flag = 1;
			e.hugetlb_flag = d->huge_flag;
		}
		if (img_write(&img, &e.base) < 0 || write_content(dirfd, d, e.shmid, &t->memfd_pages) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static void memfd_free(struct file_table *t)
{
	struct memfd_dump_state *s = files_dump_state(t, &fd_kind_memfd);
	for (int i = 0; i < s->nr; i++) {
		close(s->in[i].fd);
		free(s->in[i].name);
	}
	free(s->in);
}

/* ---- restore ---- */

/* Opens the content images of memfd e; none at all means all zeros. */
static int open_content(int dirfd, const MemfdInodeEntry *e, struct memfd_content *c)
{
	char name[64];
	PagemapHead *head;

	if (img_open(dirfd, &c->pm, IMG_PAGEMAP_SHMEM, e->shmid) < 0)
		return errno == ENOENT ? 0 : -1;
	if (img_read_one(&c->pm, &pagemap_head__descriptor, (ProtobufCMessage **)&head) < 0)
		return -1;
	img_name(name, sizeof(name), IMG_PAGES, head->pages_id);
	img_free(head);
	c->pg.fd = img_open_regular(dirfd, name);
	snprintf(c->pg.name, sizeof(c->pg.name), "%s", name);
	if (c->pg.fd < 0) {
		pr_perror("can't open image %s (bytes of memfd %s)", name, e->name);
		return -1;
	}
	return 0;
}

static int memfd_load(struct rst_files *rf, int dirfd)
{
	struct memfd_rst_state *s = files_rst_state(rf, &fd_kind_memfd);
	if (img_load_all(dirfd, IMG_MEMFD_INODE, 0, (void ***)&s->in, &s->nr) < 0)
		return -1;
	if (!s->nr)
		return 0;
	s->made = malloc(s->nr * sizeof(*s->made));
	s->content = calloc(s->nr, sizeof(*s->content));
	s->rw_given = calloc(s->nr, sizeof(*s->rw_given));
	if (!s->made || !s->content || !s->rw_given) {
		pr_perror("can't prepare the restore of memfds");
		return -1;
	}
	for (int i = 0; i < s->nr; i++) {
		s->made[i] = -1;
		s->content[i].pm.fd = s->content[i].pg.fd = -1;
	}
	for (int i = 0; i < s->nr; i++)
		if (open_content(dirfd, s->in[i], &s->content[i]) < 0)
			return -1;
	return 0;
}

static void memfd_unload(struct rst_files *rf)
{
	struct memfd_rst_state *s = files_rst_state(rf, &fd_kind_memfd);
	for (int i = 0; i < s->nr; i++) {
		img_free(s->in[i]);
		if (s->content) {
			img_close(&s->content[i].pm);
			img_close(&s->content[i].pg);
		}
	}
	free(s->in);
	free(s->made);
	free(s->content);
	free(s->rw_given);
}

/* The saved pages back into the memfd (absent image: all zeros); the
 * images are used up. */
/* A page of it back: written, or copied into its mapping (map: hugetlbfs
 * has no write()). */
static int put_page(int fd, uint8_t *map, const uint8_t *page, size_t len, uint64_t off)
{
	if (!map)
		return pwrite_all(fd, page, len, off);
	memcpy(map + off, page, len);
	return 0;
}

static int fill_content(struct memfd_content *c, int fd, uint8_t *map, const MemfdInodeEntry *e)
{
	struct img *pm = &c->pm, *pg = &c->pg;
	PagemapEntry *pe;
	uint8_t page[MEMFD_PAGE];
	int ret;

	if (c->used) {
		pr_err("the contents of memfd %s were read already", e->name);
		return -1;
	}
	c->used = true;
	if (pm->fd < 0)
		return 0;
	while ((ret = img_read(pm, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe)) == 1) {
		uint64_t off = pe->vaddr;
		uint64_t pages = pagemap_run_pages(pe);
		bool present = !pe->has_flags || (pe->flags & PE_PRESENT);
		img_free(pe);
		if (!present)
			continue;
		if (off > e->size || pages > (e->size - off + MEMFD_PAGE - 1) / MEMFD_PAGE) {
			pr_err("image pagemap-shmem-%u.img: pages at %llu lie outside memfd %s", e->shmid,
			       (unsigned long long)off, e->name);
			ret = -1;
			break;
		}
		for (; pages; pages--, off += MEMFD_PAGE) {
			size_t len = e->size - off < MEMFD_PAGE ? e->size - off : MEMFD_PAGE;
			if (img_read_raw(pg, page, sizeof(page)) < 0 ||
			    put_page(fd, map, page, len, off) < 0) {
				pr_perror("can't put the bytes of memfd %s back", e->name);
				ret = -1;
				break;
			}
		}
		if (ret < 0)
			break;
	}
	img_close(pg);
	img_close(pm);
	return ret;
}

/* CRIU's convention: seals of only F_SEAL_SEAL mean sealing was never
 * allowed (what memfd_create without MFD_ALLOW_SEALING gives). */
static int make_memfd(struct rst_files *rf, struct memfd_rst_state *s, int i)
{
	const MemfdInodeEntry *e = s->in[i];
	bool sealing = e->seals != F_SEAL_SEAL;
	/* CRIU's hugetlb_flag: MFD_HUGETLB and the page size, as memfd_create
	 * takes them (MFD_HUGE_* are MAP_HUGE_*) */
	unsigned huge = e->has_hugetlb_flag ? e->hugetlb_flag & (MFD_HUGETLB | ((unsigned)MAP_HUGE_MASK << MAP_HUGE_SHIFT)) : 0;
	int fd = memfd_create(e->name, MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0) | huge);
	if (fd < 0) {
		pr_perror("can't make memfd %s", e->name);
		return -1;
	}
	uint8_t *map = NULL;
	if (ftruncate(fd, e->size) < 0 ||
	    (huge && e->size && (map = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)) {
		pr_perror("can't size memfd %s", e->name);
		close(fd);
		return -1;
	}
	int filled = fill_content(&s->content[i], fd, map, e);
	if (map)
		munmap(map, e->size);
	if (filled < 0 || fchown(fd, userns_rst_id(USERNS_UID, e->uid), userns_rst_id(USERNS_GID, e->gid)) < 0 ||
	    (e->has_mode && fchmod(fd, e->mode & 07777) < 0)) {
		pr_perror("can't fill memfd %s", e->name);
		close(fd);
		return -1;
	}
	if (sealing && e->seals && fcntl(fd, F_ADD_SEALS, e->seals) < 0) {
		pr_perror("can't seal memfd %s with %#x", e->name, e->seals);
		close(fd);
		return -1;
	}
	return files_keep_fd(rf, fd, e->name);
}

/* The memfd_create description itself, as a new fd: unlike any reopen
 * for writing, it does not count as a writer of the inode, so an
 * execveat() of the memfd does not fail with ETXTBSY (the kernel refuses
 * to run a file open for writing). */
static int original(const struct rst_files *rf, int made, uint32_t flags, uint64_t pos, const char *what)
{
	int fd = dup(made);
	if (fd < 0 || fcntl(fd, F_SETFL, flags) < 0 || (pos && lseek(fd, pos, SEEK_SET) != (off_t)pos)) {
		pr_perror("%s: can't take %s", rf->who, what);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* map: for a mapping, which may share the description (its offset and
 * flags mean nothing to it); an fd gets it for the first read-write
 * open, as CRIU does, where a program that made a memfd to run it holds
 * it: a second writer would make it busy anyway. */
static int open_memfd(struct rst_files *rf, const FileEntry *fe, uint32_t flags, bool map)
{
	struct memfd_rst_state *s = files_rst_state(rf, &fd_kind_memfd);
	const MemfdFileEntry *m = fe->memfd;
	char what[PATH_MAX + 16];
	int i;

	if (!m) {
		pr_err("image files.img: memfd entry %u is empty", fe->id);
		return -1;
	}
	for (i = 0; i < s->nr; i++)
		if (s->in[i]->inode_id == m->inode_id)
			break;
	if (i == s->nr) {
		pr_err("image memfd.img: no memfd inode %u (for file %u)", m->inode_id, fe->id);
		return -1;
	}
	/* Our memory is ours since the fork: a made memfd here was made by us
	 * or an ancestor, and its fd is open in this process. */
	if (s->made[i] < 0 && (s->made[i] = make_memfd(rf, s, i)) < 0)
		return -1;
	snprintf(what, sizeof(what), "memfd %s", s->in[i]->name);
	if ((flags & O_ACCMODE) == O_RDWR && (map || !s->rw_given[i])) {
		s->rw_given[i] |= !map;
		return original(rf, s->made[i], flags, map ? 0 : m->pos, what);
	}
	return files_reopen_kept(rf, s->made[i], flags, m->pos, what);
}

static int memfd_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	return open_memfd(rf, fe, fe->memfd ? fe->memfd->flags : 0, false);
}

static int open_with(struct rst_files *rf, const FileEntry *fe, uint32_t flags)
{
	return open_memfd(rf, fe, flags, true);
}

/* Made once, by the first to open it: the root, for the pool. */
static int memfd_make(struct rst_files *rf, const FileEntry *fe)
{
	int fd = open_with(rf, fe, O_RDONLY);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

const struct fd_kind fd_kind_memfd = {
	.name = "memfd", .type = FD_TYPES__MEMFD,
	.dump_state = sizeof(struct memfd_dump_state), .rst_state = sizeof(struct memfd_rst_state),
	.owns = memfd_owns, .dump = memfd_dump, .open = memfd_open,
	.owns_path = memfd_owns_path, .dump_path = memfd_dump_path, .open_path = open_with,
	.make_path = memfd_make,
	.write_images = memfd_write_images, .free_images = memfd_free,
	.load_images = memfd_load, .unload_images = memfd_unload,
};
