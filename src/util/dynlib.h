/* Libraries loaded only when a command needs them (dlopen): GnuTLS for
 * the page server's --tls, libnftables for the nftables network lock and
 * a network namespace's ruleset. Linked in, with their own dependencies
 * (sixteen libraries), they cost every run of stasis about 2 ms of
 * start-up; most runs use neither. */
#ifndef STASIS_DYNLIB_H
#define STASIS_DYNLIB_H

#include <stdbool.h>

struct dynsym {
	const char *name;
	void **slot;	/* where its address goes */
};

/* Loads the library soname and every symbol of syms (n of them) into
 * their slots, once: later calls return at once. On failure the slots
 * are left alone, the library is closed, one line says what could not be
 * loaded and which feature needed it ("for WHAT"), unless quiet, and it
 * returns -1; the next call tries again. */
int dynlib_load(const char *soname, const char *what, const struct dynsym *syms, int n, bool quiet);

#endif
