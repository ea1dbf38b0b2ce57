/*
 * seccomp_strict: a counter in seccomp strict mode, where the kernel
 * allows only read, write, exit and rt_sigreturn (anything else: SIGKILL).
 * It reads one-byte commands from the FIFO `ctl` in its working directory
 * (opened read-write, so it never sees EOF):
 *
 *   c   write the next number of the count (1, 2, 3, ...) to stdout
 *   k   call getpid(): strict mode must kill it (the harness expects 137)
 *   q   exit 0
 *
 * READY is written once strict mode is on. The count lives in memory
 * only, so a restore that lost it shows as a gap or a repeat.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>

static unsigned long count;

/* No stdio, no vsnprintf: only write() is allowed. */
static void say_number(unsigned long n)
{
	char buf[24];
	int i = sizeof(buf);
	buf[--i] = '\n';
	do
		buf[--i] = '0' + n % 10;
	while ((n /= 10));
	write_all(1, buf + i, sizeof(buf) - i);
}

int main(void)
{
	char cmd;

	if (mkfifo("ctl", 0600) < 0 && errno != EEXIST)
		die("mkfifo ctl");
	int ctl = open("ctl", O_RDWR);
	if (ctl < 0)
		die("open ctl");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) < 0)
		die("PR_SET_SECCOMP strict");
	proto_ready();
	for (;;) {
		ssize_t n = read(ctl, &cmd, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1) {
			say("FAIL: reading a command\n");
			syscall(SYS_exit, 1);
		}
		if (cmd == 'c')
			say_number(++count);
		else if (cmd == 'k')
			syscall(SYS_getpid);
		else if (cmd == 'q')
			syscall(SYS_exit, 0);
	}
}
