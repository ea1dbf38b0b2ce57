/*
 * mem_anon: anonymous memory of every common flavour must survive with its
 * content, its permissions and its holes.
 *
 *   - private anon mappings of 1 page, 64 KiB and 257 pages
 *   - a 64 MiB private mapping with sparse touched pages; the holes must
 *     still read as zero
 *   - a MAP_SHARED|MAP_ANONYMOUS area
 *   - a PROT_NONE area (still there as ---p), and a reservation of
 *     8 TiB without access (as MariaDB makes): neither counted against
 *     the memory the kernel commits to (no "ac" in VmFlags), as before
 *   - a read-only area with content (r--p), and an rwx one (rwxp)
 *   - heap: small and big malloc blocks, and sbrk() growth
 *   - a MAP_GROWSDOWN mapping (VmFlags "gd" kept)
 *   - initialised data and bss globals
 *
 * test mem_anon: plain restore chain leave_running pagemap_fallback
 */
#include "common.h"

#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096UL
#define BIG_SIZE (64UL << 20)
#define N_SMALL 200

/* A byte pattern that differs per region (seed) and per offset, so a page
 * restored at the wrong place or into the wrong region is detected. */
static inline uint8_t pat(size_t off, unsigned seed)
{
	return (uint8_t)(off * 131 + (off >> 12) * 7 + seed * 29 + 1);
}

static void fill(void *p, size_t len, unsigned seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = pat(i, seed);
}

/* Returns the offset of the first wrong byte, or -1 if all match. */
static long verify(const void *p, size_t len, unsigned seed)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(i, seed))
			return (long)i;
	return -1;
}

static void check_fill(const char *name, const void *p, size_t len, unsigned seed)
{
	long bad = verify(p, len, seed);

	CHECK(bad < 0, "%s: content differs at offset %ld (%p)", name, bad, p);
}

static void *map(size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* Which pages of the 64 MiB area we touch: every 37th one plus a short run. */
static int big_touched(size_t page)
{
	return page % 37 == 0 || (page >= 1000 && page < 1010);
}

/* Does the VMA containing addr carry the given two-letter VmFlags entry? */
static int vma_has_flag(const void *addr, const char *flag)
{
	unsigned long a = (unsigned long)addr, s, e;
	char line[1024];
	int inside = 0, found = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/* Header lines start with "start-end"; field lines with a name. */
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			inside = a >= s && a < e;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			char needle[8];
			snprintf(needle, sizeof(needle), " %s", flag);
			found = strstr(line, needle) != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Globals: initialised data (partly rewritten) and bss (partly written). */
int data_arr[4096] = { [0] = 11, [100] = 22, [4095] = 33 };
int data_const = 0x12345678;
static unsigned char bss_arr[3 * PAGE + 17];

static struct {
	uint8_t *one, *sixty4k, *odd, *big, *shared, *none, *reserve, *ro, *gd, *rwx;
	uint8_t *small[N_SMALL];
	size_t small_len[N_SMALL];
	uint8_t *malloc_big;
	uint8_t *brk_start;
	size_t brk_len;
	void *brk_end;
} m;

#define ODD_SIZE (257 * PAGE)
#define SHARED_SIZE (256 * 1024UL)
#define NONE_SIZE (4 * PAGE)
#define RESERVE_SIZE (8UL << 40)
#define RO_SIZE (8 * PAGE)
#define GD_SIZE (16 * PAGE)
#define MALLOC_BIG (8UL << 20)

static void setup(void)
{
	m.one = map(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.one, PAGE, 1);
	m.sixty4k = map(64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.sixty4k, 64 * 1024, 2);
	m.odd = map(ODD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.odd, ODD_SIZE, 3);

	m.big = map(BIG_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	for (size_t pg = 0; pg < BIG_SIZE / PAGE; pg++)
		if (big_touched(pg))
			fill(m.big + pg * PAGE, PAGE, 4 + (unsigned)pg);

	m.shared = map(SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(m.shared, SHARED_SIZE, 5);

	m.none = map(NONE_SIZE, PROT_NONE, MAP_PRIVATE);
	m.reserve = map(RESERVE_SIZE, PROT_NONE, MAP_PRIVATE);

	m.ro = map(RO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.ro, RO_SIZE, 6);
	if (mprotect(m.ro, RO_SIZE, PROT_READ))
		die("mprotect");

	m.rwx = map(RO_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE);
	fill(m.rwx, RO_SIZE, 11);

	m.gd = map(GD_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
	fill(m.gd, GD_SIZE, 7);

	for (int i = 0; i < N_SMALL; i++) {
		m.small_len[i] = 1 + (size_t)(i * 7) % 300;
		m.small[i] = malloc(m.small_len[i]);
		if (!m.small[i])
			die("malloc");
		fill(m.small[i], m.small_len[i], 100 + (unsigned)i);
	}
	/* Free every third block so the heap has holes in its free lists. */
	for (int i = 0; i < N_SMALL; i += 3) {
		free(m.small[i]);
		m.small[i] = NULL;
	}
	m.malloc_big = malloc(MALLOC_BIG);
	if (!m.malloc_big)
		die("malloc big");
	fill(m.malloc_big, MALLOC_BIG, 8);

	m.brk_len = (1UL << 20) + 123;
	m.brk_start = sbrk((intptr_t)m.brk_len);
	if (m.brk_start == (void *)-1)
		die("sbrk");
	fill(m.brk_start, m.brk_len, 9);
	m.brk_end = sbrk(0);

	for (size_t i = 0; i < sizeof(data_arr) / sizeof(data_arr[0]); i += 7)
		data_arr[i] = (int)(i * 3 + 1);
	fill(bss_arr, sizeof(bss_arr) - 100, 10);
}

static void check_big(void)
{
	static uint8_t zero[PAGE];
	int bad = 0;

	for (size_t pg = 0; pg < BIG_SIZE / PAGE && bad < 3; pg++) {
		uint8_t *p = m.big + pg * PAGE;

		if (big_touched(pg)) {
			long off = verify(p, PAGE, 4 + (unsigned)pg);
			if (off >= 0) {
				fail("64M area: touched page %zu differs at offset %ld", pg, off);
				bad++;
			}
		} else if (memcmp(p, zero, PAGE)) {
			fail("64M area: untouched page %zu is not zero", pg);
			bad++;
		}
	}
}

static void check_heap(void)
{
	for (int i = 0; i < N_SMALL; i++) {
		if (!m.small[i])
			continue;
		if (verify(m.small[i], m.small_len[i], 100 + (unsigned)i) >= 0) {
			fail("malloc block %d (%zu bytes) changed", i, m.small_len[i]);
			break;
		}
	}
	check_fill("malloc 8M block", m.malloc_big, MALLOC_BIG, 8);
	check_fill("sbrk area", m.brk_start, m.brk_len, 9);
	CHECK(sbrk(0) == m.brk_end, "program break moved: %p, expected %p", sbrk(0), m.brk_end);

}

/* After the final check only: the allocator's own state must be
 * consistent, so churn it and free everything. */
static void churn_heap(void)
{
	for (int round = 0; round < 3; round++) {
		void *blocks[500];
		for (int i = 0; i < 500; i++) {
			blocks[i] = malloc((size_t)(i % 50) * 16 + 1);
			if (!blocks[i]) {
				fail("malloc after restore failed");
				return;
			}
			memset(blocks[i], 0xab, (size_t)(i % 50) * 16 + 1);
		}
		for (int i = 0; i < 500; i++)
			free(blocks[i]);
	}
	for (int i = 0; i < N_SMALL; i++)
		free(m.small[i]);
	free(m.malloc_big);
}

static void check_globals(void)
{
	for (size_t i = 0; i < sizeof(data_arr) / sizeof(data_arr[0]); i++) {
		int want = (i % 7 == 0) ? (int)(i * 3 + 1)
			   : i == 100	? 22
			   : i == 4095	? 33
					: 0;
		if (data_arr[i] != want) {
			fail("data_arr[%zu] = %d, expected %d", i, data_arr[i], want);
			break;
		}
	}
	CHECK(data_const == 0x12345678, "data_const = %#x", data_const);
	check_fill("bss", bss_arr, sizeof(bss_arr) - 100, 10);
	for (size_t i = sizeof(bss_arr) - 100; i < sizeof(bss_arr); i++)
		if (bss_arr[i]) {
			fail("bss tail byte %zu not zero", i);
			break;
		}
}

static void check_all(void)
{
	check_range("1-page area", m.one, PAGE, "rw-p");
	check_fill("1-page area", m.one, PAGE, 1);
	check_range("64K area", m.sixty4k, 64 * 1024, "rw-p");
	check_fill("64K area", m.sixty4k, 64 * 1024, 2);
	check_range("257-page area", m.odd, ODD_SIZE, "rw-p");
	check_fill("257-page area", m.odd, ODD_SIZE, 3);
	check_range("64M area", m.big, BIG_SIZE, "rw-p");
	check_big();
	check_range("shared anon", m.shared, SHARED_SIZE, "rw-s");
	check_fill("shared anon", m.shared, SHARED_SIZE, 5);
	check_range("PROT_NONE area", m.none, NONE_SIZE, "---p");
	check_range("8 TiB reservation", m.reserve, RESERVE_SIZE, "---p");
	CHECK(!vma_has_flag(m.none, "ac"), "PROT_NONE area is accounted ('ac' in VmFlags)");
	CHECK(!vma_has_flag(m.reserve, "ac"), "8 TiB reservation is accounted ('ac' in VmFlags)");
	check_range("read-only area", m.ro, RO_SIZE, "r--p");
	check_fill("read-only area", m.ro, RO_SIZE, 6);
	check_range("rwx area", m.rwx, RO_SIZE, "rwxp");
	check_fill("rwx area", m.rwx, RO_SIZE, 11);
	check_range("growsdown area", m.gd, GD_SIZE, "rw-p");
	check_fill("growsdown area", m.gd, GD_SIZE, 7);
	CHECK(vma_has_flag(m.gd, "gd"), "growsdown area lost VM_GROWSDOWN (no 'gd' in VmFlags)");
	check_heap();
	check_globals();
}


int main(void)
{
	proto_init();
	setup();
	/* Sanity: the checks must hold before any dump, or the test is wrong. */
	check_all();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_all();
	churn_heap();
	return proto_finish();
}
