#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/img.h"
#include "image/checksum.h"
#include "image/magic.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/grow.h"

#define IMG_WBUF (1u << 16)
/* Entries above this size are checked against what is left of the file
 * before their buffer is allocated: a few bytes of image can't make us
 * allocate IMG_MAX_ENTRY. */
#define IMG_CHECK_LEFT (1u << 16)

int img_dir_open(const char *path, int given)
{
	int fd = given >= 0 ? fcntl(given, F_DUPFD_CLOEXEC, 3) : fs_open_dir(path);
	if (fd < 0)
		pr_perror("can't open images directory %s", path);
	return fd;
}

/* len bytes of data written to the image file. */
static int write_out(struct img *img, const void *data, size_t len)
{
	if (write_all(img->fd, data, len) < 0) {
		pr_perror("can't write image %s", img->name);
		return -1;
	}
	if (img->ck_list)
		ck_update(&img->ck, data, len);
	return 0;
}

static int img_flush(struct img *img)
{
	if (img->len && write_out(img, img->buf, img->len) < 0)
		return -1;
	img->len = 0;
	return 0;
}

int img_write_raw(struct img *img, const void *data, size_t len)
{
	if (img->len + len > IMG_WBUF && img_flush(img) < 0)
		return -1;
	if (len > IMG_WBUF)
		return write_out(img, data, len);
	memcpy(img->buf + img->len, data, len);
	img->len += len;
	return 0;
}

/* img (its fd set, its name given) made ready for writing, its header
 * written. */
static int start_writing(struct img *img, enum img_kind kind)
{
	const struct img_kind_desc *k = &img_kinds[kind];
	uint32_t head[2] = { k->header == IMG_HDR_SERVICE ? IMG_SERVICE_MAGIC : IMG_COMMON_MAGIC, k->magic };

	img->buf = malloc(IMG_WBUF);
	if (!img->buf) {
		close(img->fd);
		img->fd = -1;
		pr_err("out of memory for image %s", img->name);
		return -1;
	}
	switch (k->header) {
	case IMG_HDR_COMMON:
	case IMG_HDR_SERVICE:
		return img_write_raw(img, head, sizeof(head));
	case IMG_HDR_OWN:
		return img_write_raw(img, &head[1], 4);
	case IMG_HDR_NONE:
		break;
	}
	return 0;
}

/* The list (image/checksum.h) of the dump under way, or NULL. */
static struct ck_list *written;

void img_note_written(struct ck_list *l)
{
	written = l;
}

static int create_as(int dirfd, struct img *img, enum img_kind kind, const char *name)
{
	size_t n = strlen(name);
	/* a temporary one is noted under its final name, once renamed */
	bool listed = written && !(n > 4 && !strcmp(name + n - 4, ".tmp"));
	int entry = listed ? ck_list_note(written, name) : -1;
	if (listed && entry < 0)
		return -1;
	memset(img, 0, sizeof(*img));
	img->ck_list = listed ? written : NULL;
	img->ck_entry = entry;
	ck_init(&img->ck);
	snprintf(img->name, sizeof(img->name), "%s", name);
	img->fd = fs_create(dirfd, name, O_WRONLY, 0600);
	if (img->fd < 0) {
		pr_perror("can't create image %s", name);
		return -1;
	}
	return start_writing(img, kind);
}

int img_create_fd(struct img *img, int fd, const char *name, enum img_kind kind)
{
	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	img->fd = fd;
	return start_writing(img, kind);
}

int img_create(int dirfd, struct img *img, enum img_kind kind, uint32_t id)
{
	char name[IMG_NAME_MAX];
	img_name(name, sizeof(name), kind, id);
	return create_as(dirfd, img, kind, name);
}

int img_write(struct img *img, const ProtobufCMessage *msg)
{
	size_t sz = protobuf_c_message_get_packed_size(msg);
	uint32_t len = sz;
	uint8_t small[4096], *p = sz <= sizeof(small) ? small : malloc(sz);

	if (!p) {
		pr_err("out of memory packing an entry of %s", img->name);
		return -1;
	}
	protobuf_c_message_pack(msg, p);
	int ret = img_write_raw(img, &len, 4);
	if (!ret)
		ret = img_write_raw(img, p, sz);
	if (!ret)
		img->entries++;
	if (p != small)
		free(p);
	return ret;
}

int img_finish(struct img *img)
{
	int ret = img_flush(img);
	struct stat st;
	if (!ret && fstat(img->fd, &st) == 0) {
		pr_debug("wrote %s: %u entries, %lld bytes", img->name, img->entries, (long long)st.st_size);
		/* every byte of it hashed here (none written to its fd past
		 * img: that one is hashed when the list is written) */
		if (img->ck_list && (uint64_t)st.st_size == img->ck.total)
			ck_list_set_known(img->ck_list, img->ck_entry, ck_digest(&img->ck), img->ck.total);
	}
	free(img->buf);
	img->buf = NULL;
	if (close(img->fd) < 0 && !ret) {
		pr_perror("can't close image %s", img->name);
		ret = -1;
	}
	img->fd = -1;
	return ret;
}

void img_abort(struct img *img)
{
	free(img->buf);
	img->buf = NULL;
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

static int read_full(struct img *img, void *p, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(img->fd, (char *)p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_perror("can't read image %s", img->name);
			return -1;
		}
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

int img_open_regular(int dirfd, const char *name)
{
	return fs_open_read(dirfd, name);
}

/* The kind's header; for a common one CRIU's service magic is taken too. */
static int read_header(struct img *img, const struct img_kind_desc *k)
{
	uint32_t m;

	if (k->header == IMG_HDR_NONE)
		return 0;
	if (read_full(img, &m, 4) != 4)
		return -1;
	if ((k->header == IMG_HDR_COMMON || k->header == IMG_HDR_SERVICE) &&
	    (m == IMG_COMMON_MAGIC || m == IMG_SERVICE_MAGIC) &&
	    read_full(img, &m, 4) != 4)
		return -1;
	return m == k->magic ? 0 : -1;
}

int img_open(int dirfd, struct img *img, enum img_kind kind, uint32_t id)
{
	const struct img_kind_desc *k = &img_kinds[kind];

	memset(img, 0, sizeof(*img));
	img_name(img->name, sizeof(img->name), kind, id);
	img->fd = img_open_regular(dirfd, img->name);
	if (img->fd < 0) {
		if (errno == ELOOP || errno == EINVAL)
			pr_err("image %s is not a regular file (%s)", img->name,
			       errno == ELOOP ? "a symlink" : "a FIFO, device or directory");
		else if (!(k->optional && errno == ENOENT))
			pr_perror("can't open image %s", img->name);
		return -1;
	}
	if (read_header(img, k) < 0) {
		pr_err("image %s is corrupt: bad or missing magic header", img->name);
		close(img->fd);
		img->fd = -1;
		errno = EINVAL;
		return -1;
	}
	pr_debug("reading %s", img->name);
	return 0;
}

int img_open_fd(struct img *img, int fd, const char *name, enum img_kind *kind)
{
	uint32_t m;

	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	img->fd = fd;
	if (read_full(img, &m, 4) != 4 ||
	    ((m == IMG_COMMON_MAGIC || m == IMG_SERVICE_MAGIC) && read_full(img, &m, 4) != 4)) {
		pr_err("%s is not an image: it has no magic", name);
		return -1;
	}
	int k = img_kind_by_magic(m);
	if (k < 0) {
		pr_err("%s: unknown magic %#x (a raw image, pages-ID.img, has none)", name, m);
		return -1;
	}
	*kind = k;
	return 0;
}

bool img_has(struct img *img, uint64_t len)
{
	struct stat st;
	off_t pos = lseek(img->fd, 0, SEEK_CUR);
	return pos >= 0 && fstat(img->fd, &st) == 0 && st.st_size >= pos && (uint64_t)(st.st_size - pos) >= len;
}

/* Messages nest at most this deep (cgroup.img's directories are a tree;
 * protobuf-c unpacks a nested message by recursion, so an entry nesting
 * without end would run it out of stack). */
#define IMG_MAX_NESTING 128

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Whether the message in buf nests no deeper than depth allows; a
 * malformed one passes (unpacking it fails then, saying so). */
static bool nesting_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, int depth)
{
	uint64_t key, len;
	if (depth > IMG_MAX_NESTING)
		return false;
	while (p < end) {
		if (!varint(&p, end, &key))
			return true;
		switch (key & 7) {
		case 0: if (!varint(&p, end, &len)) return true; break;
		case 1: p += 8; break;
		case 5: p += 4; break;
		case 2: {
			if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
				return true;
			const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, key >> 3);
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && !nesting_ok(f->descriptor, p, p + len, depth + 1))
				return false;
			p += len;
			break;
		}
		default: return true;
		}
	}
	return true;
}

/* One entry's len bytes at buf, decoded. */
static int decode(struct img *img, const ProtobufCMessageDescriptor *desc, const uint8_t *buf, uint32_t len,
		  ProtobufCMessage **out)
{
	if (!nesting_ok(desc, buf, buf + len, 0)) {
		pr_err("image %s is corrupt: a %s entry nests deeper than %d", img->name, desc->name, IMG_MAX_NESTING);
		return -1;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, buf);
	if (!*out) {
		pr_err("image %s is corrupt: can't decode a %s entry", img->name, desc->name);
		return -1;
	}
	return 1;
}

int img_read(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	uint32_t len;
	int n = read_full(img, &len, 4);

	if (n == 0)
		return 0;
	if (n != 4) {
		pr_err("image %s is truncated (partial entry header)", img->name);
		return -1;
	}
	if (len > IMG_MAX_ENTRY) {
		pr_err("image %s is corrupt: entry of %u bytes", img->name, len);
		return -1;
	}
	if (len > IMG_CHECK_LEFT && !img_has(img, len)) {
		pr_err("image %s is truncated (entry of %u bytes cut short)", img->name, len);
		return -1;
	}
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		pr_err("out of memory reading %s", img->name);
		return -1;
	}
	if (read_full(img, buf, len) != (int)len) {
		pr_err("image %s is truncated (entry of %u bytes cut short)", img->name, len);
		free(buf);
		return -1;
	}
	int ret = decode(img, desc, buf, len, out);
	free(buf);
	return ret;
}

/* The rest of the image, read whole (to its end, as img_read_all reads
 * it) when it is of a sane size: entries are then decoded in place, not
 * two reads each (a pagemap after a pre-dump has thousands). NULL: read
 * entry by entry. */
static uint8_t *read_rest(struct img *img, size_t *len)
{
	struct stat st;
	off_t pos = lseek(img->fd, 0, SEEK_CUR);
	if (pos < 0 || fstat(img->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < pos ||
	    st.st_size - pos > (off_t)IMG_MAX_ENTRY)
		return NULL;
	*len = st.st_size - pos;
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf && read_full(img, buf, *len) != (int)*len) {
		/* changed under us: back to where it was, the slow way */
		free(buf);
		buf = NULL;
		lseek(img->fd, pos, SEEK_SET);
	}
	return buf;
}

/* Entry i of the rest of the image in buf: 1 and *at moved past it, 0 at
 * the end, -1 (said) if it is damaged. */
static int decode_next(struct img *img, const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
		       size_t *at, ProtobufCMessage **out)
{
	uint32_t n;
	if (*at == len)
		return 0;
	if (len - *at < 4) {
		pr_err("image %s is truncated (partial entry header)", img->name);
		return -1;
	}
	memcpy(&n, buf + *at, 4);
	if (n > IMG_MAX_ENTRY) {
		pr_err("image %s is corrupt: entry of %u bytes", img->name, n);
		return -1;
	}
	if (len - *at - 4 < n) {
		pr_err("image %s is truncated (entry of %u bytes cut short)", img->name, n);
		return -1;
	}
	int ret = decode(img, desc, buf + *at + 4, n, out);
	*at += 4 + (size_t)n;
	return ret;
}

int img_read_one(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	int ret = img_read(img, desc, out);
	if (ret == 0)
		pr_err("image %s is truncated: no %s entry", img->name, desc->name);
	return ret == 1 ? 0 : -1;
}

int img_read_raw(struct img *img, void *buf, size_t len)
{
	if (read_full(img, buf, len) != (int)len) {
		pr_err("image %s is truncated (%zu bytes of data cut short)", img->name, len);
		return -1;
	}
	return 0;
}

void img_close(struct img *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

int img_load_one(int dirfd, enum img_kind kind, uint32_t id, ProtobufCMessage **out)
{
	struct img img;
	if (img_open(dirfd, &img, kind, id) < 0)
		return -1;
	int ret = img_read_one(&img, img_kinds[kind].entry, out);
	img_close(&img);
	return ret;
}

static int store_as(int dirfd, enum img_kind kind, const char *name, const ProtobufCMessage *msg)
{
	struct img img;
	if (create_as(dirfd, &img, kind, name) < 0)
		return -1;
	if (img_write(&img, msg) < 0) {
		img_abort(&img);
		return -1;
	}
	return img_finish(&img);
}

int img_store_one(int dirfd, enum img_kind kind, uint32_t id, const ProtobufCMessage *msg)
{
	char name[IMG_NAME_MAX];
	img_name(name, sizeof(name), kind, id);
	return store_as(dirfd, kind, name, msg);
}

void img_sync(int dirfd)
{
	if (syncfs(dirfd) < 0)
		pr_warn("can't sync the images directory: %m");
}

int img_commit_one(int dirfd, enum img_kind kind, uint32_t id, const ProtobufCMessage *msg, bool synced)
{
	char name[IMG_NAME_MAX], tmp[IMG_NAME_MAX + 4];
	img_name(name, sizeof(name), kind, id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if (store_as(dirfd, kind, tmp, msg) < 0)
		return -1;
	if (synced)
		img_sync(dirfd);
	char point[IMG_NAME_MAX + 16];	/* e.g. inventory-tmp-written */
	snprintf(point, sizeof(point), "%.*s-tmp-written", (int)(strcspn(name, ".")), name);
	fault_point(point);
	if (fs_rename(dirfd, tmp, name) < 0) {
		pr_perror("can't commit %s", name);
		return -1;
	}
	return written ? ck_list_add(written, name) : 0;
}

int img_remove(int dirfd, enum img_kind kind, uint32_t id)
{
	char name[IMG_NAME_MAX];
	img_name(name, sizeof(name), kind, id);
	if (written)
		ck_list_forget(written, name);
	return fs_unlink(dirfd, name);
}

int img_read_all(struct img *img, const ProtobufCMessageDescriptor *desc, void ***out, int *nr)
{
	ProtobufCMessage *m;
	int ret, cap = 0;

	size_t len = 0, at = 0;
	uint8_t *rest = read_rest(img, &len);

	*out = NULL;
	*nr = 0;
	while ((ret = rest ? decode_next(img, desc, rest, len, &at, &m) : img_read(img, desc, &m)) == 1) {
		if (grow_array(*out, cap, *nr + 1, 32) < 0) {
			img_free(m);
			pr_err("out of memory reading %s", img->name);
			ret = -1;
			break;
		}
		(*out)[(*nr)++] = m;
	}
	free(rest);
	if (ret < 0) {
		/* all or nothing: the caller has no half-read table to free */
		for (int i = 0; i < *nr; i++)
			img_free((*out)[i]);
		free(*out);
		*out = NULL;
		*nr = 0;
	}
	return ret;
}

int img_load_all(int dirfd, enum img_kind kind, uint32_t id, void ***out, int *nr)
{
	struct img img;
	*out = NULL;
	*nr = 0;
	if (img_open(dirfd, &img, kind, id) < 0)
		return (img_kinds[kind].optional && errno == ENOENT) ? 0 : -1;
	int ret = img_read_all(&img, img_kinds[kind].entry, out, nr);
	img_close(&img);
	return ret;
}

int img_load_headed(int dirfd, enum img_kind kind, uint32_t id, ProtobufCMessage **head, void ***out, int *nr)
{
	const struct img_kind_desc *k = &img_kinds[kind];
	struct img img;
	*head = NULL;
	*out = NULL;
	*nr = 0;
	if (img_open(dirfd, &img, kind, id) < 0)
		return -1;
	int ret = img_read_one(&img, k->head, head);
	if (!ret) {
		ret = img_read_all(&img, k->entry, out, nr);
		if (ret < 0) {
			img_free(*head);
			*head = NULL;
		}
	}
	img_close(&img);
	return ret;
}
