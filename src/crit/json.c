#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crit/json.h"
#include "util/grow.h"

/* ---- the tree ---- */

struct json *json_new(enum json_type type)
{
	struct json *v = calloc(1, sizeof(*v));
	if (v)
		v->type = type;
	return v;
}

struct json *json_string(const char *s, size_t len)
{
	struct json *v = json_new(JSON_STRING);
	if (!v)
		return NULL;
	v->text = malloc(len + 1);
	if (!v->text) {
		free(v);
		return NULL;
	}
	memcpy(v->text, s, len);
	v->text[len] = 0;
	v->len = len;
	return v;
}

struct json *json_str(const char *s)
{
	return json_string(s, strlen(s));
}

static struct json *number(const char *literal)
{
	struct json *v = json_new(JSON_NUMBER);
	if (v && !(v->text = strdup(literal))) {
		free(v);
		return NULL;
	}
	return v;
}

struct json *json_int(int64_t n)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, n);
	return number(s);
}

struct json *json_uint(uint64_t n)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRIu64, n);
	return number(s);
}

struct json *json_bool(bool b)
{
	return json_new(b ? JSON_TRUE : JSON_FALSE);
}

static int grow(struct json *c)
{
	/* An object's keys hold c->cap too; items may hold more if they could not grow. */
	size_t cap = c->cap;
	if (grow_array(c->items, cap, c->n + 1, 8) < 0 ||
	    (c->type == JSON_OBJECT && grow_array(c->keys, c->cap, c->n + 1, 8) < 0))
		return -1;
	c->cap = cap;
	return 0;
}

int json_push(struct json *array, struct json *v)
{
	if (!v || grow(array) < 0) {
		json_free(v);
		return -1;
	}
	array->items[array->n++] = v;
	return 0;
}

int json_set(struct json *object, const char *key, struct json *v)
{
	char *k = v ? strdup(key) : NULL;
	if (!k || grow(object) < 0) {
		free(k);
		json_free(v);
		return -1;
	}
	object->keys[object->n] = k;
	object->items[object->n++] = v;
	return 0;
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->items[i];
	return NULL;
}

void json_free(struct json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	free(v);
}

/* ---- numbers ---- */

static bool is_integer_literal(const char *s)
{
	return !strpbrk(s, ".eE");
}

int json_to_int64(const struct json *v, int64_t *out)
{
	if (!v || v->type != JSON_NUMBER)
		return -1;
	errno = 0;
	if (is_integer_literal(v->text)) {
		char *end;
		long long n = strtoll(v->text, &end, 10);
		if (errno || *end)
			return -1;
		*out = n;
		return 0;
	}
	double d = strtod(v->text, NULL);
	if (errno || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
		return -1;
	*out = (int64_t)d;
	return 0;
}

int json_to_uint64(const struct json *v, uint64_t *out)
{
	if (!v || v->type != JSON_NUMBER)
		return -1;
	errno = 0;
	if (is_integer_literal(v->text)) {
		char *end;
		if (v->text[0] == '-')
			return -1;
		unsigned long long n = strtoull(v->text, &end, 10);
		if (errno || *end)
			return -1;
		*out = n;
		return 0;
	}
	double d = strtod(v->text, NULL);
	if (errno || d != floor(d) || d < 0 || d >= 18446744073709551616.0)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

/* ---- text out ---- */

struct out {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (grow_array(o->p, o->cap, o->len + n + 1, 4096) < 0) {
		o->failed = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = 0;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char s[32];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	put_str(o, s);
}

/* The code point of the UTF-8 sequence at s (n bytes left) and its
 * length; a byte that starts no valid sequence stands for itself. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *used)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
	uint32_t c = len == 1 ? s[0] : len == 2 ? s[0] & 0x1f : len == 3 ? s[0] & 0x0f : s[0] & 0x07;

	*used = 1;
	if (len <= 1 || len > n)
		return s[0];
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return s[0];
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return s[0];
	*used = len;
	return c;
}

/* As python's json with ensure_ascii: printable ASCII as is, the rest
 * escaped (\uXXXX in lower case, surrogate pairs above the BMP). */
static void put_string(struct out *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, used;

	put_str(o, "\"");
	while (i < n) {
		uint32_t c = utf8_next(p + i, n - i, &used);
		i += used;
		switch (c) {
		case '"': put_str(o, "\\\""); break;
		case '\\': put_str(o, "\\\\"); break;
		case '\n': put_str(o, "\\n"); break;
		case '\r': put_str(o, "\\r"); break;
		case '\t': put_str(o, "\\t"); break;
		case '\b': put_str(o, "\\b"); break;
		case '\f': put_str(o, "\\f"); break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				char ch = c;
				put(o, &ch, 1);
			} else if (c < 0x10000) {
				putf(o, "\\u%04x", c);
			} else {
				c -= 0x10000;
				putf(o, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
			}
		}
	}
	put_str(o, "\"");
}

static void put_newline(struct out *o, int indent, int level)
{
	put_str(o, "\n");
	for (int i = 0; i < indent * level; i++)
		put_str(o, " ");
}

static void put_value(struct out *o, const struct json *v, int indent, int level)
{
	switch (v->type) {
	case JSON_NULL: put_str(o, "null"); return;
	case JSON_FALSE: put_str(o, "false"); return;
	case JSON_TRUE: put_str(o, "true"); return;
	case JSON_NUMBER: put_str(o, v->text); return;
	case JSON_STRING: put_string(o, v->text, v->len); return;
	case JSON_ARRAY:
	case JSON_OBJECT:
		break;
	}
	bool obj = v->type == JSON_OBJECT;
	if (!v->n) {
		put_str(o, obj ? "{}" : "[]");
		return;
	}
	put_str(o, obj ? "{" : "[");
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			put_str(o, indent ? "," : ", ");
		if (indent)
			put_newline(o, indent, level + 1);
		if (obj) {
			put_string(o, v->keys[i], strlen(v->keys[i]));
			put_str(o, ": ");
		}
		put_value(o, v->items[i], indent, level + 1);
	}
	if (indent)
		put_newline(o, indent, level);
	put_str(o, obj ? "}" : "]");
}

char *json_dump(const struct json *v, int indent, size_t *len)
{
	struct out o = { 0 };
	put_value(&o, v, indent, 0);
	put(&o, "", 0);	/* an empty text is still a string */
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

/* ---- text in ---- */

struct in {
	const char *start, *p, *end;
	char *err;
	size_t errlen;
	int depth;
};

#define MAX_DEPTH 200

static struct json *fail(struct in *in, const char *what)
{
	if (!in->err[0])
		snprintf(in->err, in->errlen, "%s at offset %zu", what, (size_t)(in->p - in->start));
	return NULL;
}

static void skip_space(struct in *in)
{
	while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
		in->p++;
}

static bool take(struct in *in, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(in->end - in->p) < n || memcmp(in->p, word, n))
		return false;
	in->p += n;
	return true;
}

static int hex4(struct in *in, uint32_t *c)
{
	*c = 0;
	if (in->end - in->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char h = *in->p++;
		int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		*c = *c << 4 | d;
	}
	return 0;
}

static void put_utf8(struct out *o, uint32_t c)
{
	char b[4];
	size_t n;
	if (c < 0x80) {
		b[0] = c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = 0xc0 | c >> 6;
		b[1] = 0x80 | (c & 0x3f);
		n = 2;
	} else if (c < 0x10000) {
		b[0] = 0xe0 | c >> 12;
		b[1] = 0x80 | ((c >> 6) & 0x3f);
		b[2] = 0x80 | (c & 0x3f);
		n = 3;
	} else {
		b[0] = 0xf0 | c >> 18;
		b[1] = 0x80 | ((c >> 12) & 0x3f);
		b[2] = 0x80 | ((c >> 6) & 0x3f);
		b[3] = 0x80 | (c & 0x3f);
		n = 4;
	}
	put(o, b, n);
}

/* A \u escape (past the "\u"), a surrogate pair's second half with it. */
static int unicode_escape(struct in *in, struct out *o)
{
	uint32_t c, lo;
	if (hex4(in, &c) < 0)
		return -1;
	if (c >= 0xd800 && c < 0xdc00 && in->end - in->p >= 6 && in->p[0] == '\\' && in->p[1] == 'u') {
		const char *back = in->p;
		in->p += 2;
		if (hex4(in, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
		else
			in->p = back;
	}
	put_utf8(o, c);
	return 0;
}

static struct json *parse_string(struct in *in)
{
	struct out o = { 0 };
	in->p++;	/* the opening quote */
	while (in->p < in->end && *in->p != '"') {
		char c = *in->p++;
		if ((unsigned char)c < 0x20)
			goto bad;
		if (c != '\\') {
			put(&o, &c, 1);
			continue;
		}
		if (in->p == in->end)
			goto bad;
		c = *in->p++;
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *e = strchr(from, c);
		if (c && e) {
			put(&o, to + (e - from), 1);
		} else if (c != 'u' || unicode_escape(in, &o) < 0) {
			goto bad;
		}
	}
	if (in->p == in->end)
		goto bad;
	in->p++;
	put(&o, "", 0);
	if (o.failed)
		goto bad;
	struct json *v = json_string(o.p, o.len);
	free(o.p);
	return v ? v : fail(in, "out of memory");
bad:
	free(o.p);
	return fail(in, "bad string");
}

static struct json *parse_number(struct in *in)
{
	const char *s = in->p;
	char lit[64];

	if (in->p < in->end && *in->p == '-')
		in->p++;
	while (in->p < in->end && *in->p && strchr("0123456789.eE+-", *in->p))
		in->p++;
	size_t n = in->p - s;
	if (!n || n >= sizeof(lit))
		return fail(in, "bad number");
	memcpy(lit, s, n);
	lit[n] = 0;
	char *end;
	errno = 0;
	strtod(lit, &end);
	if (*end || (lit[0] == '-' ? lit[1] : lit[0]) == '.')
		return fail(in, "bad number");
	struct json *v = number(lit);
	return v ? v : fail(in, "out of memory");
}

static struct json *parse_value(struct in *in);

static struct json *parse_container(struct in *in, enum json_type type)
{
	char close = type == JSON_OBJECT ? '}' : ']';
	struct json *c = json_new(type);

	if (!c)
		return fail(in, "out of memory");
	if (++in->depth > MAX_DEPTH) {
		json_free(c);
		return fail(in, "nested too deep");
	}
	in->p++;
	skip_space(in);
	if (in->p < in->end && *in->p == close) {
		in->p++;
		in->depth--;
		return c;
	}
	for (;;) {
		struct json *key = NULL;
		if (type == JSON_OBJECT) {
			skip_space(in);
			if (in->p == in->end || *in->p != '"' || !(key = parse_string(in)))
				break;
			skip_space(in);
			if (!take(in, ":")) {
				json_free(key);
				break;
			}
		}
		struct json *v = parse_value(in);
		int ret = type == JSON_OBJECT ? json_set(c, key ? key->text : "", v) : json_push(c, v);
		json_free(key);
		if (ret < 0)
			break;
		skip_space(in);
		if (take(in, ",")) {
			skip_space(in);
			continue;
		}
		if (in->p < in->end && *in->p == close) {
			in->p++;
			in->depth--;
			return c;
		}
		break;
	}
	json_free(c);
	return fail(in, type == JSON_OBJECT ? "bad object" : "bad array");
}

static struct json *parse_value(struct in *in)
{
	skip_space(in);
	if (in->p == in->end)
		return fail(in, "unexpected end");
	switch (*in->p) {
	case '{': return parse_container(in, JSON_OBJECT);
	case '[': return parse_container(in, JSON_ARRAY);
	case '"': return parse_string(in);
	}
	if (take(in, "null"))
		return json_new(JSON_NULL);
	if (take(in, "true"))
		return json_new(JSON_TRUE);
	if (take(in, "false"))
		return json_new(JSON_FALSE);
	return parse_number(in);
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct in in = { text, text, text + len, err, errlen, 0 };
	err[0] = 0;
	struct json *v = parse_value(&in);
	skip_space(&in);
	if (v && in.p != in.end) {
		json_free(v);
		v = fail(&in, "extra data");
	}
	return v;
}
