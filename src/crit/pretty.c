#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crit/pretty.h"

static const struct pretty_name mmap_prot[] = {
	{ "PROT_READ", 0x1 }, { "PROT_WRITE", 0x2 }, { "PROT_EXEC", 0x4 }, { NULL, 0 },
};

static const struct pretty_name mmap_flags[] = {
	{ "MAP_SHARED", 0x1 }, { "MAP_PRIVATE", 0x2 }, { "MAP_ANON", 0x20 }, { "MAP_GROWSDOWN", 0x100 }, { NULL, 0 },
};

static const struct pretty_name vma_status[] = {
	{ "VMA_AREA_NONE", 0 }, { "VMA_AREA_REGULAR", 1 << 0 }, { "VMA_AREA_STACK", 1 << 1 },
	{ "VMA_AREA_VSYSCALL", 1 << 2 }, { "VMA_AREA_VDSO", 1 << 3 }, { "VMA_AREA_HEAP", 1 << 5 },
	{ "VMA_FILE_PRIVATE", 1 << 6 }, { "VMA_FILE_SHARED", 1 << 7 }, { "VMA_ANON_SHARED", 1 << 8 },
	{ "VMA_ANON_PRIVATE", 1 << 9 }, { "VMA_AREA_SYSVIPC", 1 << 10 }, { "VMA_AREA_SOCKET", 1 << 11 },
	{ "VMA_AREA_VVAR", 1 << 12 }, { "VMA_AREA_AIORING", 1 << 13 }, { "VMA_UNSUPP", 1u << 31 }, { NULL, 0 },
};

static const struct pretty_name open_flags[] = {
	{ "O_WRONLY", 01 }, { "O_RDWR", 02 }, { "O_CREAT", 0100 }, { "O_EXCL", 0200 }, { "O_NOCTTY", 0400 },
	{ "O_TRUNC", 01000 }, { "O_APPEND", 02000 }, { "O_NONBLOCK", 04000 }, { "O_DSYNC", 010000 },
	{ "FASYNC", 020000 }, { "O_DIRECT", 040000 }, { "O_LARGEFILE", 0100000 }, { "O_DIRECTORY", 0200000 },
	{ "O_NOFOLLOW", 0400000 }, { "O_NOATIME", 01000000 }, { "O_CLOEXEC", 02000000 }, { NULL, 0 },
};

static const struct pretty_name pagemap_flags[] = {
	{ "PE_PARENT", 1 << 0 }, { "PE_LAZY", 1 << 1 }, { "PE_PRESENT", 1 << 2 }, { NULL, 0 },
};

static const struct pretty_name seals[] = {
	{ "F_SEAL_SEAL", 0x1 }, { "F_SEAL_SHRINK", 0x2 }, { "F_SEAL_GROW", 0x4 }, { "F_SEAL_WRITE", 0x8 },
	{ "F_SEAL_FUTURE_WRITE", 0x10 }, { NULL, 0 },
};

static const struct pretty_name task_states[] = {
	{ "Alive", 1 }, { "Zombie", 3 }, { "Stopped", 6 }, { NULL, 0 },
};

static const struct pretty_name sk_types[] = {
	{ "STREAM", 1 }, { "DGRAM", 2 }, { "RAW", 3 }, { "SEQPACKET", 5 }, { "PACKET", 10 }, { NULL, 0 },
};

static const struct pretty_name sk_states[] = {
	{ "ESTABLISHED", 1 }, { "SYN_SENT", 2 }, { "SYN_RECV", 3 }, { "FIN_WAIT1", 4 }, { "FIN_WAIT2", 5 },
	{ "TIME_WAIT", 6 }, { "CLOSE", 7 }, { "CLOSE_WAIT", 8 }, { "LAST_ACK", 9 }, { "LISTEN", 10 }, { NULL, 0 },
};

static const struct pretty_name sk_families[] = {
	{ "UNIX", 1 }, { "INET", 2 }, { "INET6", 10 }, { "NETLINK", 16 }, { "PACKET", 17 }, { NULL, 0 },
};

static const struct pretty_name sk_protos[] = {
	{ "IP", 0 }, { "TCP", 6 }, { "UDP", 17 }, { "UDPLITE", 136 }, { NULL, 0 },
};

static const struct pretty_name lsm_types[] = {
	{ "NO_LSM", 0 }, { "SELINUX", 1 }, { "APPARMOR", 2 }, { NULL, 0 },
};

static const struct pretty_name regs_modes[] = {
	{ "NATIVE", 1 }, { "COMPAT", 2 }, { NULL, 0 },
};

static const struct pretty_name seccomp_modes[] = {
	{ "disabled", 0 }, { "strict", 1 }, { "filter", 2 }, { NULL, 0 },
};

#define HEX(m, f) { m, f, PRETTY_HEX, NULL }

static const struct pretty_field fields[] = {
	{ "inventory_entry", "lsmtype", PRETTY_ENUM, lsm_types },
	{ "user_x86_regs_entry", "mode", PRETTY_ENUM, regs_modes },
	{ "task_core_entry", "old_seccomp_mode", PRETTY_ENUM, seccomp_modes },
	{ "thread_core_entry", "seccomp_mode", PRETTY_ENUM, seccomp_modes },
	HEX("thread_info_x86", "clear_tid_addr"), HEX("thread_info_x86", "gpregs"),
	{ "task_core_entry", "task_state", PRETTY_DICT, task_states },
	HEX("task_core_entry", "blk_sigset"), HEX("task_core_entry", "blk_sigset_extended"),
	HEX("sa_entry", "sigaction"), HEX("sa_entry", "flags"), HEX("sa_entry", "restorer"), HEX("sa_entry", "mask"),
	HEX("sa_entry", "mask_extended"),
	HEX("mm_entry", "mm_start_code"), HEX("mm_entry", "mm_end_code"), HEX("mm_entry", "mm_start_data"),
	HEX("mm_entry", "mm_end_data"), HEX("mm_entry", "mm_start_stack"), HEX("mm_entry", "mm_start_brk"),
	HEX("mm_entry", "mm_brk"), HEX("mm_entry", "mm_arg_start"), HEX("mm_entry", "mm_arg_end"),
	HEX("mm_entry", "mm_env_start"), HEX("mm_entry", "mm_env_end"),
	HEX("vma_entry", "start"), HEX("vma_entry", "end"),
	HEX("tcp_stream_entry", "opt_mask"),
	{ "vma_entry", "prot", PRETTY_FLAGS, mmap_prot },
	{ "vma_entry", "flags", PRETTY_FLAGS, mmap_flags },
	{ "vma_entry", "status", PRETTY_FLAGS, vma_status },
	HEX("vma_entry", "madv"), HEX("vma_entry", "fdflags"),
	HEX("pagemap_entry", "vaddr"),
	{ "pagemap_entry", "flags", PRETTY_FLAGS, pagemap_flags },
	{ "reg_file_entry", "flags", PRETTY_FLAGS, open_flags },
	HEX("signalfd_entry", "flags"), HEX("signalfd_entry", "sigmask"),
	HEX("timerfd_entry", "flags"), HEX("timerfd_entry", "settime_flags"),
	HEX("inotify_file_entry", "flags"),
	HEX("inotify_wd_entry", "mask"), HEX("inotify_wd_entry", "ignored_mask"),
	{ "inotify_wd_entry", "s_dev", PRETTY_DEV, NULL },
	{ "unix_sk_entry", "type", PRETTY_DICT, sk_types },
	{ "unix_sk_entry", "state", PRETTY_DICT, sk_states },
	HEX("unix_sk_entry", "flags"), HEX("unix_sk_entry", "uflags"),
	{ "unix_sk_entry", "name", PRETTY_UNIX_NAME, NULL },
	{ "inet_sk_entry", "family", PRETTY_DICT, sk_families },
	{ "inet_sk_entry", "type", PRETTY_DICT, sk_types },
	{ "inet_sk_entry", "proto", PRETTY_DICT, sk_protos },
	{ "inet_sk_entry", "state", PRETTY_DICT, sk_states },
	HEX("inet_sk_entry", "flags"),
	{ "inet_sk_entry", "src_addr", PRETTY_IPADDR, NULL },
	{ "inet_sk_entry", "dst_addr", PRETTY_IPADDR, NULL },
	HEX("packet_sock_entry", "flags"), HEX("netlink_sk_entry", "flags"),
	HEX("net_device_entry", "flags"),
	HEX("pipe_entry", "flags"),
	HEX("tty_file_entry", "flags"),
	{ "memfd_file_entry", "flags", PRETTY_FLAGS, open_flags },
	{ "ghost_file_entry", "dev", PRETTY_DEV, NULL },
	{ "ghost_file_entry", "rdev", PRETTY_ODEV, NULL },
	{ "memfd_inode_entry", "seals", PRETTY_FLAGS, seals },
	{ "mnt_entry", "root_dev", PRETTY_DEV, NULL },
	HEX("mnt_entry", "flags"), HEX("mnt_entry", "sb_flags"),
};

const struct pretty_field *pretty_find(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!strcmp(fields[i].field, f->name) && !strcmp(fields[i].message, d->name))
			return &fields[i];
	return NULL;
}

char *pretty_flags(const struct pretty_name *names, uint64_t v)
{
	char *out = malloc(1024);
	size_t n = 0;
	uint64_t known = 0;

	if (!out)
		return NULL;
	out[0] = 0;
	for (const struct pretty_name *p = names; p->name; p++) {
		known |= p->value;
		if (v & p->value)
			n += snprintf(out + n, 1024 - n, "%s%s", n ? " | " : "", p->name);
	}
	if (v & ~known)
		snprintf(out + n, 1024 - n, "%s0x%llx", n ? " | " : "", (unsigned long long)(v & ~known));
	return out;
}

static bool parse_number(const char *s, uint64_t *v)
{
	char *end;
	int base = !strncmp(s, "0x", 2) || !strncmp(s, "0X", 2) ? 16 : !strncmp(s, "0o", 2) ? 8 :
		   !strncmp(s, "0b", 2) ? 2 : 10;
	if (base != 10)
		s += 2;
	if (!*s)
		return false;
	*v = strtoull(s, &end, base);
	return !*end;
}

int pretty_unflags(const struct pretty_name *names, const char *s, uint64_t *v)
{
	char *copy = strdup(s), *save = NULL;
	int ret = 0;

	if (!copy)
		return -1;
	*v = 0;
	for (char *t = strtok_r(copy, "|", &save); t && !ret; t = strtok_r(NULL, "|", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		size_t n = strlen(t);
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			t[--n] = 0;
		const struct pretty_name *p = names;
		while (p->name && strcmp(p->name, t))
			p++;
		uint64_t bits;
		if (p->name)
			*v |= p->value;
		else if (parse_number(t, &bits))
			*v |= bits;
		else
			ret = -1;
	}
	free(copy);
	return ret;
}
