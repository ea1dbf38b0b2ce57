/*
 * cowtree: memory a forked process shares with its parent, copy-on-write,
 * must still be shared (the same physical pages) after restore, not one
 * copy per process; what a process changed must stay its own.
 *
 *   0 ── 1 ── 4
 *   ├ 2
 *   └ 3
 *
 * The root fills a 16 MiB private anonymous area and writes 8 pages of a
 * private mapping of a file of its own, then forks. Right below the area
 * is one more page, written too and never changed, in a mapping of its
 * own (no MADV_NOHUGEPAGE): a run of saved pages then spans both
 * mappings, as a pre-dump's PE_PARENT run does on Debian 12's 6.1, where
 * the area lands right next to another mapping (6.7+ align it to 2 MiB),
 * and as CRIU's runs do. Process 2 rewrites
 * the first 64 pages of the area; process 3 drops pages 100-109 of it
 * (MADV_DONTNEED: they read zero) and rewrites page 3 of the file
 * mapping. Every other page must be the very page of the root in every
 * process (the same page frame in /proc/PID/pagemap), before and after.
 * And a mapping without access, the root's, untouched there: process 4
 * makes it writable, writes it and takes the access away again (its
 * pages in a mapping its parent has none in; restore made the parent's
 * as it was, not writable).
 *
 * test tree.cowtree: tree.plain tree.restore tree.chain3 tree.predump
 * test tree.cowtree: tree.criu_dump --needs criu
 */
#include "tree.h"

#define PAGE 4096UL
#define AREA (16UL << 20)
#define NPAGES (AREA / PAGE)
#define FPAGES 16
#define OWN_PAGES 64		/* process 2's */
#define DROP_FROM 100		/* process 3's */
#define DROP_TO 110
#define FILE_OWN 3		/* process 3's page of the file mapping */

static const int parent_of[] = { -1, 0, 0, 0, 1 };
#define NPROC (int)(sizeof(parent_of) / sizeof(parent_of[0]))

static uint64_t *area;
static uint64_t *below;		/* the page right below the area, a mapping apart */
static uint64_t *fmap;
static uint64_t *sealed;	/* PROT_NONE in the root; process 4's pages */
#define SEALED_PAGES 16
static pid_t root_pid;

static uint64_t word(int owner, size_t i)
{
	return tree_word(root_pid, owner, i);
}

/* The page frame of addr in pid, 0 if not present (or not root). */
static uint64_t pfn_of(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t e = 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (uint64_t)addr / PAGE * 8) != 8)
		e = 0;
	close(fd);
	return (e >> 63) ? e & ((1ULL << 55) - 1) : 0;
}

static int own_page(int idx, size_t pg)
{
	return (idx == 2 && pg < OWN_PAGES) || (idx == 3 && pg >= DROP_FROM && pg < DROP_TO);
}

static void check_self(void)
{
	int idx = tree_index, unshared = 0;

	tree_check_ids(idx != 0);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		uint64_t *p = area + pg * PAGE / 8;
		uint64_t want = idx == 2 && pg < OWN_PAGES ? word(2, pg) :
				idx == 3 && pg >= DROP_FROM && pg < DROP_TO ? 0 : word(0, pg);
		if (p[0] != want || p[PAGE / 8 - 1] != (want ? want + 1 : 0)) {
			fail("process %d: page %zu of the area holds %#llx, expected %#llx", idx, pg,
			     (unsigned long long)p[0], (unsigned long long)want);
			return;
		}
		if (idx && !own_page(idx, pg) && pg % 16 == 0 && pfn_of(getpid(), p) != pfn_of(root_pid, p))
			unshared++;
	}
	CHECK(!unshared, "process %d: %d of the area's %lu checked pages are no longer shared with the root",
	      idx, unshared, NPAGES / 16);
	CHECK(below[0] == word(0, NPAGES), "process %d: the page below the area holds %#llx, expected %#llx",
	      idx, (unsigned long long)below[0], (unsigned long long)word(0, NPAGES));
	if (idx)
		CHECK(pfn_of(getpid(), below) == pfn_of(root_pid, below),
		      "process %d: the page below the area is no longer shared with the root", idx);
	if (idx == 4) {
		if (mprotect(sealed, SEALED_PAGES * PAGE, PROT_READ))
			die("mprotect");
		for (size_t pg = 0; pg < SEALED_PAGES; pg++)
			CHECK(sealed[pg * PAGE / 8] == word(4, 2000 + pg), "process 4: page %zu of the sealed mapping "
			      "holds %#llx, expected %#llx", pg, (unsigned long long)sealed[pg * PAGE / 8],
			      (unsigned long long)word(4, 2000 + pg));
		if (mprotect(sealed, SEALED_PAGES * PAGE, PROT_NONE))
			die("mprotect");
	}
	for (size_t pg = 0; pg < FPAGES; pg++) {
		uint64_t *p = fmap + pg * PAGE / 8;
		uint64_t want = pg >= 8 ? 0x0f0f0f0f0f0f0f0fULL : idx == 3 && pg == FILE_OWN ? word(3, 1000) : word(0, 1000 + pg);
		CHECK(p[5] == want, "process %d: page %zu of the file mapping holds %#llx, expected %#llx", idx, pg,
		      (unsigned long long)p[5], (unsigned long long)want);
		if (idx && pg < 8 && !(idx == 3 && pg == FILE_OWN))
			CHECK(pfn_of(getpid(), p) == pfn_of(root_pid, p),
			      "process %d: written page %zu of the file mapping is no longer shared with the root", idx, pg);
	}
}

static void setup_self(int idx)
{
	if (idx == 2)
		for (size_t pg = 0; pg < OWN_PAGES; pg++) {
			area[pg * PAGE / 8] = word(2, pg);
			area[pg * PAGE / 8 + PAGE / 8 - 1] = word(2, pg) + 1;
		}
	if (idx == 3) {
		if (madvise(area + DROP_FROM * PAGE / 8, (DROP_TO - DROP_FROM) * PAGE, MADV_DONTNEED))
			die("madvise");
		fmap[FILE_OWN * PAGE / 8 + 5] = word(3, 1000);
	}
	if (idx == 4) {
		if (mprotect(sealed, SEALED_PAGES * PAGE, PROT_READ | PROT_WRITE))
			die("mprotect");
		for (size_t pg = 0; pg < SEALED_PAGES; pg++)
			sealed[pg * PAGE / 8] = word(4, 2000 + pg);
		if (mprotect(sealed, SEALED_PAGES * PAGE, PROT_NONE))
			die("mprotect");
	}
}

static int node(int idx)
{
	for (int i = 0; i < NPROC; i++)
		if (parent_of[i] == idx)
			tree_fork(i, node, 0);
	setup_self(idx);
	check_self();
	if (idx == 0)
		return 0;
	tree_sync_done();
	proto_wait();
	tree_forward();
	check_self();
	tree_reap(30);
	tree_check_no_more_children();
	return tree_child_result();
}

static void setup_root(void)
{
	char page[PAGE];
	below = mmap(NULL, PAGE + AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (below == MAP_FAILED)
		die("mmap");
	area = below + PAGE / 8;
	/* page frames compared one by one; the page below: a mapping apart */
	if (madvise(area, AREA, MADV_NOHUGEPAGE))
		die("madvise");
	below[0] = word(0, NPAGES);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		area[pg * PAGE / 8] = word(0, pg);
		area[pg * PAGE / 8 + PAGE / 8 - 1] = word(0, pg) + 1;
	}
	int fd = open("cowtree.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	memset(page, 0x0f, sizeof(page));
	for (int i = 0; i < FPAGES; i++)
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
			die("write");
	fmap = mmap(NULL, FPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fmap == MAP_FAILED)
		die("mmap file");
	close(fd);
	for (size_t pg = 0; pg < 8; pg++)
		fmap[pg * PAGE / 8 + 5] = word(0, 1000 + pg);
	sealed = mmap(NULL, SEALED_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sealed == MAP_FAILED)
		die("mmap sealed");
}

int main(void)
{
	tree_init();
	root_pid = getpid();
	tree_record();
	setup_root();
	tree_sync_init();
	node(0);
	tree_sync_wait();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	tree_forward();
	check_self();
	tree_reap(30);
	tree_check_no_more_children();
	return proto_finish();
}
