/* stats-dump and stats-restore, CRIU's record of what a dump or a restore
 * did: how long the tree was frozen, how many pages were looked at, left
 * to a parent dump, written. `crit show stats-dump` reads them, and CRIU's
 * test suite checks the pages written against the pages images. */
#ifndef STASIS_IMAGE_STATS_H
#define STASIS_IMAGE_STATS_H

#include <stdint.h>
#include <stdio.h>

/* Times in microseconds; counts in pages. */
struct dump_stats {
	uint64_t freezing_us, frozen_us, memdump_us, memwrite_us;
	uint64_t pages_scanned, pages_skipped_parent, pages_written;
	uint64_t shpages_written;	/* shared anonymous memory and memfds */
};

struct restore_stats {
	uint64_t forking_us, restore_us;
	uint64_t pages_restored;
};

/* Now, on the monotonic clock, in microseconds. */
uint64_t stats_now_us(void);

/* Write the file into dirfd (replacing an old one); 0, or -1 (reported). */
int stats_write_dump(int dirfd, const struct dump_stats *s);
int stats_write_restore(int dirfd, const struct restore_stats *s);

/* CRIU's --display-stats: the same, in CRIU's words, one per line. */
void stats_print_dump(FILE *out, const struct dump_stats *s);
void stats_print_restore(FILE *out, const struct restore_stats *s);

#endif
