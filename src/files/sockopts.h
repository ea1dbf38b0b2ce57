/* The generic options of a socket (SOL_SOCKET), as CRIU's sk_opts_entry
 * keeps them: read from a socket at dump, set on its new one at restore
 * (sockopts.c). Only the socket kinds include this. */
#ifndef STASIS_FILES_SOCKOPTS_H
#define STASIS_FILES_SOCKOPTS_H

#include "files/kind.h"

/* A new sk_opts_entry (zeroed, malloc'ed) or NULL. */
SkOptsEntry *skopts_new(void);

/* Fills so from socket sk of family; its parts are malloc'ed (freed with
 * the entry). 0, or -1 with errno set. */
int skopts_dump(int sk, int family, SkOptsEntry *so);

/* Sets so on sk, but SO_REUSEADDR and SO_REUSEPORT (the caller sets
 * those once every socket of a port is bound). what names the socket in
 * errors; 0 or -1 (reported). */
int skopts_restore(int sk, const SkOptsEntry *so, const char *what);

#endif
