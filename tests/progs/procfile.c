/*
 * procfile: an open /proc file read part way (its offset past the 0 bytes
 * its size says) comes back open at that offset; reading on works.
 *
 * test procfile: plain restore
 */
#include "common.h"

#include <fcntl.h>

static int fd;

int main(void)
{
	char buf[256];
	proto_init();
	fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0 || read(fd, buf, 100) != 100)
		die("/proc/self/maps");
	proto_ready();
	proto_wait();
	CHECK(lseek(fd, 0, SEEK_CUR) == 100, "offset of /proc/self/maps is %ld, was 100", (long)lseek(fd, 0, SEEK_CUR));
	CHECK(read(fd, buf, sizeof(buf)) > 0, "read of /proc/self/maps: %s", strerror(errno));
	return proto_finish();
}
