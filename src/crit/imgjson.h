/* A whole image file as crit's JSON: {"magic": "CORE", "entries": [...]},
 * the entries as crit/pbjson.h shows messages, a head (pagemap, ghost
 * file) as the first entry, raw bytes after an entry as its "extra"
 * (base64). The kind of image, its entry types and its extras come from
 * the table of image kinds. */
#ifndef STASIS_CRIT_IMGJSON_H
#define STASIS_CRIT_IMGJSON_H

#include <stdbool.h>

#include "crit/json.h"
#include "image/img.h"

/* The image img (opened past its header, of kind) as JSON; nopl: each
 * extra only its size ("... <4KB>"). NULL (reported) if it can't be read. */
struct json *crit_load(struct img *img, enum img_kind kind, bool pretty, bool nopl);
/* The image a JSON object (read from from) describes, written to fd
 * (closed; named to); -1 (reported) if the object describes none. */
int crit_store(const struct json *image, const char *from, int fd, const char *to);

#endif
