/* Any protobuf message as crit's JSON object and back, by its protobuf-c
 * descriptor: the fields that are set, in field-number order, enums by
 * name, bytes in base64. Pretty, some numbers are shown as CRIU's .proto
 * options say (crit/pretty.h); that text is taken back too. */
#ifndef STASIS_CRIT_PBJSON_H
#define STASIS_CRIT_PBJSON_H

#include <stdbool.h>
#include <protobuf-c/protobuf-c.h>

#include "crit/json.h"

/* NULL when out of memory (reported). */
struct json *pb_to_json(const ProtobufCMessage *m, bool pretty);
/* A message of type desc (free it with protobuf_c_message_free_unpacked)
 * from its JSON object; NULL (reported, naming where, e.g. "entry 3") if
 * the object doesn't make one. */
ProtobufCMessage *pb_from_json(const ProtobufCMessageDescriptor *desc, const struct json *o, const char *where);
/* The value of m's numeric (or boolean) field name; false if it has none
 * set. */
bool pb_get_uint(const ProtobufCMessage *m, const char *name, uint64_t *v);

#endif
