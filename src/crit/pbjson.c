#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crit/codec.h"
#include "crit/pbjson.h"
#include "crit/pretty.h"
#include "util/log.h"

/* ---- where a field's value lives in a protobuf-c message ---- */

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;	/* 32-bit numbers, enums, floats */
	}
}

static bool is_signed(ProtobufCType t)
{
	return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 || t == PROTOBUF_C_TYPE_SFIXED32 ||
	       t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64;
}

static bool is_integer(ProtobufCType t)
{
	return is_signed(t) || t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 ||
	       t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
}

static void *at(const ProtobufCMessage *m, unsigned off)
{
	return (char *)m + off;
}

/* Optional fields with a has_ flag: all but strings and messages, whose
 * pointer says it (oneof members have a case number instead). */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	       !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
}

/* How many values f has in m: 0 when unset (as python's ListFields). */
static size_t count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(size_t *)at(m, f->quantifier_offset);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(uint32_t *)at(m, f->quantifier_offset) == f->id;
	if (has_flag(f))
		return *(protobuf_c_boolean *)at(m, f->quantifier_offset) != 0;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		const void *p = *(void **)at(m, f->offset);
		return p && p != f->default_value;
	}
	return 1;
}

/* The first (or only) value of f in m. */
static const void *values(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_REPEATED ? *(void **)at(m, f->offset) : at(m, f->offset);
}

static void get_int(ProtobufCType t, const void *p, int64_t *s, uint64_t *u)
{
	switch (elem_size(t)) {
	case 8:
		*u = *(const uint64_t *)p;
		*s = (int64_t)*u;
		return;
	default:
		*u = *(const uint32_t *)p;
		*s = *(const int32_t *)p;
	}
}

bool pb_get_uint(const ProtobufCMessage *m, const char *name, uint64_t *v)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	int64_t s;
	if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || !count(m, f))
		return false;
	if (f->type == PROTOBUF_C_TYPE_BOOL)
		*v = *(protobuf_c_boolean *)at(m, f->offset) != 0;
	else if (is_integer(f->type))
		get_int(f->type, at(m, f->offset), &s, v);
	else
		return false;
	return true;
}

/* ---- message to JSON ---- */

static struct json *message_to_json(const ProtobufCMessage *m, bool pretty, bool hex);

static struct json *take_text(char *s, size_t len)
{
	struct json *v = s ? json_string(s, len) : NULL;
	free(s);
	return v;
}

static struct json *text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct json *text(const char *fmt, ...)
{
	char s[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	return json_str(s);
}

/* A number shown pretty: hex, flags, a device, a value's name. */
static struct json *pretty_int(const struct pretty_field *pf, bool hex, bool sign, int64_t s, uint64_t u)
{
	if (hex && sign && s < 0)
		return text("-0x%" PRIx64, -(uint64_t)s);
	if (hex)
		return text("0x%" PRIx64, u);
	if (!pf)
		return sign ? json_int(s) : json_uint(u);
	switch (pf->kind) {
	case PRETTY_DEV:
		return text("%" PRIu64 ":%" PRIu64, u >> 20, u & ((1u << 20) - 1));
	case PRETTY_ODEV:	/* glibc's major() and minor() */
		return text("%" PRIu64 ":%" PRIu64, ((u >> 8) & 0xfff) | ((u >> 32) & ~(uint64_t)0xfff),
			    (u & 0xff) | ((u >> 12) & ~(uint64_t)0xff));
	case PRETTY_FLAGS: {
		char *f = pretty_flags(pf->names, u);
		return take_text(f, f ? strlen(f) : 0);
	}
	case PRETTY_DICT:
	case PRETTY_ENUM:
		for (const struct pretty_name *n = pf->names; n->name; n++)
			if (n->value == u)
				return json_str(n->name);
		break;
	default:
		break;
	}
	return sign ? json_int(s) : json_uint(u);
}

static struct json *value_to_json(const ProtobufCFieldDescriptor *f, const struct pretty_field *pf, const void *p,
				  bool pretty, bool hex)
{
	int64_t s;
	uint64_t u;
	size_t n;

	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		return json_bool(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		return ev ? json_str(ev->name) : json_int(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *str = *(char *const *)p;
		return json_str(str ? str : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		char *t = pf && pf->kind == PRETTY_UNIX_NAME ? qp_encode(b->data, b->len, &n) :
							       base64_encode(b->data, b->len, &n);
		return take_text(t, t ? n : 0);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return message_to_json(*(ProtobufCMessage *const *)p, pretty, hex);
	case PROTOBUF_C_TYPE_FLOAT:
		return text("%.9g", *(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return text("%.17g", *(const double *)p);
	default:
		break;
	}
	get_int(f->type, p, &s, &u);
	if (pf && pf->kind == PRETTY_ENUM)
		return pretty_int(pf, false, is_signed(f->type), s, u);
	if (pretty && (hex || pf))
		return pretty_int(pf, hex, is_signed(f->type), s, u);
	return is_signed(f->type) ? json_int(s) : json_uint(u);
}

/* An address as crit shows it: a list of its text, IPv4 for one word
 * and IPv6 for more (CRIU's pb2dict takes the first four). */
static struct json *ipaddr_to_json(const uint32_t *w, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	uint32_t six[4] = { 0 };
	struct json *v = json_new(JSON_ARRAY);

	memcpy(six, w, (n < 4 ? n : 4) * sizeof(*w));
	if (!v || !inet_ntop(n == 1 ? AF_INET : AF_INET6, six, a, sizeof(a)) || json_push(v, json_str(a)) < 0) {
		json_free(v);
		return NULL;
	}
	return v;
}

/* hex: the field holding m is marked hex, which all its numbers are. */
static struct json *message_to_json(const ProtobufCMessage *m, bool pretty, bool hex)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	struct json *o = json_new(JSON_OBJECT);

	for (unsigned i = 0; o && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct pretty_field *pf = pretty_find(d, f);
		bool fhex = hex || (pf && pf->kind == PRETTY_HEX);
		size_t n = count(m, f), size = elem_size(f->type);
		const char *p = values(m, f);
		struct json *v;

		if (!n)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED && pretty && pf && pf->kind == PRETTY_IPADDR) {
			v = ipaddr_to_json((const uint32_t *)p, n);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			v = json_new(JSON_ARRAY);
			for (size_t k = 0; v && k < n; k++)
				if (json_push(v, value_to_json(f, pf, p + k * size, pretty, fhex)) < 0) {
					json_free(v);
					v = NULL;
				}
		} else {
			v = value_to_json(f, pf, p, pretty, fhex);
		}
		if (json_set(o, f->name, v) < 0) {
			json_free(o);
			o = NULL;
		}
	}
	return o;
}

struct json *pb_to_json(const ProtobufCMessage *m, bool pretty)
{
	struct json *o = message_to_json(m, pretty, false);
	if (!o)
		pr_err("out of memory showing a %s", m->descriptor->name);
	return o;
}

/* ---- JSON to message ---- */

/* As python's int(text, 0): a sign, then 0x, 0o, 0b or decimal digits. */
static int parse_int_text(const char *s, bool *neg, uint64_t *mag)
{
	char *end;
	int base = 10;

	while (*s == ' ')
		s++;
	*neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
		base = s[1] == 'x' || s[1] == 'X' ? 16 : s[1] == 'o' || s[1] == 'O' ? 8 : 2;
		s += 2;
	}
	if (!(*s >= '0' && *s <= '9') && !(base == 16 && *s && strchr("abcdefABCDEF", *s)))
		return -1;
	errno = 0;
	*mag = strtoull(s, &end, base);
	while (*end == ' ')
		end++;
	return errno || *end ? -1 : 0;
}

/* A number's text as pretty showed it: a device, flags, a name, or any
 * number. */
static int int_from_text(const struct pretty_field *pf, const char *s, bool *neg, uint64_t *mag)
{
	unsigned long long major, minor;
	char tail;

	*neg = false;
	switch (pf ? pf->kind : PRETTY_HEX) {
	case PRETTY_DEV:
	case PRETTY_ODEV:
		if (sscanf(s, "%llu:%llu%c", &major, &minor, &tail) != 2)
			return -1;
		if (pf->kind == PRETTY_DEV)
			*mag = major << 20 | minor;
		else
			*mag = (major & 0xfff) << 8 | (major & ~0xfffull) << 32 | (minor & 0xff) |
			       (minor & ~0xffull) << 12;
		return 0;
	case PRETTY_FLAGS:
		return pretty_unflags(pf->names, s, mag);
	case PRETTY_DICT:
	case PRETTY_ENUM:
		for (const struct pretty_name *n = pf->names; n->name; n++)
			if (!strcmp(n->name, s)) {
				*mag = n->value;
				return 0;
			}
		break;
	default:
		break;
	}
	return parse_int_text(s, neg, mag);
}

static int int_from_json(const struct pretty_field *pf, const struct json *v, bool *neg, uint64_t *mag)
{
	int64_t s;
	switch (v->type) {
	case JSON_TRUE:
	case JSON_FALSE:
		*neg = false;
		*mag = v->type == JSON_TRUE;
		return 0;
	case JSON_STRING:
		return int_from_text(pf, v->text, neg, mag);
	case JSON_NUMBER:
		if (json_to_uint64(v, mag) == 0) {
			*neg = false;
			return 0;
		}
		if (json_to_int64(v, &s) < 0)
			return -1;
		*neg = true;
		*mag = -(uint64_t)s;
		return 0;
	default:
		return -1;
	}
}

/* Stores a number of f's type at p; -1 if it is out of the type's range. */
static int put_int(ProtobufCType t, void *p, bool neg, uint64_t mag)
{
	bool wide = elem_size(t) == 8;
	uint64_t limit = wide ? (is_signed(t) ? INT64_MAX : UINT64_MAX) : (is_signed(t) ? INT32_MAX : UINT32_MAX);

	if (neg && mag == 0)
		neg = false;
	if (neg && (!is_signed(t) || mag - 1 > limit))
		return -1;
	if (!neg && mag > limit)
		return -1;
	uint64_t v = neg ? -mag : mag;
	if (wide)
		*(uint64_t *)p = v;
	else
		*(uint32_t *)p = (uint32_t)v;
	return 0;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *d, const struct json *o,
					   const char *where);

static int bad(const char *where, const char *field, const char *what)
{
	pr_err("%s: field %s: %s", where, field, what);
	return -1;
}

static int value_from_json(const ProtobufCFieldDescriptor *f, const struct pretty_field *pf, const struct json *v,
			   void *p, const char *where)
{
	bool neg;
	uint64_t mag;
	size_t n;

	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (v->type != JSON_TRUE && v->type != JSON_FALSE && int_from_json(NULL, v, &neg, &mag) < 0)
			return bad(where, f->name, "not a boolean");
		*(protobuf_c_boolean *)p = v->type == JSON_TRUE || (v->type != JSON_FALSE && mag);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = v->type == JSON_STRING ?
			protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, v->text) : NULL;
		int64_t num;
		if (ev)
			*(int *)p = ev->value;
		else if (json_to_int64(v, &num) == 0 && num >= INT32_MIN && num <= INT32_MAX)
			*(int *)p = num;
		else
			return bad(where, f->name, "not one of its enum's names");
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING:
		if (v->type != JSON_STRING || strlen(v->text) != v->len)
			return bad(where, f->name, "not a string (without NULs)");
		return (*(char **)p = strdup(v->text)) ? 0 : bad(where, f->name, "out of memory");
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		if (v->type != JSON_STRING)
			return bad(where, f->name, "not a string");
		b->data = pf && pf->kind == PRETTY_UNIX_NAME ? qp_decode(v->text, v->len, &n) :
							       base64_decode(v->text, v->len, &n);
		b->len = b->data ? n : 0;
		return b->data ? 0 : bad(where, f->name, "not base64");
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		char sub[256];
		snprintf(sub, sizeof(sub), "%s: %s", where, f->name);
		*(ProtobufCMessage **)p = message_from_json(f->descriptor, v, sub);
		return *(ProtobufCMessage **)p ? 0 : -1;
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return bad(where, f->name, "floating point is not supported");
	default:
		break;
	}
	if (int_from_json(pf, v, &neg, &mag) < 0 || put_int(f->type, p, neg, mag) < 0)
		return bad(where, f->name, "not a number of its type");
	return 0;
}

/* ["127.0.0.1"] or ["::1"], as ipaddr_to_json shows them: one word or four. */
static int ipaddr_from_json(const ProtobufCFieldDescriptor *f, const struct json *v, ProtobufCMessage *m,
			    const char *where)
{
	uint32_t w[4];
	size_t k;

	if (v->n != 1 || f->type != PROTOBUF_C_TYPE_UINT32)
		return bad(where, f->name, "not one address");
	if (inet_pton(AF_INET, v->items[0]->text, w) == 1)
		k = 1;
	else if (inet_pton(AF_INET6, v->items[0]->text, w) == 1)
		k = 4;
	else
		return bad(where, f->name, "not an IPv4 or IPv6 address");
	uint32_t *arr = malloc(k * sizeof(*arr));
	if (!arr)
		return bad(where, f->name, "out of memory");
	memcpy(arr, w, k * sizeof(*arr));
	*(void **)at(m, f->offset) = arr;
	*(size_t *)at(m, f->quantifier_offset) = k;
	return 0;
}

static int repeated_from_json(const ProtobufCFieldDescriptor *f, const struct pretty_field *pf,
			      const struct json *v, ProtobufCMessage *m, const char *where)
{
	size_t size = elem_size(f->type), *n = at(m, f->quantifier_offset);
	char *arr;

	if (v->type != JSON_ARRAY)
		return bad(where, f->name, "not a list");
	if (!v->n)
		return 0;
	if (pf && pf->kind == PRETTY_IPADDR && v->items[0]->type == JSON_STRING)
		return ipaddr_from_json(f, v, m, where);
	arr = calloc(v->n, size);
	if (!arr)
		return bad(where, f->name, "out of memory");
	*(void **)at(m, f->offset) = arr;
	/* counted as they are made: a failure frees only what was made */
	for (size_t i = 0; i < v->n; i++, (*n)++)
		if (value_from_json(f, pf, v->items[i], arr + i * size, where) < 0)
			return -1;
	return 0;
}

static int field_from_json(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
			   const struct json *v, ProtobufCMessage *m, const char *where)
{
	const struct pretty_field *pf = pretty_find(d, f);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return repeated_from_json(f, pf, v, m, where);
	if (value_from_json(f, pf, v, at(m, f->offset), where) < 0)
		return -1;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)at(m, f->quantifier_offset) = f->id;
	else if (has_flag(f))
		*(protobuf_c_boolean *)at(m, f->quantifier_offset) = 1;
	return 0;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *d, const struct json *o,
					   const char *where)
{
	ProtobufCMessage *m;

	if (o->type != JSON_OBJECT) {
		pr_err("%s: a %s must be an object", where, d->name);
		return NULL;
	}
	m = calloc(1, d->sizeof_message);
	if (!m) {
		pr_err("%s: out of memory", where);
		return NULL;
	}
	protobuf_c_message_init(d, m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct json *v = json_get(o, f->name);
		if (!v && f->label == PROTOBUF_C_LABEL_REQUIRED) {
			bad(where, f->name, "missing (it is required)");
			goto err;
		}
		if (v && field_from_json(d, f, v, m, where) < 0)
			goto err;
	}
	return m;
err:
	protobuf_c_message_free_unpacked(m, NULL);
	return NULL;
}

ProtobufCMessage *pb_from_json(const ProtobufCMessageDescriptor *desc, const struct json *o, const char *where)
{
	return message_from_json(desc, o, where);
}
