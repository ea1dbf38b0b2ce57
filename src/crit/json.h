/* JSON values as trees: what crit's images are between an image file and
 * their text. The text is laid out as python's json module does it, so
 * that ours is crit's to the byte. */
#ifndef STASIS_CRIT_JSON_H
#define STASIS_CRIT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	char *text;		/* NUMBER: its literal; STRING: its UTF-8 bytes */
	size_t len;		/* STRING: their count (a NUL may be one of them) */
	struct json **items;	/* ARRAY, OBJECT: the values in order */
	char **keys;		/* OBJECT: their keys */
	size_t n, cap;
};

/* Constructors: NULL when out of memory, which json_push and json_set
 * then turn into their -1, so that a tree is built without a check per
 * value. */
struct json *json_new(enum json_type type);
struct json *json_string(const char *s, size_t len);
struct json *json_str(const char *s);
struct json *json_int(int64_t v);
struct json *json_uint(uint64_t v);
struct json *json_bool(bool b);
/* Appends v (taken over, freed on failure) to an array, or under key to
 * an object; -1 if v is NULL or memory runs out. */
int json_push(struct json *array, struct json *v);
int json_set(struct json *object, const char *key, struct json *v);
/* The value under key; NULL if obj is no object or has none. */
const struct json *json_get(const struct json *obj, const char *key);
void json_free(struct json *v);

/* The integer a number is: -1 if it is none or out of range (a number
 * with a fraction or exponent counts when it is whole, as python's int()
 * takes it). */
int json_to_int64(const struct json *v, int64_t *out);
int json_to_uint64(const struct json *v, uint64_t *out);

/* The text of v, malloc'ed (NULL: out of memory): indent 0 puts it on
 * one line with ", " and ": ", else one item a line, indent spaces a
 * level. Anything but printable ASCII in a string is escaped. */
char *json_dump(const struct json *v, int indent, size_t *len);
/* The tree text holds; NULL with the reason in err if it is no JSON. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);

#endif
