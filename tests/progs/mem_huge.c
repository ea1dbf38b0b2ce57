/*
 * mem_huge: MAP_HUGETLB memory comes back in huge pages, with its
 * contents: a private area of two huge pages and a shared one, which a
 * child shares (its writes seen by the parent after restore).
 *
 * test mem_huge: plain restore chain --needs hugepages
 */
#include "common.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define HUGE (2UL << 20)

static uint8_t *priv, *shared;
static pid_t child;

/* KernelPageSize of the mapping holding addr, in kB (0: not found). */
static unsigned long page_kb(const void *addr)
{
	unsigned long a = (unsigned long)addr, s, e, kb = 0;
	char line[512];
	int inside = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2)
			inside = a >= s && a < e;
		else if (inside && sscanf(line, "KernelPageSize: %lu", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static void check(void)
{
	for (size_t off = 0; off < 2 * HUGE; off += 4096)
		if (priv[off] != (uint8_t)(off >> 12)) {
			fail("private huge area: byte at %zu is %u", off, priv[off]);
			break;
		}
	for (size_t off = 0; off < HUGE; off += 4096)
		if (shared[off] != (uint8_t)((off >> 12) + 7)) {
			fail("shared huge area: byte at %zu is %u (the child's write lost?)", off, shared[off]);
			break;
		}
	CHECK(page_kb(priv) == HUGE >> 10, "private area has pages of %lu kB", page_kb(priv));
	CHECK(page_kb(shared) == HUGE >> 10, "shared area has pages of %lu kB", page_kb(shared));
}

int main(void)
{
	proto_init();
	priv = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	shared = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		die("mmap MAP_HUGETLB");
	for (size_t off = 0; off < 2 * HUGE; off += 4096)
		priv[off] = (uint8_t)(off >> 12);
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		for (size_t off = 0; off < HUGE; off += 4096)
			shared[off] = (uint8_t)((off >> 12) + 7);
		for (;;)
			pause();
	}
	for (int i = 0; i < 200 && shared[HUGE - 4096] != (uint8_t)(((HUGE - 4096) >> 12) + 7); i++)
		usleep(10000);
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return proto_finish();
}
