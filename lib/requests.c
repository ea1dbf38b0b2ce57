/* The requests: each builds a criu_req, sends it the way the option set
 * says, and turns the answer into libcriu's return value. errno is left
 * as the server's cr_errno (or why the transport failed), as libcriu does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"

/* Common end of a request: free the answer, reap our swrk, set errno. */
static int finish(criu_opts *o, CriuResp *resp, int ret)
{
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	lib_swrk_wait(o);
	errno = lib_errno;
	return ret;
}

static int simple_request(criu_opts *o, CriuReqType type, CriuResp **resp)
{
	CriuReq req = CRIU_REQ__INIT;
	lib_errno = 0;
	req.type = type;
	req.opts = o->rpc;
	return lib_call(o, &req, resp);
}

int criu_local_check(criu_opts *o)
{
	CriuResp *resp;
	int ret = simple_request(o, CRIU_REQ_TYPE__CHECK, &resp);
	if (ret == 0)
		ret = resp->success ? 0 : -EBADE;
	return finish(o, resp, ret);
}

static int dump(criu_opts *o, bool pre_dump)
{
	CriuResp *resp;
	int ret = simple_request(o, pre_dump ? CRIU_REQ_TYPE__SINGLE_PRE_DUMP : CRIU_REQ_TYPE__DUMP, &resp);
	if (ret == 0 && !resp->success)
		ret = -EBADE;
	else if (ret == 0)	/* the restored copy of a self-dump is told so */
		ret = !pre_dump && resp->dump && resp->dump->has_restored && resp->dump->restored;
	return finish(o, resp, ret);
}

int criu_local_dump(criu_opts *o) { return dump(o, false); }
int criu_local_pre_dump(criu_opts *o) { return dump(o, true); }

/* Pre-dumps on one connection while more() says so, then the dump. */
int criu_local_dump_iters(criu_opts *o, int (*more)(criu_predump_info pi))
{
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;
	int sk, ret;

	lib_errno = 0;
	/* a self-dump can't be iterated: the dumper would be in the tree */
	if (!o->rpc->has_pid || !more)
		return finish(o, NULL, -EINVAL);
	sk = lib_connect(o, false);
	if (sk < 0)
		return finish(o, NULL, sk);
	req.opts = o->rpc;
	req.keep_open = true;
	req.has_keep_open = true;
	for (;;) {
		req.type = CRIU_REQ_TYPE__PRE_DUMP;
		ret = lib_exchange(sk, o, &req, &resp);
		if (ret == 0 && !resp->success)
			ret = -EBADE;
		if (resp)
			criu_resp__free_unpacked(resp, NULL);
		resp = NULL;
		if (ret)
			goto out;
		int go_on = more(NULL);
		if (go_on < 0) {
			ret = go_on;
			goto out;
		}
		if (go_on == 0)
			break;
	}
	req.type = CRIU_REQ_TYPE__DUMP;
	req.has_keep_open = req.keep_open = false;
	ret = lib_exchange(sk, o, &req, &resp);
	if (ret == 0)
		ret = resp->success ? 0 : -EBADE;
out:
	close(sk);
	return finish(o, resp, ret);
}

static int restore_pid(CriuResp *resp)
{
	if (!resp->success)
		return -EBADE;
	return resp->restore ? resp->restore->pid : -EBADMSG;
}

int criu_local_restore(criu_opts *o)
{
	CriuResp *resp;
	int ret = simple_request(o, CRIU_REQ_TYPE__RESTORE, &resp);
	if (ret == 0)
		ret = restore_pid(resp);
	return finish(o, resp, ret);
}

/* The restored tree becomes the caller's child. The server is asked for
 * rst_sibling (as libcriu does); besides, the caller is a child
 * subreaper for the time of the request, so that when the swrk (our
 * child, and the parent of the restored root) exits, the root is handed
 * to us whether the server made it our sibling or not. Always swrk: a
 * service's restored tree can't be our child. */
int criu_local_restore_child(criu_opts *o)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;
	enum criu_service_comm comm = o->comm;
	bool had_sibling = o->rpc->has_rst_sibling, sibling = o->rpc->rst_sibling;
	int was_subreaper = 0, ret;

	lib_errno = 0;
	if (prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper) < 0)
		was_subreaper = 0;
	if (!was_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	o->comm = CRIU_COMM_BIN;
	o->rpc->has_rst_sibling = o->rpc->rst_sibling = true;
	req.type = CRIU_REQ_TYPE__RESTORE;
	req.opts = o->rpc;
	ret = lib_call(o, &req, &resp);
	o->comm = comm;
	o->rpc->has_rst_sibling = had_sibling;
	o->rpc->rst_sibling = sibling;
	if (ret == 0)
		ret = restore_pid(resp);
	/* the swrk must be gone (and the root handed over) before we stop
	 * being a subreaper */
	ret = finish(o, resp, ret);
	if (!was_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	return ret;
}

int criu_local_get_version(criu_opts *o)
{
	CriuResp *resp;
	int ret = simple_request(o, CRIU_REQ_TYPE__VERSION, &resp);
	if (ret == 0 && (!resp->success || !resp->version))
		ret = -EBADE;
	else if (ret == 0) {
		const CriuVersion *v = resp->version;
		ret = v->major_number * 10000 + v->minor_number * 100 + (v->has_sublevel ? v->sublevel : 0);
		/* a build from git counts as the next minor release, as in libcriu */
		if (v->gitid)
			ret = ret - ret % 100 + 100;
	}
	return finish(o, resp, ret);
}

int criu_local_check_version(criu_opts *o, int minimum)
{
	int v = criu_local_get_version(o);
	return v < 0 ? v : v >= minimum;
}

int criu_local_feature_check(criu_opts *o, struct criu_feature_check *features, size_t size)
{
	struct criu_feature_check want = { 0 }, got = { 0 };
	CriuFeatures ask = CRIU_FEATURES__INIT;
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;
	int ret;

	lib_errno = 0;
	if (!features || size > sizeof(want))	/* -1 here, as libcriu */
		return finish(o, NULL, -1);
	memcpy(&want, features, size);
	ask.has_mem_track = ask.mem_track = want.mem_track;
	ask.has_lazy_pages = ask.lazy_pages = want.lazy_pages;
	ask.has_pidfd_store = ask.pidfd_store = want.pidfd_store;
	req.type = CRIU_REQ_TYPE__FEATURE_CHECK;
	req.opts = o->rpc;
	req.features = &ask;
	ret = lib_call(o, &req, &resp);
	if (ret == 0 && (!resp->success || !resp->features))
		ret = -EBADE;
	else if (ret == 0) {
		const CriuFeatures *f = resp->features;
		got.mem_track = f->has_mem_track && f->mem_track;
		got.lazy_pages = f->has_lazy_pages && f->lazy_pages;
		got.pidfd_store = f->has_pidfd_store && f->pidfd_store;
		memcpy(features, &got, size);
	}
	return finish(o, resp, ret);
}

/* ---- the same on the global option set ---- */

int criu_check(void) { return criu_local_check(lib_global_opts); }
int criu_dump(void) { return criu_local_dump(lib_global_opts); }
int criu_pre_dump(void) { return criu_local_pre_dump(lib_global_opts); }
int criu_dump_iters(int (*more)(criu_predump_info pi)) { return criu_local_dump_iters(lib_global_opts, more); }
int criu_restore(void) { return criu_local_restore(lib_global_opts); }
int criu_restore_child(void) { return criu_local_restore_child(lib_global_opts); }
int criu_get_version(void) { return criu_local_get_version(lib_global_opts); }
int criu_check_version(int minimum) { return criu_local_check_version(lib_global_opts, minimum); }
int criu_feature_check(struct criu_feature_check *features, size_t size)
{
	return criu_local_feature_check(lib_global_opts, features, size);
}
