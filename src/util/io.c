#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/io.h"
#include "util/fsop.h"

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

bool read_note(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

int write_note(int dirfd, const char *name, const char *buf, size_t len)
{
	char tmp[256];
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", name, getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int f = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return -1;
	int ret = write_all(f, buf, len);
	if (close(f) < 0)
		ret = -1;
	if (ret == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		ret = -1;
	if (ret < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
	}
	return ret;
}

int write_whole(int dirfd, const char *name, const void *buf, size_t len)
{
	char tmp[256];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fs_unlink(dirfd, tmp);
	int f = fs_create(dirfd, tmp, O_WRONLY, 0600);
	if (f < 0)
		return -1;
	int ret = write_all(f, buf, len);
	if (close(f) < 0)
		ret = -1;
	if (ret == 0 && fs_rename(dirfd, tmp, name) < 0)
		ret = -1;
	if (ret < 0) {
		int e = errno;
		fs_unlink(dirfd, tmp);
		errno = e;
	}
	return ret;
}

void stdio_to_null(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
}

void iov_advance(struct iovec **iov, int *n, size_t done)
{
	while (*n && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}
