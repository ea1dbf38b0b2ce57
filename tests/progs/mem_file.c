/*
 * mem_file: file-backed mappings must be restored as file mappings of the
 * same file, not as anonymous copies.
 *
 *   - MAP_PRIVATE, writable: written pages keep the written content; pages
 *     never written still show the file, and keep following it (a pwrite()
 *     to the file after restore is visible through them), while written pages
 *     do not follow the file;
 *   - MAP_SHARED, writable: written through the map; after restore the map
 *     and the file agree, in both directions;
 *   - read-only mappings (shared, and private at a non-zero file offset);
 *   - a read-only shared mapping of a file opened read-write: after
 *     restore mprotect makes it writable, as it could before (the file is
 *     opened again with the access the program had).
 *
 * The files live in the current directory, which the harness provides.
 *
 * test mem_file: plain restore chain leave_running pagemap_fallback
 */
#include "common.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096UL
#define PRIV_PAGES 16
#define SH_PAGES 8
#define RO_PAGES 4

/* Content of byte `off` of a file page / of a page written through a map. */
static inline uint8_t file_byte(unsigned tag, size_t off)
{
	return (uint8_t)(tag * 17 + off * 3 + (off >> 12));
}

static void fill_page(uint8_t *p, unsigned tag)
{
	for (size_t i = 0; i < PAGE; i++)
		p[i] = file_byte(tag, i);
}

static int page_is(const uint8_t *p, unsigned tag)
{
	for (size_t i = 0; i < PAGE; i++)
		if (p[i] != file_byte(tag, i))
			return 0;
	return 1;
}

/* Create `name` with `pages` pages, page i filled with tag base+i. */
static void make_file(const char *name, int pages, unsigned base)
{
	uint8_t buf[PAGE];
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die(name);
	for (int i = 0; i < pages; i++) {
		fill_page(buf, base + (unsigned)i);
		if (write(fd, buf, PAGE) != (ssize_t)PAGE)
			die("write");
	}
	close(fd);
}

static uint8_t *map_file(const char *name, size_t len, int prot, int flags, off_t off)
{
	int fd = open(name, (prot & PROT_WRITE) ? O_RDWR : O_RDONLY);
	void *p;

	if (fd < 0)
		die(name);
	p = mmap(NULL, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		die("mmap");
	close(fd); /* the mapping alone must keep the file */
	return p;
}

/* Read page `pg` of a file as it is on disk right now. */
static void read_file_page(const char *name, int pg, uint8_t *buf)
{
	int fd = open(name, O_RDONLY);

	if (fd < 0 || pread(fd, buf, PAGE, (off_t)pg * (off_t)PAGE) != (ssize_t)PAGE)
		fail("cannot read page %d of %s: %s", pg, name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void write_file_page(const char *name, int pg, unsigned tag)
{
	uint8_t buf[PAGE];
	int fd = open(name, O_WRONLY);

	fill_page(buf, tag);
	if (fd < 0 || pwrite(fd, buf, PAGE, (off_t)pg * (off_t)PAGE) != (ssize_t)PAGE)
		fail("cannot write page %d of %s: %s", pg, name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The mapping must still be a mapping of our file, at the same offset. */
static void check_backing(const char *what, const void *addr, const char *name,
			  unsigned long pgoff, const char *perms)
{
	char want[PATH_MAX + 64], cwd[PATH_MAX];
	struct vma_info vi;

	if (!getcwd(cwd, sizeof(cwd)))
		die("getcwd");
	snprintf(want, sizeof(want), "%s/%s", cwd, name);
	if (!find_vma(addr, &vi)) {
		fail("%s: nothing mapped at %p", what, addr);
		return;
	}
	CHECK(strcmp(vi.path, want) == 0, "%s: backed by '%s', expected '%s'", what, vi.path, want);
	CHECK(strcmp(vi.perms, perms) == 0, "%s: permissions %s, expected %s", what, vi.perms, perms);
	CHECK(vi.pgoff + ((unsigned long)addr - vi.start) == pgoff,
	      "%s: file offset %#lx, expected %#lx", what,
	      vi.pgoff + ((unsigned long)addr - vi.start), pgoff);
}

static uint8_t *priv, *sh, *ro, *ro_off, *lateprot;

#define PRIV_BASE 10 /* page i of mf_private.dat has tag PRIV_BASE+i */
#define SH_BASE 40
#define RO_BASE 70
#define WRITTEN 200 /* tags written through maps start here */

static void setup(void)
{
	volatile uint8_t sink;

	make_file("mf_private.dat", PRIV_PAGES, PRIV_BASE);
	make_file("mf_shared.dat", SH_PAGES, SH_BASE);
	make_file("mf_ro.dat", RO_PAGES, RO_BASE);

	priv = map_file("mf_private.dat", PRIV_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
	fill_page(priv + 1 * PAGE, WRITTEN + 1);
	fill_page(priv + 5 * PAGE, WRITTEN + 5);
	priv[3 * PAGE + 100] = 0x5a;   /* one byte: page 3 is COWed, the rest is file data */
	sink = priv[2 * PAGE + 7];     /* read-faulted, still the page cache page */
	(void)sink;

	sh = map_file("mf_shared.dat", SH_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	for (int i = 0; i < SH_PAGES - 1; i++) /* last page keeps the file's data */
		fill_page(sh + (size_t)i * PAGE, WRITTEN + 50 + (unsigned)i);

	ro = map_file("mf_ro.dat", RO_PAGES * PAGE, PROT_READ, MAP_SHARED, 0);
	ro_off = map_file("mf_ro.dat", 2 * PAGE, PROT_READ, MAP_PRIVATE, PAGE);

	make_file("mf_lateprot.dat", 2, RO_BASE);
	int fd = open("mf_lateprot.dat", O_RDWR);
	if (fd < 0)
		die("mf_lateprot.dat");
	lateprot = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (lateprot == MAP_FAILED)
		die("mmap");
	close(fd);
}

/* Only after the final check: writes the file. */
static void check_late_mprotect(void)
{
	uint8_t disk[PAGE];

	if (mprotect(lateprot, 2 * PAGE, PROT_READ | PROT_WRITE)) {
		fail("read-only shared map of a read-write file: mprotect to writable: %s", strerror(errno));
		return;
	}
	fill_page(lateprot + PAGE, WRITTEN + 77);
	read_file_page("mf_lateprot.dat", 1, disk);
	CHECK(page_is(disk, WRITTEN + 77), "made-writable shared map: write not seen in the file");
}

static void check_private(void)
{
	uint8_t disk[PAGE];

	check_backing("private map", priv, "mf_private.dat", 0, "rw-p");
	for (int pg = 0; pg < PRIV_PAGES; pg++) {
		uint8_t *p = priv + (size_t)pg * PAGE;

		if (pg == 1 || pg == 5) {
			CHECK(page_is(p, WRITTEN + (unsigned)pg), "private map: written page %d lost its content", pg);
		} else if (pg == 3) {
			CHECK(p[100] == 0x5a, "private map: byte written in page 3 lost");
			p[100] = file_byte(PRIV_BASE + 3, 100);
			CHECK(page_is(p, PRIV_BASE + 3), "private map: page 3 around the written byte changed");
			p[100] = 0x5a;
		} else {
			read_file_page("mf_private.dat", pg, disk);
			CHECK(memcmp(p, disk, PAGE) == 0, "private map: unwritten page %d differs from the file", pg);
			CHECK(page_is(p, PRIV_BASE + (unsigned)pg), "private map: unwritten page %d has wrong data", pg);
		}
	}
}

/* Only after the final check: these modify the files. */
static void check_private_follows_file(void)
{
	write_file_page("mf_private.dat", 10, WRITTEN + 10);
	CHECK(page_is(priv + 10 * PAGE, WRITTEN + 10),
	      "private map: unwritten page 10 does not follow the file (restored as a private copy?)");
	write_file_page("mf_private.dat", 1, WRITTEN + 99);
	CHECK(page_is(priv + 1 * PAGE, WRITTEN + 1),
	      "private map: written page 1 follows the file (lost its private copy)");
}

static void check_shared(void)
{
	uint8_t disk[PAGE];

	check_backing("shared map", sh, "mf_shared.dat", 0, "rw-s");
	for (int pg = 0; pg < SH_PAGES; pg++) {
		unsigned tag = pg < SH_PAGES - 1 ? WRITTEN + 50 + (unsigned)pg : SH_BASE + (unsigned)pg;

		read_file_page("mf_shared.dat", pg, disk);
		CHECK(page_is(sh + (size_t)pg * PAGE, tag), "shared map: page %d has wrong data", pg);
		CHECK(page_is(disk, tag), "shared map: file page %d has wrong data", pg);
	}
}

static void check_shared_coherent(void)
{
	uint8_t disk[PAGE];

	fill_page(sh + 2 * PAGE, WRITTEN + 33);
	read_file_page("mf_shared.dat", 2, disk);
	CHECK(page_is(disk, WRITTEN + 33), "shared map: write through the map not seen in the file");
	write_file_page("mf_shared.dat", 4, WRITTEN + 44);
	CHECK(page_is(sh + 4 * PAGE, WRITTEN + 44), "shared map: pwrite to the file not seen in the map");
}

static void check_readonly(void)
{
	check_backing("read-only shared map", ro, "mf_ro.dat", 0, "r--s");
	for (int pg = 0; pg < RO_PAGES; pg++)
		CHECK(page_is(ro + (size_t)pg * PAGE, RO_BASE + (unsigned)pg), "read-only map: page %d wrong", pg);
	check_backing("read-only map at offset", ro_off, "mf_ro.dat", PAGE, "r--p");
	for (int pg = 0; pg < 2; pg++)
		CHECK(page_is(ro_off + (size_t)pg * PAGE, RO_BASE + 1 + (unsigned)pg),
		      "read-only map at offset: page %d wrong", pg);
}

static void check_all(void)
{
	check_private();
	check_shared();
	check_readonly();
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
	check_private_follows_file();
	check_shared_coherent();
	check_late_mprotect();
	return proto_finish();
}
