/* libFuzzer target: one RPC request as a client would send it.
 *
 * The input is the bytes of one SOCK_SEQPACKET record. It goes through a
 * real socket pair into rpc_recv (framing, size limit, criu_req unpack),
 * then through the part of serving that looks at nothing but the request
 * (rpc_job_paths, rpc_job_opts: paths, refused options, inherit_fd,
 * unix_sk_ino...), as the service (non-swrk) and as swrk would. Nothing
 * is dumped or restored, no file is opened: that is the point of the
 * split in rpc.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "util/log.h"

static int sk[2] = { -1, -1 };	/* [0] the client's end, [1] ours */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int big = 4 << 20;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0) {
		perror("fuzz_rpc: socketpair");
		exit(1);
	}
	/* room for records a little over RPC_MAX_MSG (root may force it) */
	setsockopt(sk[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	setsockopt(sk[1], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	log_init(NULL, LOG_ERROR);
	return 0;
}

/* What a bad record may have left behind, so the next input starts clean. */
static void drain(int fd)
{
	static uint8_t junk[1];
	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static void decode(const CriuReq *req, bool swrk)
{
	struct rpc_conn c = { .sk = sk[1], .peer_pid = getpid(), .swrk = swrk };
	struct rpc_job *j = malloc(sizeof(*j));	/* big: keep it off the stack */
	bool need_images = req->type == CRIU_REQ_TYPE__DUMP || req->type == CRIU_REQ_TYPE__RESTORE;

	if (!j)
		abort();
	if (rpc_job_paths(j, &c, req, need_images) == 0 && rpc_job_opts(j, &c, req) == 0) {
		/* what dump and restore read from it must be readable */
		for (int i = 0; i < j->o.nr_external; i++)
			if (!j->o.external[i] || strlen(j->o.external[i]) > RPC_MAX_MSG)
				abort();
		for (int i = 0; i < j->o.nr_inherit; i++)
			if (!j->o.inherit[i].res)
				abort();
		/* a path is taken whole or refused, never cut short */
		const CriuOpts *r = req->opts;
		if (r && r->images_dir_fd < 0 && r->images_dir && strcmp(r->images_dir, j->images_dir))
			abort();
		if (r && r->log_file && j->log_name[0] && strcmp(j->log_name, r->log_file))
			abort();
	}
	rpc_job_release(j);
	free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CriuReq *req;

	if (send(sk[0], data, size, MSG_DONTWAIT) != (ssize_t)size) {
		drain(sk[1]);
		return 0;	/* too big for the socket: no client can send it either */
	}
	int r = rpc_recv(sk[1], &req);
	drain(sk[1]);
	if (r != 1) {
		if (req)
			abort();	/* rpc_recv must not hand back a request it refused */
		return 0;
	}
	decode(req, false);
	decode(req, true);
	criu_req__free_unpacked(req, NULL);
	return 0;
}
