/*
 * treeexit: a tree in which one process exits while the tree is being
 * dumped.
 *
 *   treeexit DELAY_MS MIB
 *
 * The root and its 4 children each fill MIB MiB of memory (so that the
 * dump takes a while).  Child 2 exits with status 42 DELAY_MS after its
 * setup, which is about when the runner, having seen READY, starts the
 * dump.  Whatever the dump did (caught it alive, as a zombie, or failed
 * and let the tree go), the root must in the end reap child 2 with status
 * 42, and the other children must pass their own checks (pids, parents,
 * memory) after SIGUSR1.  Before READY the root prints "INFO exiter PID".
 */
#include "tree.h"

#define NKIDS 4
#define EXITER 2

static size_t area_bytes;
static int delay_ms;

static int kid(int idx)
{
	uint64_t *area = tree_fill(area_bytes, getpid(), idx);

	tree_sync_done();
	if (idx == EXITER) {
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		_exit(42);
	}
	proto_wait();
	tree_check_ids(1);
	tree_check_fill(area, area_bytes, tree_pid, idx);
	return tree_child_result();
}

int main(int argc, char **argv)
{
	uint64_t *area;
	pid_t exiter = 0;

	if (argc != 3) {
		say("FAIL: setup: usage: treeexit DELAY_MS MIB\n");
		return 2;
	}
	delay_ms = atoi(argv[1]);
	area_bytes = (size_t)atoi(argv[2]) << 20;
	tree_init();
	area = tree_fill(area_bytes, getpid(), 0);
	tree_sync_init();
	for (int i = 1; i <= NKIDS; i++) {
		pid_t p = tree_fork(i, kid, i == EXITER ? 42 : 0);
		if (i == EXITER)
			exiter = p;
	}
	tree_sync_wait();
	sayf("INFO exiter %d\n", exiter);
	proto_ready();
	proto_wait();
	tree_forward();
	tree_check_ids(0);
	tree_check_fill(area, area_bytes, tree_pid, 0);
	tree_reap(20);
	tree_check_no_more_children();
	return proto_finish();
}
