/*
 * ipc_ns: a tree in an IPC namespace of its own (as a container has),
 * holding System V objects there. After the restore its namespace (a
 * new one: the objects are not in the test's) holds the same objects
 * with the same ids, keys, modes and contents, and the same tunables:
 *
 *   0 ── 1
 *
 *   S  a 2-page segment (key 0x5354, mode 0640), attached by the root
 *      before the fork (the child inherits it): the root writes page 0,
 *      the child page 1; after the restore the child writes a new word
 *      and the root must see it.
 *   U  a 1-page segment (IPC_PRIVATE) no one has attached, filled and
 *      detached before READY: only the namespace holds it.
 *   M  a set of 4 semaphores (key 0x5355) with values 1, 2, 300, 32767.
 *   Q  a message queue (key 0x5356, mode 0620) of 24576 bytes holding
 *      three messages: type 1 "first", type 5 with 10000 bytes (more
 *      than the default msgmax: the tunable must be back before the
 *      message is), type 2 "third"; they must come out the same, in
 *      order, and the queue must carry a new message after the restore.
 *   kernel/msgmnb set to 32768, kernel/msgmax to 16384 and kernel/sem to
 *   "200 32000 32 100".
 *
 * With the argument "criu" (the images go through CRIU, which makes a
 * queue again with the namespace's default size, msgmnb, and takes no
 * message over 8192 bytes) Q's size must be 32768, and message 2 has
 * 8000 bytes.
 *
 * test ns.ipc: tree.plain tree.restore tree.chain3
 */
#include "tree.h"

#include <sched.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define S_KEY 0x5354
#define M_KEY 0x5355
#define Q_KEY 0x5356

static int s_id, u_id, m_id, q_id;
static unsigned long q_bytes = 24576;
static int big_len = 10000;

struct msg {
	long type;
	char text[16384];
};
static struct msg msg_buf;

static char big_byte(int i)
{
	return (char)(i * 7 + 3);
}
static volatile uint32_t *s_mem;

static void sysctl_set(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		die(path);
	close(fd);
}

static void sysctl_check(const char *path, const char *want)
{
	char buf[128] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\t')
			*p = ' ';
	buf[strcspn(buf, "\n")] = 0;
	CHECK(!strcmp(buf, want), "%s reads \"%s\", want \"%s\"", path, buf, want);
}

static void make_objects(void)
{
	unsigned short vals[4] = { 1, 2, 300, 32767 };
	struct msqid_ds q;

	/* first: a queue may grow up to msgmnb without CAP_SYS_RESOURCE */
	sysctl_set("/proc/sys/kernel/msgmnb", "32768");
	sysctl_set("/proc/sys/kernel/msgmax", "16384");
	sysctl_set("/proc/sys/kernel/sem", "200 32000 32 100");
	if ((s_id = shmget(S_KEY, 2 * 4096, IPC_CREAT | IPC_EXCL | 0640)) < 0 ||
	    (u_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)) < 0)
		die("shmget");
	s_mem = shmat(s_id, NULL, 0);
	uint32_t *u = shmat(u_id, NULL, 0);
	if (s_mem == (void *)-1 || u == (void *)-1)
		die("shmat");
	for (int i = 0; i < 1024; i++)
		u[i] = 0x75000000 + i;
	shmdt(u);
	s_mem[0] = 0x5a5a0001;
	if ((m_id = semget(M_KEY, 4, IPC_CREAT | IPC_EXCL | 0600)) < 0 || semctl(m_id, 0, SETALL, vals) < 0)
		die("semaphores");
	if ((q_id = msgget(Q_KEY, IPC_CREAT | IPC_EXCL | 0620)) < 0 || msgctl(q_id, IPC_STAT, &q) < 0)
		die("msgget");
	q.msg_qbytes = 24576;
	if (msgctl(q_id, IPC_SET, &q) < 0)
		die("msgctl(IPC_SET)");
	msg_buf.type = 1;
	strcpy(msg_buf.text, "first");
	if (msgsnd(q_id, &msg_buf, 6, IPC_NOWAIT) < 0)
		die("msgsnd 1");
	msg_buf.type = 5;
	for (int i = 0; i < big_len; i++)
		msg_buf.text[i] = big_byte(i);
	if (msgsnd(q_id, &msg_buf, big_len, IPC_NOWAIT) < 0)
		die("msgsnd 2");
	msg_buf.type = 2;
	strcpy(msg_buf.text, "third");
	if (msgsnd(q_id, &msg_buf, 6, IPC_NOWAIT) < 0)
		die("msgsnd 3");
}

/* The three messages, in order, then none. */
static void check_messages(void)
{
	ssize_t n = msgrcv(q_id, &msg_buf, sizeof(msg_buf.text), 0, IPC_NOWAIT);
	CHECK(n == 6 && msg_buf.type == 1 && !strcmp(msg_buf.text, "first"), "message 1: %zd bytes, type %ld", n,
	      msg_buf.type);
	n = msgrcv(q_id, &msg_buf, sizeof(msg_buf.text), 0, IPC_NOWAIT);
	int bad = 0;
	for (int i = 0; n == big_len && i < big_len; i++)
		bad += msg_buf.text[i] != big_byte(i);
	CHECK(n == big_len && msg_buf.type == 5 && !bad, "message 2: %zd bytes, type %ld, %d bytes changed", n,
	      msg_buf.type, bad);
	n = msgrcv(q_id, &msg_buf, sizeof(msg_buf.text), 0, IPC_NOWAIT);
	CHECK(n == 6 && msg_buf.type == 2 && !strcmp(msg_buf.text, "third"), "message 3: %zd bytes, type %ld", n,
	      msg_buf.type);
	CHECK(msgrcv(q_id, &msg_buf, sizeof(msg_buf.text), 0, IPC_NOWAIT) < 0 && errno == ENOMSG,
	      "a fourth message in the queue");
}

static void check_objects(void)
{
	unsigned short vals[4] = { 0 };
	struct shmid_ds sd;
	struct msqid_ds q;
	struct {
		long type;
		char text[8];
	} msg = { 7, "hello" }, got = { 0, "" };

	CHECK(shmget(S_KEY, 0, 0) == s_id, "key %#x names segment %d, not %d", S_KEY, shmget(S_KEY, 0, 0), s_id);
	CHECK(shmctl(s_id, IPC_STAT, &sd) == 0 && (sd.shm_perm.mode & 0777) == 0640 && sd.shm_segsz == 2 * 4096,
	      "segment S: mode %o size %zu", sd.shm_perm.mode & 0777, (size_t)sd.shm_segsz);
	uint32_t *u = shmat(u_id, NULL, SHM_RDONLY);
	CHECK(u != (void *)-1, "segment U (%d) can't be attached: %s", u_id, strerror(errno));
	if (u != (void *)-1) {
		int bad = 0;
		for (int i = 0; i < 1024; i++)
			bad += u[i] != 0x75000000u + i;
		CHECK(!bad, "segment U: %d words changed", bad);
		shmdt(u);
	}
	CHECK(semget(M_KEY, 0, 0) == m_id, "key %#x names semaphores %d, not %d", M_KEY, semget(M_KEY, 0, 0), m_id);
	CHECK(semctl(m_id, 0, GETALL, vals) == 0 && vals[0] == 1 && vals[1] == 2 && vals[2] == 300 && vals[3] == 32767,
	      "semaphores hold %u %u %u %u", vals[0], vals[1], vals[2], vals[3]);
	CHECK(msgget(Q_KEY, 0) == q_id, "key %#x names queue %d, not %d", Q_KEY, msgget(Q_KEY, 0), q_id);
	CHECK(msgctl(q_id, IPC_STAT, &q) == 0 && q.msg_qbytes == q_bytes && (q.msg_perm.mode & 0777) == 0620,
	      "queue: %lu bytes (want %lu), mode %o", (unsigned long)q.msg_qbytes, q_bytes, q.msg_perm.mode & 0777);
	check_messages();
	CHECK(msgsnd(q_id, &msg, 6, IPC_NOWAIT) == 0 && msgrcv(q_id, &got, sizeof(got.text), 7, IPC_NOWAIT) == 6 &&
		      !strcmp(got.text, "hello"),
	      "the queue carries no message: %s", strerror(errno));
	sysctl_check("/proc/sys/kernel/msgmnb", "32768");
	sysctl_check("/proc/sys/kernel/msgmax", "16384");
	sysctl_check("/proc/sys/kernel/sem", "200 32000 32 100");
}

static int child(int idx)
{
	(void)idx;
	s_mem[1024] = 0x5a5a0002;
	tree_sync_done();
	proto_wait();
	tree_check_ids(1);
	CHECK(s_mem[0] == 0x5a5a0001, "child: S page 0 holds %#x", s_mem[0]);
	s_mem[1025] = 0x600d;
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	tree_init();
	if (unshare(CLONE_NEWIPC) < 0)
		die("unshare(CLONE_NEWIPC)");
	if (argc > 1 && !strcmp(argv[1], "criu")) {
		q_bytes = 32768;
		big_len = 8000;
	}
	make_objects();
	tree_sync_init();
	tree_fork(1, child, 0);
	tree_sync_wait();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	tree_forward();
	tree_check_ids(0);
	check_objects();
	for (int i = 0; i < 2000 && s_mem[1025] != 0x600d; i++)
		usleep(5000);
	CHECK(s_mem[1025] == 0x600d, "the child's write after the restore never reached the root");
	CHECK(s_mem[1024] == 0x5a5a0002, "S page 1 holds %#x", s_mem[1024]);
	tree_reap(20);
	return proto_finish();
}
