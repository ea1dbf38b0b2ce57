/* TLS for the page server (ps_tls.h), with CRIU's defaults: the same
 * certificate files under /etc/pki, a client certificate required by
 * the server, and GnuTLS's default priorities. */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "pagexfer/ps_tls.h"
#include "util/log.h"

#define PKI_CACERT "/etc/pki/CA/cacert.pem"
#define PKI_CACRL "/etc/pki/CA/cacrl.pem"
#define PKI_CERT "/etc/pki/criu/cert.pem"
#define PKI_KEY "/etc/pki/criu/private/key.pem"

static gnutls_session_t session;
static gnutls_certificate_credentials_t creds;
static bool active;

static int tls_fail(const char *what, int err)
{
	pr_err("page server TLS: %s: %s", what, gnutls_strerror(err));
	return -1;
}

static int load_creds(const struct opts *o)
{
	const char *cacert = o->tls_cacert ? o->tls_cacert : PKI_CACERT;
	const char *cacrl = o->tls_cacrl ? o->tls_cacrl : PKI_CACRL;
	const char *cert = o->tls_cert ? o->tls_cert : PKI_CERT;
	const char *key = o->tls_key ? o->tls_key : PKI_KEY;
	int r;

	if ((r = gnutls_certificate_allocate_credentials(&creds)) != GNUTLS_E_SUCCESS)
		return tls_fail("can't allocate credentials", r);
	/* no CA given: the system's trust, and CRIU's file if there is one */
	if (!o->tls_cacert && (r = gnutls_certificate_set_x509_system_trust(creds)) < 0)
		return tls_fail("can't load the system's trusted CAs", r);
	r = gnutls_certificate_set_x509_trust_file(creds, cacert, GNUTLS_X509_FMT_PEM);
	if (r < 0 && o->tls_cacert)
		return tls_fail(o->tls_cacert, r);
	if (r == 0 && o->tls_cacert) {
		pr_err("page server TLS: no CA certificate in %s", cacert);
		return -1;
	}
	if (access(cacrl, R_OK) == 0) {
		if ((r = gnutls_certificate_set_x509_crl_file(creds, cacrl, GNUTLS_X509_FMT_PEM)) < 0)
			return tls_fail(cacrl, r);
	} else if (o->tls_cacrl) {
		pr_perror("page server TLS: can't read --tls-cacrl %s", cacrl);
		return -1;
	}
	if ((r = gnutls_certificate_set_x509_key_file(creds, cert, key, GNUTLS_X509_FMT_PEM)) != GNUTLS_E_SUCCESS) {
		pr_err("page server TLS: certificate %s with key %s: %s", cert, key, gnutls_strerror(r));
		return -1;
	}
	return 0;
}

static int verify_peer(const struct opts *o)
{
	unsigned status;
	const char *name = o->tls_no_cn_verify ? NULL : o->address;
	int r = gnutls_certificate_verify_peers3(session, name, &status);
	if (r != GNUTLS_E_SUCCESS)
		return tls_fail("can't verify the peer", r);
	if (status) {
		gnutls_datum_t why;
		if (gnutls_certificate_verification_status_print(status, gnutls_certificate_type_get(session), &why,
								 0) == 0) {
			pr_err("page server TLS: the peer's certificate is refused: %s", why.data);
			gnutls_free(why.data);
		} else {
			pr_err("page server TLS: the peer's certificate is refused (status %#x)", status);
		}
		return -1;
	}
	return 0;
}

int ps_tls_start(int sk, bool server, const struct opts *o)
{
	int r;
	if (!o->tls)
		return 0;
	signal(SIGPIPE, SIG_IGN);	/* a peer gone is an error returned, not a death */
	if (load_creds(o) < 0)
		goto err;
	if ((r = gnutls_init(&session, server ? GNUTLS_SERVER : GNUTLS_CLIENT)) != GNUTLS_E_SUCCESS) {
		tls_fail("can't start a session", r);
		goto err;
	}
	if ((r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds)) != GNUTLS_E_SUCCESS ||
	    (r = gnutls_set_default_priority(session)) != GNUTLS_E_SUCCESS) {
		tls_fail("can't set up the session", r);
		goto err;
	}
	gnutls_transport_set_int(session, sk);
	if (server) {
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
		gnutls_certificate_send_x509_rdn_sequence(session, 1);
	}
	do
		r = gnutls_handshake(session);
	while (r < 0 && !gnutls_error_is_fatal(r) && r != GNUTLS_E_AGAIN);
	if (r < 0) {
		tls_fail("handshake", r);
		goto err;
	}
	active = true;
	if (verify_peer(o) < 0)
		goto err;
	pr_info("page server TLS: session up");
	return 0;
err:
	ps_tls_end(true);
	return -1;
}

void ps_tls_end(bool failed)
{
	if (session) {
		if (active && !failed)
			gnutls_bye(session, GNUTLS_SHUT_RDWR);
		gnutls_deinit(session);
	}
	if (creds)
		gnutls_certificate_free_credentials(creds);
	session = NULL;
	creds = NULL;
	active = false;
}

static ssize_t tls_result(ssize_t r)
{
	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		errno = EAGAIN;
	else if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;	/* the peer went away without its close notify */
	else {
		pr_err("page server TLS: %s", gnutls_strerror(r));
		errno = EPROTO;
	}
	return -1;
}

ssize_t ps_io_send(int sk, const void *buf, size_t len)
{
	if (!active)
		return send(sk, buf, len, MSG_NOSIGNAL);
	return tls_result(gnutls_record_send(session, buf, len));
}

ssize_t ps_io_recv(int sk, void *buf, size_t len)
{
	if (!active)
		return recv(sk, buf, len, 0);
	return tls_result(gnutls_record_recv(session, buf, len));
}
