/*
 * signals: signal dispositions, the blocked mask, the alternate stack and
 * pending signals (with their siginfo) must survive.
 *
 * Setup:
 *   SIGUSR2      handler, SA_RESTART, sa_mask {SIGINT, SIGQUIT}; blocked;
 *                raise()d -> pending on the thread
 *   SIGRTMIN+1   SA_SIGINFO handler, sa_mask {SIGTERM}; blocked;
 *                sigqueue()d twice (111, 222) -> two queued process signals
 *   SIGHUP       SA_ONSTACK|SA_SIGINFO handler, sigaltstack() installed
 *   SIGWINCH     SA_RESETHAND handler
 *   SIGTERM      SA_NODEFER handler (never raised)
 *   SIGPIPE, SIGTSTP, SIGRTMIN+5 ignored
 *
 * After SIGUSR1 every disposition must equal the one read before READY
 * (raw rt_sigaction, so sa_restorer and glibc's own signals are covered),
 * the mask, the alt stack and the pending sets must be as set up, and the
 * handlers must then run with the right siginfo, in order.
 *
 * test signals: plain restore chain leave_running
 */
#include "common.h"

#include <stdint.h>
#include <sys/syscall.h>

#define NSIG_K 64

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction before[NSIG_K + 1];
static char altstack_mem[64 * 1024] __attribute__((aligned(16)));

/* What the handlers saw, in the order they ran. */
static volatile int ev[16];
static volatile sig_atomic_t nev;
static volatile sig_atomic_t usr2_mask_ok, rt_info_ok = 1, rt_mask_ok = 1;
static volatile sig_atomic_t hup_on_altstack, hup_ss_onstack, winch_count;

static void add_event(int v)
{
	if (nev < 16)
		ev[nev++] = v;
}

static void h_usr2(int sig)
{
	sigset_t cur;

	(void)sig;
	add_event(-SIGUSR2);
	/* sa_mask and the implicit self-block must be in force in here. */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	usr2_mask_ok = sigismember(&cur, SIGINT) && sigismember(&cur, SIGQUIT) &&
		       sigismember(&cur, SIGUSR2);
}

static void h_rt(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	(void)uc;
	add_event(si->si_value.sival_int);
	if (sig != SIGRTMIN + 1 || si->si_signo != sig || si->si_code != SI_QUEUE ||
	    si->si_pid != getpid() || si->si_uid != getuid())
		rt_info_ok = 0;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGTERM))
		rt_mask_ok = 0;
}

static void h_hup(int sig, siginfo_t *si, void *uc)
{
	char here;
	stack_t ss;

	(void)sig, (void)si, (void)uc;
	hup_on_altstack = &here >= altstack_mem && &here < altstack_mem + sizeof(altstack_mem);
	hup_ss_onstack = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK);
}

static void h_winch(int sig)
{
	(void)sig;
	winch_count++;
}

static void h_term(int sig)
{
	(void)sig;
}

static void install(int sig, void *handler, int flags, int m1, int m2)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = handler;
	else
		sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (m1)
		sigaddset(&sa.sa_mask, m1);
	if (m2)
		sigaddset(&sa.sa_mask, m2);
	if (sigaction(sig, &sa, NULL))
		die("sigaction");
}

static int raw_sigaction(int sig, struct ksigaction *ka)
{
	return (int)syscall(SYS_rt_sigaction, sig, NULL, ka, 8);
}

static void block(int sig, int how)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(how, &s, NULL);
}

static void setup(void)
{
	stack_t ss = { .ss_sp = altstack_mem, .ss_size = sizeof(altstack_mem), .ss_flags = 0 };

	install(SIGUSR2, h_usr2, SA_RESTART, SIGINT, SIGQUIT);
	install(SIGRTMIN + 1, h_rt, SA_SIGINFO, SIGTERM, 0);
	install(SIGHUP, h_hup, SA_ONSTACK | SA_SIGINFO, 0, 0);
	install(SIGWINCH, h_winch, SA_RESETHAND, 0, 0);
	install(SIGTERM, h_term, SA_NODEFER, SIGUSR2, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGRTMIN + 5, SIG_IGN);
	if (sigaltstack(&ss, NULL))
		die("sigaltstack");

	block(SIGUSR2, SIG_BLOCK);
	block(SIGRTMIN + 1, SIG_BLOCK);
	raise(SIGUSR2);
	if (sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 111 }) ||
	    sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 222 }))
		die("sigqueue");

	for (int sig = 1; sig <= NSIG_K; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && raw_sigaction(sig, &before[sig]))
			die("rt_sigaction");
}

static void check_dispositions(void)
{
	for (int sig = 1; sig <= NSIG_K; sig++) {
		struct ksigaction now;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (raw_sigaction(sig, &now)) {
			fail("rt_sigaction(%d): %s", sig, strerror(errno));
			continue;
		}
		CHECK(now.handler == before[sig].handler, "signal %d: handler %p, expected %p", sig,
		      now.handler, before[sig].handler);
		CHECK(now.flags == before[sig].flags, "signal %d: sa_flags %#lx, expected %#lx", sig,
		      now.flags, before[sig].flags);
		CHECK(now.restorer == before[sig].restorer, "signal %d: sa_restorer %p, expected %p",
		      sig, now.restorer, before[sig].restorer);
		CHECK(now.mask == before[sig].mask, "signal %d: sa_mask %#llx, expected %#llx", sig,
		      (unsigned long long)now.mask, (unsigned long long)before[sig].mask);
	}
	/* Guard against a broken snapshot: spot-check what we set up. */
	CHECK(before[SIGUSR2].handler == (void *)h_usr2 && (before[SIGUSR2].flags & SA_RESTART),
	      "setup: SIGUSR2 disposition");
	CHECK(before[SIGHUP].flags & SA_ONSTACK, "setup: SIGHUP lacks SA_ONSTACK");
	CHECK(before[SIGWINCH].flags & SA_RESETHAND, "setup: SIGWINCH lacks SA_RESETHAND");
	CHECK(before[SIGPIPE].handler == (void *)SIG_IGN, "setup: SIGPIPE not ignored");
}

#define BIT(sig) (1ULL << ((sig)-1))

/* Raw kernel sets: glibc's sigset helpers refuse its internal signals
 * (32, 33), and we want to see those too. */
static uint64_t raw_blocked(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static uint64_t raw_pending(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigpending, &m, 8);
	return m;
}

/* The blocked set must be exactly {SIGUSR2, SIGRTMIN+1}. */
static void check_blocked(void)
{
	uint64_t cur = raw_blocked(), want = BIT(SIGUSR2) | BIT(SIGRTMIN + 1);

	CHECK(cur == want, "blocked set %#llx, expected %#llx (SIGUSR2, SIGRTMIN+1)",
	      (unsigned long long)cur, (unsigned long long)want);
}

/* Read a hex signal set line ("SigPnd:", "ShdPnd:") from /proc/self/status. */
static uint64_t status_mask(const char *key)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0) {
			sscanf(line + strlen(key), "%llx", &v);
			break;
		}
	fclose(f);
	return v;
}

static void check_pending(void)
{
	uint64_t pend = raw_pending(), usr2 = BIT(SIGUSR2), rt = BIT(SIGRTMIN + 1);
	uint64_t thread = status_mask("SigPnd:"), shared = status_mask("ShdPnd:");

	CHECK(pend == (usr2 | rt), "pending set %#llx, expected %#llx (SIGUSR2, SIGRTMIN+1)",
	      (unsigned long long)pend, (unsigned long long)(usr2 | rt));
	/* raise() queues on the thread, sigqueue() on the process. */
	CHECK(thread == usr2, "thread-pending set %#llx, expected %#llx (SIGUSR2)",
	      (unsigned long long)thread, (unsigned long long)usr2);
	CHECK(shared == rt, "process-pending set %#llx, expected %#llx (SIGRTMIN+1)",
	      (unsigned long long)shared, (unsigned long long)rt);
}

static void check_altstack(void)
{
	stack_t ss;

	if (sigaltstack(NULL, &ss)) {
		fail("sigaltstack: %s", strerror(errno));
		return;
	}
	CHECK(ss.ss_sp == altstack_mem && ss.ss_size == sizeof(altstack_mem) && ss.ss_flags == 0,
	      "sigaltstack is sp=%p size=%zu flags=%#x, expected sp=%p size=%zu flags=0", ss.ss_sp,
	      ss.ss_size, ss.ss_flags, (void *)altstack_mem, sizeof(altstack_mem));
}

/* Now let the signals run and see that they behave as set up. */
static void check_delivery(void)
{
	struct sigaction sa;

	block(SIGUSR2, SIG_UNBLOCK);
	CHECK(nev == 1 && ev[0] == -SIGUSR2, "pending SIGUSR2 not delivered on unblock (%d events)", (int)nev);
	CHECK(usr2_mask_ok, "SIGUSR2 handler ran without its sa_mask in force");

	block(SIGRTMIN + 1, SIG_UNBLOCK);
	CHECK(nev == 3, "expected 2 queued SIGRTMIN+1 deliveries, got %d", (int)nev - 1);
	if (nev == 3)
		CHECK(ev[1] == 111 && ev[2] == 222, "SIGRTMIN+1 si_value order %d,%d, expected 111,222",
		      ev[1], ev[2]);
	CHECK(rt_info_ok, "SIGRTMIN+1 siginfo wrong (si_code/si_pid/si_uid)");
	CHECK(rt_mask_ok, "SIGRTMIN+1 handler ran without SIGTERM blocked");

	raise(SIGHUP);
	CHECK(hup_on_altstack, "SA_ONSTACK handler did not run on the alternate stack");
	CHECK(hup_ss_onstack, "sigaltstack() inside the SA_ONSTACK handler lacks SS_ONSTACK");

	raise(SIGWINCH);
	sigaction(SIGWINCH, NULL, &sa);
	CHECK(winch_count == 1, "SIGWINCH handler ran %d times", (int)winch_count);
	CHECK(sa.sa_handler == SIG_DFL, "SA_RESETHAND did not reset SIGWINCH to SIG_DFL");

	/* If the SIG_IGN dispositions were lost these would kill us. */
	raise(SIGPIPE);
	raise(SIGTSTP);
	raise(SIGRTMIN + 5);
}

static void check_all_static(void)
{
	check_dispositions();
	check_blocked();
	check_pending();
	check_altstack();
}

int main(void)
{
	proto_init();
	setup();
	check_all_static();
	if (failures)
		return proto_finish();
	proto_ready();
	proto_wait();
	check_all_static();
	check_delivery();
	return proto_finish();
}
