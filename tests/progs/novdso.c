/*
 * novdso: a process that unmapped its vdso and vvar (as on a kernel
 * booted with vdso=0) is dumped (syscalls run from its own code) and
 * comes back without them, still running.
 *
 * test novdso: plain restore chain
 */
#include "common.h"

#include <stdio.h>
#include <sys/syscall.h>

/* Nothing here may use the vdso once it is gone: no clock_gettime,
 * gettimeofday or time. */
static int count_blobs(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "[vdso]") || strstr(line, "[vvar");
	fclose(f);
	return n;
}

static void unmap_blobs(void)
{
	char line[512];
	unsigned long s[8], e[8];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		die("/proc/self/maps");
	while (n < 8 && fgets(line, sizeof(line), f))
		if ((strstr(line, "[vdso]") || strstr(line, "[vvar")) && sscanf(line, "%lx-%lx", &s[n], &e[n]) == 2)
			n++;
	fclose(f);
	for (int i = 0; i < n; i++)
		if (syscall(SYS_munmap, s[i], e[i] - s[i]))
			die("munmap");
}

int main(void)
{
	proto_init();
	unmap_blobs();
	CHECK(count_blobs() == 0, "the vdso is still mapped");
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	CHECK(count_blobs() == 0, "a vdso came back after restore");
	CHECK(getppid() > 0 && syscall(SYS_getpid) == getpid(), "syscalls broken");
	return proto_finish();
}
