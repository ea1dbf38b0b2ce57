/* TLS for the page server (ps_tls.h), with CRIU's defaults: the same
 * certificate files under /etc/pki, a client certificate required by
 * the server, and GnuTLS's default priorities. The files are read here
 * (read_pem) and GnuTLS gets their bytes. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pagexfer/tls_lib.h"

#include "pagexfer/ps_tls.h"
#include "util/fsop.h"
#include "util/log.h"

#define PKI_CACERT "/etc/pki/CA/cacert.pem"
#define PKI_CACRL "/etc/pki/CA/cacrl.pem"
#define PKI_CERT "/etc/pki/criu/cert.pem"
#define PKI_KEY "/etc/pki/criu/private/key.pem"

static gnutls_session_t session;
static gnutls_certificate_credentials_t creds;
static bool active;
static const struct tls_lib *T;	/* loaded by the first --tls */

static int tls_fail(const char *what, int err)
{
	pr_err("page server TLS: %s: %s", what, T->strerror(err));
	return -1;
}

/* A PEM file read whole, with the rights of whom we work for: through
 * util/fsop, so over RPC a non-root client's files are opened by the
 * broker as that client, and a key it could not read itself (root's) is
 * refused, not lent. Regular files only (a FIFO can't hang us), and no
 * bigger than any chain, key or CRL is. 0, or -1 with errno (not said). */
#define PEM_MAX (8 << 20)

static void free_pem(gnutls_datum_t *d)
{
	if (d->data) {
		explicit_bzero(d->data, d->size);	/* a private key among them */
		free(d->data);
	}
	*d = (gnutls_datum_t){ NULL, 0 };
}

static int read_pem(const char *path, gnutls_datum_t *d)
{
	struct stat st;
	int fd = fs_open_path_read(path), err = 0;

	*d = (gnutls_datum_t){ NULL, 0 };
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (st.st_size > PEM_MAX)
		err = EFBIG;
	else if (!(d->data = malloc(st.st_size + 1)))
		err = ENOMEM;
	while (!err && d->size < (size_t)st.st_size) {
		ssize_t n = read(fd, d->data + d->size, st.st_size - d->size);
		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n == 0)
			break;	/* shrunk since: what is there */
		else if (n > 0)
			d->size += n;
	}
	close(fd);
	if (err) {
		free_pem(d);
		errno = err;
		return -1;
	}
	return 0;
}

/* read_pem's failure, said with what the file was for. */
static int pem_unreadable(const char *what, const char *path)
{
	if (errno == EINVAL)
		pr_err("page server TLS: the %s %s is not a regular file", what, path);
	else
		pr_perror("page server TLS: can't read the %s %s", what, path);
	return -1;
}

static int read_pem_said(const char *path, const char *what, gnutls_datum_t *d)
{
	return read_pem(path, d) == 0 ? 0 : pem_unreadable(what, path);
}

static int pem_fail(const char *what, const char *path, int err)
{
	pr_err("page server TLS: the %s %s: %s", what, path, T->strerror(err));
	return -1;
}

/* The CAs: given, that file only; else the system's trust and CRIU's
 * file if it is there and readable (CRIU's defaults). */
static int load_ca(const struct opts *o)
{
	const char *path = o->tls_cacert ? o->tls_cacert : PKI_CACERT;
	gnutls_datum_t d;
	int r;

	if (!o->tls_cacert && (r = T->certificate_set_x509_system_trust(creds)) < 0)
		return tls_fail("can't load the system's trusted CAs", r);
	if (read_pem(path, &d) < 0)
		return o->tls_cacert ? pem_unreadable("CA certificate", path) : 0;
	r = T->certificate_set_x509_trust_mem(creds, &d, GNUTLS_X509_FMT_PEM);
	free_pem(&d);
	if (r < 0 && o->tls_cacert)
		return pem_fail("CA certificate", path, r);
	if (r == 0 && o->tls_cacert) {
		pr_err("page server TLS: no CA certificate in %s", path);
		return -1;
	}
	return 0;
}

/* The CRL: given, it must be read; CRIU's default only if it is there. */
static int load_crl(const struct opts *o)
{
	const char *path = o->tls_cacrl ? o->tls_cacrl : PKI_CACRL;
	gnutls_datum_t d;
	int r;

	if (read_pem(path, &d) < 0)
		return o->tls_cacrl ? pem_unreadable("CA's revocation list", path) : 0;
	r = T->certificate_set_x509_crl_mem(creds, &d, GNUTLS_X509_FMT_PEM);
	free_pem(&d);
	return r < 0 ? pem_fail("CA's revocation list", path, r) : 0;
}

static int load_key(const struct opts *o)
{
	const char *cert = o->tls_cert ? o->tls_cert : PKI_CERT;
	const char *key = o->tls_key ? o->tls_key : PKI_KEY;
	gnutls_datum_t dc, dk;
	int r;

	if (read_pem_said(cert, "certificate", &dc) < 0)
		return -1;
	if (read_pem_said(key, "private key", &dk) < 0) {
		free_pem(&dc);
		return -1;
	}
	r = T->certificate_set_x509_key_mem(creds, &dc, &dk, GNUTLS_X509_FMT_PEM);
	free_pem(&dc);
	free_pem(&dk);
	if (r != GNUTLS_E_SUCCESS) {
		pr_err("page server TLS: certificate %s with key %s: %s", cert, key, T->strerror(r));
		return -1;
	}
	return 0;
}

static int load_creds(const struct opts *o)
{
	int r = T->certificate_allocate_credentials(&creds);
	if (r != GNUTLS_E_SUCCESS)
		return tls_fail("can't allocate credentials", r);
	return load_ca(o) < 0 || load_crl(o) < 0 || load_key(o) < 0 ? -1 : 0;
}

static int verify_peer(const struct opts *o)
{
	unsigned status;
	const char *name = o->tls_no_cn_verify ? NULL : o->address;
	int r = T->certificate_verify_peers3(session, name, &status);
	if (r != GNUTLS_E_SUCCESS)
		return tls_fail("can't verify the peer", r);
	if (status) {
		gnutls_datum_t why;
		if (T->certificate_verification_status_print(status, T->certificate_type_get(session), &why,
								 0) == 0) {
			pr_err("page server TLS: the peer's certificate is refused: %s", why.data);
			(*T->free)(why.data);
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
	if (!T && !(T = tls_lib()))
		return -1;
	signal(SIGPIPE, SIG_IGN);	/* a peer gone is an error returned, not a death */
	if (load_creds(o) < 0)
		goto err;
	if ((r = T->init(&session, server ? GNUTLS_SERVER : GNUTLS_CLIENT)) != GNUTLS_E_SUCCESS) {
		tls_fail("can't start a session", r);
		goto err;
	}
	if ((r = T->credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds)) != GNUTLS_E_SUCCESS ||
	    (r = T->set_default_priority(session)) != GNUTLS_E_SUCCESS) {
		tls_fail("can't set up the session", r);
		goto err;
	}
	T->transport_set_int2(session, sk, sk);
	if (server) {
		T->certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
		T->certificate_send_x509_rdn_sequence(session, 1);
	}
	do
		r = T->handshake(session);
	while (r < 0 && !T->error_is_fatal(r) && r != GNUTLS_E_AGAIN);
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
			T->bye(session, GNUTLS_SHUT_RDWR);
		T->deinit(session);
	}
	if (creds)
		T->certificate_free_credentials(creds);
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
		pr_err("page server TLS: %s", T->strerror(r));
		errno = EPROTO;
	}
	return -1;
}

ssize_t ps_io_send(int sk, const void *buf, size_t len)
{
	if (!active)
		return send(sk, buf, len, MSG_NOSIGNAL);
	return tls_result(T->record_send(session, buf, len));
}

ssize_t ps_io_sendv(int sk, const struct iovec *iov, int n)
{
	if (!active) {
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
		return sendmsg(sk, &mh, MSG_NOSIGNAL);
	}
	return ps_io_send(sk, iov->iov_base, iov->iov_len);
}

bool ps_io_pending(void)
{
	return active && T->record_check_pending(session) > 0;
}

ssize_t ps_io_recv(int sk, void *buf, size_t len)
{
	if (!active)
		return recv(sk, buf, len, 0);
	return tls_result(T->record_recv(session, buf, len));
}
