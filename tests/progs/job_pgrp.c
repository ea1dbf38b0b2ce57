/* job_pgrp: a job of the user's terminal that leads its own process group
 * (not its session): run under `sh -c` in a terminal, it does
 * setpgid(0, 0) and prints "PGRP <pid>" and READY. After SIGUSR1 it must
 * still lead its group (a --shell-job restore must not put it in stasis's)
 * and kill(0, SIGUSR2) must reach it alone: it catches the signal, and a
 * stasis in its group would die of it. Prints PASS or FAIL lines.
 * Run by tests/cases/tty.sh (tty.shell_job_pgrp). */
#include "common.h"

static volatile sig_atomic_t got_usr2;

static void on_usr2(int sig)
{
	(void)sig;
	got_usr2 = 1;
}

int main(void)
{
	proto_init();
	signal(SIGUSR2, on_usr2);
	if (setpgid(0, 0) < 0)
		die("setpgid(0, 0)");
	sayf("PGRP %d\n", getpid());
	proto_ready();
	proto_wait();
	CHECK(getpgid(0) == getpid(), "getpgid(0) = %d: no longer leads its group %d", getpgid(0), getpid());
	if (getpgid(0) == getpid()) {
		kill(0, SIGUSR2);
		for (int i = 0; i < 100 && !got_usr2; i++)
			usleep(10000);
		CHECK(got_usr2, "kill(0, SIGUSR2) did not reach the process itself");
	}
	return proto_finish();
}
