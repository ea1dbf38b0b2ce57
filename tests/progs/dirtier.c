/*
 * dirtier - memory that keeps changing, for pre-dump and incremental dumps.
 *
 *   dirtier MIB
 *
 * Maps MIB MiB of private anonymous memory and fills page i with the byte
 * (i * 7 + gen[i]) & 0xff, gen[] (the times page i was rewritten) being in
 * memory too. Prints READY, then rewrites a page every 200 us, walking the
 * pages with a stride, until SIGUSR1; then every page must hold what gen[]
 * says: pages saved by a pre-dump and changed since must come from the
 * last dump, the others from the parent dumps. It also maps and unmaps
 * pages (MADV_DONTNEED of a whole range, refilled later) so that pages
 * that went away and came back are covered.
 */
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"

#define PAGE 4096

static uint8_t *mem;
static uint32_t *gen;
static size_t pages;

static uint8_t expect(size_t i)
{
	return (uint8_t)(i * 7 + gen[i]);
}

static void fill(size_t i)
{
	memset(mem + i * PAGE, expect(i), PAGE);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	pages = (size_t)atoi(argv[1]) << 20 >> 12;
	proto_init();
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(pages, sizeof(*gen));
	if (mem == MAP_FAILED || !gen)
		die("mmap");
	/* 4 KiB pages whatever the machine's THP setting: soft-dirty bits
	 * (6.1) mark a whole 2 MiB huge page written, and the strided writes
	 * below touch every one of them within a second, so a dump over a
	 * parent would save nearly everything (rightly) and the tests could
	 * not see whether it used the parent. */
	madvise(mem, pages * PAGE, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < pages; i++)
		fill(i);
	proto_ready();
	size_t k = 0, dropped = pages / 2;
	struct timespec nap = { 0, 200 * 1000 };
	while (!go_flag) {
		size_t i = (k * 4099) % pages;
		gen[i]++;
		fill(i);
		/* every 2000 writes: drop 16 pages, and refill the ones dropped before */
		if (++k % 2000 == 0) {
			for (size_t j = dropped; j < dropped + 16 && j < pages; j++)
				fill(j);
			dropped = (dropped + 4099 * 16) % (pages - 16);
			madvise(mem + dropped * PAGE, 16 * PAGE, MADV_DONTNEED);
			for (size_t j = dropped; j < dropped + 16; j++)
				gen[j] = (uint32_t)-(int)(j * 7);	/* expect 0 there now */
		}
		nanosleep(&nap, NULL);
	}
	for (size_t i = 0; i < pages; i++) {
		const uint8_t *p = mem + i * PAGE;
		for (size_t b = 0; b < PAGE; b++)
			if (p[b] != expect(i)) {
				fail("page %zu byte %zu is %u, want %u (gen %u)", i, b, p[b], expect(i), gen[i]);
				break;
			}
	}
	sayf("pages %zu writes %zu\n", pages, k);
	return proto_finish();
}
