/* The owner of an open file description's signals (F_SETOWN_EX,
 * F_SETSIG) and O_ASYNC, for every kind of file (fown.c). */
#ifndef STASIS_FILES_FOWN_H
#define STASIS_FILES_FOWN_H

#include "files/kind.h"

/* Fills the fown_entry of fe, just dumped from fd f; 0 or -1 (reported). */
int fown_dump(const struct file_table *t, const struct fd_facts *f, FileEntry *fe);

#endif
