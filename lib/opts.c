/* Option sets: a criu_opts holds the criu_opts message sent with every
 * request, the notify callback and how the server is reached. Each
 * criu_local_set_X has a criu_set_X twin acting on the global set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

criu_opts *lib_global_opts;

/* ---- the set itself ---- */

void criu_local_free_opts(criu_opts *o)
{
	if (!o)
		return;
	/* every string and sub-message in rpc was malloc'ed by us, which is
	 * what protobuf-c's free expects with the default allocator */
	if (o->rpc)
		criu_opts__free_unpacked(o->rpc, NULL);
	free(o->address);
	free(o->binary);
	free(o);
}

int criu_local_init_opts(criu_opts **out)
{
	criu_opts *o;

	criu_local_free_opts(*out);
	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (!o || !(o->rpc = malloc(sizeof(*o->rpc))) || !(o->binary = strdup(LIB_DEFAULT_BINARY))) {
		perror("libstasis: can't allocate an option set");
		if (o)
			free(o->rpc);
		free(o);
		return -1;
	}
	criu_opts__init(o->rpc);
	o->comm = CRIU_COMM_BIN;
	o->fd = -1;
	*out = o;
	return 0;
}

int criu_init_opts(void)
{
	return criu_local_init_opts(&lib_global_opts);
}

void criu_free_opts(void)
{
	criu_local_free_opts(lib_global_opts);
	lib_global_opts = NULL;
}

/* ---- helpers: copies owned by the set ---- */

static int set_string(char **dst, const char *val)
{
	char *copy = NULL;
	if (val && !(copy = strdup(val)))
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int add_string(char ***arr, size_t *n, const char *val)
{
	char *copy = val ? strdup(val) : NULL;
	char **a = copy ? realloc(*arr, (*n + 1) * sizeof(**arr)) : NULL;
	if (!a) {
		free(copy);
		return -ENOMEM;
	}
	a[(*n)++] = copy;
	*arr = a;
	return 0;
}

/* Appends an allocated message to a repeated field (freed on failure). */
static int add_msg(void ***arr, size_t *n, void *msg)
{
	void **a = msg ? realloc(*arr, (*n + 1) * sizeof(**arr)) : NULL;
	if (!a)
		return -ENOMEM;
	a[(*n)++] = msg;
	*arr = a;
	return 0;
}

/* ---- how the server is reached ---- */

int criu_local_set_service_address(criu_opts *o, const char *path)
{
	o->comm = CRIU_COMM_SK;
	return set_string(&o->address, path ? path : LIB_DEFAULT_ADDRESS);
}

void criu_local_set_service_fd(criu_opts *o, int fd)
{
	o->comm = CRIU_COMM_FD;
	o->fd = fd;
}

int criu_local_set_service_binary(criu_opts *o, const char *path)
{
	o->comm = CRIU_COMM_BIN;
	return set_string(&o->binary, path ? path : LIB_DEFAULT_BINARY);
}

void criu_local_set_service_comm(criu_opts *o, enum criu_service_comm comm)
{
	o->comm = comm;
	if (comm == CRIU_COMM_SK && !o->address)
		set_string(&o->address, LIB_DEFAULT_ADDRESS);
}

int criu_set_service_address(const char *path) { return criu_local_set_service_address(lib_global_opts, path); }
void criu_set_service_fd(int fd) { criu_local_set_service_fd(lib_global_opts, fd); }
int criu_set_service_binary(const char *path) { return criu_local_set_service_binary(lib_global_opts, path); }
void criu_set_service_comm(enum criu_service_comm c) { criu_local_set_service_comm(lib_global_opts, c); }

/* ---- plain options ---- */

/* An optional scalar field of CriuOpts, set from an argument. */
#define SCALAR_OPT(name, type, field)                                          \
	void criu_local_set_##name(criu_opts *o, type v)                      \
	{                                                                      \
		o->rpc->has_##field = true;                                    \
		o->rpc->field = v;                                             \
	}                                                                      \
	void criu_set_##name(type v) { criu_local_set_##name(lib_global_opts, v); }

SCALAR_OPT(pid, int, pid)
SCALAR_OPT(work_dir_fd, int, work_dir_fd)
SCALAR_OPT(leave_running, bool, leave_running)
SCALAR_OPT(ext_unix_sk, bool, ext_unix_sk)
SCALAR_OPT(tcp_established, bool, tcp_established)
SCALAR_OPT(tcp_skip_in_flight, bool, tcp_skip_in_flight)
SCALAR_OPT(tcp_close, bool, tcp_close)
SCALAR_OPT(weak_sysctls, bool, weak_sysctls)
SCALAR_OPT(evasive_devices, bool, evasive_devices)
SCALAR_OPT(shell_job, bool, shell_job)
SCALAR_OPT(skip_file_rwx_check, bool, skip_file_rwx_check)
SCALAR_OPT(unprivileged, bool, unprivileged)
SCALAR_OPT(orphan_pts_master, bool, orphan_pts_master)
SCALAR_OPT(file_locks, bool, file_locks)
SCALAR_OPT(track_mem, bool, track_mem)
SCALAR_OPT(auto_dedup, bool, auto_dedup)
SCALAR_OPT(force_irmap, bool, force_irmap)
SCALAR_OPT(link_remap, bool, link_remap)
SCALAR_OPT(log_level, int, log_level)
SCALAR_OPT(cpu_cap, unsigned int, cpu_cap)
SCALAR_OPT(manage_cgroups, bool, manage_cgroups)
SCALAR_OPT(timeout, unsigned int, timeout)
SCALAR_OPT(auto_ext_mnt, bool, auto_ext_mnt)
SCALAR_OPT(ext_sharing, bool, ext_sharing)
SCALAR_OPT(ext_masters, bool, ext_masters)
SCALAR_OPT(ghost_limit, unsigned int, ghost_limit)
SCALAR_OPT(pidfd_store_sk, int, pidfd_store_sk)
SCALAR_OPT(mntns_compat_mode, bool, mntns_compat_mode)
SCALAR_OPT(empty_ns, int, empty_ns)

/* images_dir_fd is a required field: no has_ flag. */
void criu_local_set_images_dir_fd(criu_opts *o, int fd) { o->rpc->images_dir_fd = fd; }
void criu_set_images_dir_fd(int fd) { criu_local_set_images_dir_fd(lib_global_opts, fd); }

void criu_local_set_manage_cgroups_mode(criu_opts *o, enum criu_cg_mode mode)
{
	o->rpc->has_manage_cgroups_mode = true;
	o->rpc->manage_cgroups_mode = (CriuCgMode)mode;
}
void criu_set_manage_cgroups_mode(enum criu_cg_mode mode) { criu_local_set_manage_cgroups_mode(lib_global_opts, mode); }

int criu_local_set_pre_dump_mode(criu_opts *o, enum criu_pre_dump_mode mode)
{
	if (mode != CRIU_PRE_DUMP_SPLICE && mode != CRIU_PRE_DUMP_READ)
		return -1;
	o->rpc->has_pre_dump_mode = true;
	o->rpc->pre_dump_mode = (CriuPreDumpMode)mode;
	return 0;
}
int criu_set_pre_dump_mode(enum criu_pre_dump_mode mode) { return criu_local_set_pre_dump_mode(lib_global_opts, mode); }

int criu_local_set_network_lock(criu_opts *o, enum criu_network_lock_method m)
{
	if (m != CRIU_NETWORK_LOCK_IPTABLES && m != CRIU_NETWORK_LOCK_NFTABLES && m != CRIU_NETWORK_LOCK_SKIP)
		return -1;
	o->rpc->has_network_lock = true;
	o->rpc->network_lock = (CriuNetworkLockMethod)m;
	return 0;
}
int criu_set_network_lock(enum criu_network_lock_method m) { return criu_local_set_network_lock(lib_global_opts, m); }

/* ---- string options ---- */

#define STRING_OPT(name, field)                                                \
	int criu_local_set_##name(criu_opts *o, const char *v)                \
	{                                                                      \
		return set_string(&o->rpc->field, v);                          \
	}                                                                      \
	int criu_set_##name(const char *v) { return criu_local_set_##name(lib_global_opts, v); }

STRING_OPT(parent_images, parent_img)
STRING_OPT(log_file, log_file)
STRING_OPT(root, root)
STRING_OPT(freeze_cgroup, freeze_cgroup)
STRING_OPT(lsm_profile, lsm_profile)
STRING_OPT(lsm_mount_context, lsm_mount_context)
STRING_OPT(config_file, config_file)

/* these four have no global twin in libcriu */
int criu_local_add_cg_props(criu_opts *o, const char *s) { return set_string(&o->rpc->cgroup_props, s); }
int criu_local_add_cg_props_file(criu_opts *o, const char *p) { return set_string(&o->rpc->cgroup_props_file, p); }
int criu_local_add_cg_yard(criu_opts *o, const char *p) { return set_string(&o->rpc->cgroup_yard, p); }
int criu_local_add_cg_dump_controller(criu_opts *o, const char *name)
{
	return add_string(&o->rpc->cgroup_dump_controller, &o->rpc->n_cgroup_dump_controller, name);
}

/* ---- lists ---- */

#define LIST_OPT(name, field)                                                  \
	int criu_local_add_##name(criu_opts *o, const char *v)                \
	{                                                                      \
		return add_string(&o->rpc->field, &o->rpc->n_##field, v);      \
	}                                                                      \
	int criu_add_##name(const char *v) { return criu_local_add_##name(lib_global_opts, v); }

LIST_OPT(enable_fs, enable_fs)
LIST_OPT(skip_mnt, skip_mnt)
LIST_OPT(irmap_path, irmap_scan_paths)
LIST_OPT(external, external)

int criu_local_set_exec_cmd(criu_opts *o, int argc, char *argv[])
{
	char **old = o->rpc->exec_cmd;
	size_t n_old = o->rpc->n_exec_cmd;

	o->rpc->exec_cmd = NULL;
	o->rpc->n_exec_cmd = 0;
	for (int i = 0; i < argc; i++)
		if (add_string(&o->rpc->exec_cmd, &o->rpc->n_exec_cmd, argv[i]) < 0) {
			while (o->rpc->n_exec_cmd)
				free(o->rpc->exec_cmd[--o->rpc->n_exec_cmd]);
			free(o->rpc->exec_cmd);
			o->rpc->exec_cmd = old;
			o->rpc->n_exec_cmd = n_old;
			return -ENOMEM;
		}
	while (n_old)
		free(old[--n_old]);
	free(old);
	return 0;
}
int criu_set_exec_cmd(int argc, char *argv[]) { return criu_local_set_exec_cmd(lib_global_opts, argc, argv); }

int criu_local_add_unix_sk(criu_opts *o, unsigned int inode)
{
	UnixSk *u = malloc(sizeof(*u));
	if (u) {
		unix_sk__init(u);
		u->inode = inode;
	}
	int r = add_msg((void ***)&o->rpc->unix_sk_ino, &o->rpc->n_unix_sk_ino, u);
	if (r < 0)
		free(u);
	return r;
}
int criu_add_unix_sk(unsigned int inode) { return criu_local_add_unix_sk(lib_global_opts, inode); }

/* Two strings in a new message; on failure nothing is kept. */
static int dup_pair(char **a, const char *va, char **b, const char *vb)
{
	*a = va ? strdup(va) : NULL;
	*b = vb ? strdup(vb) : NULL;
	if ((va && !*a) || (vb && !*b)) {
		free(*a);
		free(*b);
		*a = *b = NULL;
		return -ENOMEM;
	}
	return 0;
}

int criu_local_add_ext_mount(criu_opts *o, const char *key, const char *val)
{
	ExtMountMap *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	ext_mount_map__init(m);
	int r = dup_pair(&m->key, key, &m->val, val);
	if (r == 0 && (r = add_msg((void ***)&o->rpc->ext_mnt, &o->rpc->n_ext_mnt, m)) < 0) {
		free(m->key);
		free(m->val);
	}
	if (r < 0)
		free(m);
	return r;
}
int criu_add_ext_mount(const char *key, const char *val) { return criu_local_add_ext_mount(lib_global_opts, key, val); }

int criu_local_add_veth_pair(criu_opts *o, const char *in, const char *out)
{
	CriuVethPair *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	criu_veth_pair__init(p);
	int r = dup_pair(&p->if_in, in, &p->if_out, out);
	if (r == 0 && (r = add_msg((void ***)&o->rpc->veths, &o->rpc->n_veths, p)) < 0) {
		free(p->if_in);
		free(p->if_out);
	}
	if (r < 0)
		free(p);
	return r;
}
int criu_add_veth_pair(const char *in, const char *out) { return criu_local_add_veth_pair(lib_global_opts, in, out); }

int criu_local_add_cg_root(criu_opts *o, const char *ctrl, const char *path)
{
	CgroupRoot *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	cgroup_root__init(c);
	int r = dup_pair(&c->ctrl, ctrl, &c->path, path);
	if (r == 0 && (r = add_msg((void ***)&o->rpc->cg_root, &o->rpc->n_cg_root, c)) < 0) {
		free(c->ctrl);
		free(c->path);
	}
	if (r < 0)
		free(c);
	return r;
}
int criu_add_cg_root(const char *ctrl, const char *path) { return criu_local_add_cg_root(lib_global_opts, ctrl, path); }

int criu_local_add_inherit_fd(criu_opts *o, int fd, const char *key)
{
	/* the swrk inherits the caller's fds; a service can't reach them */
	if (o->comm != CRIU_COMM_BIN)
		return -1;
	InheritFd *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	inherit_fd__init(f);
	f->fd = fd;
	f->key = key ? strdup(key) : NULL;
	if (!f->key || add_msg((void ***)&o->rpc->inherit_fd, &o->rpc->n_inherit_fd, f) < 0) {
		free(f->key);
		free(f);
		return -ENOMEM;
	}
	return 0;
}
int criu_add_inherit_fd(int fd, const char *key) { return criu_local_add_inherit_fd(lib_global_opts, fd, key); }

int criu_local_join_ns_add(criu_opts *o, const char *ns, const char *ns_file, const char *extra_opt)
{
	if (!ns || !ns_file) {
		fprintf(stderr, "libstasis: join_ns needs both a namespace and its file\n");
		return -1;
	}
	JoinNamespace *j = malloc(sizeof(*j));
	if (!j)
		return -1;
	join_namespace__init(j);
	int r = dup_pair(&j->ns, ns, &j->ns_file, ns_file);
	if (r == 0 && extra_opt && !(j->extra_opt = strdup(extra_opt)))
		r = -ENOMEM;
	if (r == 0)
		r = add_msg((void ***)&o->rpc->join_ns, &o->rpc->n_join_ns, j);
	if (r < 0) {
		free(j->ns);
		free(j->ns_file);
		free(j->extra_opt);
		free(j);
		return -1;
	}
	return 0;
}
int criu_join_ns_add(const char *ns, const char *ns_file, const char *extra_opt)
{
	return criu_local_join_ns_add(lib_global_opts, ns, ns_file, extra_opt);
}

int criu_local_set_page_server_address_port(criu_opts *o, const char *address, int port)
{
	CriuPageServerInfo *ps = malloc(sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	criu_page_server_info__init(ps);
	if (address && !(ps->address = strdup(address))) {
		free(ps);
		return -ENOMEM;
	}
	ps->has_port = true;
	ps->port = port;
	if (o->rpc->ps)
		criu_page_server_info__free_unpacked(o->rpc->ps, NULL);
	o->rpc->ps = ps;
	return 0;
}
int criu_set_page_server_address_port(const char *address, int port)
{
	return criu_local_set_page_server_address_port(lib_global_opts, address, port);
}

/* ---- notifications ---- */

void criu_local_set_notify_cb(criu_opts *o, int (*cb)(char *action, criu_notify_arg_t na))
{
	o->notify = cb;
	o->rpc->has_notify_scripts = true;
	o->rpc->notify_scripts = true;
}
void criu_set_notify_cb(int (*cb)(char *action, criu_notify_arg_t na)) { criu_local_set_notify_cb(lib_global_opts, cb); }

int criu_notify_pid(criu_notify_arg_t na)
{
	return na && na->has_pid ? na->pid : 0;
}

int criu_get_orphan_pts_master_fd(void)
{
	return lib_orphan_pts_fd;
}
