/* Image checksums (checksum.h). The hash is XXH64 as its specification
 * defines it (four lanes of 8-byte rounds over 32-byte stripes, then the
 * tail and the final avalanche): fast enough to hash a GiB of pages in
 * a fraction of a second, and any damaged byte changes it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/checksum.h"
#include "image/img.h"
#include "pagemap.pb-c.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/log.h"

#define P1 11400714785074694791ULL
#define P2 14029467366897019727ULL
#define P3 1609587929392839161ULL
#define P4 9650029242287828579ULL
#define P5 2870177450012600261ULL

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	return rotl(acc, 31) * P1;
}

static inline uint64_t merge(uint64_t acc, uint64_t v)
{
	acc ^= round64(0, v);
	return acc * P1 + P4;
}

void ck_init(struct ck_state *s)
{
	memset(s, 0, sizeof(*s));
	s->v[0] = P1 + P2;
	s->v[1] = P2;
	s->v[2] = 0;
	s->v[3] = -P1;
}

static void stripe(uint64_t v[4], const uint8_t *p)
{
	v[0] = round64(v[0], rd64(p));
	v[1] = round64(v[1], rd64(p + 8));
	v[2] = round64(v[2], rd64(p + 16));
	v[3] = round64(v[3], rd64(p + 24));
}

void ck_update(struct ck_state *s, const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;
	s->total += len;
	if (s->buflen) {
		size_t take = 32 - s->buflen < len ? 32 - s->buflen : len;
		memcpy(s->buf + s->buflen, p, take);
		s->buflen += take;
		p += take;
		if (s->buflen < 32)
			return;
		stripe(s->v, s->buf);
		s->buflen = 0;
	}
	uint64_t v[4] = { s->v[0], s->v[1], s->v[2], s->v[3] };
	for (; end - p >= 32; p += 32)
		stripe(v, p);
	memcpy(s->v, v, sizeof(v));
	memcpy(s->buf, p, end - p);
	s->buflen = end - p;
}

uint64_t ck_digest(const struct ck_state *s)
{
	uint64_t h;
	if (s->total >= 32) {
		h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
		for (int i = 0; i < 4; i++)
			h = merge(h, s->v[i]);
	} else {
		h = P5;
	}
	h += s->total;
	const uint8_t *p = s->buf, *end = p + s->buflen;
	for (; end - p >= 8; p += 8) {
		h ^= round64(0, rd64(p));
		h = rotl(h, 27) * P1 + P4;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)rd32(p) * P1;
		h = rotl(h, 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++) {
		h ^= *p * P5;
		h = rotl(h, 11) * P1;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

#define CK_BUF (1u << 20)

int ck_file(int dirfd, const char *name, uint64_t *hash, uint64_t *size)
{
	int fd = img_open_regular(dirfd, name);
	if (fd < 0) {
		if (errno == EINVAL)
			pr_err("image %s is not a regular file", name);
		else if (errno == ELOOP)
			pr_err("image %s is a symbolic link", name);
		else
			pr_perror("can't read image %s", name);
		return -1;
	}
	uint8_t *buf = malloc(CK_BUF);
	struct ck_state s;
	ssize_t n;
	if (!buf) {
		close(fd);
		pr_err("out of memory hashing %s", name);
		return -1;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ck_init(&s);
	while ((n = read(fd, buf, CK_BUF)) > 0)
		ck_update(&s, buf, n);
	if (n < 0)
		pr_perror("can't read image %s to check its checksum", name);
	free(buf);
	close(fd);
	*hash = ck_digest(&s);
	*size = s.total;
	return n < 0 ? -1 : 0;
}

/* ---- the list ---- */

static int list_grow(struct ck_list *l, const char *name)
{
	for (int i = 0; i < l->nr; i++)
		if (!strcmp(l->e[i].name, name))
			return i;	/* written again (a retry): hashed once */
	if (l->nr == l->cap) {
		int cap = l->cap ? l->cap * 2 : 64;
		struct ck_entry *n = realloc(l->e, cap * sizeof(*n));
		if (!n)
			return -1;
		l->e = n;
		l->cap = cap;
	}
	l->e[l->nr] = (struct ck_entry){ strdup(name), false, 0, 0 };
	if (!l->e[l->nr].name)
		return -1;
	return l->nr++;
}

int ck_list_add(struct ck_list *l, const char *name)
{
	int i = list_grow(l, name);
	if (i < 0) {
		pr_err("out of memory listing images for their checksums");
		return -1;
	}
	l->e[i].known = false;
	return 0;
}

int ck_list_add_known(struct ck_list *l, const char *name, uint64_t hash, uint64_t size)
{
	int i = list_grow(l, name);
	if (i < 0) {
		pr_err("out of memory listing images for their checksums");
		return -1;
	}
	l->e[i].known = true;
	l->e[i].hash = hash;
	l->e[i].size = size;
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
		if (!e->known && ck_file(dirfd, e->name, &e->hash, &e->size) < 0)
			goto out;
		e->known = true;
		size_t need = strlen(e->name) + 64;
		if (len + need > cap) {
			char *n = realloc(text, cap = (cap + need) * 2);
			if (!n)
				goto out;
			text = n;
		}
		len += snprintf(text + len, cap - len, "xxh64 %016" PRIx64 " %" PRIu64 " %s\n", e->hash, e->size,
				e->name);
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
	l->e = NULL;
	l->nr = l->cap = 0;
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

static int check_line(int dirfd, const char *dirname, const char *list, char *line, enum ck_which which)
{
	char algo[16], hex[32], file[512], resolved[IMG_NAME_MAX];
	unsigned long long size;
	uint64_t want, got, got_size;
	char *end;

	if (sscanf(line, "%15s %31s %llu %511s", algo, hex, &size, file) != 4 || strcmp(algo, "xxh64") ||
	    (want = strtoull(hex, &end, 16), *end) || strchr(file, '/')) {
		pr_err("%s/%s: bad line '%s' (restore --skip-checksums ignores the checksums)", dirname, list, line);
		return -1;
	}
	if ((which == CK_NOT_PAGES && is_pages(file)) || (which == CK_ONLY_PAGES && !is_pages(file)))
		return 0;
	const char *name = file;
	if (!strncmp(file, "pages:", 6)) {
		if (pages_of(dirfd, file + 6, resolved, sizeof(resolved)) < 0) {
			pr_err("%s: can't find the pages of %s to check them (restore --skip-checksums skips the "
			       "check)", dirname, file + 6);
			return -1;
		}
		name = resolved;
	}
	if (ck_file(dirfd, name, &got, &got_size) < 0)
		return -1;	/* said */
	if (got != want || got_size != size) {
		pr_err("%s: image %s is damaged: its checksum is %016" PRIx64 " (%" PRIu64 " bytes), %s says %s "
		       "(%llu bytes); restore refused (--skip-checksums restores it anyway)", dirname, name, got,
		       got_size, list, hex, size);
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
			nr++;
		}
	}
	free(line);
	fclose(f);
	if (!ret)
		pr_info("%s: %d images whole (%s)", dirname, nr, list);
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
		if (sscanf(line, "%*s %*s %*s %511s", file) == 1) {
			target = file;
			if (!strncmp(file, "pages:", 6))
				target = pages_of(dirfd, file + 6, resolved, sizeof(resolved)) == 0 ? resolved : NULL;
		}
		if (!target || strcmp(target, name)) {
			fputs(line, o);
			continue;
		}
		if (!*hashed && ck_file(dirfd, name, hash, size) < 0)
			ret = -1;
		*hashed = true;
		fprintf(o, "xxh64 %016" PRIx64 " %" PRIu64 " %s\n", *hash, *size, file);
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
