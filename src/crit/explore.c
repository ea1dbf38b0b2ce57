/* crit's explorers: a dump's process tree, files, mappings and resident
 * pages, printed as crit prints them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crit/explore.h"
#include "crit/imgjson.h"
#include "util/log.h"

#define VMA_AREA_STACK (1u << 1)
#define VMA_AREA_VSYSCALL (1u << 2)
#define VMA_AREA_VDSO (1u << 3)
#define VMA_FILE_PRIVATE (1u << 6)
#define VMA_FILE_SHARED (1u << 7)
#define VMA_ANON_SHARED (1u << 8)
#define VMA_AREA_SYSVIPC (1u << 10)
#define VMA_AREA_SOCKET (1u << 11)
#define MAP_GROWSDOWN_FLAG 0x100

struct dump {
	int dirfd;
	FILE *out;
	struct json **loaded;	/* every image read, freed at the end */
	size_t nr_loaded;
	const struct json *files;	/* files.img's entries, read once */
	bool files_read;
	uint64_t *shm_ids;	/* the numbers crit gives shared memory, in order seen */
	size_t nr_shm_ids;
};

/* The entries of an image of the dump; NULL (reported) if unreadable. */
static const struct json *entries(struct dump *d, enum img_kind kind, uint32_t id)
{
	struct img img;
	struct json **n = realloc(d->loaded, (d->nr_loaded + 1) * sizeof(*n));

	if (!n)
		return NULL;
	d->loaded = n;
	if (img_open(d->dirfd, &img, kind, id) < 0)
		return NULL;
	struct json *image = crit_load(&img, kind, false, false);
	img_close(&img);
	if (!image)
		return NULL;
	d->loaded[d->nr_loaded++] = image;
	return json_get(image, "entries");
}

static const struct json *item(const struct json *array, size_t i)
{
	return array && array->type == JSON_ARRAY && i < array->n ? array->items[i] : NULL;
}

/* A number of an entry; 0 if it has none (crit would stop there). */
static uint64_t num(const struct json *o, const char *key)
{
	uint64_t v = 0;
	int64_t s;
	const struct json *j = json_get(o, key);
	if (json_to_uint64(j, &v) < 0 && json_to_int64(j, &s) == 0)
		v = s;
	return v;
}

static const char *str(const struct json *o, const char *key)
{
	const struct json *j = json_get(o, key);
	return j && j->type == JSON_STRING ? j->text : "";
}

/* As crit's get_task_id: pid, or the first of ns_pid. */
static uint64_t task_id(const struct json *p, const char *key)
{
	char ns[32];
	if (json_get(p, key))
		return num(p, key);
	snprintf(ns, sizeof(ns), "ns_%s", key);
	uint64_t v = 0;
	json_to_uint64(item(json_get(p, ns), 0), &v);
	return v;
}

/* ---- what a file is ---- */

static const struct json *file_entry(struct dump *d, uint64_t id)
{
	if (!d->files_read) {
		d->files_read = true;
		d->files = entries(d, IMG_FILES, 0);
	}
	for (size_t i = 0; d->files && i < d->files->n; i++)
		if (num(d->files->items[i], "id") == id)
			return d->files->items[i];
	return NULL;
}

/* As crit's get_file_str, into buf. */
static const char *file_text(struct dump *d, const char *type, uint64_t id, char *buf, size_t len)
{
	const struct json *f = file_entry(d, id);

	if (!strcmp(type, "REG")) {
		const char *name = str(json_get(f, "reg"), "name");
		snprintf(buf, len, "%s", *name ? name : "unknown path");
	} else if (!strcmp(type, "PIPE")) {
		const struct json *p = json_get(f, "pipe");
		if (p)
			snprintf(buf, len, "pipe[%llu]", (unsigned long long)num(p, "pipe_id"));
		else
			snprintf(buf, len, "pipe[?]");
	} else if (!strcmp(type, "UNIXSK")) {
		const struct json *u = json_get(f, "usk");
		const char *name = str(u, "name");
		if (u)
			snprintf(buf, len, "unix[%llu (%llu)%s%s]", (unsigned long long)num(u, "ino"),
				 (unsigned long long)num(u, "peer"), *name ? " " : "", name);
		else
			snprintf(buf, len, "unix[?]");
	} else {
		snprintf(buf, len, "%s.%llu", type, (unsigned long long)id);
	}
	return buf;
}

/* ---- x ps ---- */

static void show_ps(struct dump *d, const struct json *tree, const struct json **cores, size_t i, int depth)
{
	const struct json *p = tree->items[i];
	fprintf(d->out, "%7llu%7llu%7llu   %*s%s\n", (unsigned long long)task_id(p, "pid"),
		(unsigned long long)task_id(p, "pgid"), (unsigned long long)task_id(p, "sid"), 4 * depth, "",
		str(json_get(item(cores[i], 0), "tc"), "comm"));
	for (size_t k = 0; (size_t)depth < tree->n && k < tree->n; k++)	/* a loop of parents ends */
		if (k != i && num(tree->items[k], "ppid") && num(tree->items[k], "ppid") == task_id(p, "pid"))
			show_ps(d, tree, cores, k, depth + 1);
}

static int explore_ps(struct dump *d)
{
	const struct json *tree = entries(d, IMG_PSTREE, 0);
	const struct json **cores;
	size_t root = SIZE_MAX;

	if (!tree || !(cores = calloc(tree->n + 1, sizeof(*cores))))
		return -1;
	for (size_t i = 0; i < tree->n; i++) {
		if (!(cores[i] = entries(d, IMG_CORE, task_id(tree->items[i], "pid")))) {
			free(cores);
			return -1;
		}
		if (num(tree->items[i], "ppid") == 0)
			root = i;
	}
	fprintf(d->out, "%7s%7s%7s   %s\n", "PID", "PGID", "SID", "COMM");
	if (root != SIZE_MAX)
		show_ps(d, tree, cores, root, 0);
	free(cores);
	return 0;
}

/* ---- x fds ---- */

static int explore_fds(struct dump *d)
{
	const struct json *tree = entries(d, IMG_PSTREE, 0);
	char buf[4096];

	for (size_t i = 0; tree && i < tree->n; i++) {
		uint64_t pid = task_id(tree->items[i], "pid");
		const struct json *ids = entries(d, IMG_IDS, pid);
		const struct json *fds = ids ? entries(d, IMG_FDINFO, num(item(ids, 0), "files_id")) : NULL;
		const struct json *fs = fds ? entries(d, IMG_FS, pid) : NULL;
		if (!fs)
			return -1;
		fprintf(d->out, "%llu\n", (unsigned long long)pid);
		for (size_t k = 0; k < fds->n; k++) {
			const struct json *fd = fds->items[k];
			fprintf(d->out, "\t%7llu: %s\n", (unsigned long long)num(fd, "fd"),
				file_text(d, str(fd, "type"), num(fd, "id"), buf, sizeof(buf)));
		}
		fprintf(d->out, "\t%7s: %s\n", "cwd", file_text(d, "REG", num(item(fs, 0), "cwd_id"), buf, sizeof(buf)));
		fprintf(d->out, "\t%7s: %s\n", "root", file_text(d, "REG", num(item(fs, 0), "root_id"), buf, sizeof(buf)));
	}
	return tree ? 0 : -1;
}

/* ---- x mems ---- */

/* As crit's vma_id: 1, 2, ... in the order shared memory is first seen. */
static uint64_t shm_number(struct dump *d, uint64_t shmid)
{
	for (size_t i = 0; i < d->nr_shm_ids; i++)
		if (d->shm_ids[i] == shmid)
			return i + 1;
	uint64_t *n = realloc(d->shm_ids, (d->nr_shm_ids + 1) * sizeof(*n));
	if (!n)
		return 0;
	d->shm_ids = n;
	d->shm_ids[d->nr_shm_ids++] = shmid;
	return d->nr_shm_ids;
}

/* What crit prints after a mapping's addresses and protection. */
static void vma_what(struct dump *d, const struct json *vma, char *fn, size_t len)
{
	uint64_t st = num(vma, "status"), shmid = num(vma, "shmid");
	char file[4096];
	size_t n;

	if (st & VMA_AREA_SYSVIPC)
		snprintf(fn, len, " ips[%llx]", (unsigned long long)shm_number(d, shmid));
	else if (st & VMA_ANON_SHARED)
		snprintf(fn, len, " shmem[%llx]", (unsigned long long)shm_number(d, shmid));
	else if (st & VMA_AREA_SOCKET)
		snprintf(fn, len, " packet[%llx]", (unsigned long long)shm_number(d, shmid));
	else if (st & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
		n = snprintf(fn, len, " %s", file_text(d, "REG", shmid, file, sizeof(file)));
		if (num(vma, "pgoff") && n < len)
			n += snprintf(fn + n, len - n, " + %#llx", (unsigned long long)num(vma, "pgoff"));
		if ((st & VMA_FILE_SHARED) && n < len)
			snprintf(fn + n, len - n, " (s)");
	} else if (st & VMA_AREA_STACK)
		snprintf(fn, len, " [stack]");
	else if (st & VMA_AREA_VSYSCALL)
		snprintf(fn, len, " [vsyscall]");
	else if (st & VMA_AREA_VDSO)
		snprintf(fn, len, " [vdso]");
	else if (num(vma, "flags") & MAP_GROWSDOWN_FLAG)
		snprintf(fn, len, " [stack?]");
	else
		fn[0] = 0;
	if (!(st & 1))	/* not VMA_AREA_REGULAR */
		strncat(fn, " *", len - strlen(fn) - 1);
}

static int explore_mems(struct dump *d)
{
	const struct json *tree = entries(d, IMG_PSTREE, 0);
	char file[4096], fn[4200], addr[64];

	for (size_t i = 0; tree && i < tree->n; i++) {
		uint64_t pid = task_id(tree->items[i], "pid");
		const struct json *mm = item(entries(d, IMG_MM, pid), 0), *vmas = json_get(mm, "vmas");
		if (!mm)
			return -1;
		fprintf(d->out, "%llu\n", (unsigned long long)pid);
		fprintf(d->out, "\t%-36s    %s\n", "exe", file_text(d, "REG", num(mm, "exe_file_id"), file, sizeof(file)));
		for (size_t k = 0; vmas && k < vmas->n; k++) {
			const struct json *vma = vmas->items[k];
			uint64_t prot = num(vma, "prot");
			vma_what(d, vma, fn, sizeof(fn));
			snprintf(addr, sizeof(addr), "%08llx-%08llx", (unsigned long long)num(vma, "start"),
				 (unsigned long long)num(vma, "end"));
			fprintf(d->out, "\t%-36s%c%c%c%s\n", addr, prot & 1 ? 'r' : '-', prot & 2 ? 'w' : '-',
				prot & 4 ? 'x' : '-', fn);
		}
	}
	return tree ? 0 : -1;
}

/* ---- x rss ---- */

/* crit indexes mappings as python does: -1 is the last one. */
static const struct json *vma_at(const struct json *vmas, long i)
{
	long n = vmas ? (long)vmas->n : 0;
	return i >= -n && i < n ? vmas->items[i < 0 ? i + n : i] : NULL;
}

/* One pagemap entry: its run, then the mappings it covers. */
static void rss_line(struct dump *d, const struct json *pm, const struct json *vmas, long *vmi, long *pvmi)
{
	uint64_t vaddr = num(pm, "vaddr"), pme = vaddr + (num(pm, "nr_pages") << 12);
	char run[64], file[4096];
	const struct json *vma;

	snprintf(run, sizeof(run), "\t%llx / %-8llu", (unsigned long long)vaddr, (unsigned long long)num(pm, "nr_pages"));
	fprintf(d->out, "%-24s", run);
	while ((vma = vma_at(vmas, *vmi)) && num(vma, "end") <= vaddr)
		(*vmi)++;
	while ((vma = vma_at(vmas, *vmi)) && num(vma, "start") < pme) {
		if (*vmi == *pvmi) {
			fprintf(d->out, " ~");
		} else {
			uint64_t start = num(vma, "start");
			fprintf(d->out, " %08llx / %-8llu", (unsigned long long)start,
				(unsigned long long)((num(vma, "end") - start) >> 12));
			if (num(vma, "status") & (VMA_FILE_PRIVATE | VMA_FILE_SHARED))
				fprintf(d->out, " %s", file_text(d, "REG", num(vma, "shmid"), file, sizeof(file)));
			*pvmi = *vmi;
		}
		fprintf(d->out, "\n\t%23s", "");
		(*vmi)++;
	}
	(*vmi)--;
	fprintf(d->out, "\n");
}

static int explore_rss(struct dump *d)
{
	const struct json *tree = entries(d, IMG_PSTREE, 0);

	for (size_t i = 0; tree && i < tree->n; i++) {
		uint64_t pid = task_id(tree->items[i], "pid");
		const struct json *mm = item(entries(d, IMG_MM, pid), 0);
		const struct json *pms = mm ? entries(d, IMG_PAGEMAP, pid) : NULL;
		long vmi = 0, pvmi = -1;
		if (!pms)
			return -1;
		fprintf(d->out, "%llu\n", (unsigned long long)pid);
		for (size_t k = 1; k < pms->n; k++)
			rss_line(d, pms->items[k], json_get(mm, "vmas"), &vmi, &pvmi);
	}
	return tree ? 0 : -1;
}

int crit_explore(const char *dir, const char *what, FILE *out)
{
	static const struct {
		const char *name;
		int (*fn)(struct dump *d);
	} explorers[] = { { "ps", explore_ps }, { "fds", explore_fds }, { "mems", explore_mems }, { "rss", explore_rss } };
	struct dump d = { .out = out };
	int ret = -1;

	for (size_t i = 0; i < sizeof(explorers) / sizeof(explorers[0]); i++) {
		if (strcmp(explorers[i].name, what))
			continue;
		d.dirfd = img_dir_open(dir, -1);
		if (d.dirfd < 0)
			return -1;
		ret = explorers[i].fn(&d);
		for (size_t k = 0; k < d.nr_loaded; k++)
			json_free(d.loaded[k]);
		free(d.loaded);
		free(d.shm_ids);
		close(d.dirfd);
		return ret;
	}
	pr_err("crit x: no explorer %s (ps, fds, mems or rss)", what);
	return -1;
}
