/* An open /dev/net/tun (a tun file), as CRIU 4.2 saves it: a tunfile
 * entry in files.img (the device it is attached to, by name, whether its
 * queue is detached, the device's network namespace) and a reg entry of
 * the same id for the path, which CRIU opens it by. The device itself is
 * the network namespace's (net/tun_link.c): so a tree with a tun file
 * must have a network namespace of its own, as CRIU requires.
 *
 * Restore opens /dev/net/tun (by the twin reg entry) in the tree's new
 * namespace and attaches it to the device by its name and the flags the
 * netdev image gives it; the device was made persistent for that, and
 * the first file attached drops the persistence it did not have. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "files/kind.h"
#include "files/reg.h"
#include "image/img.h"
#include "util/log.h"
#include "util/opts.h"
#include "netdev.pb-c.h"

#define TUN_PATH "/dev/net/tun"
#define TUN_MAJOR 10
#define TUN_MINOR 200

extern const struct fd_kind fd_kind_tunfile;

/* dump: the reg twins to add once every fd is dumped */
struct tun_dump {
	struct twin {
		uint32_t id, flags;
		mode_t mode;
	} *twin;
	int nr;
};

/* restore: the tree's devices, for the flags to attach with */
struct tun_rst {
	NetDeviceEntry **dev;
	int nr_dev;
};

static bool tunfile_owns(const struct fd_facts *f)
{
	return S_ISCHR(f->st.st_mode) && major(f->st.st_rdev) == TUN_MAJOR && minor(f->st.st_rdev) == TUN_MINOR;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* The device's namespace must be the process's, and that one the tree's
 * own (its devices are saved with it); -1 reported. */
static int check_netns(const struct fd_facts *f, int fd)
{
	char proc_ns[64], dev_ns[64];
	snprintf(proc_ns, sizeof(proc_ns), "/proc/%d/ns/net", f->pid);
	if (same_file(proc_ns, "/proc/self/ns/net")) {
		pr_err("pid %d: fd %d is a tun file, and the tree has no network namespace of its own: stasis, "
		       "as CRIU, saves tun devices only with the tree's namespace (unshare -n)", f->pid, f->fd);
		return -1;
	}
	int nsfd = ioctl(fd, TUNGETDEVNETNS);
	if (nsfd < 0)
		return 0;	/* not attached, or an old kernel: the process's */
	snprintf(dev_ns, sizeof(dev_ns), "/proc/self/fd/%d", nsfd);
	bool same = same_file(dev_ns, proc_ns);
	close(nsfd);
	if (!same)
		pr_err("pid %d: fd %d is a tun file whose device is in another network namespace than the "
		       "process's: stasis saves one network namespace per tree", f->pid, f->fd);
	return same ? 0 : -1;
}

static int add_twin(struct file_table *t, const struct fd_facts *f, uint32_t id)
{
	struct tun_dump *s = files_dump_state(t, &fd_kind_tunfile);
	struct twin *n = realloc(s->twin, (s->nr + 1) * sizeof(*n));
	if (!n)
		return files_oom(f);
	s->twin = n;
	s->twin[s->nr++] = (struct twin){ id, f->fi.flags, f->st.st_mode };
	return 0;
}

static int tunfile_dump(struct file_table *t, const struct opts *o, const struct fd_facts *f, FileEntry *fe)
{
	(void)o;
	uint32_t ns[FILES_NR_NS];
	struct ifreq ifr = { 0 };
	int fd = files_take_fd(f->pid, f->fd, "a tun file");
	if (fd < 0)
		return -1;
	int ret = check_netns(f, fd);
	if (ret == 0 && (ret = files_task_ns_ids(t, f->pid, ns)) == 0) {
		TunfileEntry *e = calloc(1, sizeof(*e));
		fe->tunf = e;
		if (!e) {
			ret = files_oom(f);
		} else {
			tunfile_entry__init(e);
			e->id = fe->id;
			e->has_ns_id = true;
			e->ns_id = ns[1];
			if (ioctl(fd, TUNGETIFF, &ifr) == 0) {
				e->netdev = strndup(ifr.ifr_name, IFNAMSIZ);
				e->has_detached = e->detached = (ifr.ifr_flags & IFF_DETACH_QUEUE) != 0;
				if (!e->netdev)
					ret = files_oom(f);
			} else if (errno != EBADFD) {
				pr_perror("pid %d: fd %d: can't ask the tun file its device", f->pid, f->fd);
				ret = -1;
			}
		}
	}
	close(fd);
	if (ret == 0)
		ret = add_twin(t, f, fe->id);
	if (ret == 0)
		pr_info("pid %d: fd %d: a tun file, on %s", f->pid, f->fd,
			fe->tunf->netdev ? fe->tunf->netdev : "no device yet");
	return ret;
}

/* CRIU opens a tun file by the reg entry of its id: one each. */
static int tunfile_write_images(struct file_table *t, int dirfd)
{
	(void)dirfd;
	struct tun_dump *s = files_dump_state(t, &fd_kind_tunfile);
	for (int i = 0; i < s->nr; i++) {
		FileEntry *fe = files_add_twin(t, FD_TYPES__REG, s->twin[i].id);
		if (!fe || !(fe->reg = reg_entry_new(fe->id, TUN_PATH, s->twin[i].flags, 0))) {
			pr_err("out of memory recording the tun files");
			return -1;
		}
		fe->reg->has_mode = true;
		fe->reg->mode = s->twin[i].mode;
	}
	return 0;
}

static void tunfile_free_images(struct file_table *t)
{
	struct tun_dump *s = files_dump_state(t, &fd_kind_tunfile);
	free(s->twin);
	s->twin = NULL;
	s->nr = 0;
}

/* ---- restore ---- */

/* The netdev image of the tree's namespace, when there are tun files
 * attached to a device. */
static int tunfile_load_images(struct rst_files *rf, int dirfd)
{
	struct tun_rst *s = files_rst_state(rf, &fd_kind_tunfile);
	for (int i = 0; i < rf->nr; i++) {
		const TunfileEntry *e = rf->e[i]->tunf;
		if (rf->e[i]->type != FD_TYPES__TUNF || !e || !e->netdev)
			continue;
		char name[IMG_NAME_MAX];
		if (!e->has_ns_id) {
			pr_err("image files.img: the tun file %u on %s names no network namespace", e->id, e->netdev);
			return -1;
		}
		/* none (a dump with --empty-ns net): the open names the device */
		img_name(name, sizeof(name), IMG_NETDEV, e->ns_id);
		if (faccessat(dirfd, name, F_OK, 0) < 0)
			return 0;
		return img_load_all(dirfd, IMG_NETDEV, e->ns_id, (void ***)&s->dev, &s->nr_dev);
	}
	return 0;
}

static void tunfile_unload_images(struct rst_files *rf)
{
	struct tun_rst *s = files_rst_state(rf, &fd_kind_tunfile);
	for (int i = 0; i < s->nr_dev; i++)
		img_free(s->dev[i]);
	free(s->dev);
	s->dev = NULL;
	s->nr_dev = 0;
}

static const FileEntry *reg_twin(const struct rst_files *rf, uint32_t id)
{
	for (int i = 0; i < rf->nr; i++)
		if (rf->e[i]->id == id && rf->e[i]->type == FD_TYPES__REG)
			return rf->e[i];
	return NULL;
}

static const TunLinkEntry *tun_of(const struct rst_files *rf, const char *name)
{
	const struct tun_rst *s = files_rst_state(rf, &fd_kind_tunfile);
	for (int i = 0; i < s->nr_dev; i++)
		if (!strcmp(s->dev[i]->name, name) && s->dev[i]->type == ND_TYPE__TUN)
			return s->dev[i]->tun;
	return NULL;
}

static int attach(const struct rst_files *rf, const TunfileEntry *e, const TunLinkEntry *tl, int fd)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->netdev);
	ifr.ifr_flags = tl->flags;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		pr_perror("%s: can't attach a tun file to its device %s", rf->who, e->netdev);
		return -1;
	}
	ifr.ifr_flags = IFF_DETACH_QUEUE;
	if (e->has_detached && e->detached && ioctl(fd, TUNSETQUEUE, &ifr) < 0) {
		pr_perror("%s: can't detach the queue of a tun file of %s", rf->who, e->netdev);
		return -1;
	}
	/* made persistent for its files (tun_link.c): now one holds it */
	if (!(tl->flags & IFF_PERSIST) && ioctl(fd, TUNSETPERSIST, 0) < 0) {
		pr_perror("%s: can't make the tun device %s not persistent again", rf->who, e->netdev);
		return -1;
	}
	return 0;
}

static int tunfile_open(struct rst_files *rf, const FileEntry *fe, int fdflags)
{
	const TunfileEntry *e = fe->tunf;
	const FileEntry *reg = reg_twin(rf, fe->id);
	const TunLinkEntry *tl = e && e->netdev ? tun_of(rf, e->netdev) : NULL;
	if (!e || !reg) {
		pr_err("image files.img: the tun file %u has no %s", fe->id, e ? "reg entry of its id" : "tunfile entry");
		return -1;
	}
	/* its device is a network namespace's, which only root restores:
	 * attaching would make one wherever the process is */
	if (e->netdev && rf->o && rf->o->unprivileged) {
		pr_err("%s: a tun file attached to %s: only root may restore tun files (their devices belong to "
		       "the tree's network namespace)", rf->who, e->netdev);
		return -1;
	}
	if (e->netdev && !tl) {
		pr_err("%s: a tun file is attached to %s, which the tree's network namespace has no tun device "
		       "of (restored with --empty-ns net?)", rf->who, e->netdev);
		return -1;
	}
	(void)fdflags;
	/* the device node, not the image's path; no position (CRIU saves
	 * one, which a tun file can't seek to) */
	int fd = open(TUN_PATH, ((reg->reg ? reg->reg->flags : O_RDWR) & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NOCTTY);
	if (fd < 0)
		pr_perror("%s: can't open %s", rf->who, TUN_PATH);
	if (fd >= 0 && tl && attach(rf, e, tl, fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_kind fd_kind_tunfile = {
	.name = "tunfile", .type = FD_TYPES__TUNF,
	.dump_state = sizeof(struct tun_dump), .rst_state = sizeof(struct tun_rst),
	.owns = tunfile_owns, .dump = tunfile_dump, .open = tunfile_open,
	.write_images = tunfile_write_images, .free_images = tunfile_free_images,
	.load_images = tunfile_load_images, .unload_images = tunfile_unload_images,
};
