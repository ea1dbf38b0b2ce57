/* Build-ids of ELF files (the GNU build-id note), kept with a regular
 * file's entry so that a restore knows the file it reopens is the one
 * the process had: a library rebuilt since the dump, even of the same
 * size, is refused instead of run with the old one's memory. As CRIU's
 * --file-validation buildid (its default; filesize: sizes only): the
 * bytes of the note, zero-padded to 32-bit words in RegFileEntry's
 * build_id. */
#ifndef STASIS_BUILDID_H
#define STASIS_BUILDID_H

#include <stdbool.h>

#include "files.pb-c.h"

/* The build-id of the ELF file open at fd (readable), if it has one,
 * into r; nothing if not (not ELF, no note, unreadable). -1 only when
 * out of memory (said). */
int buildid_save(RegFileEntry *r, int fd);
/* The file reopened at fd against r's build-id: 0 if it matches, or
 * either side has none (the size was checked); -1 (said, naming who and
 * the file) if it differs. */
int buildid_check(const RegFileEntry *r, int fd, const char *who);

#endif
