/*
 * forkloop: a process that forks children in a tight loop, each exiting at
 * once with a status made of the loop counter, must be dumpable at any
 * moment, and must go on forking after a restore.
 *
 * Round n: fork; the child _exit(n & 0x7f)s; the parent waitpid()s that
 * pid and checks the status.  A dump catches the tree with a child
 * that is running, exiting or a zombie; whichever it is, the restored
 * parent must reap exactly that child with exactly that status.
 *
 * SIGUSR2 from the runner records the round counter in a list of marks;
 * marks taken before the dump and after the restore must grow (the loop
 * runs after the restore).  After SIGUSR1 the loop stops, 200 more rounds
 * must work, and no child may be left over.
 *
 * It runs alone: its forks go round all the pids in seconds, and would
 * take those of another test's dumped tree before their restore.
 * test tree.forkloop: plain --alone
 */
#include "common.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_MARKS 32
#define AREA (64 * 1024)

static volatile uint64_t rounds;
static volatile uint64_t marks[MAX_MARKS];
static volatile sig_atomic_t nmarks;
static uint64_t bad_status, bad_pid, fork_errors;
static char first_error[200];

static void on_usr2(int sig)
{
	(void)sig;
	if (nmarks < MAX_MARKS)
		marks[nmarks++] = rounds;
}

static void one_round(void)
{
	uint64_t n = rounds;
	int st;
	pid_t p = fork(), r;

	if (p == 0)
		_exit((int)(n & 0x7f));
	if (p < 0) {
		if (!fork_errors++)
			snprintf(first_error, sizeof(first_error), "fork in round %llu: %s",
				 (unsigned long long)n, strerror(errno));
		return;
	}
	do
		r = waitpid(p, &st, 0);
	while (r < 0 && errno == EINTR);
	if (r != p) {
		if (!bad_pid++)
			snprintf(first_error, sizeof(first_error), "round %llu: waitpid(%d) = %d (%s)",
				 (unsigned long long)n, p, r, r < 0 ? strerror(errno) : "another pid");
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != (int)(n & 0x7f)) {
		if (!bad_status++)
			snprintf(first_error, sizeof(first_error),
				 "round %llu: child %d ended with wait status %#x, expected exit status %d",
				 (unsigned long long)n, p, st, (int)(n & 0x7f));
	}
	rounds = n + 1;
}

int main(void)
{
	struct sigaction sa;
	uint64_t *area, stop_at;
	int st;

	proto_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR2, &sa, NULL))
		die("sigaction(SIGUSR2)");
	area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < AREA / 8; i++)
		area[i] = i * 0x9e3779b97f4a7c15ULL;
	while (rounds < 200)
		one_round();
	CHECK(!fork_errors && !bad_pid && !bad_status, "setup: %s", first_error);
	if (failures)
		return proto_finish();
	proto_ready();
	while (!go_flag)
		one_round();

	stop_at = rounds;
	while (rounds < stop_at + 200)
		one_round();
	CHECK(!fork_errors && !bad_pid && !bad_status, "%llu fork errors, %llu wrong pids, %llu wrong statuses "
	      "in %llu rounds; first: %s", (unsigned long long)fork_errors, (unsigned long long)bad_pid,
	      (unsigned long long)bad_status, (unsigned long long)rounds, first_error);
	{
		pid_t r = waitpid(-1, &st, WNOHANG);
		CHECK(r < 0 && errno == ECHILD, "a child is left over: waitpid(-1) = %d", r);
	}
	for (int i = 1; i < nmarks; i++)
		CHECK(marks[i] > marks[i - 1], "the loop stalled: round counter %llu at mark %d, %llu at mark %d",
		      (unsigned long long)marks[i - 1], i - 1, (unsigned long long)marks[i], i);
	for (size_t i = 0; i < AREA / 8; i++)
		if (area[i] != i * 0x9e3779b97f4a7c15ULL) {
			fail("memory word %zu changed", i);
			break;
		}
	sayf("INFO: %llu rounds, %d marks\n", (unsigned long long)rounds, (int)nmarks);
	return proto_finish();
}
