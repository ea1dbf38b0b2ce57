/*
 * sig_dfl: a program with no signal handler of its own (every signal at
 * SIG_DFL, as after exec in a clean environment) and SIGUSR1 and SIGRTMIN+4
 * blocked. After a restore every disposition must be SIG_DFL again, and the
 * mask as it was: neither what stasis's restore had (its tick's handler,
 * util/tick.c) nor what stasis's parent gave it (SIG_IGN from a shell) may
 * leak in, even from an image that lists no handlers (cases/sigact.sh).
 *
 * It takes no SIGUSR1 handler: it waits for SIGUSR1 with sigwaitinfo, so
 * cases/sigact.sh runs it, not the usual scenarios.
 */
#include "common.h"

static sigset_t mask_before;

static void check(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		CHECK(sa.sa_handler == SIG_DFL, "signal %d: handler %p, expected SIG_DFL", sig,
		      (void *)sa.sa_handler);
	}
	sigset_t now;
	sigprocmask(SIG_SETMASK, NULL, &now);
	for (int sig = 1; sig < NSIG; sig++)
		CHECK(sigismember(&now, sig) == sigismember(&mask_before, sig), "signal %d: %s, expected %s", sig,
		      sigismember(&now, sig) ? "blocked" : "not blocked",
		      sigismember(&mask_before, sig) ? "blocked" : "not blocked");
}

int main(void)
{
	/* what a program has at exec, whatever the shell that started us ignored */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&mask_before);
	sigaddset(&mask_before, SIGUSR1);
	sigaddset(&mask_before, SIGRTMIN + 4);
	if (sigprocmask(SIG_SETMASK, &mask_before, NULL) < 0)
		die("sigprocmask");
	check();
	if (failures)
		return proto_finish();
	proto_ready();
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	while (sigwaitinfo(&usr1, NULL) < 0 && errno == EINTR)
		;
	check();
	return proto_finish();
}
