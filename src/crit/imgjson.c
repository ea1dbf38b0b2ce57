#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crit/codec.h"
#include "crit/imgjson.h"
#include "crit/pbjson.h"
#include "util/log.h"
#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"

/* ---- image to JSON ---- */

/* As crit's human_readable: "512B", "4KB", "1.5MB". */
static struct json *size_text(uint64_t n)
{
	static const char *const units[] = { "", "K", "M", "G", "T", "P", "E", "Z" };
	char s[64];
	double v = n;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++, v /= 1024.0)
		if (v < 1024.0) {
			if (v == (double)(uint64_t)v)
				snprintf(s, sizeof(s), "... <%llu%sB>", (unsigned long long)v, units[i]);
			else
				snprintf(s, sizeof(s), "... <%.1f%sB>", v, units[i]);
			return json_str(s);
		}
	snprintf(s, sizeof(s), "... <%.1fYB>", v);
	return json_str(s);
}

static uint64_t bytes_left(struct img *img)
{
	struct stat st;
	off_t pos = lseek(img->fd, 0, SEEK_CUR);
	return pos >= 0 && fstat(img->fd, &st) == 0 && st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
}

/* The next n raw bytes of img, as base64; nopl: skipped, as their size
 * (or, keep_size false, as nothing: crit shows no size for a ghost's). */
static struct json *read_extra(struct img *img, uint64_t n, bool nopl, bool keep_size)
{
	size_t len;

	if (!img_has(img, n)) {
		pr_err("image %s is truncated (%llu bytes of data cut short)", img->name, (unsigned long long)n);
		return NULL;
	}
	if (nopl) {
		lseek(img->fd, n, SEEK_CUR);
		return keep_size ? size_text(n) : json_new(JSON_NULL);
	}
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf || img_read_raw(img, buf, n) < 0) {
		if (!buf)
			pr_err("out of memory reading %s", img->name);
		free(buf);
		return NULL;
	}
	char *text = base64_encode(buf, n, &len);
	free(buf);
	struct json *v = text ? json_string(text, len) : NULL;
	free(text);
	if (!v)
		pr_err("out of memory reading %s", img->name);
	return v;
}

/* ---- System V objects (CRIU's crit shows them so) ---- */

#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))

static int skip_pad(struct img *img, uint64_t pad)
{
	if (!img_has(img, pad)) {
		pr_err("image %s is truncated (padding cut short)", img->name);
		return -1;
	}
	lseek(img->fd, pad, SEEK_CUR);
	return 0;
}

/* A segment's bytes, without their padding to 4 (none when they are in
 * pagemaps). */
static struct json *shm_load(struct img *img, const IpcShmEntry *e, bool nopl)
{
	if (e->has_in_pagemaps && e->in_pagemaps)
		return json_new(JSON_NULL);
	struct json *x = read_extra(img, e->size, nopl, true);
	if (x && skip_pad(img, ROUND_UP(e->size, 4) - e->size) < 0) {
		json_free(x);
		return NULL;
	}
	return x;
}

/* A semaphore set's values, as numbers. */
static struct json *sem_load(struct img *img, const IpcSemEntry *e, bool nopl)
{
	uint64_t size = (uint64_t)e->nsems * 2;
	if (nopl) {
		struct json *x = read_extra(img, size, true, true);
		if (x && skip_pad(img, ROUND_UP(size, 8) - size) < 0) {
			json_free(x);
			return NULL;
		}
		return x;
	}
	struct json *a = json_new(JSON_ARRAY);
	uint16_t v;
	for (uint32_t i = 0; a && i < e->nsems; i++) {
		struct json *n = img_read_raw(img, &v, 2) < 0 ? NULL : json_uint(v);
		if (!n || json_push(a, n) < 0) {
			json_free(n);
			json_free(a);
			return NULL;
		}
	}
	if (a && skip_pad(img, ROUND_UP(size, 8) - size) < 0) {
		json_free(a);
		return NULL;
	}
	return a;
}

/* One message of a queue into a (NULL: nopl, its size added to *pl). */
static int msg_load_one(struct img *img, struct json *a, bool pretty, uint64_t *pl)
{
	ProtobufCMessage *pm;
	off_t at = lseek(img->fd, 0, SEEK_CUR);

	if (img_read(img, &ipc_msg__descriptor, &pm) <= 0)
		return -1;
	uint32_t msize = ((const IpcMsg *)pm)->msize;
	*pl += lseek(img->fd, 0, SEEK_CUR) - at - 4 + msize;
	struct json *me = a ? pb_to_json(pm, pretty) : NULL;
	img_free(pm);
	if (a && (!me || json_push(a, me) < 0)) {
		json_free(me);
		return -1;
	}
	struct json *x = read_extra(img, msize, !a, true);
	if (!x || !a)
		json_free(x);
	else if (json_push(a, x) < 0) {
		json_free(x);
		return -1;
	}
	return x ? skip_pad(img, ROUND_UP(msize, 8) - msize) : -1;
}

/* A queue's messages: [message, bytes, message, bytes, ...]; nopl: their
 * size, each message's entry counted (crit's way). */
static struct json *msg_load(struct img *img, const IpcMsgEntry *e, bool pretty, bool nopl)
{
	struct json *a = nopl ? NULL : json_new(JSON_ARRAY);
	uint64_t pl = 0;

	if (!nopl && !a)
		return NULL;
	for (uint32_t i = 0; i < e->qnum; i++)
		if (msg_load_one(img, a, pretty, &pl) < 0) {
			json_free(a);
			return NULL;
		}
	return nopl ? size_text(pl) : a;
}

static struct json *sysv_load(struct img *img, const struct img_kind_desc *k, const ProtobufCMessage *m,
			      bool pretty, bool nopl)
{
	if (k == &img_kinds[IMG_IPCNS_SHM])
		return shm_load(img, (const IpcShmEntry *)m, nopl);
	if (k == &img_kinds[IMG_IPCNS_SEM])
		return sem_load(img, (const IpcSemEntry *)m, nopl);
	return msg_load(img, (const IpcMsgEntry *)m, pretty, nopl);
}

/* A TCP stream's queues: {"inq": ..., "outq": ...} as CRIU's crit shows
 * them; nopl: their size together. */
static int load_queues(struct img *img, const ProtobufCMessage *m, bool nopl, struct json *e)
{
	uint64_t in = 0, out = 0;
	struct json *x;

	pb_get_uint(m, "inq_len", &in);
	pb_get_uint(m, "outq_len", &out);
	if (nopl) {
		x = read_extra(img, in + out, true, true);
		return x && json_set(e, "extra", x) == 0 ? 0 : -1;
	}
	struct json *qi = read_extra(img, in, false, true), *qo = qi ? read_extra(img, out, false, true) : NULL;
	if (!(x = json_new(JSON_OBJECT)) || !qi || !qo || json_set(x, "inq", qi) < 0 ||
	    json_set(x, "outq", qo) < 0 || json_set(e, "extra", x) < 0) {
		pr_err("out of memory reading %s", img->name);
		return -1;
	}
	return 0;
}

/* The extra of entry m (the first one if first) into e, when the kind has
 * one; *last when nothing can follow it. */
static int load_extra(struct img *img, const struct img_kind_desc *k, const ProtobufCMessage *m, bool first,
		      bool pretty, bool nopl, struct json *e, bool *last)
{
	uint64_t n = 0, chunks = 0;
	struct json *x;

	switch (k->extra) {
	case IMG_EXTRA_NONE:
		return 0;
	case IMG_EXTRA_EACH:
		pb_get_uint(m, k->extra_len, &n);
		x = read_extra(img, n, nopl, true);
		break;
	case IMG_EXTRA_QUEUES:
		return load_queues(img, m, nopl, e);
	case IMG_EXTRA_CHUNKS:
		if (first && pb_get_uint(m, "chunks", &chunks) && chunks)
			return 0;	/* chunk entries follow, each with its bytes */
		if (first) {
			*last = true;	/* no chunks: all the rest is the head's */
			n = bytes_left(img);
		} else {
			pb_get_uint(m, k->extra_len, &n);
		}
		x = read_extra(img, n, nopl, false);
		break;
	case IMG_EXTRA_SYSV:
		x = sysv_load(img, k, m, pretty, nopl);
		break;
	default:
		return 0;
	}
	if (x && x->type == JSON_NULL) {
		json_free(x);
		return 0;
	}
	return x && json_set(e, "extra", x) == 0 ? 0 : -1;
}

static struct json *load_entries(struct img *img, const struct img_kind_desc *k, bool pretty, bool nopl)
{
	struct json *entries = json_new(JSON_ARRAY);
	bool last = false;

	while (entries && !last) {
		bool first = entries->n == 0;
		ProtobufCMessage *m;
		int ret = img_read(img, first && k->head ? k->head : k->entry, &m);
		if (ret <= 0) {
			if (ret < 0) {
				json_free(entries);
				entries = NULL;
			}
			break;
		}
		struct json *e = pb_to_json(m, pretty);
		bool failed = !e || load_extra(img, k, m, first, pretty, nopl, e, &last) < 0;
		if (failed) {
			json_free(e);
		} else if (json_push(entries, e) < 0) {
			pr_err("out of memory reading %s", img->name);
			failed = true;
		}
		if (failed) {
			json_free(entries);
			entries = NULL;
		}
		img_free(m);
	}
	return entries;
}

struct json *crit_load(struct img *img, enum img_kind kind, bool pretty, bool nopl)
{
	const struct img_kind_desc *k = &img_kinds[kind];
	struct json *image = json_new(JSON_OBJECT), *entries;

	if (!image || json_set(image, "magic", json_str(k->magic_name)) < 0) {
		json_free(image);
		pr_err("out of memory reading %s", img->name);
		return NULL;
	}
	entries = load_entries(img, k, pretty, nopl);
	if (!entries || json_set(image, "entries", entries) < 0) {
		if (entries)
			pr_err("out of memory reading %s", img->name);
		json_free(image);
		return NULL;
	}
	return image;
}

/* ---- JSON to image ---- */

static int kind_by_magic_name(const char *name)
{
	for (int k = 0; k < IMG_NR_KINDS; k++)
		if (img_kinds[k].magic_name && !strcmp(img_kinds[k].magic_name, name))
			return k;
	return -1;
}

/* x (base64 bytes, or nothing) raw into img, cut or padded with zeros to
 * len when len is not -1. */
static int write_data(struct img *img, const struct json *x, int64_t len, const char *where)
{
	size_t n;

	if (!x || (x->type == JSON_STRING && !x->len))
		return 0;
	uint8_t *data = x->type == JSON_STRING ? base64_decode(x->text, x->len, &n) : NULL;
	if (!data) {
		pr_err("%s: its extra is not base64", where);
		return -1;
	}
	if (len >= 0 && (size_t)len > n) {
		uint8_t *d = realloc(data, len);
		if (!d) {
			free(data);
			pr_err("out of memory writing %s", img->name);
			return -1;
		}
		memset(d + n, 0, len - n);
		data = d;
	}
	int ret = img_write_raw(img, data, len >= 0 ? (size_t)len : n);
	free(data);
	return ret;
}

static int write_extra(struct img *img, const struct json *e, const char *where)
{
	return write_data(img, json_get(e, "extra"), -1, where);
}

static const uint8_t zeros[8];

static int sem_store(struct img *img, const IpcSemEntry *e, const struct json *x, const char *where)
{
	if (!x || x->type != JSON_ARRAY || x->n != e->nsems) {
		pr_err("%s: its extra is not the set's %u values", where, e->nsems);
		return -1;
	}
	for (size_t i = 0; i < x->n; i++) {
		uint16_t v = x->items[i]->type == JSON_NUMBER ? (uint16_t)strtoul(x->items[i]->text, NULL, 10) : 0;
		if (img_write_raw(img, &v, 2) < 0)
			return -1;
	}
	return img_write_raw(img, zeros, ROUND_UP(x->n * 2, 8) - x->n * 2);
}

static int msg_store(struct img *img, const struct json *x, const char *where)
{
	if (!x)
		return 0;
	if (x->type != JSON_ARRAY || x->n % 2) {
		pr_err("%s: its extra is not a list of messages and their bytes", where);
		return -1;
	}
	for (size_t i = 0; i < x->n; i += 2) {
		IpcMsg *m = (IpcMsg *)pb_from_json(&ipc_msg__descriptor, x->items[i], where);
		if (!m)
			return -1;
		int ret = img_write(img, &m->base);
		uint32_t msize = m->msize;
		protobuf_c_message_free_unpacked(&m->base, NULL);
		if (ret < 0 || write_data(img, x->items[i + 1], ROUND_UP(msize, 8), where) < 0)
			return -1;
	}
	return 0;
}

/* A TCP stream's "inq" then "outq". */
static int write_queues(struct img *img, const struct json *e, const char *where)
{
	const struct json *x = json_get(e, "extra");
	const char *names[] = { "inq", "outq" };

	for (int i = 0; x && i < 2; i++) {
		const struct json *q = json_get(x, names[i]);
		size_t n;
		uint8_t *data = q && q->type == JSON_STRING ? base64_decode(q->text, q->len, &n) : NULL;
		if (!data) {
			pr_err("%s: its extra's %s is not base64", where, names[i]);
			return -1;
		}
		int ret = img_write_raw(img, data, n);
		free(data);
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int sysv_store(struct img *img, const struct img_kind_desc *k, const ProtobufCMessage *m,
		      const struct json *e, const char *where)
{
	const struct json *x = json_get(e, "extra");
	if (k == &img_kinds[IMG_IPCNS_SHM]) {
		const IpcShmEntry *se = (const IpcShmEntry *)m;
		bool none = se->has_in_pagemaps && se->in_pagemaps;
		return none ? 0 : write_data(img, x, ROUND_UP(se->size, 4), where);
	}
	if (k == &img_kinds[IMG_IPCNS_SEM])
		return sem_store(img, (const IpcSemEntry *)m, x, where);
	return msg_store(img, x, where);
}

/* After entry m (the first one if first): its extra, if the kind has one;
 * *last when crit writes no more entries. */
static int store_extra(struct img *img, const struct img_kind_desc *k, const ProtobufCMessage *m,
		       const struct json *e, bool first, const char *where, bool *last)
{
	uint64_t chunks = 0;

	switch (k->extra) {
	case IMG_EXTRA_EACH:
		return write_extra(img, e, where);
	case IMG_EXTRA_QUEUES:
		return write_queues(img, e, where);
	case IMG_EXTRA_CHUNKS:
		if (first && pb_get_uint(m, "chunks", &chunks) && chunks)
			return 0;
		*last = first;
		return write_extra(img, e, where);
	case IMG_EXTRA_SYSV:
		return sysv_store(img, k, m, e, where);
	default:
		return 0;
	}
}

static int store_entries(struct img *img, const struct img_kind_desc *k, const struct json *entries,
			 const char *from)
{
	bool last = false;

	for (size_t i = 0; i < entries->n && !last; i++) {
		char where[300];
		snprintf(where, sizeof(where), "%s: entry %zu", from, i);
		ProtobufCMessage *m = pb_from_json(i == 0 && k->head ? k->head : k->entry, entries->items[i], where);
		if (!m)
			return -1;
		int ret = img_write(img, m);
		if (!ret)
			ret = store_extra(img, k, m, entries->items[i], i == 0, where, &last);
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int crit_store(const struct json *image, const char *from, int fd, const char *to)
{
	const struct json *magic = json_get(image, "magic"), *entries = json_get(image, "entries");
	struct img img;

	if (!magic || magic->type != JSON_STRING || !entries || entries->type != JSON_ARRAY) {
		pr_err("%s: not an image: it needs a \"magic\" and a list of \"entries\"", from);
		close(fd);
		return -1;
	}
	int kind = kind_by_magic_name(magic->text);
	if (kind < 0) {
		pr_err("%s: magic %s is no kind of image stasis knows", from, magic->text);
		close(fd);
		return -1;
	}
	if (img_create_fd(&img, fd, to, kind) < 0)
		return -1;
	if (store_entries(&img, &img_kinds[kind], entries, from) < 0) {
		img_abort(&img);
		return -1;
	}
	return img_finish(&img);
}
