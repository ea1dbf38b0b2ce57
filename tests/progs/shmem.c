/*
 * shmem: shared anonymous memory in a process tree must come back as one
 * object per mapping shared before the dump, with its contents, and stay
 * shared: what one restored process writes, the others see.
 *
 *   0 ── 1 ── 4
 *   │    2         (2 also maps an area of its own, alone)
 *   │    3
 *   └ 5            (exits before READY: its page outlives it)
 *
 * The areas:
 *   A  MAP_SHARED|MAP_ANONYMOUS, 64 pages, made by the root before any
 *      fork: a control page (the handshakes below), then one page written
 *      by each process after the fork, most pages never touched (holes);
 *   B  /dev/zero mapped MAP_SHARED, 8 pages, made before the forks: page 0
 *      written by the root before them, page 3 by process 1 after;
 *   D  MAP_SHARED|MAP_ANONYMOUS, 4 pages filled by the root before the
 *      forks; afterwards the root unmaps page 1 (its mappings of D are
 *      then two, the second one at an offset in the object) and makes page
 *      0 read-only, and process 3 rewrites page 3;
 *   C  MAP_SHARED|MAP_ANONYMOUS, 4 pages the root maps alone (made after
 *      the forks), and E, likewise, of process 2.
 *
 * Every process checks everything it maps before READY (the root after
 * every other process is set up) and again after SIGUSR1, then the
 * sharing itself: every live process posts a word in A's control page and
 * waits for the root's answer, which the root writes only once it has
 * seen every post (child -> parent and parent -> child); process 1 posts
 * in B too. Each mapping must also still be shared and named as before
 * (/dev/zero in /proc/self/maps: a shared anonymous mapping, not a file).
 *
 * With the argument "any-name", the mappings may come back as other
 * shared memory than anonymous (CRIU's restore makes memfds of them).
 *
 * SIGUSR2 (to the root, which forwards it) makes every live process write
 * its pages again with a new generation of its pattern; the root prints
 * "GEN N" once all have: a dump after a pre-dump must save those.
 */
#include "tree.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>

#define PG 4096ul
#define NPROC 6
#define A_PAGES 64
#define B_PAGES 8
#define D_PAGES 4
#define C_PAGES 4
#define EXITED 5		/* the process that exits before READY */

#define POST_MAGIC 0x506f5374u
#define ACK_MAGIC 0x41634b21u

static const int parent_of[NPROC] = { -1, 0, 0, 0, 1, 0 };

/* The control page of A. */
struct control {
	_Atomic uint32_t post[NPROC];	/* POST_MAGIC ^ index, after the restore */
	_Atomic uint32_t ack;		/* ACK_MAGIC once the root saw all posts */
	_Atomic uint32_t gen[NPROC];	/* each process's generation, rewritten */
	_Atomic uint32_t b_post;	/* the same handshake through B */
};

static uint8_t *A, *B, *D, *C, *E;
static struct control *ctl;
static unsigned gen = 1;		/* this process's current generation */
static bool any_name;			/* "any-name": not only /dev/zero after a restore */
static volatile sig_atomic_t gen_flag;

/* Which page of A process i writes. */
static size_t a_page(int i)
{
	return 1 + 7 * (size_t)i;
}

static uint64_t word(int area, size_t page, size_t i, unsigned g)
{
	return ((uint64_t)area << 56) ^ ((uint64_t)page << 40) ^ ((uint64_t)g << 32) ^
	       (i * 0x9e3779b97f4a7c15ULL);
}

static void fill(uint8_t *base, int area, size_t page, unsigned g)
{
	uint64_t *p = (uint64_t *)(base + page * PG);
	for (size_t i = 0; i < PG / 8; i++)
		p[i] = word(area, page, i, g);
}

static void expect(const uint8_t *base, const char *name, int area, size_t page, unsigned g)
{
	const uint64_t *p = (const uint64_t *)(base + page * PG);
	for (size_t i = 0; i < PG / 8; i++)
		if (p[i] != (g ? word(area, page, i, g) : 0)) {
			fail("process %d (pid %d): %s page %zu word %zu is %#llx, expected %#llx (%s)",
			     tree_index, tree_pid, name, page, i, (unsigned long long)p[i],
			     (unsigned long long)(g ? word(area, page, i, g) : 0),
			     g ? "its writer's pattern" : "never written: zero");
			return;
		}
}

/* The generation process i's pages have now, as this process knows it:
 * every live process rewrites its pages on SIGUSR2. */
static unsigned gen_of(int i)
{
	return i == EXITED ? 1 : gen;
}

/* What a check looks at: a process before READY only what it wrote
 * itself or what was there before the forks (the others may still be
 * writing); the root before READY everything written; after the restore
 * everything, the pages never written too (reading them before the dump
 * would fill the holes). */
enum scope { OWN, WRITTEN, ALL };

static void check_A(enum scope sc)
{
	for (int i = 0; i < NPROC; i++)
		if (sc != OWN || i == tree_index || i == 0)
			expect(A, "A", 'A', a_page(i), gen_of(i));
	if (sc != ALL)
		return;
	for (size_t pg = 1; pg < A_PAGES; pg++) {
		bool written = false;
		for (int i = 0; i < NPROC; i++)
			written |= pg == a_page(i);
		if (!written)
			expect(A, "A", 'A', pg, 0);
	}
}

static void check_B(enum scope sc)
{
	expect(B, "B", 'B', 0, gen_of(0));
	if (sc != OWN || tree_index == 1)
		expect(B, "B", 'B', 3, gen_of(1));
	if (sc == ALL)
		for (size_t pg = 1; pg < B_PAGES; pg++)
			if (pg != 3)
				expect(B, "B", 'B', pg, 0);
}

/* The root's view of D lacks page 1 and has page 0 read-only; the root
 * rewrites page 2, process 3 page 3. */
static void check_D(enum scope sc)
{
	if (tree_index != 0)
		expect(D, "D", 'D', 1, 1);
	expect(D, "D", 'D', 0, 1);
	expect(D, "D", 'D', 2, gen_of(0));
	if (sc != OWN || tree_index == 3)
		expect(D, "D", 'D', 3, gen_of(3) + 10);
}

/* ---- the mappings themselves ---- */

struct seen {
	const char *name;
	uint8_t *at;
	size_t pages;
	char path[512];
	char perms[5];
	unsigned long pgoff;
};

static struct seen seen[8];
static int nseen;

static void record(const char *name, uint8_t *at, size_t pages)
{
	struct vma_info vi;
	struct seen *s = &seen[nseen++];
	s->name = name;
	s->at = at;
	s->pages = pages;
	if (!find_vma(at, &vi)) {
		fail("setup: %s at %p is not mapped", name, at);
		return;
	}
	snprintf(s->path, sizeof(s->path), "%s", vi.path);
	memcpy(s->perms, vi.perms, sizeof(s->perms));
	s->pgoff = vi.pgoff;
	CHECK(vi.perms[3] == 's', "setup: %s is not a shared mapping (%s)", name, vi.perms);
	CHECK(!strcmp(vi.path, "/dev/zero"), "setup: %s is mapped from \"%s\", expected /dev/zero", name,
	      vi.path);
}

static void check_mappings(void)
{
	for (int i = 0; i < nseen; i++) {
		struct seen *s = &seen[i];
		struct vma_info vi;
		if (!find_vma(s->at, &vi)) {
			fail("process %d: %s at %p is not mapped any more", tree_index, s->name, s->at);
			continue;
		}
		CHECK(!strcmp(vi.perms, s->perms) && (any_name || !strcmp(vi.path, s->path)) && vi.pgoff == s->pgoff,
		      "process %d: %s at %p is %s %s at offset %#lx, was %s %s at offset %#lx", tree_index,
		      s->name, s->at, vi.perms, vi.path, vi.pgoff, s->perms, s->path, s->pgoff);
	}
}

static void check_all(enum scope sc)
{
	check_mappings();
	check_A(sc);
	check_B(sc);
	check_D(sc);
	if (C)
		for (size_t pg = 0; pg < C_PAGES; pg++)
			expect(C, "C", 'C', pg, pg == 2 ? 0 : gen);
	if (E)
		for (size_t pg = 0; pg < C_PAGES; pg++)
			expect(E, "E", 'E', pg, pg == 1 ? 0 : gen);
}

/* ---- writing ---- */

static void write_own(void)
{
	fill(A, 'A', a_page(tree_index), gen);
	if (tree_index == 0) {
		fill(B, 'B', 0, gen);
		fill(D, 'D', 2, gen);	/* page 0 is read-only now */
	}
	if (tree_index == 1)
		fill(B, 'B', 3, gen);
	if (tree_index == 3)
		fill(D, 'D', 3, gen + 10);
	if (C)
		for (size_t pg = 0; pg < C_PAGES; pg++)
			if (pg != 2)
				fill(C, 'C', pg, gen);
	if (E)
		for (size_t pg = 0; pg < C_PAGES; pg++)
			if (pg != 1)
				fill(E, 'E', pg, gen);
	atomic_store(&ctl->gen[tree_index], gen);
}

static uint8_t *map_shared(size_t pages)
{
	void *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap(MAP_SHARED|MAP_ANONYMOUS)");
	return p;
}

static uint8_t *map_dev_zero(size_t pages)
{
	int fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/zero");
	void *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap(/dev/zero, MAP_SHARED)");
	close(fd);
	return p;
}

/* Waits (10 s at most) until *w == want; false on timeout. */
static bool wait_word(_Atomic uint32_t *w, uint32_t want)
{
	struct timespec ms = { 0, 1000 * 1000 };
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(w) == want)
			return true;
		nanosleep(&ms, NULL);
	}
	return false;
}

static void on_usr2(int sig)
{
	(void)sig;
	gen_flag = 1;
}

/* proto_wait, with SIGUSR2 served meanwhile: a new generation. */
static void wait_for_go(void)
{
	sigset_t both, old, during;
	sigemptyset(&both);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, SIGUSR2);
	sigprocmask(SIG_BLOCK, &both, &old);
	during = old;
	sigdelset(&during, SIGUSR1);
	sigdelset(&during, SIGUSR2);
	while (!go_flag) {
		if (gen_flag) {
			gen_flag = 0;
			for (int i = 0; i < tree_nkids; i++)
				kill(tree_kids[i].pid, SIGUSR2);
			gen++;
			write_own();
			if (tree_index == 0) {
				for (int i = 0; i < NPROC; i++)
					if (i != EXITED && !wait_word(&ctl->gen[i], gen))
						fail("process %d did not write generation %u", i, gen);
				sayf("GEN %u\n", gen);
			}
			continue;
		}
		sigsuspend(&during);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* After the restore: posts, then the root's answer. */
static void handshake(void)
{
	if (tree_index == 0) {
		for (int i = 1; i < NPROC; i++)
			if (i != EXITED && !wait_word(&ctl->post[i], POST_MAGIC ^ i))
				fail("root: process %d's write to shared page A never showed (word %#x)", i,
				     atomic_load(&ctl->post[i]));
		if (!wait_word(&ctl->b_post, POST_MAGIC))
			fail("root: process 1's write to the /dev/zero mapping B never showed");
		atomic_store(&ctl->ack, ACK_MAGIC);
		return;
	}
	atomic_store(&ctl->post[tree_index], POST_MAGIC ^ tree_index);
	if (tree_index == 1)
		atomic_store(&ctl->b_post, POST_MAGIC);
	if (!wait_word(&ctl->ack, ACK_MAGIC))
		fail("process %d: the root's answer in shared page A never showed", tree_index);
}

static int node(int idx)
{
	if (idx == EXITED) {
		fill(A, 'A', a_page(idx), 1);
		atomic_store(&ctl->gen[idx], 1);
		return 0;
	}
	for (int i = 0; i < NPROC; i++)
		if (parent_of[i] == idx && i != EXITED)
			tree_fork(i, node, 0);
	record("A", A, A_PAGES);
	record("B", B, B_PAGES);
	record("D", D, D_PAGES);
	if (idx == 2) {
		E = map_shared(C_PAGES);
		record("E", E, C_PAGES);
	}
	write_own();
	check_all(OWN);
	tree_sync_done();
	wait_for_go();
	tree_forward();
	check_all(ALL);
	handshake();
	tree_reap(30);
	tree_check_no_more_children();
	return tree_child_result();
}

/* Process 5 writes its page and exits: nobody else has that page in
 * its page tables, yet it is the object's. */
static void run_exited(void)
{
	int st;
	pid_t p = fork();
	if (p < 0)
		die("fork");
	if (p == 0)
		_exit(node(EXITED));
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the short-lived child");
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	any_name = argc > 1 && !strcmp(argv[1], "any-name");
	tree_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL))
		die("sigaction(SIGUSR2)");
	A = map_shared(A_PAGES);
	ctl = (struct control *)A;
	B = map_dev_zero(B_PAGES);
	D = map_shared(D_PAGES);
	/* what the root writes before the forks (write_own writes it again) */
	fill(A, 'A', a_page(0), 1);
	fill(B, 'B', 0, 1);
	for (size_t pg = 0; pg < D_PAGES; pg++)
		fill(D, 'D', pg, 1);
	run_exited();
	tree_sync_init();
	for (int i = 1; i < NPROC; i++)
		if (parent_of[i] == 0 && i != EXITED)
			tree_fork(i, node, 0);
	/* the root's own changes, after the forks */
	if (munmap(D + PG, PG) || mprotect(D, PG, PROT_READ))
		die("munmap/mprotect of D");
	C = map_shared(C_PAGES);
	record("A", A, A_PAGES);
	record("B", B, B_PAGES);
	record("D", D, 1);
	record("D+2", D + 2 * PG, 2);
	record("C", C, C_PAGES);
	write_own();
	tree_sync_wait();
	check_all(WRITTEN);
	for (int i = 0; i < tree_nkids; i++) {
		int st;
		CHECK(waitpid(tree_kids[i].pid, &st, WNOHANG) == 0, "setup: child %d died before READY",
		      tree_kids[i].index);
	}
	if (failures)
		return proto_finish();
	proto_ready();
	wait_for_go();
	tree_forward();
	check_all(ALL);
	handshake();
	tree_reap(30);
	tree_check_no_more_children();
	return proto_finish();
}
