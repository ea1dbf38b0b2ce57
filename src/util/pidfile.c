#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "util/fsop.h"
#include "util/log.h"
#include "util/pidfile.h"

int write_pidfile(const char *path, pid_t pid)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", pid);
	int fd = fs_create_path(path, O_WRONLY, 0644);
	if (fd < 0 || write(fd, buf, len) != len || close(fd) < 0) {
		pr_perror("can't write pidfile %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}
