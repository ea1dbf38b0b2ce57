/* An IPC namespace of the tree's own: its tunables (ipcns-var-ID.img),
 * its shared memory segments with their bytes (ipcns-shm-ID.img), its
 * semaphore sets with their values (ipcns-sem-ID.img) and its message
 * queues with their messages (ipcns-msg-ID.img). Read by a thread of ours in the namespace (System V
 * calls and /proc/sys act on the caller's); made again by the tree's
 * first process in the new one, each object with its id (the *_next_id
 * tunable set before it is made), key, owner and mode. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "image/img.h"
#include "image/shmem_pages.h"
#include "image/vma.h"
#include "ns/ns.h"
#include "ns/user.h"
#include "util/log.h"

#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))
/* Bounds on what an image may ask restore to make (the kernel's own are
 * lower: SEMMSL 32000; a segment is bounded by memory). */
#define SEM_MAX_NSEMS 65536
#define SHM_MAX_SIZE (1ull << 40)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

/* ---- /proc/sys, as the calling thread's IPC namespace sees it ---- */

static int sysctl_read(const char *name, long long *v, int n)
{
	char path[128], buf[256], *p = buf, *end;
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (len <= 0) {
		pr_perror("can't read %s of the tree's IPC namespace", path);
		return -1;
	}
	buf[len] = 0;
	for (int i = 0; i < n; i++, p = end) {
		v[i] = strtoll(p, &end, 10);
		if (end == p) {
			pr_err("%s of the tree's IPC namespace reads \"%s\", not %d numbers", path, buf, n);
			return -1;
		}
	}
	return 0;
}

static int sysctl_write(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : write(fd, text, strlen(text));
	if (fd >= 0)
		close(fd);
	if (len != (ssize_t)strlen(text)) {
		pr_perror("can't set %s to %s in the tree's IPC namespace", path, text);
		return -1;
	}
	return 0;
}

static int sysctl_write_u64(const char *name, unsigned long long v)
{
	char text[32];
	snprintf(text, sizeof(text), "%llu", v);
	return sysctl_write(name, text);
}

/* ---- the tunables ---- */

/* The single-number tunables, at their place in IpcVarEntry (has: the
 * offset of an optional one's has_ flag, 0 if required). */
static const struct var_field {
	const char *name;
	size_t off, has;
	bool u64;
} var_fields[] = {
	{ "kernel/msgmax", offsetof(IpcVarEntry, msg_ctlmax) },
	{ "kernel/msgmnb", offsetof(IpcVarEntry, msg_ctlmnb) },
	{ "kernel/auto_msgmni", offsetof(IpcVarEntry, auto_msgmni) },
	{ "kernel/msgmni", offsetof(IpcVarEntry, msg_ctlmni) },
	{ "kernel/shmmax", offsetof(IpcVarEntry, shm_ctlmax), 0, true },
	{ "kernel/shmall", offsetof(IpcVarEntry, shm_ctlall), 0, true },
	{ "kernel/shmmni", offsetof(IpcVarEntry, shm_ctlmni) },
	{ "kernel/shm_rmid_forced", offsetof(IpcVarEntry, shm_rmid_forced) },
	{ "fs/mqueue/queues_max", offsetof(IpcVarEntry, mq_queues_max) },
	{ "fs/mqueue/msg_max", offsetof(IpcVarEntry, mq_msg_max) },
	{ "fs/mqueue/msgsize_max", offsetof(IpcVarEntry, mq_msgsize_max) },
	{ "fs/mqueue/msg_default", offsetof(IpcVarEntry, mq_msg_default), offsetof(IpcVarEntry, has_mq_msg_default) },
	{ "fs/mqueue/msgsize_default", offsetof(IpcVarEntry, mq_msgsize_default),
	  offsetof(IpcVarEntry, has_mq_msgsize_default) },
};

/* Next ids are -1 (unset) but right after a checkpoint/restore tool set
 * one: only a set one is saved, and put back once every object is made. */
static const struct var_field next_fields[] = {
	{ "kernel/msg_next_id", offsetof(IpcVarEntry, msg_next_id), offsetof(IpcVarEntry, has_msg_next_id) },
	{ "kernel/sem_next_id", offsetof(IpcVarEntry, sem_next_id), offsetof(IpcVarEntry, has_sem_next_id) },
	{ "kernel/shm_next_id", offsetof(IpcVarEntry, shm_next_id), offsetof(IpcVarEntry, has_shm_next_id) },
};

static void var_set(IpcVarEntry *e, const struct var_field *f, long long v)
{
	if (f->u64)
		*(uint64_t *)((char *)e + f->off) = v;
	else
		*(uint32_t *)((char *)e + f->off) = v;
	if (f->has)
		*(protobuf_c_boolean *)((char *)e + f->has) = 1;
}

static bool var_has(const IpcVarEntry *e, const struct var_field *f)
{
	return !f->has || *(const protobuf_c_boolean *)((const char *)e + f->has);
}

static unsigned long long var_get(const IpcVarEntry *e, const struct var_field *f)
{
	return f->u64 ? *(const uint64_t *)((const char *)e + f->off) : *(const uint32_t *)((const char *)e + f->off);
}

static int var_dump(int dirfd, uint32_t id)
{
	IpcVarEntry e = IPC_VAR_ENTRY__INIT;
	long long sem[4], v;
	uint32_t sem_ctls[4];

	if (sysctl_read("kernel/sem", sem, 4) < 0)
		return -1;
	for (int i = 0; i < 4; i++)
		sem_ctls[i] = sem[i];
	e.sem_ctls = sem_ctls;
	e.n_sem_ctls = 4;
	for (size_t i = 0; i < sizeof(var_fields) / sizeof(var_fields[0]); i++) {
		if (sysctl_read(var_fields[i].name, &v, 1) < 0)
			return -1;
		var_set(&e, &var_fields[i], v);
	}
	for (size_t i = 0; i < sizeof(next_fields) / sizeof(next_fields[0]); i++) {
		if (sysctl_read(next_fields[i].name, &v, 1) < 0)
			return -1;
		if (v >= 0)
			var_set(&e, &next_fields[i], v);
	}
	return img_store_one(dirfd, IMG_IPC_VAR, id, &e.base);
}

static int var_fill(const IpcVarEntry *e, const struct var_field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (var_has(e, &fields[i]) && sysctl_write_u64(fields[i].name, var_get(e, &fields[i])) < 0)
			return -1;
	return 0;
}

static int var_restore(const IpcVarEntry *e)
{
	char sem[64];
	if (e->n_sem_ctls == 4) {
		snprintf(sem, sizeof(sem), "%u %u %u %u", e->sem_ctls[0], e->sem_ctls[1], e->sem_ctls[2],
			 e->sem_ctls[3]);
		if (sysctl_write("kernel/sem", sem) < 0)
			return -1;
	}
	return var_fill(e, var_fields, sizeof(var_fields) / sizeof(var_fields[0]));
}

/* ---- what every object has ---- */

static void desc_fill(IpcDescEntry *d, int id, const struct ipc_perm *p)
{
	d->key = p->__key;
	d->uid = userns_dump_id(USERNS_UID, p->uid);
	d->gid = userns_dump_id(USERNS_GID, p->gid);
	d->cuid = userns_dump_id(USERNS_UID, p->cuid);
	d->cgid = userns_dump_id(USERNS_GID, p->cgid);
	d->mode = p->mode;
	d->id = id;
}

/* The next object made gets id: the kernel's *_next_id, read once. */
static int next_id(const char *kind, uint32_t id)
{
	char name[32];
	snprintf(name, sizeof(name), "kernel/%s_next_id", kind);
	return sysctl_write_u64(name, id);
}

static int made_as(const char *what, int got, const IpcDescEntry *d)
{
	if (got < 0) {
		pr_perror("can't make System V %s %u (key %#x) in the tree's IPC namespace", what, d->id, d->key);
		return -1;
	}
	if ((uint32_t)got != d->id) {
		pr_err("System V %s %u came back as %d in the tree's IPC namespace", what, d->id, got);
		return -1;
	}
	return 0;
}

static void perm_set(struct ipc_perm *p, const IpcDescEntry *d)
{
	p->uid = userns_rst_id(USERNS_UID, d->uid);
	p->gid = userns_rst_id(USERNS_GID, d->gid);
	p->mode = d->mode & 0777;
}

/* ---- shared memory ---- */

static int shm_dump_one(struct img *img, int id, const struct shmid_ds *ds)
{
	IpcDescEntry d = IPC_DESC_ENTRY__INIT;
	IpcShmEntry e = IPC_SHM_ENTRY__INIT;

	if (ds->shm_perm.mode & SHM_DEST) {
		pr_err("System V shared memory %d of the tree's IPC namespace was removed (IPC_RMID) while "
		       "attached: it can't be made again", id);
		return -1;
	}
	desc_fill(&d, id, &ds->shm_perm);
	e.desc = &d;
	e.size = ds->shm_segsz;
	e.has_in_pagemaps = 1;
	e.in_pagemaps = false;	/* its bytes follow the entry */
	void *mem = shmat(id, NULL, SHM_RDONLY);
	if (mem == (void *)-1) {
		pr_perror("can't attach System V shared memory %d of the tree's IPC namespace", id);
		return -1;
	}
	/* the attachment is whole pages: the rounding reads inside it */
	int ret = img_write(img, &e.base) < 0 || img_write_raw(img, mem, ROUND_UP(e.size, 4)) < 0 ? -1 : 0;
	shmdt(mem);
	return ret;
}

static int shm_dump(int dirfd, uint32_t ns_id)
{
	struct shm_info info;
	struct img img;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info);

	if (max < 0) {
		pr_perror("can't list the System V shared memory of the tree's IPC namespace");
		return -1;
	}
	if (img_create(dirfd, &img, IMG_IPCNS_SHM, ns_id) < 0)
		return -1;
	for (int i = 0; i <= max; i++) {
		struct shmid_ds ds;
		int id = shmctl(i, SHM_STAT_ANY, &ds);
		if (id >= 0 && shm_dump_one(&img, id, &ds) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static int shm_restore_one(int dirfd, const struct ipc_ns_obj *o)
{
	const IpcShmEntry *e = o->shm;
	struct shmid_ds ds;

	if (next_id("shm", e->desc->id) < 0 ||
	    made_as("shared memory", shmget(e->desc->key, e->size, (e->desc->mode & 0777) | IPC_CREAT | IPC_EXCL),
		    e->desc) < 0)
		return -1;
	uint8_t *mem = shmat(e->desc->id, NULL, 0);
	if (mem == (void *)-1) {
		pr_perror("can't attach the new System V shared memory %u", e->desc->id);
		return -1;
	}
	int ret = 0;
	if (o->data)
		memcpy(mem, o->data, e->size);
	else
		ret = shmem_pages_read(dirfd, e->desc->id, mem, e->size);
	shmdt(mem);
	if (ret < 0 || shmctl(e->desc->id, IPC_STAT, &ds) < 0)
		return -1;
	perm_set(&ds.shm_perm, e->desc);
	if (shmctl(e->desc->id, IPC_SET, &ds) < 0) {
		pr_perror("can't set the owner and mode of System V shared memory %u", e->desc->id);
		return -1;
	}
	return 0;
}

/* ---- semaphores ---- */

static int sem_dump_one(struct img *img, int id, const struct semid_ds *ds)
{
	IpcDescEntry d = IPC_DESC_ENTRY__INIT;
	IpcSemEntry e = IPC_SEM_ENTRY__INIT;
	size_t len = ROUND_UP(ds->sem_nsems * sizeof(uint16_t), 8);
	unsigned short *v = calloc(1, len ? len : 1);

	if (!v) {
		pr_err("out of memory saving System V semaphores %d", id);
		return -1;
	}
	desc_fill(&d, id, &ds->sem_perm);
	e.desc = &d;
	e.nsems = ds->sem_nsems;
	int ret = semctl(id, 0, GETALL, (union semun){ .array = v });
	if (ret < 0)
		pr_perror("can't read the values of System V semaphores %d of the tree's IPC namespace", id);
	else
		ret = img_write(img, &e.base) < 0 || img_write_raw(img, v, len) < 0 ? -1 : 0;
	free(v);
	return ret;
}

static int sem_dump(int dirfd, uint32_t ns_id)
{
	struct seminfo info;
	struct img img;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .__buf = &info });

	if (max < 0) {
		pr_perror("can't list the System V semaphores of the tree's IPC namespace");
		return -1;
	}
	if (img_create(dirfd, &img, IMG_IPCNS_SEM, ns_id) < 0)
		return -1;
	for (int i = 0; i <= max; i++) {
		struct semid_ds ds;
		int id = semctl(i, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
		if (id >= 0 && sem_dump_one(&img, id, &ds) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static int sem_restore_one(const struct ipc_ns_obj *o)
{
	const IpcSemEntry *e = o->sem;
	struct semid_ds ds;

	if (next_id("sem", e->desc->id) < 0 ||
	    made_as("semaphores", semget(e->desc->key, e->nsems, (e->desc->mode & 0777) | IPC_CREAT | IPC_EXCL),
		    e->desc) < 0)
		return -1;
	if (semctl(e->desc->id, 0, SETALL, (union semun){ .array = (unsigned short *)o->data }) < 0 ||
	    semctl(e->desc->id, 0, IPC_STAT, (union semun){ .buf = &ds }) < 0) {
		pr_perror("can't set the values of System V semaphores %u", e->desc->id);
		return -1;
	}
	perm_set(&ds.sem_perm, e->desc);
	if (semctl(e->desc->id, 0, IPC_SET, (union semun){ .buf = &ds }) < 0) {
		pr_perror("can't set the owner and mode of System V semaphores %u", e->desc->id);
		return -1;
	}
	return 0;
}

/* ---- message queues ---- */

/* Each message of queue id, copied (MSG_COPY leaves it queued). */
static int msg_dump_messages(struct img *img, int id, unsigned long qnum)
{
	long long msgmax;
	if (sysctl_read("kernel/msgmax", &msgmax, 1) < 0)
		return -1;
	struct {
		long mtype;
		char mtext[];
	} *buf = malloc(sizeof(long) + msgmax + 8);
	if (!buf) {
		pr_err("out of memory saving message queue %d", id);
		return -1;
	}
	int ret = 0;
	for (unsigned long n = 0; n < qnum && ret == 0; n++) {
		IpcMsg m = IPC_MSG__INIT;
		ssize_t len = msgrcv(id, buf, msgmax, n, IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
		if (len < 0) {
			pr_perror("can't copy message %lu of System V message queue %d", n, id);
			ret = -1;
			break;
		}
		m.mtype = buf->mtype;
		m.msize = len;
		memset(buf->mtext + len, 0, ROUND_UP(len, 8) - len);
		ret = img_write(img, &m.base) < 0 || img_write_raw(img, buf->mtext, ROUND_UP(len, 8)) < 0 ? -1 : 0;
	}
	free(buf);
	return ret;
}

static int msg_dump(int dirfd, uint32_t ns_id)
{
	struct msginfo info;
	struct img img;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&info);

	if (max < 0) {
		pr_perror("can't list the System V message queues of the tree's IPC namespace");
		return -1;
	}
	if (img_create(dirfd, &img, IMG_IPCNS_MSG, ns_id) < 0)
		return -1;
	for (int i = 0; i <= max; i++) {
		struct msqid_ds ds;
		IpcDescEntry d = IPC_DESC_ENTRY__INIT;
		IpcMsgEntry e = IPC_MSG_ENTRY__INIT;
		int id = msgctl(i, MSG_STAT_ANY, &ds);
		if (id < 0)
			continue;
		desc_fill(&d, id, &ds.msg_perm);
		e.desc = &d;
		e.qbytes = ds.msg_qbytes;
		e.qnum = ds.msg_qnum;
		if (img_write(&img, &e.base) < 0 || msg_dump_messages(&img, id, ds.msg_qnum) < 0) {
			img_abort(&img);
			return -1;
		}
	}
	return img_finish(&img);
}

static int msg_restore_one(const struct ipc_ns_obj *o)
{
	const IpcMsgEntry *e = o->msg;
	struct msqid_ds ds;

	if (next_id("msg", e->desc->id) < 0 ||
	    made_as("message queue", msgget(e->desc->key, (e->desc->mode & 0777) | IPC_CREAT | IPC_EXCL),
		    e->desc) < 0)
		return -1;
	if (msgctl(e->desc->id, IPC_STAT, &ds) < 0)
		return -1;
	perm_set(&ds.msg_perm, e->desc);
	ds.msg_qbytes = e->qbytes;
	if (msgctl(e->desc->id, IPC_SET, &ds) < 0) {
		pr_perror("can't set the owner, mode and size of System V message queue %u", e->desc->id);
		return -1;
	}
	for (uint32_t i = 0; i < o->nr_msgs; i++) {
		const struct ipc_msg_item *m = &o->msgs[i];
		/* the message's type just before its bytes, as msgsnd wants it */
		long *buf = (long *)m->data - 1;
		*buf = m->m->mtype;
		if (msgsnd(e->desc->id, buf, m->m->msize, IPC_NOWAIT) < 0) {
			pr_perror("can't put message %u back into System V message queue %u", i, e->desc->id);
			return -1;
		}
	}
	return 0;
}

int ns_ipc_check_shm(const struct ipc_ns *ns, pid_t pid, const VmaEntry *v)
{
	for (int i = 0; i < ns->shm.nr; i++) {
		const IpcShmEntry *e = ns->shm.o[i].shm;
		if (e->desc->id != v->shmid)
			continue;
		if (v->end - v->start != ROUND_UP(e->size, PAGE_SZ)) {
			pr_err("pid %d: System V shared memory %u is %llu bytes, not the %llu attached at %#llx", pid,
			       e->desc->id, (unsigned long long)e->size, (unsigned long long)(v->end - v->start),
			       (unsigned long long)v->start);
			return -1;
		}
		return 0;
	}
	pr_err("pid %d: System V shared memory %llu attached at %#llx is not among the IPC namespace's saved "
	       "segments", pid, (unsigned long long)v->shmid, (unsigned long long)v->start);
	return -1;
}

/* ---- the namespace ---- */

struct dump_args {
	int dirfd;
	uint32_t id;
};

static int dump_in_ns(void *arg)
{
	struct dump_args *a = arg;
	return var_dump(a->dirfd, a->id) < 0 || shm_dump(a->dirfd, a->id) < 0 || sem_dump(a->dirfd, a->id) < 0 ||
			       msg_dump(a->dirfd, a->id) < 0
		       ? -1
		       : 0;
}

int ipc_dump(int dirfd, pid_t root, uint32_t id)
{
	struct dump_args a = { dirfd, id };
	return ns_in_thread(root, CLONE_NEWIPC, dump_in_ns, &a);
}

/* A queue's messages: each one's bytes are kept after room for its
 * type, so that msgsnd takes them where they are. */
static int load_messages(struct img *img, struct ipc_ns_obj *o)
{
	uint32_t n = o->msg->qnum;

	if (n > SEM_MAX_NSEMS || !(o->msgs = calloc(n, sizeof(*o->msgs)))) {
		pr_err("image %s: message queue %u with %u messages", img->name, o->msg->desc->id, n);
		return -1;
	}
	for (; o->nr_msgs < n; o->nr_msgs++) {
		struct ipc_msg_item *m = &o->msgs[o->nr_msgs];
		ProtobufCMessage *pm;
		if (img_read(img, &ipc_msg__descriptor, &pm) <= 0) {
			pr_err("image %s: message queue %u ends after %u of its %u messages", img->name,
			       o->msg->desc->id, o->nr_msgs, n);
			return -1;
		}
		m->m = (IpcMsg *)pm;
		uint64_t len = ROUND_UP((uint64_t)m->m->msize, 8);
		if (m->m->mtype < 1 || len > IMG_MAX_ENTRY || !img_has(img, len) ||
		    !(m->buf = malloc(sizeof(long) + len)) || img_read_raw(img, (char *)m->buf + sizeof(long), len) < 0) {
			pr_err("image %s: message %u of queue %u (type %lld, %u bytes) is bad or cut short", img->name,
			       o->nr_msgs, o->msg->desc->id, (long long)m->m->mtype, m->m->msize);
			return -1;
		}
		m->data = (char *)m->buf + sizeof(long);
	}
	return 1;
}

/* An object's entry and the data after it, checked. */
static int load_obj(struct img *img, struct ipc_ns_obj *o, int kind)
{
	const ProtobufCMessageDescriptor *desc = kind == IMG_IPCNS_SHM ? &ipc_shm_entry__descriptor
						 : kind == IMG_IPCNS_SEM ? &ipc_sem_entry__descriptor
									 : &ipc_msg_entry__descriptor;
	ProtobufCMessage *m;
	uint64_t len = 0;
	int r = img_read(img, desc, &m);

	if (r <= 0)
		return r;
	o->entry = m;
	if (kind == IMG_IPCNS_SHM) {
		if (o->shm->size > SHM_MAX_SIZE) {
			pr_err("image %s: shared memory %u of %llu bytes", img->name, o->shm->desc->id,
			       (unsigned long long)o->shm->size);
			return -1;
		}
		if (!o->shm->has_in_pagemaps || !o->shm->in_pagemaps)
			len = ROUND_UP(o->shm->size, 4);
	} else if (kind == IMG_IPCNS_SEM) {
		if (o->sem->nsems == 0 || o->sem->nsems > SEM_MAX_NSEMS) {
			pr_err("image %s: semaphores %u with %u values", img->name, o->sem->desc->id, o->sem->nsems);
			return -1;
		}
		len = ROUND_UP(o->sem->nsems * 2, 8);
	} else if (o->msg->qnum) {
		return load_messages(img, o);
	}
	if (len && (!img_has(img, len) || !(o->data = malloc(len)) || img_read_raw(img, o->data, len) < 0)) {
		pr_err("image %s: the data of object %u is cut short or too large", img->name,
		       ((IpcShmEntry *)m)->desc->id);
		return -1;
	}
	return 1;
}

static int load_objs(int dirfd, int kind, uint32_t id, struct ipc_ns_objs *l)
{
	struct img img;
	int r;

	if (img_open(dirfd, &img, kind, id) < 0)
		return errno == ENOENT ? 0 : -1;
	do {
		struct ipc_ns_obj *n = realloc(l->o, (l->nr + 1) * sizeof(*n));
		if (!n) {
			pr_err("out of memory reading %s", img.name);
			r = -1;
			break;
		}
		l->o = n;
		l->o[l->nr] = (struct ipc_ns_obj){ 0 };
		r = load_obj(&img, &l->o[l->nr], kind);
		if (l->o[l->nr].entry)
			l->nr++;
	} while (r > 0);
	img_close(&img);
	return r;
}

int ipc_load(int dirfd, uint32_t id, struct ipc_ns *ns)
{
	if (img_load_one(dirfd, IMG_IPC_VAR, id, (ProtobufCMessage **)&ns->var) < 0)
		return -1;
	return load_objs(dirfd, IMG_IPCNS_SHM, id, &ns->shm) < 0 || load_objs(dirfd, IMG_IPCNS_SEM, id, &ns->sem) < 0 ||
			       load_objs(dirfd, IMG_IPCNS_MSG, id, &ns->msg) < 0
		       ? -1
		       : 0;
}

/* The tunables first (a queue's messages may need its msgmax), the
 * objects, then the next ids, which making each object has used. */
int ipc_fill(int dirfd, const struct ipc_ns *ns)
{
	if (var_restore(ns->var) < 0)
		return -1;
	for (int i = 0; i < ns->shm.nr; i++)
		if (shm_restore_one(dirfd, &ns->shm.o[i]) < 0)
			return -1;
	for (int i = 0; i < ns->sem.nr; i++)
		if (sem_restore_one(&ns->sem.o[i]) < 0)
			return -1;
	for (int i = 0; i < ns->msg.nr; i++)
		if (msg_restore_one(&ns->msg.o[i]) < 0)
			return -1;
	return var_fill(ns->var, next_fields, sizeof(next_fields) / sizeof(next_fields[0]));
}

static void free_objs(struct ipc_ns_objs *l)
{
	for (int i = 0; i < l->nr; i++) {
		struct ipc_ns_obj *o = &l->o[i];
		/* a queue's messages: qnum were allocated, zeroed, the first
		 * nr_msgs read (one more, maybe, in part) */
		for (uint32_t m = 0; o->msgs && m < o->msg->qnum; m++) {
			if (o->msgs[m].m)
				img_free(o->msgs[m].m);
			free(o->msgs[m].buf);
		}
		free(o->msgs);
		img_free(o->entry);
		free(o->data);
	}
	free(l->o);
	*l = (struct ipc_ns_objs){ 0 };
}

void ipc_free(struct ipc_ns *ns)
{
	if (ns->var)
		img_free(ns->var);
	ns->var = NULL;
	free_objs(&ns->shm);
	free_objs(&ns->sem);
	free_objs(&ns->msg);
}
