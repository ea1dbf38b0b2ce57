#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "util/fsop.h"
#include "util/log.h"
#include "util/progress.h"

static FILE *log_file;
static int log_level = LOG_WARN;
static struct timespec log_start;
static char first_error[512];
static int first_errno;
static bool quiet_errors;

static void log_reset(int level)
{
	log_level = level;
	first_error[0] = 0;
	first_errno = 0;
	clock_gettime(CLOCK_MONOTONIC, &log_start);
}

static int log_use_fd(int fd)
{
	log_file = fdopen(fd, "a");
	if (!log_file) {
		close(fd);
		return -1;
	}
	setvbuf(log_file, NULL, _IOLBF, 0);
	return 0;
}

/* Opened like every file made for someone (util/fsop.h): relative to
 * its directory, never through a symlink, only a regular file. */
int log_init(const char *path, int level)
{
	char *dir;
	const char *name;

	log_reset(level);
	if (!path || !strcmp(path, "-"))
		return 0;
	/* /dev/stderr, /proc/self/fd/N: links that no user can plant */
	if (!strncmp(path, "/dev/std", 8) || !strncmp(path, "/dev/fd/", 8) || !strncmp(path, "/proc/self/fd/", 14)) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || log_use_fd(fd) < 0) {
			fprintf(stderr, "Error: can't open log file %s: %m\n", path);
			return -1;
		}
		return 0;
	}
	int dirfd = fs_split(path, &dir, &name) < 0 ? -1 : fs_open_dir(dir);
	int fd = dirfd < 0 ? -1 : fs_open_append(dirfd, name);
	if (fd < 0 || log_use_fd(fd) < 0) {
		fprintf(stderr, "Error: can't open log file %s: %m\n", path);
		if (dirfd >= 0)
			close(dirfd);
		return -1;
	}
	close(dirfd);
	return 0;
}

int log_init_at(int dirfd, const char *name, int level)
{
	log_reset(level);
	int fd = fs_open_append(dirfd, name);
	if (fd < 0 || log_use_fd(fd) < 0) {
		pr_perror("can't open log file %s", name);
		return -1;
	}
	return 0;
}

void log_close(void)
{
	if (log_file)
		fclose(log_file);
	log_file = NULL;
}

static FILE *err_file;

int log_move_fds(int *next)
{
	if (log_file) {
		int fd = fileno(log_file);
		if (dup2(fd, *next) < 0)
			return -1;
		FILE *f = fdopen((*next)++, "a");
		if (!f)
			return -1;
		setvbuf(f, NULL, _IOLBF, 0);
		fclose(log_file);
		log_file = f;
	}
	if (dup2(2, *next) < 0)
		return -1;
	err_file = fdopen((*next)++, "a");
	if (!err_file)
		return -1;
	setvbuf(err_file, NULL, _IONBF, 0);
	return 0;
}

void log_quiet_errors(void)
{
	quiet_errors = true;
	first_error[0] = 0;
	first_errno = 0;
}

void log_set_errno(int err)
{
	if (!first_errno)
		first_errno = err;
}

int log_first_errno(void)
{
	return first_errno;
}

const char *log_first_error(void)
{
	return first_error;
}

bool log_wants(int level)
{
	return level <= log_level;
}

void log_msg(int level, const char *fmt, ...)
{
	int saved = errno;
	char line[4096];
	va_list ap;

	if (level > log_level && !(level == LOG_ERROR))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = strlen(line);
	const char *nl = (n && line[n - 1] == '\n') ? "" : "\n";
	if (level == LOG_ERROR && !first_error[0]) {
		const char *m = strncmp(line, "Error: ", 7) ? line : line + 7;
		snprintf(first_error, sizeof(first_error), "%.*s", (int)strcspn(m, "\n"), m);
	}
	if (level == LOG_ERROR && quiet_errors)
		return;

	if (log_file && level <= log_level) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double t = (now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
		fprintf(log_file, "(%08.6f) %s%s", t, line, nl);
	}
	if (!log_file || level == LOG_ERROR) {
		bool paused = progress_pause();	/* its line is cleared first */
		fprintf(err_file ? err_file : stderr, "%s%s", line, nl);
		progress_resume(paused);
	}
	errno = saved;
}

int log_fds(int fds[2])
{
	fds[0] = log_file ? fileno(log_file) : -1;
	fds[1] = err_file ? fileno(err_file) : -1;
	return 0;
}
