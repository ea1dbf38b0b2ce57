#include <stdio.h>

#include "util/log.h"
#include "util/pidfile.h"

int write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");
	if (!f || fprintf(f, "%d", pid) < 0 || fclose(f) != 0) {
		pr_perror("can't write pidfile %s", path);
		return -1;
	}
	return 0;
}
