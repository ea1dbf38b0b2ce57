/* libnftables through dlopen: see nft_lib.h. */
#include "net/nft_lib.h"
#include "util/dynlib.h"

#ifndef STASIS_NFTABLES_SONAME
#define STASIS_NFTABLES_SONAME "libnftables.so.1"
#endif

static struct nft_lib lib;

const struct nft_lib *nft_lib(const char *what, bool quiet)
{
	static const struct dynsym syms[] = {
#define NFT_LIB_SYM(n) { "nft_" #n, (void **)&lib.n },
		NFT_LIB_FUNCS(NFT_LIB_SYM)
#undef NFT_LIB_SYM
	};
	return dynlib_load(STASIS_NFTABLES_SONAME, what, syms, sizeof(syms) / sizeof(syms[0]), quiet) < 0 ? NULL : &lib;
}
