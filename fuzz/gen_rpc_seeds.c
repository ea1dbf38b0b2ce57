/* Writes the seed corpus of fuzz_rpc: one packed criu_req per file in
 * DIR, covering each request type and each group of options that
 * rpc_job_paths/rpc_job_opts look at (valid ones and refused ones).
 * Usage: gen_rpc_seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.pb-c.h"

static const char *dir;
static int n_written;

static void save(const char *name, const CriuReq *req)
{
	char path[4096];
	size_t len = criu_req__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!buf || !(f = fopen(path, "w"))) {
		perror(path);
		exit(1);
	}
	criu_req__pack(req, buf);
	if (fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(buf);
	n_written++;
}

static void simple(const char *name, CriuReqType type)
{
	CriuReq req = CRIU_REQ__INIT;
	req.type = type;
	save(name, &req);
}

static void dump_requests(void)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuOpts o = CRIU_OPTS__INIT;
	char *ext[] = { "file[2a:1234]", "unix[567]" };
	UnixSk u1 = UNIX_SK__INIT, u2 = UNIX_SK__INIT, *us[] = { &u1, &u2 };

	req.type = CRIU_REQ_TYPE__DUMP;
	req.opts = &o;
	o.images_dir_fd = 3;
	o.has_pid = 1;
	o.pid = 1234;
	o.has_leave_running = o.leave_running = 1;
	o.has_shell_job = o.shell_job = 1;
	o.has_log_level = 1;
	o.log_level = 4;
	o.log_file = "dump.log";
	save("dump_fd", &req);

	o.images_dir_fd = -1;
	o.images_dir = "/tmp/stasis-fuzz-images";
	o.has_work_dir_fd = 1;
	o.work_dir_fd = 5;
	o.has_file_locks = o.file_locks = 1;
	o.has_ext_unix_sk = o.ext_unix_sk = 1;
	u1.inode = 4242;
	u2.inode = 77;
	o.n_unix_sk_ino = 2;
	o.unix_sk_ino = us;
	o.n_external = 2;
	o.external = ext;
	o.notify_scripts = 1;
	o.has_notify_scripts = 1;
	req.has_keep_open = req.keep_open = 1;
	save("dump_dir_ext", &req);

	o.log_file = "../escape.log";
	save("dump_bad_log", &req);

	/* to a page server over TLS, then over the client's socket */
	CriuPageServerInfo ps = CRIU_PAGE_SERVER_INFO__INIT;
	o.log_file = "dump.log";
	o.ps = &ps;
	ps.address = "127.0.0.1";
	ps.has_port = 1;
	ps.port = 9876;
	o.has_tls = o.tls = 1;
	o.tls_cacert = "ca.pem";
	o.tls_key = "/etc/pki/criu/private/key.pem";
	o.has_tls_no_cn_verify = o.tls_no_cn_verify = 1;
	save("dump_ps_tls", &req);
	ps.has_fd = 1;
	ps.fd = 7;
	save("dump_ps_fd", &req);
}

static void restore_requests(void)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuOpts o = CRIU_OPTS__INIT;
	InheritFd i1 = INHERIT_FD__INIT, i2 = INHERIT_FD__INIT, *in[] = { &i1, &i2 };

	req.type = CRIU_REQ_TYPE__RESTORE;
	req.opts = &o;
	o.images_dir_fd = 3;
	o.has_rst_sibling = o.rst_sibling = 1;
	o.has_status_fd = 1;
	o.status_fd = 9;
	i1.key = "pipe:[12345]";
	i1.fd = 0;
	i2.key = "fd[1]:/tmp/out";
	i2.fd = 1;
	o.n_inherit_fd = 2;
	o.inherit_fd = in;
	o.has_log_to_stderr = o.log_to_stderr = 1;
	save("restore_swrk", &req);

	o.n_inherit_fd = 0;
	o.has_rst_sibling = 0;
	/* a mount namespace's options (ns/mnt.h) */
	ExtMountMap em = EXT_MOUNT_MAP__INIT, *ems[1] = { &em };
	char *skip[1] = { "/tmp" }, *fs[1] = { "nfsd" };
	em.key = "usr";
	em.val = "/usr";
	o.root = "/newroot";
	o.n_ext_mnt = 1;
	o.ext_mnt = ems;
	o.n_skip_mnt = 1;
	o.skip_mnt = skip;
	o.n_enable_fs = 1;
	o.enable_fs = fs;
	save("restore_root", &req);

	o.root = NULL;
	o.n_ext_mnt = o.n_skip_mnt = o.n_enable_fs = 0;
	o.has_lazy_pages = o.lazy_pages = 1;
	save("restore_lazy", &req);

	/* over PATH_MAX: once cut short silently (fuzz_rpc's check) */
	static char long_dir[5000];
	memset(long_dir, 'a', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	o.has_lazy_pages = 0;
	o.images_dir_fd = -1;
	o.images_dir = long_dir;
	save("restore_long_dir", &req);
}

static void other_requests(void)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuFeatures f = CRIU_FEATURES__INIT;

	simple("check", CRIU_REQ_TYPE__CHECK);
	simple("version", CRIU_REQ_TYPE__VERSION);
	simple("pre_dump", CRIU_REQ_TYPE__PRE_DUMP);
	simple("page_server", CRIU_REQ_TYPE__PAGE_SERVER);
	simple("dump_no_opts", CRIU_REQ_TYPE__DUMP);
	req.type = CRIU_REQ_TYPE__FEATURE_CHECK;
	f.has_mem_track = f.has_lazy_pages = f.has_pidfd_store = 1;
	req.features = &f;
	save("features", &req);
	req = (CriuReq)CRIU_REQ__INIT;
	req.type = CRIU_REQ_TYPE__NOTIFY;
	req.has_notify_success = req.notify_success = 1;
	save("notify_ack", &req);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	dump_requests();
	restore_requests();
	other_requests();
	printf("%d requests in %s\n", n_written, dir);
	return 0;
}
