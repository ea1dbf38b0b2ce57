/*
 * snapwriter - memory that changes all the time, for dump --live-snapshot.
 *
 *   snapwriter MIB CTLFILE [fork|unmap|remap]
 *
 * Two writer threads, each owning half of MIB MiB of private anonymous
 * memory, rewrite one page after the other without pause: every 8-byte
 * word of page p holds (p << 32 | g), g the page's generation, and gen[p]
 * (another mapping) says g. Before it starts a page a thread notes which
 * (cur) and the generation it writes (cur_gen), and clears cur once gen[]
 * says it. So at any instant every page matches gen[], but the one page
 * per thread being written, which holds cur_gen in its first words and
 * gen[p] in the rest. A snapshot of the memory at one instant keeps this;
 * one whose pages were copied at different instants (a page saved after
 * the program rewrote it, gen[] saved before or after) breaks it.
 *
 * The threads stop once CTLFILE (mapped shared, so a restored program
 * sees what the harness wrote meanwhile) starts with '1': the harness
 * writes it before the restore, so the restored program rewrites nothing
 * before it checks (without truncating it: a shared mapping of a file cut
 * short faults with SIGBUS). SIGUSR1: stop, check, PASS or FAIL. Before
 * READY it prints "gen at ADDR0 ADDR1", where each writer's last
 * generation (a uint32_t) is, for the harness to see them write.
 *
 * fork: a third thread forks children that rewrite pages of their copy
 * with foreign generations and gen[] with nonsense, then exit; none of
 * it may show. unmap: a third thread keeps discarding (MADV_DONTNEED)
 * and refilling a region of its own, page after page; each of its pages
 * must be zero or its pattern. remap: the same, but the pages are
 * unmapped and mapped anew (a reader of its memory finds holes).
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>

#include "common.h"

#define PAGE 4096
#define WORDS (PAGE / 8)
#define UNMAP_PAGES 4096	/* 16 MiB */

struct writer {
	volatile uint64_t *mem;		/* its pages */
	uint64_t first, nr;		/* page numbers */
	volatile uint32_t *gen;
	volatile int64_t cur;		/* page being written, -1 none */
	volatile uint32_t cur_gen, g;
	pthread_t th;
};

static volatile char *ctl;
static struct writer w[2];
static volatile uint64_t *spare;	/* unmap mode */
static pthread_t extra;

static uint64_t word(uint64_t p, uint32_t g)
{
	return p << 32 | g;
}

static void *write_loop(void *arg)
{
	struct writer *wr = arg;
	uint64_t i = 0;
	while (ctl[0] != '1') {
		uint64_t k = (i++ * 7919) % wr->nr, p = wr->first + k;
		uint32_t g = ++wr->g;
		wr->cur_gen = g;
		wr->cur = (int64_t)k;
		__asm__ volatile("" ::: "memory");
		for (int x = 0; x < WORDS; x++)
			wr->mem[k * WORDS + x] = word(p, g);
		wr->gen[k] = g;
		__asm__ volatile("" ::: "memory");
		wr->cur = -1;
	}
	return NULL;
}

static void *fork_loop(void *arg)
{
	(void)arg;
	while (ctl[0] != '1') {
		pid_t c = fork();
		if (c == 0) {	/* a few pages: short-lived, seldom in the tree at the freeze */
			for (int t = 0; t < 2; t++)
				for (uint64_t k = 0; k < w[t].nr; k += w[t].nr / 16) {
					w[t].mem[k * WORDS] = word(w[t].first + k, 0xdead0000u + (uint32_t)k);
					w[t].gen[k] = 0xbad;
				}
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
		usleep(5000);
	}
	return NULL;
}

static uint64_t spare_word(uint64_t k)
{
	return 0x5a5a000000000000ull | k;
}

static int remap;	/* remap mode: munmap and mmap, not MADV_DONTNEED */

static void *unmap_loop(void *arg)
{
	(void)arg;
	while (ctl[0] != '1')
		for (uint64_t k = 0; k < UNMAP_PAGES && ctl[0] != '1'; k += 16) {
			void *at = (void *)(spare + k * WORDS);
			if (!remap)
				madvise(at, 16 * PAGE, MADV_DONTNEED);
			/* a hole a reader may meet for 200 us (the sleep may end
			 * early: EINTR after a restore) */
			else if (munmap(at, 16 * PAGE) || (usleep(200), 0) ||
				 mmap(at, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
				      0) != at)
				die("remap");
			for (uint64_t j = k; j < k + 16; j++)
				for (int x = 0; x < WORDS; x++)
					spare[j * WORDS + x] = spare_word(j);
		}
	return NULL;
}

static void check_writer(struct writer *wr)
{
	for (uint64_t k = 0; k < wr->nr; k++) {
		uint64_t p = wr->first + k;
		volatile uint64_t *pg = wr->mem + k * WORDS;
		uint32_t g = wr->gen[k];
		int x = 0;
		CHECK(g <= wr->g, "page %lu: gen[] says %u, beyond the thread's last generation %u", (unsigned long)p, g,
		      wr->g);
		if ((int64_t)k == wr->cur)	/* being written at the instant */
			while (x < WORDS && pg[x] == word(p, wr->cur_gen))
				x++;
		for (; x < WORDS; x++)
			if (pg[x] != word(p, g)) {
				fail("page %lu word %d: %#lx, want %#lx (gen %u; thread at page %ld gen %u)", (unsigned long)p, x,
				     (unsigned long)pg[x], (unsigned long)word(p, g), g, (long)wr->cur, wr->cur_gen);
				break;
			}
	}
}

static void check_spare(void)
{
	for (uint64_t k = 0; k < UNMAP_PAGES; k++) {
		uint64_t first = spare[k * WORDS];
		if (first != 0 && first != spare_word(k)) {
			fail("spare page %lu starts with %#lx", (unsigned long)k, (unsigned long)first);
			continue;
		}
		for (int x = 1; x < WORDS; x++)
			if (spare[k * WORDS + x] != first && !(first == 0 && spare[k * WORDS + x] == spare_word(k))) {
				fail("spare page %lu word %d: %#lx", (unsigned long)k, x, (unsigned long)spare[k * WORDS + x]);
				break;
			}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	uint64_t pages = strtoul(argv[1], NULL, 0) * 256;
	const char *mode = argc > 3 ? argv[3] : "";
	int fd = open(argv[2], O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, PAGE) < 0)
		die("ctl file");
	ctl = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *gen = mmap(NULL, pages * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || mem == MAP_FAILED || gen == MAP_FAILED)
		die("mmap");
	proto_init();
	for (uint64_t p = 0; p < pages; p++) {
		for (int x = 0; x < WORDS; x++)
			mem[p * WORDS + x] = word(p, 0);
		gen[p] = 0;
	}
	for (int t = 0; t < 2; t++) {
		w[t].first = t * (pages / 2);
		w[t].nr = t ? pages - pages / 2 : pages / 2;
		w[t].mem = mem + w[t].first * WORDS;
		w[t].gen = gen + w[t].first;
		w[t].cur = -1;
	}
	remap = !strcmp(mode, "remap");
	if (!strcmp(mode, "unmap") || remap) {
		spare = mmap(NULL, UNMAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (spare == MAP_FAILED)
			die("mmap");
		for (uint64_t k = 0; k < UNMAP_PAGES; k++)
			for (int x = 0; x < WORDS; x++)
				spare[k * WORDS + x] = spare_word(k);
	}
	/* SIGUSR1 goes to the main thread only */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int t = 0; t < 2; t++)
		if (pthread_create(&w[t].th, NULL, write_loop, &w[t]))
			die("pthread_create");
	if ((!strcmp(mode, "fork") && pthread_create(&extra, NULL, fork_loop, NULL)) ||
	    ((!strcmp(mode, "unmap") || remap) && pthread_create(&extra, NULL, unmap_loop, NULL)))
		die("pthread_create");
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	sayf("gen at %p %p\n", (void *)&w[0].g, (void *)&w[1].g);
	proto_ready();
	proto_wait();
	if (ctl[0] != '1')
		fail("SIGUSR1 came before the harness wrote the stop byte");
	for (int t = 0; t < 2; t++)
		pthread_join(w[t].th, NULL);
	if (mode[0])
		pthread_join(extra, NULL);
	for (int t = 0; t < 2; t++)
		check_writer(&w[t]);
	if (spare)
		check_spare();
	sayf("generations %u %u\n", w[0].g, w[1].g);
	return proto_finish();
}
