/* RPC framing: one protobuf message per SOCK_SEQPACKET record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rpc/rpc.h"
#include "util/log.h"
#include "util/scm.h"

int rpc_recv(int sk, CriuReq **req)
{
	uint8_t probe;
	ssize_t len, n;

	*req = NULL;
	/* MSG_TRUNC makes recv tell the whole record's length. */
	do
		len = recv(sk, &probe, 1, MSG_PEEK | MSG_TRUNC);
	while (len < 0 && errno == EINTR);
	if (len == 0)
		return 0;
	if (len < 0) {
		if (errno == ECONNRESET)
			return 0;
		pr_perror("rpc: can't read a request");
		return -1;
	}
	if ((size_t)len > RPC_MAX_MSG) {
		recv(sk, &probe, 1, 0);	/* drop it */
		pr_err("rpc: request of %zd bytes is over the %u byte limit", len, RPC_MAX_MSG);
		return -1;
	}
	uint8_t *buf = malloc(len);
	if (!buf) {
		recv(sk, &probe, 1, 0);
		pr_err("rpc: out of memory for a request of %zd bytes", len);
		return -1;
	}
	do
		n = recv(sk, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n != len) {
		free(buf);
		pr_err("rpc: request truncated (%zd of %zd bytes)", n, len);
		return n == 0 ? 0 : -1;
	}
	*req = criu_req__unpack(NULL, len, buf);
	free(buf);
	if (!*req) {
		pr_err("rpc: malformed request (%zd bytes that are not a criu_req)", len);
		return -1;
	}
	return 1;
}

int rpc_send(int sk, const CriuResp *resp)
{
	return rpc_send_with_fd(sk, resp, -1);
}

int rpc_send_with_fd(int sk, const CriuResp *resp, int fd)
{
	size_t len = criu_resp__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -1;
	criu_resp__pack(resp, buf);
	ssize_t n = scm_send(sk, buf, len, &fd, fd >= 0);
	free(buf);
	if (n != (ssize_t)len) {
		pr_perror("rpc: can't send the reply");
		return -1;
	}
	return 0;
}

int rpc_send_error(int sk, CriuReqType type, int err, const char *msg)
{
	CriuResp resp = CRIU_RESP__INIT;
	resp.type = type;
	resp.success = false;
	resp.has_cr_errno = err != 0;
	resp.cr_errno = err;
	resp.cr_errmsg = (char *)(msg && *msg ? msg : NULL);
	return rpc_send(sk, &resp);
}
