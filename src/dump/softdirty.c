/* Which pages changed since the last dump, with soft-dirty bits: for
 * kernels built with CONFIG_MEM_SOFT_DIRTY that lack userfaultfd WP_ASYNC
 * (Debian 12's 6.1). track.c picks this at run time.
 *
 * Writing "4" to /proc/PID/clear_refs clears the soft-dirty bit of every
 * page of the process and write-protects them, so that the next write
 * faults and sets the bit again; bit 55 of the page's /proc/PID/pagemap
 * entry reads it. Mappings made later read as dirty throughout, and so do
 * pages moved by mremap, refaulted after MADV_DONTNEED or swapped out
 * dirty. A tracked dump (pre-dump, dump --track-mem) clears the bits
 * while the process is still stopped, after its pages are saved; the next
 * dump saves the pages whose bit is set, and leaves the clean ones that
 * its parent holds to the parent (PE_PARENT).
 *
 * Nothing stays in the process (no fd): the tracking is the kernel's
 * bits, which anyone allowed to write clear_refs can wipe, and a page
 * written before someone else's clear would then look clean and be taken,
 * stale, from the parent. So a dump trusts the bits only when:
 *
 *  - its parent is the last tracked dump of this process: each arming
 *    draws a random number, notes it in SD_NOTES under the process (pid
 *    and start time, so a reused pid is another process) before it
 *    clears, and records it in its TRACK_LIST; a dump whose parent
 *    recorded another number, or finds no note, saves everything;
 *
 *  - nobody cleared the bits since: right after its clear, the arming
 *    sets the bit of one page the program can't write itself, the last
 *    page of its vdso (its own byte written back through /proc/PID/mem,
 *    which faults like a write: the content does not change). Anyone's
 *    later clear wipes that bit with the others; a dump that finds it
 *    clean saves everything. The bit is read before this dump writes
 *    anything into the process (its injection trampoline lives in that
 *    same page).
 *
 * CRIU trusts the bits after its own clear and does neither check. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/track_backend.h"
#include "image/vma.h"
#include "util/fsop.h"
#include "util/io.h"
#include "util/log.h"

#define SD_NOTES TRACK_RUN_DIR "/softdirty"
#define PM_SOFT_DIRTY (1ull << 55)
#define SD_CHUNK 512	/* pagemap entries read at once */

bool sd_kernel_has(void)
{
	static int has = -1;
	if (has >= 0)
		return has;
	/* a fresh mapping reads as soft-dirty where the kernel tracks it;
	 * without CONFIG_MEM_SOFT_DIRTY bit 55 is always 0 */
	volatile char *p = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	has = 0;
	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &e, 8, (uint64_t)p / PAGE_SZ * 8) == 8)
		has = !!(e & PM_SOFT_DIRTY);
	if (fd >= 0)
		close(fd);
	munmap((void *)p, PAGE_SZ);
	return has;
}

/* ---- who the process is ---- */

static int start_time(pid_t pid, uint64_t *t)
{
	if (proc_start_time(pid, t) == 0)
		return 0;
	pr_perror("pid %d: can't read its start time from /proc/%d/stat", pid, pid);
	return -1;
}

/* ---- stasis's notes: the last arming of each process ----
 * SD_NOTES/PIDNS-PID holds "START ARMED". */

static void note_name(char *buf, size_t len, pid_t pid)
{
	snprintf(buf, len, "%lu-%d", track_pidns_ino(), pid);
}

static int notes_open(bool create)
{
	if (create && ((mkdir(TRACK_RUN_DIR, 0700) < 0 && errno != EEXIST) ||
		       (mkdir(SD_NOTES, 0700) < 0 && errno != EEXIST)))
		return -1;
	return open(SD_NOTES, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

static bool note_read_at(int dirfd, const char *name, uint64_t *start, uint64_t *armed)
{
	char buf[64];
	return read_note(dirfd, name, buf, sizeof(buf)) &&
	       sscanf(buf, "%lu %lu", (unsigned long *)start, (unsigned long *)armed) == 2;
}

static bool note_read(pid_t pid, uint64_t *start, uint64_t *armed)
{
	char name[48];
	int dirfd = notes_open(false);
	if (dirfd < 0)
		return false;
	note_name(name, sizeof(name), pid);
	bool ok = note_read_at(dirfd, name, start, armed);
	close(dirfd);
	return ok;
}

/* Whole or not at all (a rename): a torn note must never match. */
static int note_write(pid_t pid, uint64_t start, uint64_t armed)
{
	char name[48], buf[64];
	int dirfd = notes_open(true);
	if (dirfd < 0) {
		pr_perror("pid %d: can't note its memory tracking in %s", pid, SD_NOTES);
		return -1;
	}
	note_name(name, sizeof(name), pid);
	int len = snprintf(buf, sizeof(buf), "%lu %lu\n", (unsigned long)start, (unsigned long)armed);
	int ret = write_note(dirfd, name, buf, len);
	if (ret < 0)
		pr_perror("pid %d: can't note its memory tracking in %s/%s", pid, SD_NOTES, name);
	close(dirfd);
	return ret;
}

/* Notes of processes that are gone (their pid is free or another
 * process's now), from our pid namespace. */
static void notes_prune(void)
{
	unsigned long ns = track_pidns_ino(), nns;
	int dirfd = notes_open(false);
	int fd = dirfd >= 0 ? fcntl(dirfd, F_DUPFD_CLOEXEC, 0) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		uint64_t start, armed, now;
		int pid, end = 0;
		if (sscanf(de->d_name, "%lu-%d%n", &nns, &pid, &end) != 2 || de->d_name[end] || nns != ns ||
		    !note_read_at(dirfd, de->d_name, &start, &armed))
			continue;
		if (proc_start_time(pid, &now) < 0 || now != start)
			unlinkat(dirfd, de->d_name, 0);
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
}

/* ---- the parent's record ---- */

int sd_list_line(const struct dump_ctx *dc, char *buf, size_t len)
{
	if (!dc->sd_armed)
		return 0;
	return snprintf(buf, len, "%d softdirty %lu %lu\n", dc->ns_pid, (unsigned long)dc->sd_start,
			(unsigned long)dc->sd_armed);
}

/* "PID softdirty START ARMED" for this process; false if none (the
 * parent did not track it, or tracked it with a userfaultfd). */
static bool parent_record(int parentfd, pid_t ns_pid, uint64_t *start, uint64_t *armed)
{
	int fd = openat(parentfd, TRACK_LIST, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char line[128];
	unsigned long s, a;
	int pid;
	bool found = false;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%d softdirty %lu %lu", &pid, &s, &a) == 3 && pid == ns_pid) {
			*start = s;
			*armed = a;
			found = true;
		}
	fclose(f);
	return found;
}

/* ---- the mark in the vdso ---- */

/* The last page of the process's vdso; 0 if it has none. */
static uint64_t vdso_last_page(pid_t pid)
{
	char path[64], line[512];
	unsigned long start, end, found = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		if (strstr(line, " [vdso]") && sscanf(line, "%lx-%lx", &start, &end) == 2 && end > start)
			found = end - PAGE_SZ;
	if (f)
		fclose(f);
	return found;
}

static int page_entry(pid_t pid, uint64_t addr, uint64_t *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, e, 8, addr / PAGE_SZ * 8) == 8;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* Writes the page's last byte back as it is, through /proc/PID/mem (as
 * a debugger writes: the vdso is not writable by the program), which
 * faults like a write and sets the page's soft-dirty bit. The process is
 * stopped: nothing changes the byte between the read and the write. */
static int mark_set(pid_t pid, uint64_t page)
{
	char path[64], byte;
	uint64_t at = page + PAGE_SZ - 1;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, &byte, 1, at) == 1 && pwrite(fd, &byte, 1, at) == 1;
	if (!ok)
		pr_perror("pid %d: can't mark its vdso page %#lx to see later clears of its soft-dirty bits", pid,
			  (unsigned long)page);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* ---- judging the parent ---- */

/* Why the soft-dirty bits can't tell what changed since the parent dump;
 * NULL if they can. */
static const char *parent_stale(struct dump_ctx *dc, int parentfd)
{
	uint64_t rec_start = 0, rec_armed = 0, note_start = 0, note_armed = 0, e;
	if (!parent_record(parentfd, dc->ns_pid, &rec_start, &rec_armed))
		return "the parent dump did not track its memory with soft-dirty bits";
	if (rec_start != dc->sd_start)
		return "the parent dump was of another process with this pid";
	if (!note_read(dc->pid, &note_start, &note_armed) || note_start != dc->sd_start)
		return "no note of its memory tracking in " SD_NOTES ", so no telling when it was armed";
	if (note_armed != rec_armed)
		return "the parent dump is not the last one that tracked its memory";
	uint64_t mark = vdso_last_page(dc->pid);
	if (!mark)
		return "it has no vdso, where stasis marks its soft-dirty bits";
	if (page_entry(dc->pid, mark, &e) < 0)
		return "its pagemap can't be read";
	if (!(e & PM_SOFT_DIRTY))
		return "its soft-dirty bits were cleared since the parent dump by someone else "
		       "(a write to /proc/PID/clear_refs)";
	return NULL;
}

int sd_adopt(struct dump_ctx *dc, int parentfd)
{
	if (start_time(dc->pid, &dc->sd_start) < 0)
		return -1;
	if (!dc->cover)
		return 0;
	const char *why = parent_stale(dc, parentfd);
	if (why)
		track_drop_parent(dc, why);
	return 0;
}

/* ---- splitting the pages ---- */

/* The mapping holding addr, from *k on (runs and mappings are both by
 * address); -1 if none. */
static int vma_at(const struct dump_ctx *dc, int *k, uint64_t addr)
{
	while (*k < dc->vmas.nr && dc->vmas.v[*k].end <= addr)
		(*k)++;
	return *k < dc->vmas.nr && dc->vmas.v[*k].start <= addr ? *k : -1;
}

/* A page goes to the parent if it is tracked, clean and the parent
 * holds it; any other page is saved. */
static int split_run(struct dump_ctx *dc, int pm, const struct page_run *r, int *k, struct page_runs *out,
		     struct page_runs *in_parent)
{
	uint64_t buf[SD_CHUNK];
	for (uint64_t addr = r->start; addr < r->end;) {
		size_t pages = (r->end - addr) / PAGE_SZ;
		if (pages > SD_CHUNK)
			pages = SD_CHUNK;
		if (pread(pm, buf, pages * 8, addr / PAGE_SZ * 8) != (ssize_t)(pages * 8))
			return -1;
		for (size_t i = 0; i < pages; i++, addr += PAGE_SZ) {
			int v = vma_at(dc, k, addr);
			bool clean = v >= 0 && (size_t)v < dc->mm.n_vmas &&
				     track_vma_trackable(&dc->vmas.v[v], dc->mm.vmas[v]) &&
				     !(buf[i] & PM_SOFT_DIRTY) && track_parent_covers(dc->cover, addr, addr + PAGE_SZ);
			if (page_runs_add(clean ? in_parent : out, addr, addr + PAGE_SZ, r->readable) < 0)
				return -2;
		}
	}
	return 0;
}

int sd_split(struct dump_ctx *dc, struct page_runs *pr, struct page_runs *in_parent)
{
	struct page_runs out = { 0 };
	char path[64];
	int k = 0, ret = 0;

	if (!dc->cover)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", dc->pid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		pr_perror("pid %d: can't open %s", dc->pid, path);
		return -1;
	}
	for (size_t i = 0; i < pr->nr && !ret; i++)
		ret = split_run(dc, pm, &pr->r[i], &k, &out, in_parent);
	close(pm);
	if (ret < 0) {
		if (ret == -1)
			pr_perror("pid %d: can't read the soft-dirty bits of its pages", dc->pid);
		free(out.r);
		return -1;
	}
	pr_info("pid %d: %lu KiB in the parent dump, %lu KiB changed or new (soft-dirty)", dc->pid,
		(unsigned long)(in_parent->bytes >> 10), (unsigned long)(out.bytes >> 10));
	free(pr->r);
	*pr = out;
	return 0;
}

/* ---- arming ---- */

static int clear_bits(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, "4", 1) == 1;
	if (!ok)
		pr_perror("pid %d: can't clear its soft-dirty bits (%s)", pid, path);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* After the pages are saved, with the process still stopped: a new
 * number noted first (a dump failing after it leaves a number no dump
 * records: every parent is then stale, never wrongly the last), then the
 * clear, then the mark. */
int sd_protect(struct dump_ctx *dc)
{
	uint64_t armed, mark = vdso_last_page(dc->pid);
	notes_prune();
	if (track_draw_armed(&armed) < 0 || note_write(dc->pid, dc->sd_start, armed) < 0 ||
	    clear_bits(dc->pid) < 0)
		return -1;
	if (!mark)
		pr_warn("pid %d: no vdso to mark: the next dump will save every page", dc->pid);
	else if (mark_set(dc->pid, mark) < 0)
		return -1;
	dc->sd_armed = armed;
	pr_info("pid %d: soft-dirty bits cleared to track its memory", dc->pid);
	return 0;
}
