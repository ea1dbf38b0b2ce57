/*
 * membarrier: the process's membarrier() registrations (private
 * expedited, its sync-core flavour, global expedited) hold after restore:
 * the barriers they allow still work, and the kernel (6.3+) lists the
 * same registrations.
 *
 * test membarrier: plain restore chain
 */
#include "common.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>

#define CMD_GET_REGISTRATIONS (1 << 9)

static int mb(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static const int barriers[] = {
	MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
	MEMBARRIER_CMD_GLOBAL_EXPEDITED,
};
static int registered, listed;

static void check(void)
{
	for (size_t i = 0; i < sizeof(barriers) / sizeof(barriers[0]); i++)
		if (registered & (barriers[i] << 1))
			CHECK(mb(barriers[i]) == 0, "membarrier(%#x) refused: %s (registration lost)", barriers[i],
			      strerror(errno));
	if (listed >= 0)
		CHECK(mb(CMD_GET_REGISTRATIONS) == listed, "registrations are %#x, were %#x",
		      mb(CMD_GET_REGISTRATIONS), listed);
}

int main(void)
{
	proto_init();
	int supported = mb(MEMBARRIER_CMD_QUERY);
	if (supported < 0)
		die("membarrier query");
	for (size_t i = 0; i < sizeof(barriers) / sizeof(barriers[0]); i++) {
		int reg = barriers[i] << 1;	/* REGISTER_x is x << 1 */
		if ((supported & reg) && mb(reg) == 0)
			registered |= reg;
	}
	if (!(registered & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
		die("membarrier register private expedited");
	listed = mb(CMD_GET_REGISTRATIONS);
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	return proto_finish();
}
