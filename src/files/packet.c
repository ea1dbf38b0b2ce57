/* Packet sockets (AF_PACKET: SOCK_RAW, SOCK_DGRAM and the old
 * SOCK_PACKET), as CRIU saves them: a packet_sock_entry in files.img.
 *
 * Dump: the kernel's list of packet sockets (sock_diag, packet_diag)
 * tells what the socket's options can't be asked for: its protocol and
 * device, version, reserve, timestamping, flags, multicast memberships,
 * fanout group and the geometry of its mmap rings; the socket itself
 * (taken with pidfd_getfd) gives the fanout's flags and the generic
 * options. Packets waiting in the socket or its receive ring are not
 * kept (nor by CRIU): a packet socket loses packets anyway. A fanout
 * group steered by a BPF program is refused (the program can't be read
 * back).
 *
 * Restore makes the socket anew in the restored process, binds it to its
 * device and sets it up in the order the kernel requires (version and
 * reserve before the rings, the rings before the fanout). A mapping of
 * the socket's rings (VMA_AREA_SOCKET, its shmid the socket's file id) is
 * mapped again from the restored socket: the process's own fd on it is
 * found at dump, its pool fd is dup'ed at restore (open_path). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>

#include "files/kind.h"
#include "files/sock_diag.h"
#include "files/sockopts.h"
#include "util/log.h"

#ifndef PACKET_FANOUT_CBPF
#define PACKET_FANOUT_CBPF 6
#endif
#ifndef PACKET_FANOUT_EBPF
#define PACKET_FANOUT_EBPF 7
#endif

extern const struct fd_kind fd_kind_packet;

struct packet_dump {
	struct sock_diag_kept diag;
};

/* ---- dump ---- */

static bool packet_owns(const struct fd_facts *f)
{
	return S_ISSOCK(f->st.st_mode) && !strcmp(f->proto, "PACKET");
}

static const struct nlmsghdr *diag_of(struct file_table *t, uint32_t ino)
{
	struct packet_dump *d = files_dump_state(t, &fd_kind_packet);
	struct {
		struct nlmsghdr h;
		struct packet_diag_req r;
	} req = {
		.r = { .sdiag_family = AF_PACKET,
		       .pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG |
				     PACKET_SHOW_FANOUT },
	};
	if (sock_diag_keep(&d->diag, &req, sizeof(req), offsetof(struct packet_diag_msg, pdiag_ino),
			  "the packet sockets") < 0)
		return NULL;
	return sock_diag_find(&d->diag, ino);
}

/* A multicast membership counted n times (added n times) is n entries,
 * each added once at restore. */
static int dump_mclist(const struct packet_diag_mclist *mc, size_t nr, PacketSockEntry *pe)
{
	for (size_t i = 0; i < nr; i++) {
		if (mc[i].pdmc_alen > sizeof(mc[i].pdmc_addr))
			return -1;
		for (uint32_t c = 0; c < mc[i].pdmc_count; c++) {
			PacketMclist *m = calloc(1, sizeof(*m));
			PacketMclist **n = realloc(pe->mclist, (pe->n_mclist + 1) * sizeof(*n));
			if (!m || !n) {
				free(m);
				return -1;
			}
			pe->mclist = n;
			packet_mclist__init(m);
			pe->mclist[pe->n_mclist++] = m;
			m->index = mc[i].pdmc_index;
			m->type = mc[i].pdmc_type;
			m->addr.len = mc[i].pdmc_alen;
			if (!(m->addr.data = malloc(m->addr.len ? m->addr.len : 1)))
				return -1;
			memcpy(m->addr.data, mc[i].pdmc_addr, m->addr.len);
		}
	}
	return 0;
}

static PacketRing *dump_ring(const struct packet_diag_ring *r)
{
	PacketRing *pr = calloc(1, sizeof(*pr));
	if (!pr)
		return NULL;
	packet_ring__init(pr);
	pr->block_size = r->pdr_block_size;
	pr->block_nr = r->pdr_block_nr;
	pr->frame_size = r->pdr_frame_size;
	pr->frame_nr = r->pdr_frame_nr;
	pr->retire_tmo = r->pdr_retire_tmo;
	pr->sizeof_priv = r->pdr_sizeof_priv;
	pr->features = r->pdr_features;
	return pr;
}

/* The fanout group, with its flags (sock_diag tells id and type only). */
static int dump_fanout(int sk, const struct fd_facts *f, PacketSockEntry *pe)
{
	uint32_t v = 0;
	socklen_t l = sizeof(v);
	if (getsockopt(sk, SOL_PACKET, PACKET_FANOUT, &v, &l) < 0) {
		pr_perror("pid %d: fd %d: can't read the fanout group of packet socket", f->pid, f->fd);
		return -1;
	}
	uint32_t type = (v >> 16) & 0xff;
	if (type == PACKET_FANOUT_CBPF || type == PACKET_FANOUT_EBPF) {
		pr_err("pid %d: fd %d: packet socket is in fanout group %u steered by a BPF program, which "
		       "can't be read back; stasis (as CRIU) can't dump it", f->pid, f->fd, v & 0xffff);
		return -1;
	}
	pe->has_fanout = true;
	pe->fanout = v;
	return 0;
}

/* What packet_diag says of the socket into pe. */
static int dump_diag(const struct nlmsghdr *h, int sk, const struct fd_facts *f, PacketSockEntry *pe)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	const struct packet_diag_info *pi;
	const void *a;
	size_t len;

	pe->type = m->pdiag_type;
	pe->protocol = htons(m->pdiag_num);
	pi = sock_diag_attr(h, sizeof(*m), PACKET_DIAG_INFO, &len);
	if (!pi || len < sizeof(*pi)) {
		pr_err("pid %d: fd %d: sock_diag tells nothing of packet socket %lu", f->pid, f->fd,
		       (unsigned long)f->st.st_ino);
		return -1;
	}
	pe->ifindex = pi->pdi_index;
	pe->version = pi->pdi_version;
	pe->reserve = pi->pdi_reserve;
	pe->timestamp = pi->pdi_tstamp;
	pe->copy_thresh = pi->pdi_copy_thresh;
	pe->aux_data = pi->pdi_flags & PDI_AUXDATA;
	pe->orig_dev = pi->pdi_flags & PDI_ORIGDEV;
	pe->vnet_hdr = pi->pdi_flags & PDI_VNETHDR;
	pe->loss = pi->pdi_flags & PDI_LOSS;
	if ((a = sock_diag_attr(h, sizeof(*m), PACKET_DIAG_MCLIST, &len)) &&
	    dump_mclist(a, len / sizeof(struct packet_diag_mclist), pe) < 0)
		return -1;
	if ((a = sock_diag_attr(h, sizeof(*m), PACKET_DIAG_RX_RING, &len)) && len >= sizeof(struct packet_diag_ring) &&
	    !(pe->rx_ring = dump_ring(a)))
		return -1;
	if ((a = sock_diag_attr(h, sizeof(*m), PACKET_DIAG_TX_RING, &len)) && len >= sizeof(struct packet_diag_ring) &&
	    !(pe->tx_ring = dump_ring(a)))
		return -1;
	if (sock_diag_attr(h, sizeof(*m), PACKET_DIAG_FANOUT, &len) && dump_fanout(sk, f, pe) < 0)
		return -1;
	return 0;
}

static PacketSockEntry *new_psk(void)
{
	PacketSockEntry *pe = calloc(1, sizeof(*pe));
	FownEntry *fown = calloc(1, sizeof(*fown));
	SkOptsEntry *so = skopts_new();
	if (!pe || !fown || !so) {
		free(pe);
		free(fown);
		free(so);
		return NULL;
	}
	packet_sock_entry__init(pe);
	fown_entry__init(fown);
	pe->fown = fown;
	pe->opts = so;
	return pe;
}

static int packet_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	(void)o;
	PacketSockEntry *pe = new_psk();
	if (!pe)
		return files_oom(f);
	fe->psk = pe;
	pe->id = fe->id;
	pe->flags = f->fi.flags & ~O_CLOEXEC;

	const struct nlmsghdr *h = diag_of(t, f->st.st_ino);
	if (!h) {
		struct packet_dump *d = files_dump_state(t, &fd_kind_packet);
		if (d->diag.loaded)
			pr_err("pid %d: fd %d: packet socket %lu is not in the kernel's socket list (sock_diag); "
			       "is it in another network namespace?", f->pid, f->fd, (unsigned long)f->st.st_ino);
		return -1;
	}
	int sk = f->sk, ret = -1;
	if (dump_diag(h, sk, f, pe) < 0)
		goto out;
	if (skopts_dump(sk, AF_PACKET, pe->opts) < 0) {
		pr_perror("pid %d: fd %d: can't read the options of packet socket %lu", f->pid, f->fd,
			  (unsigned long)f->st.st_ino);
		goto out;
	}
	int queued = 0;
	if (!pe->rx_ring && ioctl(sk, FIONREAD, &queued) == 0 && queued > 0)
		pr_warn("pid %d: fd %d: the packets queued on packet socket %lu are dropped (as CRIU does)",
			f->pid, f->fd, (unsigned long)f->st.st_ino);
	pr_debug("pid %d: fd %d: packet socket %lu type %u protocol %#x ifindex %u version %u%s%s%s", f->pid,
		 f->fd, (unsigned long)f->st.st_ino, pe->type, ntohs(pe->protocol), pe->ifindex, pe->version,
		 pe->rx_ring ? " rx ring" : "", pe->tx_ring ? " tx ring" : "", pe->has_fanout ? " fanout" : "");
	ret = 0;
out:
	return ret;
}

/* A mapping of a socket: the rings of a packet socket the process holds
 * an fd on (CRIU refuses one whose fd was closed, and so do we). */
static bool packet_owns_path(const struct path_facts *p)
{
	return p->mapped && !strncmp(p->path, "socket:[", 8);
}

static int fd_of_socket(pid_t pid, const char *name)
{
	int *fds = NULL, nr = 0, found = -1;
	char link[64], target[64];

	if (proc_list_fds(pid, &fds, &nr) < 0)
		return -1;
	for (int i = 0; i < nr && found < 0; i++) {
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fds[i]);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = 0, !strcmp(target, name)))
			found = fds[i];
	}
	free(fds);
	return found;
}

static int packet_dump_path(struct file_table *t, const struct opts *o, const struct path_facts *p, uint32_t *id)
{
	int fd = fd_of_socket(p->pid, p->path);
	if (fd < 0) {
		pr_err("pid %d: maps %s, a socket it has no fd on; stasis (as CRIU) can't dump the mapping of "
		       "a closed socket", p->pid, p->path);
		return -1;
	}
	if (files_dump_task_fd(t, o, p->pid, fd, id) < 0)
		return -1;
	if (files_type(t, *id) != FD_TYPES__PACKETSK) {
		pr_err("pid %d: maps %s (fd %d), which is no packet socket; stasis can't dump that mapping",
		       p->pid, p->path, fd);
		return -1;
	}
	return 0;
}

static void packet_free_images(struct file_table *t)
{
	struct packet_dump *d = files_dump_state(t, &fd_kind_packet);
	if (d)
		sock_diag_free(&d->diag);
}

/* ---- restore ---- */

static int set_opt(int sk, int name, const void *val, socklen_t len, const char *opt, const char *what)
{
	if (setsockopt(sk, SOL_PACKET, name, val, len) == 0)
		return 0;
	pr_perror("can't set %s on %s", opt, what);
	return -1;
}
#define SET_INT(sk, name, v, what) set_opt(sk, name, &(int){ (v) }, sizeof(int), #name, what)

/* SOCK_PACKET binds by the device's name. */
static int bind_spkt(int sk, const PacketSockEntry *pe, const char *what)
{
	struct sockaddr sa = { .sa_family = AF_PACKET };
	struct ifreq req = { .ifr_ifindex = pe->ifindex };

	if (!pe->ifindex)
		return 0;
	if (ioctl(sk, SIOCGIFNAME, &req) < 0) {
		pr_perror("can't find device %u, which %s was bound to", pe->ifindex, what);
		return -1;
	}
	/* the kernel reads 14 bytes of the name, as CRIU passes it */
	memcpy(sa.sa_data, req.ifr_name, sizeof(sa.sa_data));
	if (bind(sk, &sa, sizeof(sa)) < 0) {
		pr_perror("can't bind %s to %s", what, req.ifr_name);
		return -1;
	}
	return 0;
}

static int restore_mclist(int sk, const PacketSockEntry *pe, const char *what)
{
	for (size_t i = 0; i < pe->n_mclist; i++) {
		const PacketMclist *m = pe->mclist[i];
		struct {
			struct packet_mreq r;
			unsigned char more[32 - 8];	/* MAX_ADDR_LEN in all */
		} mr = { .r = { .mr_ifindex = m->index, .mr_type = m->type, .mr_alen = m->addr.len } };
		if (m->addr.len > 32) {
			pr_err("image files.img: %s has a membership with a %zu-byte address", what, m->addr.len);
			return -1;
		}
		memcpy(mr.r.mr_address, m->addr.data, m->addr.len);
		if (set_opt(sk, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr), "PACKET_ADD_MEMBERSHIP", what) < 0)
			return -1;
	}
	return 0;
}

static int restore_ring(int sk, int name, const PacketRing *r, const char *opt, const char *what)
{
	if (!r)
		return 0;
	struct tpacket_req3 req = { r->block_size, r->block_nr, r->frame_size, r->frame_nr,
				    r->retire_tmo, r->sizeof_priv, r->features };
	return set_opt(sk, name, &req, sizeof(req), opt, what);
}

/* Bound to its device, then its options in the order the kernel takes
 * them: version and reserve before the rings, the rings before fanout. */
static int restore_packet(int sk, const PacketSockEntry *pe, const char *what)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = pe->ifindex };

	if (bind(sk, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		pr_perror("can't bind %s to device %u", what, pe->ifindex);
		return -1;
	}
	if (SET_INT(sk, PACKET_VERSION, pe->version, what) < 0 || SET_INT(sk, PACKET_RESERVE, pe->reserve, what) < 0 ||
	    SET_INT(sk, PACKET_TIMESTAMP, pe->timestamp, what) < 0 ||
	    SET_INT(sk, PACKET_COPY_THRESH, pe->copy_thresh, what) < 0)
		return -1;
	if ((pe->aux_data && SET_INT(sk, PACKET_AUXDATA, 1, what) < 0) ||
	    (pe->orig_dev && SET_INT(sk, PACKET_ORIGDEV, 1, what) < 0) ||
	    (pe->vnet_hdr && SET_INT(sk, PACKET_VNET_HDR, 1, what) < 0) ||
	    (pe->loss && SET_INT(sk, PACKET_LOSS, 1, what) < 0))
		return -1;
	if (restore_mclist(sk, pe, what) < 0 ||
	    restore_ring(sk, PACKET_RX_RING, pe->rx_ring, "PACKET_RX_RING", what) < 0 ||
	    restore_ring(sk, PACKET_TX_RING, pe->tx_ring, "PACKET_TX_RING", what) < 0)
		return -1;
	if (pe->has_fanout && pe->fanout != 0xffffffffu &&
	    set_opt(sk, PACKET_FANOUT, &pe->fanout, sizeof(pe->fanout), "PACKET_FANOUT", what) < 0)
		return -1;
	return 0;
}

static int packet_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	(void)fdflags;
	const PacketSockEntry *pe = fe->psk;
	char what[128];

	if (!pe || !pe->opts || (pe->n_mclist && !pe->mclist)) {
		pr_err("image files.img: %s: packet socket %u has no entry", rf->who, fe->id);
		return -1;
	}
	snprintf(what, sizeof(what), "packet socket %u (%s)", fe->id, rf->who);
	int sk = socket(AF_PACKET, pe->type, pe->protocol);
	if (sk < 0) {
		pr_perror("can't make %s of type %u protocol %#x", what, pe->type, ntohs(pe->protocol));
		return -1;
	}
	int ret = pe->type == SOCK_PACKET ? bind_spkt(sk, pe, what) : restore_packet(sk, pe, what);
	if (ret == 0 && fcntl(sk, F_SETFL, pe->flags & O_NONBLOCK) < 0) {
		pr_perror("can't set the file flags of %s", what);
		ret = -1;
	}
	if (ret == 0 && skopts_restore(sk, pe->opts, what) < 0)
		ret = -1;
	if (ret < 0) {
		close(sk);
		return -1;
	}
	return sk;
}

/* The rings mapped again: the socket as the process has it, from the
 * pool (flags: the socket's own, whatever the mapping says). */
static int packet_open_path(struct rst_files *rf, const FileEntry *fe, uint32_t flags)
{
	(void)flags;
	int pool = files_pool_fd(rf, fe->id, rf->who);
	if (pool < 0)
		return -1;
	int fd = dup(pool);
	if (fd < 0)
		pr_perror("%s: can't take packet socket %u to map its rings", rf->who, fe->id);
	return fd;
}

const struct fd_kind fd_kind_packet = {
	.name = "packet socket", .type = FD_TYPES__PACKETSK,
	.dump_state = sizeof(struct packet_dump),
	.owns = packet_owns, .dump = packet_dump, .open = packet_open,
	.owns_path = packet_owns_path, .dump_path = packet_dump_path, .open_path = packet_open_path,
	.free_images = packet_free_images,
};
