/* libFuzzer target: a whole images directory through restore's loading.
 *
 * An input is a small archive of image files (fuzz/pack_images.py makes
 * them from a real dump): repeated [u8 name length][name][u32 LE data
 * length][data]. Each input is written out as a directory and loaded by
 * rst_load_images(), the code `stasis restore` runs before it forks
 * anything: inventory, pstree, core, mm, fs, ids, fdinfo, pagemap,
 * files, tty-info, pipes-data through img_open/img_read/img_read_raw,
 * their checks, the limits of an unprivileged client, the plan of the
 * service fds and of the process group helpers. Then everything is
 * unloaded: ASan/LSan see every leak.
 *
 * The custom mutator changes one file of the archive at a time (or, now
 * and then, the archive as bytes), so the other files stay valid and the
 * loader gets past them. A crash file reproduces on its own:
 * build/fuzz/fuzz_image CRASH_FILE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/checksum.h"
#include "restore/rst.h"
#include "util/log.h"

#define MAX_FILES 64
#define NAME_MAX_LEN 64

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
/* prints where sanitizer reports go (stderr may be closed: -close_fd_mask) */
void __sanitizer_report_error_summary(const char *msg);

struct member {
	char name[NAME_MAX_LEN + 1];
	const uint8_t *data;
	size_t len;
};

static char work[4096];		/* the images directory, on tmpfs if there is one */
static int work_fd = -1;

static void remove_work(void)
{
	DIR *d = opendir(work);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(work);
}

static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* STASIS_FUZZ_TMP: where to make it (the test removes that directory
	 * even after a crash, when our atexit does not run) */
	const char *parent = getenv("STASIS_FUZZ_TMP");
	if (!parent)
		parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(work, sizeof(work), "%.*s/stasis-fuzz-image-XXXXXX", (int)sizeof(work) - 32, parent);
	if (!mkdtemp(work) || (work_fd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror("fuzz_image: work directory");
		exit(1);
	}
	atexit(remove_work);
	log_init(NULL, LOG_ERROR);
	return 0;
}

/* Names go into a directory: plain names only. */
static bool name_ok(const char *n)
{
	if (!n[0] || n[0] == '.')
		return false;
	for (; *n; n++)
		if (!(*n == '.' || *n == '-' || *n == '_' || (*n >= '0' && *n <= '9') ||
		      (*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z')))
			return false;
	return true;
}

/* A last member cut short keeps what is there: a mutation that changes a
 * length still yields a file. */
static int parse(const uint8_t *p, size_t size, struct member *m, int max)
{
	int n = 0;
	size_t off = 0;

	while (off < size && n < max) {
		size_t nl = p[off++];
		uint32_t len;
		if (nl > NAME_MAX_LEN || off + nl + 4 > size)
			break;
		memcpy(m[n].name, p + off, nl);
		m[n].name[nl] = 0;
		off += nl;
		memcpy(&len, p + off, 4);
		off += 4;
		m[n].data = p + off;
		m[n].len = len < size - off ? len : size - off;
		off += m[n].len;
		n++;
	}
	return n;
}

static size_t serialize(const struct member *m, int n, uint8_t *out, size_t max)
{
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		size_t nl = strlen(m[i].name);
		uint32_t len = m[i].len;
		if (off + 1 + nl + 4 + len > max)
			break;
		out[off++] = nl;
		memcpy(out + off, m[i].name, nl);
		off += nl;
		memcpy(out + off, &len, 4);
		off += 4;
		memmove(out + off, m[i].data, len);
		off += len;
	}
	return off;
}

/* What the directory holds now: only files that change are rewritten (a
 * mutation changes one), which keeps the runs fast. */
static struct {
	char name[NAME_MAX_LEN + 1];
	uint8_t *data;
	size_t len;
	bool keep;
} on_disk[2 * MAX_FILES];	/* the last input's files and this one's */
static int nr_on_disk;

static void write_file(const struct member *m)
{
	for (int i = 0; i < nr_on_disk; i++)
		if (!strcmp(on_disk[i].name, m->name)) {
			on_disk[i].keep = true;
			if (on_disk[i].len == m->len && !memcmp(on_disk[i].data, m->data, m->len))
				return;
			free(on_disk[i].data);
			on_disk[i].data = NULL;
			on_disk[i].len = 0;
			break;
		}
	int fd = openat(work_fd, m->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, m->data, m->len) != (ssize_t)m->len) {
		perror("fuzz_image: writing an image");
		abort();
	}
	close(fd);
	int i;
	for (i = 0; i < nr_on_disk && strcmp(on_disk[i].name, m->name); i++)
		;
	if (i == nr_on_disk)
		snprintf(on_disk[nr_on_disk++].name, NAME_MAX_LEN + 1, "%s", m->name);
	on_disk[i].data = malloc(m->len ? m->len : 1);
	memcpy(on_disk[i].data, m->data, m->len);
	on_disk[i].len = m->len;
	on_disk[i].keep = true;
}

/* Files of the last input that this one does not have go. */
static void remove_stale(void)
{
	int n = 0;
	for (int i = 0; i < nr_on_disk; i++) {
		if (on_disk[i].keep) {
			on_disk[i].keep = false;
			on_disk[n++] = on_disk[i];
			continue;
		}
		unlinkat(work_fd, on_disk[i].name, 0);
		free(on_disk[i].data);
	}
	nr_on_disk = n;
}

static void load(bool unprivileged)
{
	struct opts o = { .images_dir = work, .images_dirfd = -1, .work_dirfd = -1, .unprivileged = unprivileged, .client_pid = getpid(), .client_pidfd = -1,
			  .client_uid = 1000,
			  .client_gid = 1000 };
	struct rst_tree tr = { .o = &o, .dirfd = work_fd, .sync = { -1, -1 } };

	tr.files.o = &o;
	/* the list of checksums is read first; damage it finds is for the
	 * restore to refuse, so the images are loaded either way */
	ck_verify_chain(work_fd, work, CK_ALL);
	/* then the plan of the process group helpers, as in a new pid
	 * namespace: the only way it looks at nothing but the images */
	if (rst_load_images(&tr) == 0) {
		tr.new_pidns = true;
		rst_helpers_plan(&tr);
		free(tr.helpers);
	}
	rst_unload_images(&tr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct member m[MAX_FILES];
	int n = parse(data, size, m, MAX_FILES);
	int fd_mark = lowest_free_fd();

	for (int i = 0; i < n; i++)
		if (name_ok(m[i].name))
			write_file(&m[i]);
	remove_stale();
	load(false);
	load(true);
	if (lowest_free_fd() != fd_mark) {
		__sanitizer_report_error_summary("fuzz_image: an fd was left open by the image loading");
		abort();
	}
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static uint8_t buf[1 << 20], out[1 << 20];
	struct member m[MAX_FILES];
	int n = parse(data, size, m, MAX_FILES);

	if (n == 0 || seed % 16 == 0 || max_size > sizeof(buf))
		return LLVMFuzzerMutate(data, size, max_size);
	int pick = (seed / 16) % n;
	size_t others = 0;
	for (int i = 0; i < n; i++)
		others += 1 + strlen(m[i].name) + 4 + (i == pick ? 0 : m[i].len);
	if (others >= max_size)
		return LLVMFuzzerMutate(data, size, max_size);
	/* the picked file is mutated in a copy, then the archive rebuilt */
	memcpy(buf, m[pick].data, m[pick].len);
	if (!m[pick].len)
		buf[m[pick].len++] = 0;	/* Mutate wants something to work on */
	m[pick].len = LLVMFuzzerMutate(buf, m[pick].len, max_size - others);
	m[pick].data = buf;
	size_t len = serialize(m, n, out, max_size);
	memcpy(data, out, len);
	return len;
}
