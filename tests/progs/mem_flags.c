/*
 * mem_flags: what a program asked of its mappings with mmap flags,
 * madvise and prctl must hold after restore:
 *
 *   - madvise hints, one area each: DONTFORK, SEQUENTIAL, DONTDUMP,
 *     HUGEPAGE, NOHUGEPAGE, MERGEABLE, WIPEONFORK (VmFlags dc sr dd hg nh
 *     mg wf)
 *   - mmap flags: MAP_LOCKED, MAP_NORESERVE (lo nr), and MAP_DROPPABLE
 *     (dp) where the kernel has it (6.11+)
 *   - prctl(PR_SET_THP_DISABLE) of the process
 *
 * test mem_flags: plain restore chain
 */
#include "common.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define LEN (8 * 4096UL)
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

struct area {
	const char *flag;	/* VmFlags code it must carry */
	int mmap_flags;
	int advice;		/* -1: none */
	char *p;
};

static struct area areas[] = {
	{ "dc", MAP_PRIVATE, MADV_DONTFORK, NULL },
	{ "sr", MAP_PRIVATE, MADV_SEQUENTIAL, NULL },
	{ "dd", MAP_PRIVATE, MADV_DONTDUMP, NULL },
	{ "hg", MAP_PRIVATE, MADV_HUGEPAGE, NULL },
	{ "nh", MAP_PRIVATE, MADV_NOHUGEPAGE, NULL },
	{ "mg", MAP_PRIVATE, MADV_MERGEABLE, NULL },
	{ "wf", MAP_PRIVATE, MADV_WIPEONFORK, NULL },
	{ "lo", MAP_PRIVATE | MAP_LOCKED, -1, NULL },
	{ "nr", MAP_PRIVATE | MAP_NORESERVE, -1, NULL },
	{ "dp", MAP_DROPPABLE, -1, NULL },
};
#define NR (sizeof(areas) / sizeof(areas[0]))

/* The VmFlags line of the mapping holding addr, "" if none. */
static void vmflags_of(const void *addr, char *out, size_t len)
{
	unsigned long a = (unsigned long)addr, s, e;
	char line[1024];
	int inside = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			inside = a >= s && a < e;
			continue;
		}
		if (inside && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

static int has_flag(const char *flags, const char *code)
{
	for (const char *p = flags; (p = strstr(p, code)); p++)
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return 1;
	return 0;
}

static void setup(void)
{
	for (size_t i = 0; i < NR; i++) {
		struct area *a = &areas[i];
		a->p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, a->mmap_flags | MAP_ANONYMOUS, -1, 0);
		if (a->p == MAP_FAILED) {
			a->p = NULL;	/* MAP_DROPPABLE before 6.11 */
			continue;
		}
		if (a->advice >= 0 && madvise(a->p, LEN, a->advice))
			die("madvise");
		memset(a->p, (int)i + 1, LEN);
	}
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		die("PR_SET_THP_DISABLE");
}

static void check(void)
{
	char flags[1024];

	for (size_t i = 0; i < NR; i++) {
		struct area *a = &areas[i];
		if (!a->p)
			continue;
		vmflags_of(a->p, flags, sizeof(flags));
		CHECK(has_flag(flags, a->flag), "area %p lost '%s': VmFlags%s", a->p, a->flag, flags);
		/* the kernel may drop a droppable area's pages: they read 0 */
		for (size_t off = 0; off < LEN && strcmp(a->flag, "dp"); off += 4096)
			if (a->p[off] != (char)(i + 1)) {
				fail("area '%s': page %zu holds %d", a->flag, off / 4096, a->p[off]);
				break;
			}
	}
	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP is no longer disabled");
}

int main(void)
{
	proto_init();
	setup();
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check();
	return proto_finish();
}
