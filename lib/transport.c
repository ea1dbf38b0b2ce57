/* Carrying requests to a Stasis server: starting `stasis swrk FD`,
 * connecting to a service socket, or using a socket the caller gave; one
 * criu_req per SOCK_SEQPACKET record, answered by criu_resp records. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

int lib_errno;
int lib_orphan_pts_fd = -1;

/* ---- swrk ---- */

/* In the child: becomes `BINARY swrk FD`. The pid that runs it, or the
 * errno of a failed exec, goes back on report (close-on-exec, so the
 * parent sees EOF once the exec worked). */
static void swrk_child(const criu_opts *o, int sk, int report, bool detach)
{
	sigset_t chld;
	char fd_arg[16];
	int err;

	/* stasis waits for its restored children: it needs SIGCHLD even if
	 * the caller blocks or ignores it (an ignored signal stays ignored
	 * across exec, and children would then be reaped behind its back) */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	signal(SIGCHLD, SIG_DFL);
	if (detach) {
		/* out of the caller's tree and session: a self-dump must not
		 * take its own dumper along */
		pid_t p = fork();
		if (p < 0) {
			pid_t none = 0;	/* the report still starts with a pid */
			err = errno;
			if (write(report, &none, sizeof(none)) == sizeof(none))
				errno = err;
			goto fail;
		}
		if (p > 0)
			_exit(0);
		setsid();
	}
	pid_t me = getpid();
	if (write(report, &me, sizeof(me)) != sizeof(me))
		_exit(1);
	snprintf(fd_arg, sizeof(fd_arg), "%d", sk);
	execlp(o->binary, o->binary, "swrk", fd_arg, (char *)NULL);
fail:
	err = errno;
	if (write(report, &err, sizeof(err)) != sizeof(err))
		_exit(1);
	_exit(1);
}

/* What the child reported: its pid, then EOF (exec worked) or an errno. */
static int swrk_read_report(int report, pid_t *pid)
{
	int err;
	ssize_t n;

	do
		n = read(report, pid, sizeof(*pid));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(*pid))
		return ECHILD;
	do
		n = read(report, &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(err))
		return err ? err : ECHILD;
	return *pid > 0 ? 0 : ECHILD;
}

static int swrk_connect(criu_opts *o, bool detach)
{
	int sks[2], report[2], err;
	pid_t child, swrk = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sks) < 0)
		return -errno;
	if (pipe2(report, O_CLOEXEC) < 0) {
		err = errno;
		goto close_sks;
	}
	/* our end must not leak into the swrk (it would never see EOF) */
	fcntl(sks[0], F_SETFD, FD_CLOEXEC);
	child = fork();
	if (child < 0) {
		err = errno;
		goto close_all;
	}
	if (child == 0) {
		close(sks[0]);
		close(report[0]);
		swrk_child(o, sks[1], report[1], detach);
	}
	close(report[1]);
	report[1] = -1;
	err = swrk_read_report(report[0], &swrk);
	if (detach)	/* the go-between exits at once; the swrk is not ours */
		waitpid(child, NULL, 0);
	if (err) {
		if (!detach)
			waitpid(child, NULL, 0);
		fprintf(stderr, "libstasis: can't start '%s swrk': %s\n", o->binary, strerror(err));
		goto close_all;
	}
	o->swrk_pid = detach ? 0 : swrk;
	close(report[0]);
	close(sks[1]);
	return sks[0];
close_all:
	close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
close_sks:
	close(sks[0]);
	close(sks[1]);
	return -err;
}

void lib_swrk_wait(criu_opts *o)
{
	if (o->swrk_pid > 0)
		while (waitpid(o->swrk_pid, NULL, 0) < 0 && errno == EINTR)
			;
	o->swrk_pid = 0;
}

/* ---- service socket ---- */

static int service_connect(const char *address)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sk, err;

	if (strlen(address) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "libstasis: service address %s is too long\n", address);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, address);
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	if (connect(sk, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		fprintf(stderr, "libstasis: can't connect to the service at %s: %s\n", address,
			strerror(err));
		close(sk);
		return -err;
	}
	return sk;
}

int lib_connect(criu_opts *o, bool self_dump)
{
	int r;

	o->swrk_pid = 0;
	switch (o->comm) {
	case CRIU_COMM_FD:
		return o->fd;
	case CRIU_COMM_SK:
		r = service_connect(o->address);
		break;
	case CRIU_COMM_BIN:
	default:
		r = swrk_connect(o, self_dump);
		break;
	}
	if (r >= 0)
		return r;
	lib_errno = -r;
	return -ECONNREFUSED;
}

/* ---- messages ---- */

static int send_req(int sk, const CriuReq *req)
{
	size_t len = criu_req__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf) {
		lib_errno = ENOMEM;
		return -1;
	}
	criu_req__pack(req, buf);
	do	/* no SIGPIPE for the caller if the server died */
		n = send(sk, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		lib_errno = n < 0 ? errno : EMSGSIZE;
	free(buf);
	return n == (ssize_t)len ? 0 : -1;
}

/* An fd may come with a message (orphan-pts-master): keep the last one. */
static void take_passed_fd(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&lib_orphan_pts_fd, CMSG_DATA(c), sizeof(int));
}

static CriuResp *recv_resp(int sk)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
	struct msghdr mh = { 0 };
	struct iovec iov;
	uint8_t probe;
	ssize_t len, n;

	do	/* MSG_TRUNC: the length of the whole record */
		len = recv(sk, &probe, 1, MSG_PEEK | MSG_TRUNC);
	while (len < 0 && errno == EINTR);
	if (len <= 0) {
		lib_errno = len < 0 ? errno : ECONNRESET;
		return NULL;
	}
	uint8_t *buf = malloc(len);
	if (!buf) {
		lib_errno = ENOMEM;
		return NULL;
	}
	iov = (struct iovec){ buf, len };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != len) {
		lib_errno = n < 0 ? errno : EBADMSG;
		free(buf);
		return NULL;
	}
	take_passed_fd(&mh);
	CriuResp *resp = criu_resp__unpack(NULL, len, buf);
	free(buf);
	if (!resp)
		lib_errno = EBADMSG;
	return resp;
}

static int send_notify_answer(int sk, bool ok)
{
	CriuReq ack = CRIU_REQ__INIT;
	ack.type = CRIU_REQ_TYPE__NOTIFY;
	ack.has_notify_success = true;
	ack.notify_success = ok;
	return send_req(sk, &ack);
}

/* Asks the callback about one stage; non-zero is a veto. */
static int ask_callback(const criu_opts *o, CriuResp *resp)
{
	if (!o->notify || !resp->notify)
		return 0;
	return o->notify(resp->notify->script ? resp->notify->script : "", resp->notify);
}

/* Serves the notifications up to the final answer. After a veto the
 * server undoes what it did (a dump resumes the tree) and then answers:
 * waiting for that means the caller gets control back only once the tree
 * is as it was. The callback still hears the stages of that cleanup
 * (network-unlock after its network-lock); the request returns the
 * first veto's value. */
int lib_exchange(int sk, criu_opts *o, CriuReq *req, CriuResp **resp)
{
	int veto = 0;

	*resp = NULL;
	if (send_req(sk, req) < 0)
		return -ECOMM;
	for (;;) {
		*resp = recv_resp(sk);
		if (!*resp)
			return veto ? veto : -ECOMM;
		if ((*resp)->type != CRIU_REQ_TYPE__NOTIFY)
			break;
		int r = ask_callback(o, *resp);
		criu_resp__free_unpacked(*resp, NULL);
		*resp = NULL;
		if (r && !veto)
			veto = r;
		if (send_notify_answer(sk, r == 0) < 0)
			return veto ? veto : -ECOMM;
	}
	if ((*resp)->has_cr_errno)
		lib_errno = (*resp)->cr_errno;
	if (veto)
		return veto;
	if ((*resp)->type == req->type)
		return 0;
	/* a server that does not know a request type answers EMPTY */
	if ((*resp)->type == CRIU_REQ_TYPE__EMPTY && !(*resp)->success)
		return -EINVAL;
	return -EBADMSG;
}

int lib_call(criu_opts *o, CriuReq *req, CriuResp **resp)
{
	bool self_dump = req->type == CRIU_REQ_TYPE__DUMP && !(req->opts && req->opts->has_pid);
	int sk = lib_connect(o, self_dump);

	*resp = NULL;
	if (sk < 0)
		return sk;
	int ret = lib_exchange(sk, o, req, resp);
	close(sk);	/* a CRIU_COMM_FD socket too: one request each, as in libcriu */
	return ret;
}
