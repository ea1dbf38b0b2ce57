/* libnftables, loaded when first needed (util/dynlib.h): the nftables
 * network lock and a network namespace's ruleset. */
#ifndef STASIS_NFT_LIB_H
#define STASIS_NFT_LIB_H

#include <stdbool.h>
#include <nftables/libnftables.h>

#define NFT_LIB_FUNCS(X) X(ctx_new) X(ctx_free) X(ctx_buffer_output) X(ctx_buffer_error) \
	X(ctx_get_error_buffer) X(ctx_set_output) X(run_cmd_from_buffer)

struct nft_lib {
#define NFT_LIB_SLOT(n) __typeof__(nft_##n) *n;
	NFT_LIB_FUNCS(NFT_LIB_SLOT)
#undef NFT_LIB_SLOT
};

/* The library, or NULL when it can't be loaded: reported (one line naming
 * it and `what` needed it), unless quiet. */
const struct nft_lib *nft_lib(const char *what, bool quiet);

#endif
