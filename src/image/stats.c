#include <time.h>

#include "image/img.h"
#include "image/stats.h"
#include "stats.pb-c.h"

uint64_t stats_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

/* CRIU's times are 32-bit microseconds (71 minutes); longer ones are cut. */
static uint32_t us32(uint64_t us)
{
	return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

int stats_write_dump(int dirfd, const struct dump_stats *s)
{
	StatsEntry e = STATS_ENTRY__INIT;
	DumpStatsEntry d = DUMP_STATS_ENTRY__INIT;

	d.freezing_time = us32(s->freezing_us);
	d.frozen_time = us32(s->frozen_us);
	d.memdump_time = us32(s->memdump_us);
	d.memwrite_time = us32(s->memwrite_us);
	d.pages_scanned = s->pages_scanned;
	d.pages_skipped_parent = s->pages_skipped_parent;
	d.pages_written = s->pages_written;
	d.has_shpages_written = 1;
	d.shpages_written = s->shpages_written;
	e.dump = &d;
	return img_store_one(dirfd, IMG_STATS_DUMP, 0, &e.base);
}

int stats_write_restore(int dirfd, const struct restore_stats *s)
{
	StatsEntry e = STATS_ENTRY__INIT;
	RestoreStatsEntry r = RESTORE_STATS_ENTRY__INIT;

	r.forking_time = us32(s->forking_us);
	r.restore_time = us32(s->restore_us);
	r.has_pages_restored = 1;
	r.pages_restored = s->pages_restored;
	e.restore = &r;
	return img_store_one(dirfd, IMG_STATS_RESTORE, 0, &e.base);
}

static void print_count(FILE *out, const char *what, uint64_t n)
{
	fprintf(out, "%s: %llu (0x%llx)\n", what, (unsigned long long)n, (unsigned long long)n);
}

void stats_print_dump(FILE *out, const struct dump_stats *s)
{
	fprintf(out, "Displaying dump stats:\n");
	fprintf(out, "Freezing time: %u us\n", us32(s->freezing_us));
	fprintf(out, "Frozen time: %u us\n", us32(s->frozen_us));
	fprintf(out, "Memory dump time: %u us\n", us32(s->memdump_us));
	fprintf(out, "Memory write time: %u us\n", us32(s->memwrite_us));
	print_count(out, "Memory pages scanned", s->pages_scanned);
	print_count(out, "Memory pages skipped from parent", s->pages_skipped_parent);
	print_count(out, "Memory pages written", s->pages_written);
	print_count(out, "Lazy memory pages", 0);
	print_count(out, "Shared memory pages written", s->shpages_written);
}

void stats_print_restore(FILE *out, const struct restore_stats *s)
{
	fprintf(out, "Displaying restore stats:\n");
	print_count(out, "Pages compared", 0);
	print_count(out, "Pages skipped COW", 0);
	print_count(out, "Pages restored", s->pages_restored);
	fprintf(out, "Restore time: %u us\n", us32(s->restore_us));
	fprintf(out, "Forking time: %u us\n", us32(s->forking_us));
}
