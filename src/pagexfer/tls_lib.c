/* GnuTLS through dlopen: see tls_lib.h. */
#include "pagexfer/tls_lib.h"
#include "util/dynlib.h"

#ifndef STASIS_GNUTLS_SONAME
#define STASIS_GNUTLS_SONAME "libgnutls.so.30"
#endif

static struct tls_lib lib;

const struct tls_lib *tls_lib(void)
{
	static const struct dynsym syms[] = {
#define TLS_LIB_SYM(n) { "gnutls_" #n, (void **)&lib.n },
		TLS_LIB_FUNCS(TLS_LIB_SYM)
#undef TLS_LIB_SYM
		{ "gnutls_free", (void **)&lib.free },
	};
	return dynlib_load(STASIS_GNUTLS_SONAME, "the page server's --tls", syms, sizeof(syms) / sizeof(syms[0]), false) < 0
		       ? NULL : &lib;
}
