/* Image checksums (checksum.h): XXH3 through libxxhash, XXH64 for lists
 * written before it; any damaged byte changes either. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/checksum.h"
#include "image/img.h"
#include "pagemap.pb-c.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/log.h"
#include "util/grow.h"

/* XXH3's state, at the 64-byte aligned place in raw; moved there first
 * if the ck_state was moved since it was last used. */
static XXH3_state_t *x3_state(struct ck_state *s)
{
	size_t off = -(uintptr_t)s->raw & 63;
	if (off != s->off) {
		memmove(s->raw + off, s->raw + s->off, sizeof(XXH3_state_t));
		s->off = off;
	}
	return (XXH3_state_t *)(s->raw + off);
}

void ck_init_algo(struct ck_state *s, enum ck_algo algo)
{
	s->algo = algo;
	s->total = 0;
	s->off = -(uintptr_t)s->raw & 63;
	if (algo == CK_XXH64)
		XXH64_reset(&s->x64, 0);
	else
		XXH3_64bits_reset(x3_state(s));
}

void ck_init(struct ck_state *s)
{
	ck_init_algo(s, CK_XXH3);
}

void ck_update(struct ck_state *s, const void *data, size_t len)
{
	s->total += len;
	if (s->algo == CK_XXH64)
		XXH64_update(&s->x64, data, len);
	else
		XXH3_64bits_update(x3_state(s), data, len);
}

uint64_t ck_digest(const struct ck_state *s)
{
	if (s->algo == CK_XXH64)
		return XXH64_digest(&s->x64);
	XXH3_state_t copy;	/* aligned by its type; s is const */
	memcpy(&copy, s->raw + s->off, sizeof(copy));
	return XXH3_64bits_digest(&copy);
}

/* The read buffer: small enough to come from the heap, warm, again and
 * again (1 MiB was a fresh mapping each time, a fault and a cleared page
 * for every 4 KiB read), and to stay in the cache between the read's
 * copy and the hash. Larger buffers were no faster on 32 MiB. */
#define CK_BUF (64u << 10)

/* An image to hash: a regular file, not a link; -1 said. */
static int open_image(int dirfd, const char *name)
{
	int fd = img_open_regular(dirfd, name);
	if (fd < 0) {
		if (errno == EINVAL)
			pr_err("image %s is not a regular file", name);
		else if (errno == ELOOP)
			pr_err("image %s is a symbolic link", name);
		else
			pr_perror("can't read image %s", name);
	}
	return fd;
}

/* The hash and size of what is left to read of fd (name: for messages). */
static int ck_fd(int fd, const char *name, enum ck_algo algo, uint64_t *hash, uint64_t *size)
{
	uint8_t *buf = malloc(CK_BUF);
	struct ck_state s;
	ssize_t n;
	if (!buf) {
		pr_err("out of memory hashing %s", name);
		return -1;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ck_init_algo(&s, algo);
	while ((n = read(fd, buf, CK_BUF)) > 0)
		ck_update(&s, buf, n);
	if (n < 0)
		pr_perror("can't read image %s to check its checksum", name);
	free(buf);
	*hash = ck_digest(&s);
	*size = s.total;
	return n < 0 ? -1 : 0;
}

int ck_file(int dirfd, const char *name, enum ck_algo algo, uint64_t *hash, uint64_t *size)
{
	int fd = open_image(dirfd, name);
	if (fd < 0)
		return -1;
	int ret = ck_fd(fd, name, algo, hash, size);
	close(fd);
	return ret;
}

/* ---- a file in parts, two at once ----
 *
 * Hashing reads at memory speed from the page cache, one core a part:
 * the halves of a large file on the two cores take half the time. */

struct parts_job {
	int fd;
	const char *name;
	enum ck_algo algo;
	int n, first, step;
	const uint64_t *off;
	uint64_t size;
	uint64_t *hash;
	int ret;
};

static int hash_range(const struct parts_job *j, uint8_t *buf, uint64_t from, uint64_t to, uint64_t *hash)
{
	struct ck_state s;
	ck_init_algo(&s, j->algo);
	while (from < to) {
		ssize_t n = pread(j->fd, buf, to - from < CK_BUF ? to - from : CK_BUF, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				pr_err("image %s ended at %" PRIu64 " bytes while it was hashed", j->name, from);
			else
				pr_perror("can't read image %s to check its checksum", j->name);
			return -1;
		}
		ck_update(&s, buf, n);
		from += n;
	}
	*hash = ck_digest(&s);
	return 0;
}

static void *parts_worker(void *arg)
{
	struct parts_job *j = arg;
	uint8_t *buf = malloc(CK_BUF);
	if (!buf) {
		pr_err("out of memory hashing %s", j->name);
		j->ret = -1;
		return NULL;
	}
	for (int i = j->first; i < j->n && !j->ret; i += j->step)
		j->ret = hash_range(j, buf, j->off[i], i + 1 < j->n ? j->off[i + 1] : j->size, &j->hash[i]);
	free(buf);
	return NULL;
}

/* hash[i] of the bytes [off[i], off[i+1]) of fd, the last part up to
 * size: parts 0, 2, 4... here, 1, 3... on a second thread. */
static int hash_parts(int fd, const char *name, enum ck_algo algo, int n, const uint64_t *off, uint64_t size,
		      uint64_t *hash)
{
	struct parts_job a = { fd, name, algo, n, 0, 2, off, size, hash, 0 }, b = a;
	pthread_t th;
	b.first = 1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	bool two = n > 1 && pthread_create(&th, NULL, parts_worker, &b) == 0;
	if (!two)
		a.step = 1;
	parts_worker(&a);
	if (two)
		pthread_join(th, NULL);
	return a.ret < 0 || (two && b.ret < 0) ? -1 : 0;
}

/* Files from this size on are hashed in two parts when the list is
 * written: 16 MiB take some 4 ms on one core. */
#define CK_SPLIT_MIN (16ull << 20)

/* An entry not hashed yet: whole, or in two halves if it is large. */
static int hash_entry(int dirfd, struct ck_entry *e)
{
	int fd = open_image(dirfd, e->name);
	struct stat st;
	int ret = -1;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		pr_perror("can't stat image %s", e->name);
	} else if ((uint64_t)st.st_size < CK_SPLIT_MIN) {
		e->nparts = 0;
		ret = ck_fd(fd, e->name, CK_XXH3, &e->hash, &e->size);
	} else {
		e->size = st.st_size;
		e->nparts = 2;
		e->off[0] = 0;
		e->off[1] = e->size / 2 / 4096 * 4096;
		ret = hash_parts(fd, e->name, CK_XXH3, 2, e->off, e->size, e->part);
	}
	close(fd);
	return ret;
}

/* ---- the list ---- */

static unsigned name_hash(const char *name)
{
	unsigned h = 2166136261u;	/* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/* The slot of name in l's index: its entry's, or the free one it would
 * take. nr_slots is a power of two, at least twice nr. */
static int *slot_of(const struct ck_list *l, const char *name)
{
	unsigned mask = l->nr_slots - 1;
	for (unsigned i = name_hash(name) & mask;; i = (i + 1) & mask)
		if (!l->slots[i] || !strcmp(l->e[l->slots[i] - 1].name, name))
			return &l->slots[i];
}

/* The index twice as large, made again from the entries. */
static int grow_slots(struct ck_list *l)
{
	int n = l->nr_slots ? l->nr_slots * 2 : 128;
	int *s = calloc(n, sizeof(*s));
	if (!s)
		return -1;
	free(l->slots);
	l->slots = s;
	l->nr_slots = n;
	for (int i = 0; i < l->nr; i++)
		*slot_of(l, l->e[i].name) = i + 1;
	return 0;
}

static int list_grow(struct ck_list *l, const char *name)
{
	if (2 * (l->nr + 1) > l->nr_slots && grow_slots(l) < 0)
		return -1;
	int *slot = slot_of(l, name);
	if (*slot) {	/* written again (a retry): hashed once */
		l->e[*slot - 1].gone = false;
		return *slot - 1;
	}
	if (grow_array(l->e, l->cap, l->nr + 1, 64) < 0)
		return -1;
	l->e[l->nr] = (struct ck_entry){ .name = strdup(name) };
	if (!l->e[l->nr].name)
		return -1;
	*slot = l->nr + 1;
	return l->nr++;
}

int ck_list_note(struct ck_list *l, const char *name)
{
	int i = list_grow(l, name);
	if (i < 0) {
		pr_err("out of memory listing images for their checksums");
		return -1;
	}
	l->e[i].known = false;
	return i;
}

int ck_list_add(struct ck_list *l, const char *name)
{
	return ck_list_note(l, name) < 0 ? -1 : 0;
}

void ck_list_forget(struct ck_list *l, const char *name)
{
	int *slot = l->nr_slots ? slot_of(l, name) : NULL;
	if (slot && *slot)
		l->e[*slot - 1].gone = true;
}

void ck_list_set_known(struct ck_list *l, int i, uint64_t hash, uint64_t size)
{
	l->e[i].known = true;
	l->e[i].hash = hash;
	l->e[i].size = size;
	l->e[i].nparts = 0;
}

int ck_list_add_known(struct ck_list *l, const char *name, uint64_t hash, uint64_t size)
{
	int i = list_grow(l, name);
	if (i < 0) {
		pr_err("out of memory listing images for their checksums");
		return -1;
	}
	ck_list_set_known(l, i, hash, size);
	return 0;
}

int ck_list_add_parts(struct ck_list *l, const char *name, uint64_t size, int nparts, const uint64_t *off,
		      const uint64_t *hash)
{
	if (nparts < 1 || nparts > CK_MAX_PARTS || off[0]) {
		pr_err("%s: %d parts to list, from %" PRIu64, name, nparts, off[0]);
		return -1;
	}
	int i = list_grow(l, name);
	if (i < 0) {
		pr_err("out of memory listing images for their checksums");
		return -1;
	}
	struct ck_entry *e = &l->e[i];
	e->known = true;
	e->size = size;
	e->nparts = nparts;
	memcpy(e->off, off, nparts * sizeof(*off));
	memcpy(e->part, hash, nparts * sizeof(*hash));
	return 0;
}

/* The line of an entry, into text at *len (grown as needed). */
static int print_entry(char **text, size_t *cap, size_t *len, const struct ck_entry *e)
{
	size_t need = strlen(e->name) + 64 + e->nparts * 48;
	if (grow_array(*text, *cap, *len + need, 2 * need) < 0)
		return -1;
	if (!e->nparts) {
		*len += snprintf(*text + *len, *cap - *len, "xxh3 %016" PRIx64 " %" PRIu64 " %s\n", e->hash,
				 e->size, e->name);
		return 0;
	}
	*len += snprintf(*text + *len, *cap - *len, "xxh3parts %" PRIu64 " %s", e->size, e->name);
	for (int i = 0; i < e->nparts; i++)
		*len += snprintf(*text + *len, *cap - *len, " %" PRIu64 ":%016" PRIx64, e->off[i], e->part[i]);
	*len += snprintf(*text + *len, *cap - *len, "\n");
	return 0;
}

int ck_list_write(struct ck_list *l, int dirfd, const char *listname)
{
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	int ret = -1;

	if (!text)
		return -1;
	for (int i = 0; i < l->nr; i++) {
		struct ck_entry *e = &l->e[i];
		if (e->gone)
			continue;
		if (!e->known && hash_entry(dirfd, e) < 0)
			goto out;
		e->known = true;
		if (print_entry(&text, &cap, &len, e) < 0)
			goto out;
	}
	ret = write_whole(dirfd, listname, text, len);
	if (ret < 0)
		pr_perror("can't write %s", listname);
out:
	free(text);
	return ret;
}

void ck_list_free(struct ck_list *l)
{
	for (int i = 0; i < l->nr; i++)
		free(l->e[i].name);
	free(l->e);
	free(l->slots);
	l->e = NULL;
	l->slots = NULL;
	l->nr = l->cap = l->nr_slots = 0;
}

/* ---- checking ---- */

/* "pages:pagemap-PID.img": the pages file that pagemap's head names. */
static int pages_of(int dirfd, const char *pagemap, char *name, size_t len)
{
	struct img img;
	PagemapHead *h;
	int fd = img_open_regular(dirfd, pagemap);
	if (fd < 0) {
		pr_perror("can't open %s", pagemap);
		return -1;
	}
	enum img_kind kind;
	if (img_open_fd(&img, fd, pagemap, &kind) < 0)
		return -1;
	if (img_read_one(&img, &pagemap_head__descriptor, (ProtobufCMessage **)&h) < 0) {
		img_close(&img);
		return -1;
	}
	img_close(&img);
	img_name(name, len, IMG_PAGES, h->pages_id);
	img_free(h);
	return 0;
}

/* A pages file: pages-ID.img, or a page server's pages:pagemap-PID.img. */
static bool is_pages(const char *file)
{
	return !strncmp(file, "pages:", 6) || !strncmp(file, "pages-", 6);
}

/* A line of a list, parsed. */
struct ck_line {
	char file[512];
	enum ck_algo algo;
	uint64_t size, hash;
	int nparts;			/* 0: a whole file's line */
	uint64_t off[CK_MAX_PARTS], part[CK_MAX_PARTS];
};

static bool parse_parts(const char *p, struct ck_line *c)
{
	char *end;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (c->nparts == CK_MAX_PARTS || !isdigit((unsigned char)*p))
			return false;
		uint64_t off = strtoull(p, &end, 10);
		if (*end != ':' || !isxdigit((unsigned char)end[1]))
			return false;
		p = end + 1;
		c->part[c->nparts] = strtoull(p, &end, 16);
		if (*end && *end != ' ')
			return false;
		c->off[c->nparts++] = off;
		p = end;
	}
	if (!c->nparts || c->off[0])
		return false;
	for (int i = 1; i < c->nparts; i++)
		if (c->off[i] < c->off[i - 1])
			return false;
	return c->off[c->nparts - 1] <= c->size;
}

/* "xxh3 HASH SIZE NAME" or "xxh3parts SIZE NAME OFF:HASH...", or the
 * same with xxh64 (older lists). */
static bool parse_line(const char *line, struct ck_line *c)
{
	char algo[16], hex[32], *end;
	unsigned long long size;
	int pos = 0;

	memset(c, 0, sizeof(*c));
	if (sscanf(line, "%15s", algo) != 1)
		return false;
	const char *kind;
	if (!strncmp(algo, "xxh64", 5))
		c->algo = CK_XXH64, kind = algo + 5;
	else if (!strncmp(algo, "xxh3", 4))
		c->algo = CK_XXH3, kind = algo + 4;
	else
		return false;
	if (!*kind) {
		if (sscanf(line, "%*s %31s %llu %511s", hex, &size, c->file) != 3)
			return false;
		c->hash = strtoull(hex, &end, 16);
		if (*end)
			return false;
	} else if (!strcmp(kind, "parts")) {
		if (sscanf(line, "%*s %llu %511s%n", &size, c->file, &pos) != 2 || !pos)
			return false;
		c->size = size;
		if (!parse_parts(line + pos, c))
			return false;
	} else {
		return false;
	}
	c->size = size;
	return !strchr(c->file, '/');
}

static void say_damaged(const char *dirname, const char *name, uint64_t got, uint64_t got_size, const char *list,
			uint64_t want, uint64_t size, const char *what)
{
	pr_err("%s: image %s is damaged: %s is %016" PRIx64 " (%" PRIu64 " bytes), %s says %016" PRIx64
	       " (%" PRIu64 " bytes); refused (--skip-checksums takes it anyway)", dirname, name, what,
	       got, got_size, list, want, size);
}

/* A file listed in parts: its size, then every part, two at once. */
static int check_parts(int dirfd, const char *dirname, const char *list, const char *name,
		       const struct ck_line *c)
{
	uint64_t got[CK_MAX_PARTS];
	struct stat st;
	int fd = open_image(dirfd, name);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		pr_perror("can't stat image %s", name);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size != c->size) {
		close(fd);
		pr_err("%s: image %s is damaged: it has %" PRIu64 " bytes, %s says %" PRIu64 "; refused "
		       "(--skip-checksums takes it anyway)", dirname, name, (uint64_t)st.st_size, list, c->size);
		return -1;
	}
	int ret = hash_parts(fd, name, c->algo, c->nparts, c->off, c->size, got);
	close(fd);
	for (int i = 0; !ret && i < c->nparts; i++) {
		uint64_t end = i + 1 < c->nparts ? c->off[i + 1] : c->size;
		if (got[i] == c->part[i])
			continue;
		char what[64];
		snprintf(what, sizeof(what), "the checksum of its part at %" PRIu64, c->off[i]);
		say_damaged(dirname, name, got[i], end - c->off[i], list, c->part[i], end - c->off[i], what);
		ret = -1;
	}
	return ret;
}

static int check_line(int dirfd, const char *dirname, const char *list, char *line, enum ck_which which)
{
	char resolved[IMG_NAME_MAX];
	struct ck_line c;
	uint64_t got, got_size;

	if (!parse_line(line, &c)) {
		pr_err("%s/%s: bad line '%s' (restore --skip-checksums ignores the checksums)", dirname, list, line);
		return -1;
	}
	if ((which == CK_NOT_PAGES && is_pages(c.file)) || (which == CK_ONLY_PAGES && !is_pages(c.file)))
		return 1;	/* not this check's */
	const char *name = c.file;
	if (!strncmp(c.file, "pages:", 6)) {
		if (pages_of(dirfd, c.file + 6, resolved, sizeof(resolved)) < 0) {
			pr_err("%s: can't find the pages of %s to check them (restore --skip-checksums skips the "
			       "check)", dirname, c.file + 6);
			return -1;
		}
		name = resolved;
	}
	if (c.nparts)
		return check_parts(dirfd, dirname, list, name, &c);
	if (ck_file(dirfd, name, c.algo, &got, &got_size) < 0)
		return -1;	/* said */
	if (got != c.hash || got_size != c.size) {
		say_damaged(dirname, name, got, got_size, list, c.hash, c.size, "its checksum");
		return -1;
	}
	return 0;
}

static int check_list(int dirfd, const char *dirname, const char *list, enum ck_which which)
{
	int fd = img_open_regular(dirfd, list);
	if (fd < 0)
		return errno == ENOENT ? 0 : (pr_perror("%s: can't open %s", dirname, list), -1);
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0, nr = 0;
	while (!ret && (n = getline(&line, &cap, f)) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (*line) {
			ret = check_line(dirfd, dirname, list, line, which);
			nr += ret == 0;
			ret = ret < 0 ? ret : 0;
		}
	}
	free(line);
	fclose(f);
	if (!ret)
		pr_info("%s: %d %simages whole (%s)", dirname, nr,
			which == CK_ONLY_PAGES ? "pages " : which == CK_NOT_PAGES ? "non-pages " : "", list);
	return ret;
}

#define CK_MAX_PARENTS 64

int ck_verify_chain(int dirfd, const char *dirname, enum ck_which which)
{
	int fd = dup(dirfd), ret = 0;
	char name[PATH_MAX];
	snprintf(name, sizeof(name), "%s", dirname ? dirname : "images");
	for (int depth = 0; fd >= 0 && !ret; depth++) {
		if (depth > CK_MAX_PARENTS) {
			pr_err("%s: more than %d parent dumps (a loop of parent links?)", dirname, CK_MAX_PARENTS);
			ret = -1;
			break;
		}
		ret = check_list(fd, name, CK_LIST, which);
		if (!ret)
			ret = check_list(fd, name, CK_LIST_PS, which);
		int parent = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = parent;
		if (strlen(name) + 8 < sizeof(name))
			strcat(name, "/parent");
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- updating ---- */

static int update_list(int dirfd, const char *list, const char *name, bool *hashed, uint64_t *hash,
		       uint64_t *size)
{
	int fd = img_open_regular(dirfd, list);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -1;
	}
	char *line = NULL, *out = NULL, file[512], resolved[IMG_NAME_MAX];
	size_t cap = 0, olen = 0;
	FILE *o = open_memstream(&out, &olen);
	int ret = o ? 0 : -1;
	while (!ret && getline(&line, &cap, f) > 0) {
		const char *target = NULL;
		struct ck_line c;
		line[strcspn(line, "\n")] = 0;
		if (parse_line(line, &c)) {
			snprintf(file, sizeof(file), "%s", c.file);
			target = file;
			if (!strncmp(file, "pages:", 6))
				target = pages_of(dirfd, file + 6, resolved, sizeof(resolved)) == 0 ? resolved : NULL;
		}
		if (!target || strcmp(target, name)) {
			fprintf(o, "%s\n", line);
			continue;
		}
		if (!*hashed && ck_file(dirfd, name, CK_XXH3, hash, size) < 0)
			ret = -1;
		*hashed = true;
		fprintf(o, "xxh3 %016" PRIx64 " %" PRIu64 " %s\n", *hash, *size, file);
	}
	free(line);
	fclose(f);
	if (o)
		fclose(o);
	if (!ret && write_whole(dirfd, list, out, olen) < 0) {
		pr_perror("can't update %s", list);
		ret = -1;
	}
	free(out);
	return ret;
}

int ck_lists_update(int dirfd, const char *name)
{
	bool hashed = false;
	uint64_t hash = 0, size = 0;
	return update_list(dirfd, CK_LIST, name, &hashed, &hash, &size) < 0 ||
			       update_list(dirfd, CK_LIST_PS, name, &hashed, &hash, &size) < 0 ?
		       -1 :
		       0;
}
