/* `stasis check` and RPC CHECK: probes, one by one, the kernel features
 * dump and restore use (kept beside dump, whose tracking probes it asks). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/kcmp.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>

#include "dump/check.h"
#include "files/files.h"
#include "dump/track.h"
#include "dump/live.h"
#include "net/netlock.h"
#include "net/nft_lib.h"
#include "task/guards.h"
#include "task/timens.h"
#include "util/compat.h"
#include "util/lazy_proto.h"

#ifndef __NR_clone3
#define __NR_clone3 435
#endif

/* A child stopped for ptrace probes. */
static pid_t stopped_child(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static bool has_ptrace_seize(void)
{
	pid_t pid = stopped_child();
	int status;
	bool ok = pid > 0 && ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 &&
		  ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, &status, __WALL) == pid;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
	}
	return ok;
}

/* Seccomp'd tasks: our injected calls must bypass their seccomp (needs
 * CAP_SYS_ADMIN and a kernel with CONFIG_CHECKPOINT_RESTORE). */
static bool has_suspend_seccomp(void)
{
	pid_t pid = stopped_child();
	int status;
	bool ok = pid > 0 && ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_SUSPEND_SECCOMP) == 0;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
	}
	return ok;
}

static bool has_rseq_config(void)
{
	pid_t pid = stopped_child();
	int status;
	struct rseq_config rc;
	bool ok = pid > 0 && ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 &&
		  ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, &status, __WALL) == pid &&
		  ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(rc), &rc) > 0;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
	}
	return ok;
}

/* clone3 with a set_tid array of the wrong size fails with EINVAL where
 * set_tid is known, and E2BIG/ENOSYS where it is not. */
static bool has_clone3_set_tid(void)
{
	struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
		 tls, set_tid, set_tid_size, cgroup; } args = { 0 };
	pid_t tid = 1;
	args.set_tid = (uint64_t)&tid;
	args.set_tid_size = 100;	/* more than pid namespace levels */
	long r = syscall(__NR_clone3, &args, sizeof(args));
	return r < 0 && errno == EINVAL;
}

/* memfd_create(MFD_HUGETLB) (4.14+), whose memfds stasis saves and
 * makes again (files/memfd.c); huge pages need not be free for it. */
static bool has_memfd_hugetlb(void)
{
	int fd = memfd_create("stasis-check", MFD_CLOEXEC | MFD_HUGETLB);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool has_pagemap_scan(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	struct page_region vec[1];
	struct pm_scan_arg a = { .size = sizeof(a), .start = (uint64_t)&vec, .end = (uint64_t)&vec,
				 .vec = (uint64_t)vec, .vec_len = 1,
				 .category_anyof_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT };
	a.start &= ~4095ul;
	a.end = a.start + 4096;
	bool ok = fd >= 0 && ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool has_mem_track(void)
{
	return track_method() != TRACK_NONE;
}

/* Which of the two pre-dump tracks with here. */
static const char *mem_track_how(void)
{
	const char *how = track_method_name(track_method());
	return how ? how : "pre-dump and --track-mem (needs one of the two above)";
}

static bool has_time_ns(void)
{
	return access("/proc/self/ns/time", F_OK) == 0;
}

static bool has_pidfd_getfd(void)
{
	return syscall(SYS_pidfd_getfd, -1, 0, 0) < 0 && errno == EBADF;
}

static bool has_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0 || errno == EBADF;
}

static bool has_process_vm_readv(void)
{
	char a = 1, b = 0;
	struct iovec l = { &b, 1 }, r = { &a, 1 };
	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == 1 && b == 1;
}

/* A userfaultfd with the API handshake done, asking for features; what
 * the kernel gives in *got. As root (CAP_SYS_PTRACE) it catches the
 * kernel's own faults too, as a lazy restore needs. */
static bool uffd_probe(uint64_t want, uint64_t *got)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	bool ok = ioctl(fd, UFFDIO_API, &api) == 0;
	close(fd);
	if (got)
		*got = ok ? api.features : 0;
	return ok;
}

static bool has_uffd(void)
{
	return uffd_probe(0, NULL);
}

bool check_lazy_pages(void)
{
	uint64_t got;
	return uffd_probe(LAZY_UFFD_FEATURES, &got) && (got & LAZY_UFFD_FEATURES) == LAZY_UFFD_FEATURES;
}

static bool has_map_files(void)
{
	return access("/proc/self/map_files", R_OK) == 0;
}

int stasis_check(FILE *out)
{
	static const struct {
		const char *name;
		bool (*probe)(void);
		bool required;
		const char *why;	/* NULL: mem_track_how() */
	} features[] = {
		{ "ptrace seize", has_ptrace_seize, true, "stop tasks without signals" },
		{ "clone3 set_tid", has_clone3_set_tid, true, "restore with the same pids" },
		{ "process_vm_readv", has_process_vm_readv, true, "copy memory" },
		{ "kcmp", has_kcmp, true, "find shared files" },
		{ "ptrace rseq configuration", has_rseq_config, true, "save glibc's rseq" },
		{ "/proc/PID/map_files", has_map_files, false, "inspect mapped files" },
		{ "PAGEMAP_SCAN", has_pagemap_scan, false, "fast present-page scan (else pagemap)" },
		{ "userfaultfd write-protect async", track_has_uffd_wp_async, false, "dirty tracking for pre-dump (6.7+)" },
		{ "soft-dirty bits", track_has_soft_dirty, false, "dirty tracking for pre-dump (else)" },
		{ "userfaultfd write-protect", live_kernel_has, false, "dump --live-snapshot (5.7+; else stop-the-world)" },
		{ "memory tracking", has_mem_track, false, NULL },
		{ "guard pages", guards_supported, false, "save madvise(MADV_GUARD_INSTALL) regions (6.14+)" },
		{ "time namespaces", has_time_ns, false, "monotonic clocks across machines" },
		{ "pidfd_getfd", has_pidfd_getfd, false, "take fds from tasks" },
		{ "ptrace suspend seccomp", has_suspend_seccomp, false, "dump and restore seccomp'd tasks" },
		{ "nftables network lock", netlock_nft_works, false, "--network-lock nftables" },
		{ "lazy pages", check_lazy_pages, false, "restore --lazy-pages (userfaultfd events of fork, mremap, munmap, madvise)" },
	};
	bool missing_required = false;

	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		bool ok = features[i].probe();
		if (out)
			fprintf(out, "%-34s %-4s %s%s\n", features[i].name, ok ? "yes" : "no",
				features[i].why ? features[i].why : mem_track_how(),
		       !ok && features[i].required ? " (REQUIRED)" : "");
		if (!ok && features[i].required)
			missing_required = true;
	}
	if (missing_required) {
		if (out)
			fprintf(out, "Error: a required kernel feature is missing\n");
		return -1;
	}
	if (out)
		fprintf(out, "Looks good.\n");
	return 0;
}

/* ---- check --feature NAME: CRIU's names, for what asks by them (zdtm,
 * runtimes). A feature is reported only where stasis itself handles it
 * and the kernel has what that takes; the others CRIU knows are named
 * and reported missing. ---- */

static bool always(void)
{
	return true;
}

static bool never(void)
{
	return false;
}

/* loginuid is saved and restored where the kernel has it
 * (CONFIG_AUDITSYSCALL) and we may set ours: our own value written back
 * (CRIU asks the same; unset, anyone may; set, CAP_AUDIT_CONTROL). */
static bool has_loginuid(void)
{
	char buf[16];
	int fd = open("/proc/self/loginuid", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	bool ok = n > 0 && pwrite(fd, buf, n, 0) == n;
	close(fd);
	return ok;
}

/* An io_setup() ring moved elsewhere still works: how restore puts one
 * back at its old address (restore/aio.c). */
static bool has_aio_remap(void)
{
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, 16, &ctx) < 0)
		return false;
	long page = sysconf(_SC_PAGESIZE);
	/* its length: the header and nr events of 32 bytes (struct aio_ring) */
	unsigned nr = ((volatile unsigned *)ctx)[1];
	long len = (32 + (long)nr * 32 + page - 1) / page * page;
	void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok = false;
	if (to != MAP_FAILED) {
		void *moved = mremap((void *)ctx, len, len, MREMAP_FIXED | MREMAP_MAYMOVE, to);
		if (moved == to) {
			ctx = (aio_context_t)to;
			ok = syscall(SYS_io_getevents, ctx, 0, 1, NULL, NULL) == 0;
		} else {
			munmap(to, len);
		}
	}
	syscall(SYS_io_destroy, ctx);
	return ok;
}

/* A socket option of a level the kernel knows (inet sockets save and
 * restore it): IPV6_FREEBIND (4.15+), SO_BUF_LOCK (5.14+). */
static bool has_sockopt(int family, int level, int opt)
{
	int v = 0, sk = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof(v);
	bool ok = sk >= 0 && getsockopt(sk, level, opt, &v, &l) == 0;
	if (sk >= 0)
		close(sk);
	return ok;
}

static bool has_ipv6_freebind(void)
{
	return has_sockopt(AF_INET6, SOL_IPV6, 78 /* IPV6_FREEBIND */);
}

static bool has_sockopt_buf_lock(void)
{
	return has_sockopt(AF_INET, SOL_SOCKET, 72 /* SO_BUF_LOCK */);
}

/* What the restore of a mount namespace uses (ns/mnt_restore.c): peer
 * groups copied by MOVE_MOUNT_SET_GROUP (5.15+; EBADF on no fd: known),
 * paths resolved inside the new root by openat2 (5.6+). */
static bool has_move_mount_set_group(void)
{
	long r = syscall(SYS_move_mount, -1, "", -1, "", 0x00000100 /* MOVE_MOUNT_SET_GROUP */ | 0x4 | 0x40);
	return r < 0 && errno == EBADF;
}

static bool has_openat2(void)
{
	struct { uint64_t flags, mode, resolve; } how = { O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0 };
	long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

/* tun/tap devices and the tree's /dev/net/tun files (files/tunfile.c) */
static bool has_tun(void)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* a network namespace's nftables ruleset, saved through libnftables */
static bool has_nftables(void)
{
	return nft_lib("check --feature nftables", true) != NULL;
}

static const struct {
	const char *name;
	bool (*probe)(void);
} criu_features[] = {
	{ "mnt_id", always },			/* mnt_id in fdinfo (3.15+) */
	{ "mem_dirty_track", has_mem_track },
	{ "timerfd", always },			/* timerfd state in fdinfo (3.17+) */
	{ "fdinfo_lock", always },		/* locks in fdinfo (4.1+) */
	{ "seccomp_suspend", has_suspend_seccomp },
	{ "seccomp_filters", has_suspend_seccomp },
	{ "kcmp_epoll", has_kcmp },
	{ "clone3_set_tid", has_clone3_set_tid },
	{ "get_rseq_conf", has_rseq_config },
	{ "pagemap_scan", has_pagemap_scan },
	{ "pagemap_scan_guard_pages", guards_supported },
	{ "ipv6_freebind", has_ipv6_freebind },
	{ "net_diag_raw", always },		/* raw sockets: stasis reads them without sock_diag */
	{ "sockopt_buf_lock", has_sockopt_buf_lock },
	{ "ns_pid", always },			/* NSpid in status (4.1+) */
	{ "tcp_half_closed", files_tcp_half_closed },
	{ "aio_remap", has_aio_remap }, { "tun", has_tun }, { "tun_ns", never }, { "userns", always },
	{ "loginuid", has_loginuid }, { "cgroupns", cg_ns_supported }, { "autofs", never }, { "compat_cr", never },
	{ "uffd", has_uffd }, { "uffd-noncoop", check_lazy_pages }, { "lazy_pages", check_lazy_pages }, { "can_map_vdso", never }, { "sk_ns", never },
	{ "sk_unix_file", never }, { "nsid", never }, { "link_nsid", never },
	{ "timens", timens_supported }, { "external_net_ns", never }, { "newifindex", never }, { "nftables", has_nftables },
	{ "has_ipt_legacy", netlock_ipt_legacy }, { "pidfd_store", never }, { "apparmor_stacking", never },
	{ "network_lock_nftables", netlock_nft_works }, { "memfd_hugetlb", has_memfd_hugetlb },
	{ "move_mount_set_group", has_move_mount_set_group }, { "openat2", has_openat2 },
};

int stasis_check_feature(const char *name, FILE *out)
{
	size_t n = sizeof(criu_features) / sizeof(criu_features[0]);
	if (!strcmp(name, "list")) {
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s%s", criu_features[i].name, i + 1 < n ? " " : "\n");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, criu_features[i].name))
			continue;
		bool ok = criu_features[i].probe();
		fprintf(out, "%s is %s\n", name, ok ? "supported" : "not supported");
		return ok ? 0 : 1;
	}
	fprintf(stderr, "Error: unknown feature %s (stasis check --feature list names them)\n", name);
	return -1;
}
