/*
 * mem_fill: the memory a restore fills by itself before the process
 * becomes the program again (restore/fill.c: userfaultfd copies without
 * clearing, split between two threads above 8 MiB) comes back whole and
 * leaves nothing of the fill behind.
 *
 *   - a 24 MiB mapping, every page written (the halves of the fill are cut
 *     somewhere in here or in the next one)
 *   - a 40 MiB mapping with every other 64 KiB written: many runs, and
 *     holes that must still read as zero
 *   - a 4 MiB mapping kept out of huge pages (MADV_NOHUGEPAGE), written
 * After the restore each is still one mapping (the fill registers whole
 * mappings with userfaultfd, and a mapping left registered or split would
 * show), the program can register them with a userfaultfd of its own
 * (EBUSY if the restore's were still there), and it has one thread (the
 * second filler is gone).
 *
 * test mem_fill: plain restore chain
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#define PAGE 4096UL
#define MIB (1UL << 20)

struct area {
	const char *name;
	size_t len;
	unsigned seed;
	uint8_t *p;
};

static struct area areas[] = {
	{ "full 24 MiB", 24 * MIB, 1, NULL },
	{ "striped 40 MiB", 40 * MIB, 2, NULL },
	{ "nohugepage 4 MiB", 4 * MIB, 3, NULL },
};
#define NR_AREAS (sizeof(areas) / sizeof(areas[0]))

static int written(const struct area *a, size_t off)
{
	return a->seed != 2 || (off / (64 << 10)) % 2 == 0;
}

static uint8_t pat(size_t off, unsigned seed)
{
	return (uint8_t)(off * 131 + (off >> 12) * 7 + seed * 29 + 1);
}

static void setup(void)
{
	for (size_t i = 0; i < NR_AREAS; i++) {
		struct area *a = &areas[i];
		a->p = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a->p == MAP_FAILED)
			die("mmap");
		if (a->seed == 3 && madvise(a->p, a->len, MADV_NOHUGEPAGE) < 0)
			die("madvise");
		for (size_t off = 0; off < a->len; off += PAGE)
			if (written(a, off))
				for (size_t k = 0; k < PAGE; k += 8)
					a->p[off + k] = pat(off + k, a->seed);
	}
}

static void check_content(const struct area *a)
{
	for (size_t off = 0; off < a->len; off += 8) {
		uint8_t want = written(a, off) && off % 8 == 0 ? pat(off, a->seed) : 0;
		if (a->p[off] != want) {
			fail("%s: byte at offset %zu is %u, want %u", a->name, off, a->p[off], want);
			return;
		}
	}
}

/* Mappings of /proc/self/maps that overlap [p, p+len). */
static int mappings_in(const void *p, size_t len)
{
	unsigned long s, e, lo = (unsigned long)p, hi = lo + len;
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		die("maps");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < hi && lo < e)
			n++;
	fclose(f);
	return n;
}

static void check_own_uffd(const struct area *a)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
	if (fd < 0)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0)
		return;	/* not allowed here: nothing to check */
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register r = { .range = { (unsigned long)a->p, a->len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(fd, UFFDIO_API, &api) == 0) {
		CHECK(ioctl(fd, UFFDIO_REGISTER, &r) == 0, "%s: can't register it with a userfaultfd (%m)", a->name);
		ioctl(fd, UFFDIO_UNREGISTER, &r.range);
	}
	close(fd);
}

static int threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		die("status");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void check_all(void)
{
	for (size_t i = 0; i < NR_AREAS; i++) {
		const struct area *a = &areas[i];
		check_content(a);
		CHECK(mappings_in(a->p, a->len) == 1, "%s: %d mappings where there was one", a->name,
		      mappings_in(a->p, a->len));
		check_own_uffd(a);
	}
	CHECK(threads() == 1, "%d threads, want 1", threads());
}

int main(void)
{
	proto_init();
	setup();
	check_all();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_all();
	return proto_finish();
}
