/* How crit shows some fields: CRIU marks them with field options in its
 * .proto files (hex, flags, device numbers, names of values, the quoting
 * of unix socket names), which protobuf-c's descriptors don't carry. This
 * is that marking for stasis's messages, and the few numbers that are
 * enums in CRIU's. */
#ifndef STASIS_CRIT_PRETTY_H
#define STASIS_CRIT_PRETTY_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

enum pretty_kind {
	PRETTY_HEX,		/* "0x1f"; in a message, all its numbers */
	PRETTY_FLAGS,		/* "PROT_READ | PROT_WRITE | 0x40" */
	PRETTY_DEV,		/* "8:1", as the kernel encodes a dev_t */
	PRETTY_ODEV,		/* "8:1", as glibc's makedev encodes it */
	PRETTY_DICT,		/* a value's name, or the number without one */
	PRETTY_UNIX_NAME,	/* bytes as quoted-printable, pretty or not */
	PRETTY_IPADDR,		/* repeated words of an address: ["::1"] ("127.0.0.1" for one) */
	/* A number CRIU declares an enum (the same varint): its value's
	 * name, pretty or not; the number without one. */
	PRETTY_ENUM,
};

struct pretty_name {
	const char *name;
	uint64_t value;
};

struct pretty_field {
	const char *message, *field;	/* the protobuf names */
	enum pretty_kind kind;
	const struct pretty_name *names;	/* FLAGS, DICT, ENUM; ends with a NULL name */
};

/* f of message d, if marked; NULL if not. */
const struct pretty_field *pretty_find(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f);

/* FLAGS: names of the bits set, the rest in hex, " | " between them
 * ("" for 0); malloc'ed. */
char *pretty_flags(const struct pretty_name *names, uint64_t v);
/* Back: names and numbers (any base) between '|'; -1 if one is neither. */
int pretty_unflags(const struct pretty_name *names, const char *s, uint64_t *v);

#endif
