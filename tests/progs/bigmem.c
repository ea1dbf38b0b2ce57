/*
 * bigmem: a target with a lot of touched memory, so that a dump takes long
 * enough to be interrupted.  Used by the failure tests (kill -9 of the
 * dumper mid-dump): afterwards this process must still run normally.
 *
 * Touches BIGMEM_MB (default 512) MiB, every page filled with a byte that
 * depends on its index.  After SIGUSR1 it checks a few bytes of every page.
 */
#include "common.h"

#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096UL

static uint8_t page_byte(size_t pg)
{
	return (uint8_t)(pg * 31 + 7) | 1; /* never zero */
}

int main(void)
{
	const char *env = getenv("BIGMEM_MB");
	size_t mb = env ? strtoul(env, NULL, 10) : 512;
	size_t len = mb << 20, bad = 0;
	uint8_t *p;

	proto_init();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	for (size_t pg = 0; pg < len / PAGE; pg++)
		memset(p + pg * PAGE, page_byte(pg), PAGE);
	proto_ready();
	proto_wait();
	for (size_t pg = 0; pg < len / PAGE && bad < 3; pg++) {
		uint8_t *q = p + pg * PAGE, b = page_byte(pg);

		if (q[0] != b || q[PAGE / 2] != b || q[PAGE - 1] != b) {
			fail("page %zu of %zu MiB area corrupted", pg, mb);
			bad++;
		}
	}
	return proto_finish();
}
