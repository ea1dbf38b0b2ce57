/*
 * sysv_shm: System V shared memory attached by a parent and its child
 * (what PostgreSQL's postmaster and backends hold). After the restore the
 * same segments are attached at the same addresses, with the same rights,
 * and still shared: what the child writes, the parent reads.
 *
 *   0 ── 1
 *
 *   S  a 3-page segment (IPC_PRIVATE), attached read-write by the root
 *      before the fork (the child inherits it); the root writes page 0,
 *      the child page 2.
 *   R  a 1-page segment the root fills, then attaches a second time
 *      read-only (SHM_RDONLY): that attachment must stay read-only.
 *
 * After SIGUSR1 each checks its pages, the child writes a new word in S
 * and the root waits to see it; the root then checks the attach counts
 * (S: 2, R: 2), detaches everything and removes both segments.
 *
 * With the argument "rmid" the root removes S (IPC_RMID) before READY:
 * the segment then lives only as long as it is attached, and a dump must
 * refuse it (tests/cases/unsupported.sh).
 *
 * test mem.sysv_shm: tree.plain tree.restore tree.chain3
 */
#include "tree.h"

#include <sys/shm.h>

#define S_SIZE (3 * 4096)

static int s_id = -1, r_id = -1;
static volatile uint32_t *s_mem;
static uint32_t *r_mem, *r_ro;

static void check_words(const char *who)
{
	CHECK(s_mem[0] == 0x5a5a0001, "%s: S page 0 holds %#x", who, s_mem[0]);
	CHECK(s_mem[2 * 1024] == 0x5a5a0002, "%s: S page 2 holds %#x", who, s_mem[2 * 1024]);
}

static int child(int idx)
{
	(void)idx;
	s_mem[2 * 1024] = 0x5a5a0002;
	tree_sync_done();
	proto_wait();
	tree_check_ids(1);
	check_words("child");
	s_mem[1024] = 0x600d;	/* page 1: the root waits for it */
	return failures ? 1 : 0;
}

static unsigned long nattch(int id)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0) {
		fail("shmctl(%d): %s", id, strerror(errno));
		return 0;
	}
	return ds.shm_nattch;
}

static void check_read_only(void)
{
	struct vma_info vi;
	if (!find_vma(r_ro, &vi))
		fail("R's read-only attachment at %p is gone", (void *)r_ro);
	else
		CHECK(!strcmp(vi.perms, "r--s"), "R's read-only attachment is %s", vi.perms);
	CHECK(r_ro[7] == 0xfeed && r_mem[7] == 0xfeed, "R holds %#x / %#x", r_ro[7], r_mem[7]);
}

int main(int argc, char **argv)
{
	int rmid = argc > 1 && !strcmp(argv[1], "rmid");
	tree_init();
	if ((s_id = shmget(IPC_PRIVATE, S_SIZE, IPC_CREAT | 0600)) < 0 ||
	    (r_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)) < 0)
		die("shmget");
	s_mem = shmat(s_id, NULL, 0);
	r_mem = shmat(r_id, NULL, 0);
	if (s_mem == (void *)-1 || r_mem == (void *)-1)
		die("shmat");
	r_mem[7] = 0xfeed;
	r_ro = shmat(r_id, NULL, SHM_RDONLY);
	if (r_ro == (void *)-1)
		die("shmat read-only");
	s_mem[0] = 0x5a5a0001;
	tree_sync_init();
	tree_fork(1, child, 0);
	tree_sync_wait();
	if (rmid && shmctl(s_id, IPC_RMID, NULL) < 0)
		die("shmctl(IPC_RMID)");
	check_words("root");
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	tree_forward();
	tree_check_ids(0);
	check_read_only();
	for (int i = 0; i < 2000 && s_mem[1024] != 0x600d; i++)
		usleep(5000);
	CHECK(s_mem[1024] == 0x600d, "the child's write after the restore never reached the root");
	CHECK(nattch(s_id) == 2 || s_mem[1024] == 0x600d, "S attached %lu times", nattch(s_id));
	tree_reap(20);
	CHECK(nattch(r_id) == 2, "R attached %lu times, want 2", nattch(r_id));
	check_words("root");
	shmdt((void *)s_mem);
	shmdt(r_mem);
	shmdt(r_ro);
	shmctl(s_id, IPC_RMID, NULL);
	shmctl(r_id, IPC_RMID, NULL);
	return proto_finish();
}
