/*
 * lazymem - memory for lazy restore (tests/cases/lazy.sh).
 *
 *   lazymem MIB [events|tree|rewrite]
 *
 * Maps MIB MiB of private anonymous memory and gives every 8-byte word a
 * value made of its page and place. After SIGUSR1 it says how many of its
 * pages were not in memory yet (mincore: still to come from the lazy-pages
 * daemon), then checks every word. With "events", before that check and
 * while the pages are still arriving, it forks four children that each
 * check a quarter and exit (their memory comes through userfaultfds of
 * their own), moves 16 MiB elsewhere with mremap and checks them there,
 * drops 8 MiB with madvise(MADV_DONTNEED), which must then read as zeros,
 * and unmaps 4 MiB. With "tree", it forks three children before READY
 * that share its memory (copy-on-write) and each write a page of their
 * own, and a fourth that exits and stays a zombie; SIGUSR1 is passed on
 * to the three, which check all their memory and exit with the result.
 * With "rewrite" (for a dump after a pre-dump), every other MiB starts
 * wrong (each word inverted) and SIGUSR2 puts it right and says
 * REWRITTEN: a dump after that has those MiB changed since a pre-dump
 * before it, the others left to the pre-dump (in its parent).
 */
#include "common.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096ul
#define MIB (1ul << 20)

static uint64_t word(size_t page, size_t w)
{
	return (page << 20) ^ (w * 0x9e3779b97f4a7c15ull) ^ 0x5741534953ull;
}

/* pages [from, to) of the original layout, found at base */
static int check_pages(const uint8_t *base, size_t from, size_t to, const char *what)
{
	for (size_t i = from; i < to; i++) {
		const uint64_t *p = (const uint64_t *)(base + (i - from) * PAGE);
		for (size_t w = 0; w < PAGE / 8; w++)
			if (p[w] != word(i, w)) {
				fail("%s: page %zu word %zu is %#llx, want %#llx", what, i, w,
				     (unsigned long long)p[w], (unsigned long long)word(i, w));
				return -1;
			}
	}
	return 0;
}

static size_t not_in(const uint8_t *mem, size_t pages)
{
	unsigned char *v = malloc(pages);
	size_t n = 0;
	if (!v || mincore((void *)mem, pages * PAGE, v) < 0)
		return 0;
	for (size_t i = 0; i < pages; i++)
		n += !(v[i] & 1);
	free(v);
	return n;
}

static void events(uint8_t *mem, size_t pages)
{
	pid_t kids[4];
	size_t q = pages / 4;
	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		if (kids[k] == 0)
			_exit(check_pages(mem + k * q * PAGE, k * q, (k + 1) * q, "child") ? 1 : 0);
		if (kids[k] < 0)
			fail("fork: %s", strerror(errno));
	}
	/* 16 MiB from a quarter in moves elsewhere */
	size_t mv = 16 * MIB / PAGE, at = q;
	uint8_t *dst = mmap(NULL, mv * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *moved = mremap(mem + at * PAGE, mv * PAGE, mv * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (moved == MAP_FAILED)
		fail("mremap: %s", strerror(errno));
	else
		check_pages(moved, at, at + mv, "moved");
	/* 8 MiB from half way dropped: zeros */
	size_t dn = 8 * MIB / PAGE, dat = pages / 2;
	if (madvise(mem + dat * PAGE, dn * PAGE, MADV_DONTNEED) < 0)
		fail("madvise: %s", strerror(errno));
	for (size_t i = 0; i < dn * PAGE / 8; i++)
		if (((uint64_t *)(mem + dat * PAGE))[i]) {
			fail("dropped memory is not zero at word %zu", i);
			break;
		}
	/* 4 MiB from three quarters unmapped */
	size_t un = 4 * MIB / PAGE, uat = 3 * q;
	if (munmap(mem + uat * PAGE, un * PAGE) < 0)
		fail("munmap: %s", strerror(errno));
	for (int k = 0; k < 4; k++) {
		int st;
		if (kids[k] > 0 && (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st)))
			fail("child %d found its memory wrong (status %#x)", k, st);
	}
	/* the rest, where it still is */
	check_pages(mem, 0, at, "memory");
	check_pages(mem + (at + mv) * PAGE, at + mv, dat, "memory");
	check_pages(mem + (dat + dn) * PAGE, dat + dn, uat, "memory");
	check_pages(mem + (uat + un) * PAGE, uat + un, pages, "memory");
}

static uint8_t *rw_mem;
static size_t rw_pages;

static int rewritten(size_t page, int done)
{
	return !done && (page * PAGE / MIB) % 2;
}

static void fill(uint8_t *mem, size_t pages, int done)
{
	for (size_t i = 0; i < pages; i++)
		for (size_t w = 0; w < PAGE / 8; w++)
			((uint64_t *)(mem + i * PAGE))[w] = rewritten(i, done) ? ~word(i, w) : word(i, w);
}

/* only the MiB that started wrong are written: the others stay clean */
static void on_usr2(int sig)
{
	(void)sig;
	for (size_t i = 0; i < rw_pages; i++)
		if (rewritten(i, 0))
			for (size_t w = 0; w < PAGE / 8; w++)
				((uint64_t *)(rw_mem + i * PAGE))[w] = word(i, w);
	if (write(STDOUT_FILENO, "REWRITTEN\n", 10) != 10)
		_exit(3);
}

static pid_t tree_kids[3];

/* Child k's own page: page k, words xor'ed with k + 1. */
static void tree_child(uint8_t *mem, size_t pages, int k)
{
	for (size_t w = 0; w < PAGE / 8; w++)
		((uint64_t *)(mem + k * PAGE))[w] ^= k + 1;
	proto_wait();
	int bad = check_pages(mem + 3 * PAGE, 3, pages, "child");
	for (size_t w = 0; w < PAGE / 8; w++)
		if (((uint64_t *)(mem + k * PAGE))[w] != (word(k, w) ^ (k + 1)))
			bad = 1;
	_exit(bad ? 1 : 0);
}

static void tree_start(uint8_t *mem, size_t pages)
{
	for (int k = 0; k < 3; k++) {
		tree_kids[k] = fork();
		if (tree_kids[k] == 0)
			tree_child(mem, pages, k);
		if (tree_kids[k] < 0)
			die("fork");
	}
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	while (waitid(P_PID, z, NULL, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
}

static void tree_check(uint8_t *mem, size_t pages)
{
	for (int k = 0; k < 3; k++)
		kill(tree_kids[k], SIGUSR1);
	check_pages(mem, 0, pages, "memory");
	for (int k = 0; k < 3; k++) {
		int st;
		if (waitpid(tree_kids[k], &st, 0) != tree_kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("child %d found its memory wrong (status %#x)", k, st);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	size_t pages = (size_t)atoi(argv[1]) * MIB / PAGE;
	int ev = argc > 2 && !strcmp(argv[2], "events");
	int tree = argc > 2 && !strcmp(argv[2], "tree");
	proto_init();
	uint8_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	madvise(mem, pages * PAGE, MADV_NOHUGEPAGE);
	int rw = argc > 2 && !strcmp(argv[2], "rewrite");
	fill(mem, pages, !rw);
	if (rw) {
		rw_mem = mem;
		rw_pages = pages;
		signal(SIGUSR2, on_usr2);
	}
	if (tree)
		tree_start(mem, pages);
	proto_ready();
	proto_wait();
	sayf("lazy: %zu of %zu pages not in yet\n", not_in(mem, pages), pages);
	if (ev)
		events(mem, pages);
	else if (tree)
		tree_check(mem, pages);
	else
		check_pages(mem, 0, pages, "memory");
	return proto_finish();
}
