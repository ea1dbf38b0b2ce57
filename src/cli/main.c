/* Command line: CRIU's option names and meanings, so `criu` can be a link
 * to `stasis` in existing scripts. Options we do not support are refused by
 * name, never ignored. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/opts.h"
#include "lazy/lazy.h"
#include "dump/check.h"
#include "cli/config.h"
#include "cli/criu_opts.h"
#include "cli/kinds.h"
#include "cli/listen_fds.h"
#include "crit/crit.h"
#include "rpc/rpc.h"
#include "dump/dump.h"
#include "net/netlock.h"
#include "restore/restore.h"
#include "pagexfer/ps_server.h"
#include "util/log.h"
#include "util/progress.h"
#include "gitid.h"	/* build/gitid.h, made by the Makefile */

static void usage(FILE *f)
{
	fprintf(f,
"Usage:\n"
"  stasis dump -t PID -D DIR [options]     checkpoint a running process\n"
"  stasis pre-dump -t PID -D DIR [options] save its memory, leave it running:\n"
"                                          the next dump saves only what changed\n"
"  stasis restore -D DIR [options]         restore it from DIR\n"
"  stasis lazy-pages -D DIR [-d]           serve a restore --lazy-pages from the\n"
"                                          images in DIR (socket lazy-pages.socket\n"
"                                          in the work directory); with\n"
"                                          --page-server --address A --port P the\n"
"                                          lazy pages come from a dump --lazy-pages\n"
"  stasis check                            check the kernel features stasis uses\n"
"  stasis page-server -D DIR --port P [--address A] [-d]  receive the pages of\n"
"                                          a dump --page-server (stasis's or CRIU's);\n"
"                                          with --lazy-pages, serve the lazy pages of\n"
"                                          the dump in DIR to `lazy-pages --page-server`\n"
"  stasis service --address SOCK [-d]      serve CRIU's RPC protocol on SOCK (or on the\n"
"                                          socket systemd passes: LISTEN_FDS)\n"
"  stasis swrk FD                          serve one RPC client on socket FD\n"
"  stasis crit CMD ...                     CRIU's crit: decode, encode, info, show,\n"
"                                          x (stasis crit --help; or run as crit)\n"
"  stasis image-kinds                      list the kinds of image file: name,\n"
"                                          magic, header, entry types, optional\n"
"  stasis --version\n"
"\n"
"Options:\n"
"  -t, --tree PID          process to dump\n"
"  -D, --images-dir DIR    directory of the image files\n"
"  -W, --work-dir DIR      directory for logs and pidfiles (default: DIR of -D)\n"
"  -o, --log-file FILE     log to FILE (relative to the work directory)\n"
"  -v[N], --verbosity=N    log level 0-4 (-v alone adds one level)\n"
"  -R, --leave-running     dump: let the process run after the dump\n"
"      --live-snapshot     dump: freeze only to save what is not memory and\n"
"                          write-protect the memory, copy the pages while the\n"
"                          tree runs (implies -R; needs userfaultfd)\n"
"  -j, --shell-job         the process is a job of a shell: its terminal is the\n"
"                          user's; restore puts it on the terminal of stasis\n"
"  -d, --restore-detached  restore: return once the process runs (or --daemon)\n"
"      --pidfile FILE      restore: write the restored pid to FILE\n"
"      --inherit-fd fd[N]:RESOURCE  restore: use our fd N for RESOURCE of the\n"
"                          image (pipe:[INODE], or a file's path);\n"
"                          debug[N]:TEXT writes TEXT to our fd N, as CRIU\n"
"      --external RES      dump: RES is outside the tree, e.g. file[MNT_ID:INODE];\n"
"                          restore gives it back with --inherit-fd; mnt[MNTPOINT]:KEY\n"
"                          (dump) an external mount, mnt[KEY]:PATH (restore) its source;\n"
"                          macvlan[IN]:DEV (restore) the device the macvlan IN goes on\n"
"  -M, --ext-mount-map A:B the same as --external mnt[A]:B\n"
"  -r, --root DIR          restore: the new root of a tree with a mount namespace\n"
"      --skip-mnt MNTPOINT dump: leave a mount (and those below) out\n"
"      --enable-fs FS[,FS] dump: mounts of these kinds (or all) are mounted anew\n"
"  -x, --ext-unix-sk[=INO] allow unix sockets whose peer is outside the tree\n"
"                          (all, or the socket with inode INO; repeatable)\n"
"  -l, --file-locks        dump and restore file locks (flock, POSIX)\n"
"      --prev-images-dir DIR  dump: DIR (relative to -D) holds a pre-dump or\n"
"                          dump of the same tree: pages unchanged since stay there\n"
"      --track-mem         dump: track memory writes for a later dump (pre-dump\n"
"                          always does)\n"
"      --action-script PATH  run PATH at each stage of dump and restore, with\n"
"                          CRTOOLS_SCRIPT_ACTION set to the stage (repeatable)\n"
"      --ghost-limit SIZE  dump: largest deleted-but-open file to save (bytes,\n"
"                          or with K, M, G; default 1M)\n"
"      --ghost-fiemap, --no-ghost-fiemap  dump: find the data of a deleted file\n"
"                          by its extents (FS_IOC_FIEMAP, the default) or by\n"
"                          SEEK_DATA/SEEK_HOLE; its holes stay holes either way\n"
"  -J, --join-ns net:PATH|PID  restore: into that network namespace (a path such\n"
"                          as /var/run/netns/NAME, or a process's)\n"
"      --lazy-pages        restore: the tree runs at once; its private memory\n"
"                          arrives on first touch from `stasis lazy-pages`;\n"
"                          dump: that memory is not written, the dump serves it\n"
"                          on --address/--port to `lazy-pages --page-server`\n"
"                          from the frozen tree, then kills it;\n"
"                          page-server: serve a finished dump's lazy pages\n"
"      --status-fd FD      lazy-pages: write a byte to FD once it listens\n"
"      --new-pidns         restore: into a new pid namespace whose init is stasis,\n"
"                          so the old pids are always free (clones side by side)\n"
"      --address SOCK      service: the unix socket to serve on\n"
"      --socket-mode MODE  service: the socket's permissions (default 0600: root\n"
"                          only); every request is checked against the client\n"
"      --allow-users LIST  service: also serve these users (names or uids, comma-\n"
"                          separated, repeatable); without it only root is\n"
"                          served (see the README's security section)\n"
"  -d                      service: run as a daemon once the socket is ready\n"
"      --config FILE       read options from FILE (CRIU's syntax: one option a\n"
"                          line, without its \"--\"), instead of the default files\n"
"                          /etc/criu/default.conf and ~/.criu/default.conf\n"
"      --no-default-config don't read the default files\n"
"      --timeout N         seconds dump waits for a task to stop (default 10)\n"
"      --pre-dump-mode splice|read  CRIU's tuning, accepted\n"
"      --link-remap        dump: a deleted file with another hard link is kept\n"
"                          by a new link next to it (the same file on restore),\n"
"                          not saved as a copy\n"
"      --network-lock iptables|nftables|skip  dump: how the tree's TCP traffic\n"
"                          is held off from the freeze to the restore (default\n"
"                          iptables, as CRIU); the restore unlocks the same way\n"
"      --tcp-established   dump: save established TCP connections (TCP repair,\n"
"                          CAP_NET_ADMIN); restore: make them again\n"
"      --tcp-close         restore connected TCP sockets closed; dump: save them\n"
"                          without their connection\n"
"      --skip-in-flight    dump: drop connections a listener has not accepted\n"
"      --force-irmap       dump: an inotify or fanotify watch whose file its\n"
"                          handle gives no path to is looked for by inode in\n"
"                          the --irmap-scan-path directories, then CRIU's (/etc,\n"
"                          /var/log, ...); without it, saved without a path\n"
"      --irmap-scan-path DIR  dump: a directory --force-irmap scans first\n"
"                          (repeatable)\n"
"      --manage-cgroups[=MODE]  dump/restore the tree's cgroups (CRIU's modes:\n"
"                          ignore, none, props, soft (default, also without the\n"
"                          option), full, strict)\n"
"      --cgroup-root [CTL:]/PATH  restore: the tree's cgroups go under PATH (of\n"
"                          controller CTL, or of all); dump: walk from PATH\n"
"      --cgroup-props STR, --cgroup-props-file FILE  dump: properties to save\n"
"                          (CRIU's format)\n"
"      --cgroup-dump-controller NAME  dump: only these controllers (repeatable)\n"
"      --cgroup-yard DIR   the cgroup hierarchies mounted there, one directory\n"
"                          each, instead of mounted by stasis\n"
"      --freeze-cgroup PATH  dump: freeze the tree with this cgroup's freezer\n"
"                          (v1 freezer.state or v2 cgroup.freeze) while it is\n"
"                          seized; the cgroup is left as it was found\n"
"      --page-server       dump, pre-dump: send the pages to the page server at\n"
"                          --address A --port P (CRIU's protocol: stasis's or\n"
"                          CRIU's server); the other images are written in -D\n"
"      --port P            the page server's TCP port (page-server: 0 picks one)\n"
"      --address A         page-server: listen on A only (default: every address)\n"
"      --ps-socket FD      use the connected socket FD instead of --address/--port\n"
"      --status-fd FD      page-server: write a byte to FD once it listens\n"
"      --timeout N         page-server: drop a client that takes N seconds (60)\n"
"                          to send a header or a MiB of pages; dump: give up\n"
"                          on a page server that takes nothing for N (10)\n"
"      --auto-dedup        dump, pre-dump, page-server: punch the pages saved out\n"
"                          of the parent dump's pages file (it then restores\n"
"                          only through this dump)\n"
"      --tls               page server and --page-server: over TLS (GnuTLS, X.509\n"
"                          certificates on both ends, as CRIU), with\n"
"      --tls-cacert FILE   the CA (default: the system's, /etc/pki/CA/cacert.pem),\n"
"      --tls-cacrl FILE    its revocation list (/etc/pki/CA/cacrl.pem if there),\n"
"      --tls-cert FILE     our certificate (/etc/pki/criu/cert.pem) and\n"
"      --tls-key FILE      its key (/etc/pki/criu/private/key.pem);\n"
"      --tls-no-cn-verify  the peer's name is not checked against --address\n"
"      --file-validation buildid|filesize  how a restore knows a reopened file\n"
"                          is the task's: its ELF build-id (saved by the dump)\n"
"                          and size (default), or its size only\n"
"      --skip-checksums    restore: don't check the images against the checksums\n"
"                          the dump wrote (stasis-checksums); without it a\n"
"                          damaged image is refused, by name\n"
"      --feature NAME      check: only NAME, by CRIU's names (list: all of them)\n"
"      --display-stats     dump, restore: print CRIU's statistics at the end\n"
"      --veth-pair IN=OUT[@BRIDGE]  restore: the outer end of the tree's veth\n"
"                          IN is OUT here (put in BRIDGE); also --external\n"
"                          veth[IN]:OUT[@BRIDGE]\n"
"      --empty-ns net      dump, restore: the tree's network namespace is made\n"
"                          empty, for a setup-namespaces script to fill\n"
"  CRIU's other options are refused by name (--no-SWITCH for one of its\n"
"  switches, off by default, is accepted)\n"
"  -h, --help\n");
}

enum { OPT_PIDFILE = 1000, OPT_VERSION, OPT_VERBOSITY, OPT_NEW_PIDNS, OPT_INHERIT_FD, OPT_EXTERNAL,
       OPT_EXT_UNIX_SK, OPT_ADDRESS, OPT_SOCKET_MODE, OPT_ACTION_SCRIPT, OPT_GHOST_LIMIT,
       OPT_PREV_IMAGES_DIR, OPT_TRACK_MEM, OPT_ALLOW_USERS, OPT_CONFIG, OPT_NO_DEFAULT_CONFIG,
       OPT_TIMEOUT, OPT_PRE_DUMP_MODE, OPT_FEATURE, OPT_LINK_REMAP, OPT_NETWORK_LOCK, OPT_DISPLAY_STATS,
       OPT_LAZY_PAGES, OPT_STATUS_FD, OPT_GHOST_FIEMAP, OPT_NO_GHOST_FIEMAP, OPT_TCP_ESTABLISHED, OPT_TCP_CLOSE, OPT_SKIP_IN_FLIGHT,
       OPT_NO_TCP_ESTABLISHED, OPT_NO_TCP_CLOSE, OPT_NO_SKIP_IN_FLIGHT,
       OPT_SKIP_MNT, OPT_ENABLE_FS, OPT_MNTNS_COMPAT,
       OPT_LIVE_SNAPSHOT,
       /* CRIU's --no-SWITCH forms of the switches stasis has */
       OPT_NO_SHELL_JOB, OPT_NO_FILE_LOCKS, OPT_NO_DETACH, OPT_NO_TRACK_MEM, OPT_NO_DISPLAY_STATS, OPT_NO_LINK_REMAP,
       OPT_FORCE_IRMAP, OPT_IRMAP_SCAN_PATH, OPT_MANAGE_CGROUPS, OPT_CGROUP_ROOT, OPT_CGROUP_PROPS,
       OPT_CGROUP_PROPS_FILE, OPT_CGROUP_DUMP_CTL, OPT_CGROUP_YARD,
       OPT_PAGE_SERVER, OPT_NO_PAGE_SERVER, OPT_PORT, OPT_PS_SOCKET, OPT_SKIP_CHECKSUMS, OPT_FILE_VALIDATION,
       OPT_AUTO_DEDUP, OPT_NO_AUTO_DEDUP, OPT_TLS, OPT_NO_TLS, OPT_TLS_CACERT, OPT_TLS_CACRL, OPT_TLS_CERT,
       OPT_TLS_KEY, OPT_TLS_NO_CN_VERIFY,
       /* a network namespace of the tree's own (net/netns.h) */
       OPT_VETH_PAIR, OPT_EMPTY_NS };

/* Containers (runc, crun, podman): options of their own block. */
enum { OPT_FREEZE_CGROUP = 1900 };

/* check --feature NAME (repeatable): CRIU's names of kernel features. */
static const char *check_features[32];
static int nr_check_features;
static bool network_lock_given;	/* --network-lock: a restore says it ignores it */

/* -vN or --verbosity=N sets the level; CRIU's -vv, -vvv... add one per v. */
static int parse_verbosity(const char *arg, int *level)
{
	char *end;
	/* CRIU's zdtm writes -verbosity=N, which getopt reads as -v with the
	 * value "erbosity=N"; CRIU takes it as level N, and so do we */
	if (!strncmp(arg, "erbosity=", 9))
		arg += 9;
	if (arg[strspn(arg, "v")] == 0) {
		*level += strlen(arg) + 1;
		if (*level > LOG_DEBUG)
			*level = LOG_DEBUG;
		return 0;
	}
	long v = strtol(arg, &end, 10);
	if (*arg == 0 || *end || v < 0 || v > 4) {
		fprintf(stderr, "Error: bad verbosity '%s' (0-4)\n", arg);
		return -1;
	}
	*level = v;
	return 0;
}

static int parse_pid(const char *arg, pid_t *pid)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*arg == 0 || *end || v <= 0 || v > INT_MAX) {
		fprintf(stderr, "Error: bad pid '%s'\n", arg);
		return -1;
	}
	*pid = v;
	return 0;
}

/* CRIU's debug[N]:TEXT: TEXT written to our fd N right away (a mark in
 * a log the caller shares with us, say). */
static int inherit_fd_debug(const char *arg)
{
	int fd, n = 0;
	if (sscanf(arg, "debug[%d]:%n", &fd, &n) != 1 || n == 0 || !arg[n] || fd < 0) {
		fprintf(stderr, "Error: bad --inherit-fd '%s' (want debug[N]:TEXT)\n", arg);
		return -1;
	}
	size_t len = strlen(arg + n);
	if (write(fd, arg + n, len) != (ssize_t)len) {
		fprintf(stderr, "Error: --inherit-fd %s: can't write to fd %d: %m\n", arg, fd);
		return -1;
	}
	return 0;
}

/* fd[N]:RESOURCE, as CRIU spells it; N must be open in stasis. */
static int parse_inherit_fd(const char *arg, struct opts *o)
{
	int fd, n = 0;
	if (!strncmp(arg, "debug[", 6))
		return inherit_fd_debug(arg);
	if (sscanf(arg, "fd[%d]:%n", &fd, &n) != 1 || n == 0 || !arg[n] || fd < 0) {
		fprintf(stderr, "Error: bad --inherit-fd '%s' (want fd[N]:RESOURCE or debug[N]:TEXT)\n", arg);
		return -1;
	}
	if (fcntl(fd, F_GETFD) < 0) {
		fprintf(stderr, "Error: --inherit-fd %s: fd %d is not open\n", arg, fd);
		return -1;
	}
	struct inherit_fd *in = realloc(o->inherit, (o->nr_inherit + 1) * sizeof(*in));
	if (!in)
		return -1;
	o->inherit = in;
	o->inherit[o->nr_inherit++] = (struct inherit_fd){ fd, arg + n };
	return 0;
}

static int add_string(const char ***v, int *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	*v = nv;
	nv[(*n)++] = s;
	return 0;
}

/* --ext-mount-map A:B, CRIU's older spelling of --external mnt[A]:B
 * (dump: mount point A is external, key B; restore: key A is path B). */
static int add_ext_mount_map(struct opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg) {
		fprintf(stderr, "Error: --ext-mount-map %s: want KEY:VALUE (stasis does not detect external "
			"mounts itself: no 'auto')\n", arg);
		return -1;
	}
	char *x;
	if (asprintf(&x, "mnt[%.*s]:%s", (int)(colon - arg), arg, colon + 1) < 0)
		return -1;
	return add_string(&o->external, &o->nr_external, x);
}

/* --manage-cgroups[=MODE]: CRIU's names; no value is soft. */
static int parse_cg_mode(const char *arg, struct opts *o)
{
	static const char *names[] = { [CG_MODE_IGNORE] = "ignore", [CG_MODE_NONE] = "none",
		[CG_MODE_PROPS] = "props", [CG_MODE_SOFT] = "soft", [CG_MODE_FULL] = "full",
		[CG_MODE_STRICT] = "strict" };
	if (!arg) {
		o->cg_mode = CG_MODE_SOFT;
		return 0;
	}
	for (int m = CG_MODE_IGNORE; m <= CG_MODE_STRICT; m++)
		if (!strcmp(arg, names[m])) {
			o->cg_mode = m;
			return 0;
		}
	fprintf(stderr, "Error: unknown cgroups mode '%s' (ignore, none, props, soft, full or strict)\n", arg);
	return -1;
}

/* --cgroup-root [CONTROLLER:]/PATH */
static int parse_cg_root(const char *arg, struct opts *o)
{
	const char *colon = strchr(arg, ':');
	struct cg_root r = { NULL, arg };
	if (colon) {
		if (!(r.ctl = strndup(arg, colon - arg)))
			return -1;
		r.path = colon + 1;
	}
	if (r.path[0] != '/') {
		fprintf(stderr, "Error: --cgroup-root %s: the new root must be an absolute path\n", arg);
		return -1;
	}
	struct cg_root *v = realloc(o->cg_roots, (o->nr_cg_roots + 1) * sizeof(*v));
	if (!v)
		return -1;
	o->cg_roots = v;
	v[o->nr_cg_roots++] = r;
	return 0;
}

/* A size in bytes, with an optional K, M or G suffix (as CRIU). */
static int parse_size(const char *arg, unsigned long long *size)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (!*arg || *end || arg[0] == '-' || v > (~0ULL >> shift)) {
		fprintf(stderr, "Error: bad size '%s' (want bytes, or a number with K, M or G)\n", arg);
		return -1;
	}
	*size = v << shift;
	return 0;
}

/* --ext-unix-sk alone allows every external peer; =INO one socket. */
static int parse_ext_unix_sk(const char *arg, struct opts *o)
{
	char *end;
	o->ext_unix_sk = true;
	if (!arg)
		return 0;
	unsigned long ino = strtoul(arg, &end, 10);
	if (!*arg || *end || !ino) {
		fprintf(stderr, "Error: bad --ext-unix-sk '%s' (want a socket inode number)\n", arg);
		return -1;
	}
	unsigned long *n = realloc(o->ext_unix_sk_ino, (o->nr_ext_unix_sk_ino + 1) * sizeof(*n));
	if (!n)
		return -1;
	o->ext_unix_sk_ino = n;
	n[o->nr_ext_unix_sk_ino++] = ino;
	return 0;
}

/* CRIU's --timeout: how long the dump waits for each task to stop. */
static int parse_timeout(const char *arg, struct opts *o)
{
	char *end;
	long t = strtol(arg, &end, 10);
	if (!*arg || *end || t < 0) {
		fprintf(stderr, "Error: bad --timeout '%s' (seconds)\n", arg);
		return -1;
	}
	o->timeout = t > 3600 ? 3600 : (unsigned)t;
	return 0;
}

/* CRIU's --pre-dump-mode picks how a pre-dump copies pages (splice or
 * read); stasis has one way, so both are accepted and mean the same. */
static int parse_pre_dump_mode(const char *arg)
{
	if (strcmp(arg, "splice") && strcmp(arg, "read")) {
		fprintf(stderr, "Error: bad --pre-dump-mode '%s' (splice or read)\n", arg);
		return -1;
	}
	return 0;
}

static int parse_number(const char *arg, const char *what, unsigned long max, unsigned *v)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);
	if (!*arg || *end || n > max || arg[0] == '-') {
		fprintf(stderr, "Error: bad %s '%s' (0-%lu)\n", what, arg, max);
		return -1;
	}
	*v = n;
	return 0;
}

/* An fd stasis was given open. */
static int parse_fd(const char *arg, const char *what, int *fd)
{
	unsigned v;
	if (parse_number(arg, what, INT_MAX, &v) < 0)
		return -1;
	if (fcntl(v, F_GETFD) < 0) {
		fprintf(stderr, "Error: %s %u: not an open fd\n", what, v);
		return -1;
	}
	*fd = v;
	return 0;
}

/* CRIU's --file-validation. */
static int parse_file_validation(const char *arg, struct opts *o)
{
	if (strcmp(arg, "buildid") && strcmp(arg, "filesize")) {
		fprintf(stderr, "Error: bad --file-validation '%s' (buildid or filesize)\n", arg);
		return -1;
	}
	o->validate_size_only = !strcmp(arg, "filesize");
	return 0;
}

/* CRIU's --network-lock; a restore takes the dump's (from the inventory). */
static int parse_network_lock(const char *arg, struct opts *o)
{
	enum netlock_method m;
	if (netlock_parse(arg, &m) < 0) {
		fprintf(stderr, "Error: bad --network-lock '%s' (iptables, nftables or skip)\n", arg);
		return -1;
	}
	o->network_lock = m;
	network_lock_given = true;
	return 0;
}

/* CRIU's --join-ns NS:PATH|PID[,EXTRA]: stasis joins a network namespace
 * only; the others are refused by name. */
static int parse_join_ns(const char *arg, struct opts *o)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || !colon[1]) {
		fprintf(stderr, "Error: bad --join-ns '%s' (NS:PATH or NS:PID)\n", arg);
		return -1;
	}
	if (colon - arg != 3 || strncmp(arg, "net", 3)) {
		fprintf(stderr, "Error: --join-ns %.*s: stasis joins only a network namespace (net:PATH or net:PID)\n",
			(int)(colon - arg), arg);
		return -1;
	}
	char *what = strdup(colon + 1);
	if (!what)
		return -1;
	what[strcspn(what, ",")] = '\0';	/* CRIU's extra options are for a user namespace */
	o->join_net = what;
	return 0;
}

/* CRIU's --empty-ns net: only a network namespace is made empty. */
static int parse_empty_ns(const char *arg, struct opts *o)
{
	if (strcmp(arg, "net")) {
		fprintf(stderr, "Error: --empty-ns %s: only net can be restored empty (as CRIU)\n", arg);
		return -1;
	}
	o->empty_net = true;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "work-dir", required_argument, NULL, 'W' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "daemon", no_argument, NULL, 'd' },	/* CRIU's other name for it */
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "new-pidns", no_argument, NULL, OPT_NEW_PIDNS },
		{ "inherit-fd", required_argument, NULL, OPT_INHERIT_FD },
		{ "external", required_argument, NULL, OPT_EXTERNAL },
		{ "ext-unix-sk", optional_argument, NULL, OPT_EXT_UNIX_SK },
		{ "file-locks", no_argument, NULL, 'l' },
		{ "address", required_argument, NULL, OPT_ADDRESS },
		{ "prev-images-dir", required_argument, NULL, OPT_PREV_IMAGES_DIR },
		{ "track-mem", no_argument, NULL, OPT_TRACK_MEM },
		{ "live-snapshot", no_argument, NULL, OPT_LIVE_SNAPSHOT },
		{ "action-script", required_argument, NULL, OPT_ACTION_SCRIPT },
		{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
		{ "allow-users", required_argument, NULL, OPT_ALLOW_USERS },
		{ "ghost-limit", required_argument, NULL, OPT_GHOST_LIMIT },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "no-default-config", no_argument, NULL, OPT_NO_DEFAULT_CONFIG },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "pre-dump-mode", required_argument, NULL, OPT_PRE_DUMP_MODE },
		{ "feature", required_argument, NULL, OPT_FEATURE },
		{ "link-remap", no_argument, NULL, OPT_LINK_REMAP },
		{ "network-lock", required_argument, NULL, OPT_NETWORK_LOCK },
		{ "join-ns", required_argument, NULL, 'J' },
		{ "veth-pair", required_argument, NULL, OPT_VETH_PAIR },
		{ "empty-ns", required_argument, NULL, OPT_EMPTY_NS },
		{ "tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED },
		{ "no-tcp-established", no_argument, NULL, OPT_NO_TCP_ESTABLISHED },
		{ "tcp-close", no_argument, NULL, OPT_TCP_CLOSE },
		{ "no-tcp-close", no_argument, NULL, OPT_NO_TCP_CLOSE },
		{ "skip-in-flight", no_argument, NULL, OPT_SKIP_IN_FLIGHT },
		{ "root", required_argument, NULL, 'r' },
		{ "ext-mount-map", required_argument, NULL, 'M' },
		{ "skip-mnt", required_argument, NULL, OPT_SKIP_MNT },
		{ "enable-fs", required_argument, NULL, OPT_ENABLE_FS },
		/* CRIU's choice between its two ways of making mounts: stasis
		 * has one, whose result is the same */
		{ "mntns-compat-mode", no_argument, NULL, OPT_MNTNS_COMPAT },
		{ "no-mntns-compat-mode", no_argument, NULL, OPT_MNTNS_COMPAT },
		{ "no-skip-in-flight", no_argument, NULL, OPT_NO_SKIP_IN_FLIGHT },
		{ "ghost-fiemap", no_argument, NULL, OPT_GHOST_FIEMAP },
		{ "no-ghost-fiemap", no_argument, NULL, OPT_NO_GHOST_FIEMAP },
		{ "lazy-pages", no_argument, NULL, OPT_LAZY_PAGES },
		{ "status-fd", required_argument, NULL, OPT_STATUS_FD },
		{ "display-stats", no_argument, NULL, OPT_DISPLAY_STATS },
		{ "no-shell-job", no_argument, NULL, OPT_NO_SHELL_JOB },
		{ "no-file-locks", no_argument, NULL, OPT_NO_FILE_LOCKS },
		{ "no-restore-detached", no_argument, NULL, OPT_NO_DETACH },
		{ "no-daemon", no_argument, NULL, OPT_NO_DETACH },
		{ "no-track-mem", no_argument, NULL, OPT_NO_TRACK_MEM },
		{ "no-display-stats", no_argument, NULL, OPT_NO_DISPLAY_STATS },
		{ "no-link-remap", no_argument, NULL, OPT_NO_LINK_REMAP },
		{ "force-irmap", no_argument, NULL, OPT_FORCE_IRMAP },
		{ "irmap-scan-path", required_argument, NULL, OPT_IRMAP_SCAN_PATH },
		{ "manage-cgroups", optional_argument, NULL, OPT_MANAGE_CGROUPS },
		{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
		{ "cgroup-props", required_argument, NULL, OPT_CGROUP_PROPS },
		{ "cgroup-props-file", required_argument, NULL, OPT_CGROUP_PROPS_FILE },
		{ "cgroup-dump-controller", required_argument, NULL, OPT_CGROUP_DUMP_CTL },
		{ "cgroup-yard", required_argument, NULL, OPT_CGROUP_YARD },
		{ "freeze-cgroup", required_argument, NULL, OPT_FREEZE_CGROUP },
		{ "page-server", no_argument, NULL, OPT_PAGE_SERVER },
		{ "no-page-server", no_argument, NULL, OPT_NO_PAGE_SERVER },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "ps-socket", required_argument, NULL, OPT_PS_SOCKET },
		{ "skip-checksums", no_argument, NULL, OPT_SKIP_CHECKSUMS },
		{ "file-validation", required_argument, NULL, OPT_FILE_VALIDATION },
		{ "auto-dedup", no_argument, NULL, OPT_AUTO_DEDUP },
		{ "no-auto-dedup", no_argument, NULL, OPT_NO_AUTO_DEDUP },
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "no-tls", no_argument, NULL, OPT_NO_TLS },
		{ "tls-cacert", required_argument, NULL, OPT_TLS_CACERT },
		{ "tls-cacrl", required_argument, NULL, OPT_TLS_CACRL },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-no-cn-verify", no_argument, NULL, OPT_TLS_NO_CN_VERIFY },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;	/* what getopt does not know is refused below, by name */
	while ((c = getopt_long(argc, argv, ":t:D:W:o:v::Rjdlhx::VJ:r:M:", longopts, NULL)) != -1) {
		switch (c) {
		case 't': if (parse_pid(optarg, &o->pid) < 0) return -1; break;
		case 'D': o->images_dir = optarg; break;
		case 'W': o->work_dir = optarg; break;
		case 'o': o->log_file = optarg; break;
		case 'v':
			if (!optarg)
				o->log_level++;
			else if (parse_verbosity(optarg, &o->log_level) < 0)
				return -1;
			break;
		case 'R': o->leave_running = true; break;
		case 'j': o->shell_job = true; break;
		case 'd': o->detach = true; break;
		case OPT_PIDFILE: o->pidfile = optarg; break;
		case OPT_NEW_PIDNS: o->new_pidns = true; break;
		case OPT_INHERIT_FD: if (parse_inherit_fd(optarg, o) < 0) return -1; break;
		case OPT_EXTERNAL:
			if (add_string(&o->external, &o->nr_external, optarg) < 0)
				return -1;
			break;
		case 'r': o->root = optarg; break;
		case 'M': if (add_ext_mount_map(o, optarg) < 0) return -1; break;
		case OPT_SKIP_MNT:
			if (add_string(&o->skip_mnt, &o->nr_skip_mnt, optarg) < 0)
				return -1;
			break;
		case OPT_ENABLE_FS:
			if (add_string(&o->enable_fs, &o->nr_enable_fs, optarg) < 0)
				return -1;
			break;
		case OPT_MNTNS_COMPAT: break;
		case OPT_VETH_PAIR:
			if (!strchr(optarg, '=') || *optarg == '=') {
				fprintf(stderr, "Error: bad --veth-pair '%s' (IN=OUT[@BRIDGE])\n", optarg);
				return -1;
			}
			if (add_string(&o->veth_pairs, &o->nr_veth_pairs, optarg) < 0)
				return -1;
			break;
		case OPT_EMPTY_NS: if (parse_empty_ns(optarg, o) < 0) return -1; break;
		case OPT_PREV_IMAGES_DIR: o->prev_images_dir = optarg; break;
		case OPT_TRACK_MEM: o->track_mem = true; break;
		case OPT_LIVE_SNAPSHOT: o->live_snapshot = o->leave_running = true; break;
		case OPT_ACTION_SCRIPT:
			if (add_string(&o->action_scripts, &o->nr_action_scripts, optarg) < 0)
				return -1;
			break;
		case 'x': case OPT_EXT_UNIX_SK: if (parse_ext_unix_sk(optarg, o) < 0) return -1; break;
		case OPT_DISPLAY_STATS: o->display_stats = true; break;
		case OPT_NO_SHELL_JOB: o->shell_job = false; break;
		case OPT_NO_FILE_LOCKS: o->file_locks = false; break;
		case OPT_NO_DETACH: o->detach = false; break;
		case OPT_NO_TRACK_MEM: o->track_mem = false; break;
		case OPT_NO_DISPLAY_STATS: o->display_stats = false; break;
		case OPT_NO_LINK_REMAP: o->link_remap = false; break;
		case 'l': o->file_locks = true; break;
		case OPT_ADDRESS: o->address = optarg; break;
		case OPT_SOCKET_MODE: {
			char *end;
			long m = strtol(optarg, &end, 8);
			if (!*optarg || *end || m < 0 || m > 0777) {
				fprintf(stderr, "Error: bad --socket-mode '%s' (octal, e.g. 0660)\n", optarg);
				return -1;
			}
			o->socket_mode = m;
			break;
		}
		case OPT_ALLOW_USERS:
			if (add_string(&o->allow_users, &o->nr_allow_users, optarg) < 0)
				return -1;
			break;
		case OPT_GHOST_LIMIT: if (parse_size(optarg, &o->ghost_limit) < 0) return -1; break;
		/* read by config_args before the options themselves */
		case OPT_CONFIG: case OPT_NO_DEFAULT_CONFIG: break;
		case OPT_TIMEOUT: if (parse_timeout(optarg, o) < 0) return -1; break;
		case OPT_PRE_DUMP_MODE: if (parse_pre_dump_mode(optarg) < 0) return -1; break;
		case OPT_FEATURE:
			if (nr_check_features == (int)(sizeof(check_features) / sizeof(check_features[0]))) {
				fprintf(stderr, "Error: too many --feature\n");
				return -1;
			}
			check_features[nr_check_features++] = optarg;
			break;
		case OPT_LINK_REMAP: o->link_remap = true; break;
		case OPT_NETWORK_LOCK: if (parse_network_lock(optarg, o) < 0) return -1; break;
		case 'J': if (parse_join_ns(optarg, o) < 0) return -1; break;
		case OPT_TCP_ESTABLISHED: o->tcp_established = true; break;
		case OPT_NO_TCP_ESTABLISHED: o->tcp_established = false; break;
		case OPT_TCP_CLOSE: o->tcp_close = true; break;
		case OPT_NO_TCP_CLOSE: o->tcp_close = false; break;
		case OPT_SKIP_IN_FLIGHT: o->skip_in_flight = true; break;
		case OPT_NO_SKIP_IN_FLIGHT: o->skip_in_flight = false; break;
		case OPT_GHOST_FIEMAP: o->no_ghost_fiemap = false; break;
		case OPT_NO_GHOST_FIEMAP: o->no_ghost_fiemap = true; break;
		case OPT_LAZY_PAGES: o->lazy_pages = true; break;
		case OPT_STATUS_FD: {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (!*optarg || *end || fd < 0 || fd > INT_MAX || fcntl(fd, F_GETFD) < 0) {
				fprintf(stderr, "Error: --status-fd %s: not an open fd\n", optarg);
				return -1;
			}
			o->status_fd = fd;
			break;
		}
		case 'V': case OPT_VERSION:	/* as CRIU prints it */
			printf("Version: %s\nGitID: %s\n", STASIS_VERSION, STASIS_GITID);
			exit(0);
		case OPT_FORCE_IRMAP: o->force_irmap = true; break;
		case OPT_IRMAP_SCAN_PATH:
			if (add_string(&o->irmap_scan_paths, &o->nr_irmap_scan_paths, optarg) < 0)
				return -1;
			break;
		case OPT_MANAGE_CGROUPS: if (parse_cg_mode(optarg, o) < 0) return -1; break;
		case OPT_CGROUP_ROOT: if (parse_cg_root(optarg, o) < 0) return -1; break;
		case OPT_CGROUP_PROPS: o->cgroup_props = optarg; break;
		case OPT_CGROUP_PROPS_FILE: o->cgroup_props_file = optarg; break;
		case OPT_CGROUP_DUMP_CTL:
			if (add_string(&o->cgroup_dump_ctls, &o->nr_cgroup_dump_ctls, optarg) < 0)
				return -1;
			break;
		case OPT_CGROUP_YARD: o->cgroup_yard = optarg; break;
		case OPT_FREEZE_CGROUP: o->freeze_cgroup = optarg; break;
		case OPT_PAGE_SERVER: o->page_server = true; break;
		case OPT_NO_PAGE_SERVER: o->page_server = false; break;
		case OPT_PORT: if (parse_number(optarg, "--port", 65535, &o->port) < 0) return -1; break;
		case OPT_PS_SOCKET: if (parse_fd(optarg, "--ps-socket", &o->ps_socket) < 0) return -1; break;
		case OPT_SKIP_CHECKSUMS: o->skip_checksums = true; break;
		case OPT_FILE_VALIDATION: if (parse_file_validation(optarg, o) < 0) return -1; break;
		case OPT_AUTO_DEDUP: o->auto_dedup = true; break;
		case OPT_NO_AUTO_DEDUP: o->auto_dedup = false; break;
		case OPT_TLS: o->tls = true; break;
		case OPT_NO_TLS: o->tls = false; break;
		case OPT_TLS_CACERT: o->tls_cacert = optarg; break;
		case OPT_TLS_CACRL: o->tls_cacrl = optarg; break;
		case OPT_TLS_CERT: o->tls_cert = optarg; break;
		case OPT_TLS_KEY: o->tls_key = optarg; break;
		case OPT_TLS_NO_CN_VERIFY: o->tls_no_cn_verify = true; break;
		case 'h': usage(stdout); exit(0);
		case ':':
			fprintf(stderr, "Error: option %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			if (criu_opt_unknown(argv, optind, optopt) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

/* What an option left out means (the command line's; an RPC request's
 * are its own). */
static void opts_defaults(struct opts *o)
{
	o->log_level = LOG_WARN;
	o->socket_mode = -1;
	o->images_dirfd = o->work_dirfd = -1;
	o->ps_socket = o->status_fd = -1;
	o->ghost_limit = 1 << 20;
}

/* An RPC request's config_file (runc's /etc/criu/runc.conf), read as
 * --config FILE is: its options on top of the request's. Where the images,
 * the logs and the tree are stay the request's, as a service's client
 * opened them; the words stay allocated for the request's life. */
static int rpc_config(const char *path, struct opts *o)
{
	struct opts before = *o;
	char **argv;
	int argc;

	if (config_file_args(path, &argc, &argv) < 0) {
		pr_err("rpc: config_file %s can't be read (see stasis's stderr)", path);
		return -1;
	}
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--help", 6) || !strncmp(argv[i], "--version", 9)) {
			pr_err("rpc: config_file %s: %s is no option for a request", path, argv[i]);
			return -1;
		}
	optind = 0;	/* getopt starts over */
	if (parse_args(argc, argv, o) < 0) {
		pr_err("rpc: config_file %s has an option stasis refuses (see stasis's stderr)", path);
		return -1;
	}
	if (optind < argc) {
		pr_err("rpc: config_file %s: '%s' is not an option", path, argv[optind]);
		return -1;
	}
	if (o->images_dir != before.images_dir || o->work_dir != before.work_dir ||
	    o->log_file != before.log_file || o->pid != before.pid || o->pidfile != before.pidfile) {
		pr_err("rpc: config_file %s: images-dir, work-dir, log-file, tree and pidfile are taken "
		       "from the request, not from an RPC config file, by stasis", path);
		return -1;
	}
	return 0;
}

/* CRIU writes a relative log file or pidfile in the work directory, which
 * defaults to the images directory. */
static char *in_work_dir(const struct opts *o, const char *path)
{
	const char *dir = o->work_dir ? o->work_dir : o->images_dir;
	char *full;
	if (!path || path[0] == '/' || !dir || !strcmp(path, "-"))
		return path ? strdup(path) : NULL;
	if (asprintf(&full, "%s/%s", dir, path) < 0)
		return NULL;
	return full;
}

/* One user of --allow-users: a name, or a number. */
static int parse_user(const char *name, uid_t *uid)
{
	char *end;
	struct passwd *pw = getpwnam(name);
	if (pw) {
		*uid = pw->pw_uid;
		return 0;
	}
	unsigned long v = strtoul(name, &end, 10);
	if (!*name || *end || v >= (uid_t)-1) {
		fprintf(stderr, "Error: --allow-users: no user '%s'\n", name);
		return -1;
	}
	*uid = v;
	return 0;
}

static int parse_allowed(const struct opts *o, struct rpc_allowed *a)
{
	for (int i = 0; i < o->nr_allow_users; i++) {
		char *list = strdup(o->allow_users[i]), *save = NULL;
		for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
			uid_t *n = realloc(a->uids, (a->nr + 1) * sizeof(*n));
			if (!n || parse_user(u, &n[a->nr]) < 0) {
				free(list);
				return -1;
			}
			a->uids = n;
			a->nr++;
		}
		free(list);
	}
	return 0;
}

/* check: every feature, or those named by --feature (CRIU's exit status:
 * 0 if all are there). */
static int run_check(void)
{
	if (!nr_check_features)
		return stasis_check(stdout) < 0 ? 1 : 0;
	int ret = 0;
	for (int i = 0; i < nr_check_features; i++)
		if (stasis_check_feature(check_features[i], stdout) != 0)
			ret = 1;
	return ret;
}

static int run_service(struct opts *o)
{
	struct rpc_allowed allowed = { NULL, 0 };
	if (parse_allowed(o, &allowed) < 0 || log_init(o->log_file, o->log_level) < 0)
		return 1;
	/* started by systemd's stasis.socket: its socket, not --address */
	int lsk = systemd_listen_fd();
	if (lsk == -2)
		return 1;
	if (lsk < 0 && !o->address) {
		fprintf(stderr, "Error: service needs the socket to serve on: --address SOCK\n");
		return 1;
	}
	int ret = stasis_service(o->address, lsk, o->detach, o->pidfile,
				 o->socket_mode < 0 ? 0600 : o->socket_mode, &allowed);
	log_close();
	free(allowed.uids);
	return ret;
}

static int run_page_server(struct opts *o)
{
	if (!o->images_dir) {
		fprintf(stderr, "Error: page-server needs the images directory: -D DIR\n");
		return 1;
	}
	char *log = in_work_dir(o, o->log_file);
	if (log_init(log, o->log_level) < 0)
		return 1;
	free(log);
	char *pidfile = in_work_dir(o, o->pidfile);
	o->pidfile = pidfile;
	int ret = stasis_page_server(o) < 0 ? 1 : 0;
	log_close();
	free(pidfile);
	return ret;
}

/* The progress line of a long dump or restore (util/progress.h): on a
 * terminal, not with -v0, and not where the log itself goes (without -o
 * the log is stderr, and above -v2 it says more than the line would). */
static bool progress_wanted(int level)
{
	int fds[2];
	if (level < 1 || !isatty(2) || log_fds(fds) < 0)
		return false;
	return fds[0] < 0 ? level <= LOG_WARN : !isatty(fds[0]);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	int ret;

	/* crit's options are its own (its -o is no log file) */
	const char *self = strrchr(argv[0], '/');
	if (!strcmp(self ? self + 1 : argv[0], "crit"))
		return crit_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "crit"))
		return crit_main(argc - 1, argv + 1);
	if (config_args(argc, argv, &argc, &argv) < 0)
		return 1;
	opts_defaults(&o);
	if (parse_args(argc, argv, &o) < 0)
		return 1;	/* said in one line */
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "check"))
		return run_check();
	if (!strcmp(cmd, "image-kinds")) {
		print_image_kinds(stdout);
		return 0;
	}
	rpc_set_config_reader(rpc_config);
	if (!strcmp(cmd, "swrk")) {
		if (optind + 1 >= argc) {
			fprintf(stderr, "Error: swrk needs the fd of its socket: stasis swrk FD\n");
			return 1;
		}
		return stasis_swrk(argv[optind + 1]);
	}
	if (!strcmp(cmd, "service"))
		return run_service(&o);
	if (!strcmp(cmd, "page-server"))
		return run_page_server(&o);
	if (!strcmp(cmd, "pre-dump")) {
		o.pre_dump = true;
		cmd = "dump";
	}
	if (o.live_snapshot && (strcmp(cmd, "dump") || o.pre_dump || o.track_mem)) {
		fprintf(stderr, "Error: --live-snapshot is for dump, without --track-mem\n");
		return 1;
	}
	if (o.live_snapshot && (o.page_server || o.ps_socket >= 0 || o.auto_dedup)) {
		fprintf(stderr, "Error: --live-snapshot writes its pages in -D: not with --page-server, --ps-socket or --auto-dedup\n");
		return 1;
	}
	if (strcmp(cmd, "dump") && strcmp(cmd, "restore") && strcmp(cmd, "lazy-pages")) {
		fprintf(stderr, "Error: unknown command '%s'\n", cmd);
		usage(stderr);
		return 1;
	}
	if (!o.images_dir) {
		fprintf(stderr, "Error: %s needs the images directory: -D DIR\n", cmd);
		return 1;
	}
	/* Checked before the log, which may live in it. Never made: as with
	 * CRIU, a mistyped -D fails instead of filling a new directory. */
	struct stat st;
	int bad = stat(o.images_dir, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (bad) {
		fprintf(stderr, "Error: can't use images directory %s: %s\n", o.images_dir, strerror(bad));
		return 1;
	}
	char *log = in_work_dir(&o, o.log_file);
	if (log_init(log, o.log_level) < 0)
		return 1;
	free(log);
	progress_allow(strcmp(cmd, "lazy-pages") && progress_wanted(o.log_level));
	char *pidfile = in_work_dir(&o, o.pidfile);
	o.pidfile = pidfile;
	/* CRIU runs in its work directory: a relative yard is found from there */
	char *yard = in_work_dir(&o, o.cgroup_yard);
	o.cgroup_yard = yard;
	if (!strcmp(cmd, "lazy-pages"))
		ret = stasis_lazy_pages(&o);
	else if (!strcmp(cmd, "dump") && o.lazy_pages && o.live_snapshot) {
		pr_err("dump --lazy-pages keeps the tree frozen while it serves its memory; --live-snapshot "
		       "can't go with it");
		ret = 1;
	} else if (!strcmp(cmd, "dump"))
		ret = stasis_dump(&o) < 0 ? 1 : 0;
	else {
		if (network_lock_given)
			pr_warn("--network-lock is ignored by restore, which unlocks as the dump locked");
		ret = stasis_restore(&o);
	}
	log_close();
	free(pidfile);
	free(yard);
	return ret;
}
