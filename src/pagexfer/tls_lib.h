/* GnuTLS, loaded when first needed (util/dynlib.h): the page server's
 * --tls. */
#ifndef STASIS_TLS_LIB_H
#define STASIS_TLS_LIB_H

#include <gnutls/gnutls.h>

#define TLS_LIB_FUNCS(X) X(bye) X(certificate_allocate_credentials) X(certificate_free_credentials) \
	X(certificate_send_x509_rdn_sequence) X(certificate_server_set_request) \
	X(certificate_set_x509_crl_mem) X(certificate_set_x509_key_mem) \
	X(certificate_set_x509_system_trust) X(certificate_set_x509_trust_mem) X(certificate_type_get) \
	X(certificate_verification_status_print) X(certificate_verify_peers3) X(credentials_set) \
	X(deinit) X(error_is_fatal) X(handshake) X(init) X(record_check_pending) X(record_recv) X(record_send) \
	X(set_default_priority) X(strerror) X(transport_set_int2)

struct tls_lib {
#define TLS_LIB_SLOT(n) __typeof__(gnutls_##n) *n;
	TLS_LIB_FUNCS(TLS_LIB_SLOT)
#undef TLS_LIB_SLOT
	gnutls_free_function *free;	/* a variable of the library's, not a function */
};

/* The library, or NULL when it can't be loaded (reported: one line
 * naming it, for --tls). */
const struct tls_lib *tls_lib(void);

#endif
