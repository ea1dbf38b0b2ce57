/*
 * anonfds.c - eventfd, signalfd, timerfd, inotify and epoll across a dump.
 *
 *   anonfds MODE[,MODE...]    MODE: eventfd signalfd timerfd inotify epoll
 *                             shared (fds shared with a child), shared_own
 *                             (shared, and the child adds its own fd to the
 *                             shared epoll), evmodes (eventfds in both
 *                             modes with counts 0, 1, 2 and 2^40,
 *                             blocking or not), flight (timerfds only
 *                             in a unix socket's queue), late (timers a
 *                             slow restore must not eat; not in all), all
 *
 * Each mode sets its fds up before READY and, after SIGUSR1, checks that
 * they behave as before: counters, masks, timers ticking and firing on
 * time, watches reporting with their old numbers, epoll reporting the
 * ready targets with their data.  cwd is a scratch directory.
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int nonblocking(int fd)
{
	return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

static int cloexec(int fd)
{
	return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* read() of a u64, retrying EINTR; returns the read() result. */
static ssize_t read_u64(int fd, uint64_t *v)
{
	ssize_t n;
	while ((n = read(fd, v, sizeof(*v))) < 0 && errno == EINTR)
		;
	return n;
}

static void write_u64(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		fail("write %llu to fd %d: %s", (unsigned long long)v, fd, strerror(errno));
}

/* ---------------- eventfd ---------------- */

static int ev_plain, ev_sem, ev_block;

static void eventfd_setup(void)
{
	ev_plain = eventfd(0, EFD_NONBLOCK);
	ev_sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	ev_block = eventfd(0, 0);
	if (ev_plain < 0 || ev_sem < 0 || ev_block < 0)
		die("eventfd");
	write_u64(ev_plain, 5);
	write_u64(ev_plain, 37);
}

static void eventfd_check(void)
{
	uint64_t v = 0;

	CHECK(nonblocking(ev_plain) && nonblocking(ev_sem) && !nonblocking(ev_block),
	      "eventfd: O_NONBLOCK not as set (%d %d %d)", nonblocking(ev_plain), nonblocking(ev_sem),
	      nonblocking(ev_block));
	CHECK(cloexec(ev_sem) && !cloexec(ev_plain), "eventfd: FD_CLOEXEC not as set");
	CHECK(read_u64(ev_plain, &v) == 8 && v == 42, "eventfd: counter read %llu, expected 42",
	      (unsigned long long)v);
	CHECK(read_u64(ev_plain, &v) < 0 && errno == EAGAIN, "eventfd: second read did not say EAGAIN");
	for (int i = 0; i < 3; i++) {
		v = 0;
		CHECK(read_u64(ev_sem, &v) == 8 && v == 1,
		      "eventfd semaphore: read %d gave %llu, expected 1", i, (unsigned long long)v);
	}
	CHECK(read_u64(ev_sem, &v) < 0 && errno == EAGAIN, "eventfd semaphore: count not used up after 3");
	write_u64(ev_block, 7);
	CHECK(read_u64(ev_block, &v) == 8 && v == 7, "eventfd: blocking one read %llu, expected 7",
	      (unsigned long long)v);
}

/* ---------------- evmodes ----------------
 * Semaphore or counter, for the counts where a probe of the mode (6.1's
 * fdinfo does not say it) has to be careful: 0 and 1 (a read of 1 tells
 * nothing), 2 (the least a read tells on), a large one; blocking or not
 * (a probe must not block, nor leave O_NONBLOCK changed). After the
 * restore each count must be exactly as set, and the mode as made. */

static const struct evm {
	uint64_t count;
	int sem, nonblock;
} evm[] = {
	{ 0, 1, 1 }, { 1, 1, 0 }, { 2, 1, 1 }, { 1ull << 40, 1, 0 },
	{ 0, 0, 0 }, { 1, 0, 1 }, { 2, 0, 0 }, { 1ull << 40, 0, 1 },
};
#define NR_EVM (sizeof(evm) / sizeof(evm[0]))
static int evm_fd[NR_EVM];

static void evmodes_setup(void)
{
	for (size_t i = 0; i < NR_EVM; i++) {
		evm_fd[i] = eventfd(0, (evm[i].sem ? EFD_SEMAPHORE : 0) | (evm[i].nonblock ? EFD_NONBLOCK : 0));
		if (evm_fd[i] < 0)
			die("eventfd");
		if (evm[i].count)
			write_u64(evm_fd[i], evm[i].count);
	}
}

/* The count as the kernel shows it (hex), without touching it. */
static uint64_t fdinfo_count(int fd)
{
	char path[64], line[256];
	unsigned long long v = ~0ull;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "eventfd-count: %llx", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void evmodes_check(void)
{
	for (size_t i = 0; i < NR_EVM; i++) {
		const struct evm *m = &evm[i];
		uint64_t v = 0, c = fdinfo_count(evm_fd[i]);
		CHECK(c == m->count, "evmodes %zu: count %llu, expected %llu", i, (unsigned long long)c,
		      (unsigned long long)m->count);
		CHECK(nonblocking(evm_fd[i]) == m->nonblock, "evmodes %zu: O_NONBLOCK is %d, expected %d", i,
		      nonblocking(evm_fd[i]), m->nonblock);
		/* 2 more, so that the mode shows whatever the count was */
		write_u64(evm_fd[i], 2);
		CHECK(read_u64(evm_fd[i], &v) == 8 && v == (m->sem ? 1 : c + 2),
		      "evmodes %zu: read %llu, expected %llu: the %s came back as a %s", i, (unsigned long long)v,
		      (unsigned long long)(m->sem ? 1 : c + 2), m->sem ? "semaphore" : "counter",
		      m->sem ? "counter" : "semaphore (or another count)");
	}
}

/* ---------------- signalfd ---------------- */

static int sfd;

static void signalfd_setup(void)
{
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigaddset(&m, SIGRTMIN + 1);
	if (sigprocmask(SIG_BLOCK, &m, NULL) < 0)
		die("sigprocmask");
	sfd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd");
	/* pending across the dump, to be read from the signalfd after it */
	if (sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 99 }))
		die("sigqueue");
}

static void signalfd_check(void)
{
	struct signalfd_siginfo si;

	CHECK(nonblocking(sfd) && cloexec(sfd), "signalfd: flags lost");
	memset(&si, 0, sizeof(si));
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == (unsigned)SIGRTMIN + 1 &&
	      si.ssi_int == 99, "signalfd: the signal pending at dump not read (signo %u int %d)",
	      si.ssi_signo, si.ssi_int);
	CHECK(read(sfd, &si, sizeof(si)) < 0 && errno == EAGAIN, "signalfd: a signal before any was sent");
	kill(getpid(), SIGUSR2);
	memset(&si, 0, sizeof(si));
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2,
	      "signalfd: SIGUSR2 sent after restore not read (signo %u)", si.ssi_signo);
	sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 1234 });
	memset(&si, 0, sizeof(si));
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == (unsigned)SIGRTMIN + 1 &&
	      si.ssi_int == 1234, "signalfd: SIGRTMIN+1 not read with its value (signo %u int %d)",
	      si.ssi_signo, si.ssi_int);
	/* SIGHUP is not in its mask: a blocked SIGHUP stays pending, unread. */
	sigset_t h;
	sigemptyset(&h);
	sigaddset(&h, SIGHUP);
	sigprocmask(SIG_BLOCK, &h, NULL);
	kill(getpid(), SIGHUP);
	CHECK(read(sfd, &si, sizeof(si)) < 0 && errno == EAGAIN, "signalfd: read SIGHUP, not in its mask");
	struct timespec zero = { 0, 0 };
	sigtimedwait(&h, NULL, &zero);
}

/* ---------------- timerfd ---------------- */

/* The one-shot's length, ANONFDS_TIMER_S seconds (default 4): it must
 * outlast the time the program runs between its setup and its check, a
 * chain's two dumps and restores included, which a slow VM stretches
 * (the harness sets it from its own timeout). The in-flight one-shot is
 * a second shorter, the absolute timer due a second later. */
static double timer_s(void)
{
	const char *v = getenv("ANONFDS_TIMER_S");
	double s = v ? atof(v) : 0;
	return s >= 2 ? s : 4.0;
}
#define ONESHOT_S timer_s()
static int tm_periodic, tm_oneshot, tm_expired, tm_abs;
static double tm_armed_at;
static struct timespec tm_abs_due;

static double ts_d(struct timespec t)
{
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void timerfd_setup(void)
{
	struct itimerspec per = { { 0, 50000000 }, { 0, 50000000 } };
	struct itimerspec one = { { 0, 0 }, { (time_t)ONESHOT_S, 0 } };
	struct itimerspec soon = { { 0, 0 }, { 0, 10000000 } };
	struct itimerspec abs = { { 0, 0 }, { 0, 0 } };

	tm_periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	tm_oneshot = timerfd_create(CLOCK_MONOTONIC, 0);
	tm_expired = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	tm_abs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	if (tm_periodic < 0 || tm_oneshot < 0 || tm_expired < 0 || tm_abs < 0)
		die("timerfd_create");
	clock_gettime(CLOCK_REALTIME, &abs.it_value);
	abs.it_value.tv_sec += (time_t)ONESHOT_S + 1;
	tm_abs_due = abs.it_value;
	if (timerfd_settime(tm_periodic, 0, &per, NULL) || timerfd_settime(tm_oneshot, 0, &one, NULL) ||
	    timerfd_settime(tm_expired, 0, &soon, NULL) ||
	    timerfd_settime(tm_abs, TFD_TIMER_ABSTIME, &abs, NULL))
		die("timerfd_settime");
	tm_armed_at = now_mono();
	msleep(100);	/* tm_expired fires, unread */
}

static void timerfd_check(void)
{
	struct itimerspec cur;
	uint64_t v = 0;
	double t1 = now_mono();

	/* An expiry not read at dump is still there to read. */
	CHECK(read_u64(tm_expired, &v) == 8 && v == 1, "timerfd: expired one-shot reads %llu (%s), expected 1",
	      (unsigned long long)v, strerror(errno));
	timerfd_gettime(tm_expired, &cur);
	CHECK(ts_d(cur.it_value) == 0, "timerfd: expired one-shot is armed again");

	/* The periodic timer keeps its period and keeps ticking. */
	timerfd_gettime(tm_periodic, &cur);
	CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 50000000,
	      "timerfd: period is %.3f s, expected 0.050", ts_d(cur.it_interval));
	read_u64(tm_periodic, &v);	/* what piled up */
	double t0 = now_mono();
	msleep(500);
	v = 0;
	ssize_t n = read_u64(tm_periodic, &v);
	double want = (now_mono() - t0) / 0.05;
	CHECK(n == 8 && v >= want - 2 && v <= want + 2,
	      "timerfd: periodic 50 ms timer ticked %llu times in %.3f s", (unsigned long long)v, want * 0.05);

	/* The one-shot goes on with the time it had left at dump: neither
	 * fired already nor lost. The time spent dumped does not count, so
	 * more is left than ONESHOT_S minus the time since it was armed. */
	timerfd_gettime(tm_oneshot, &cur);
	double left = ts_d(cur.it_value);
	double naive = ONESHOT_S - (now_mono() - tm_armed_at);
	CHECK(left > 0 && left <= ONESHOT_S, "timerfd: one-shot has %.3f s left (armed for %.1f)", left, ONESHOT_S);
	CHECK(left > naive + 0.3, "timerfd: one-shot left %.3f s, not more than %.3f: time spent dumped "
	      "was counted", left, naive);
	struct pollfd p = { tm_oneshot, POLLIN, 0 };
	CHECK(poll(&p, 1, 0) == 0, "timerfd: one-shot fired too early");
	double t2 = now_mono();
	int r = poll(&p, 1, (int)((left + 2) * 1000));
	double took = now_mono() - t2;
	CHECK(r == 1 && took > left - 0.3 && took < left + 0.5,
	      "timerfd: one-shot with %.3f s left fired after %.3f s (poll %d)", left, took, r);
	CHECK(read_u64(tm_oneshot, &v) == 8 && v == 1, "timerfd: one-shot read %llu", (unsigned long long)v);

	/* The absolute realtime timer is still armed and fires, or, if the
	 * wall clock passed its time meanwhile (the time dumped counts for
	 * it), has fired. */
	struct timespec now_rt;
	timerfd_gettime(tm_abs, &cur);
	clock_gettime(CLOCK_REALTIME, &now_rt);
	left = ts_d(cur.it_value);
	double due_in = ts_d(tm_abs_due) - ts_d(now_rt);
	if (due_in > 0.1)
		CHECK(left > 0 && left <= ONESHOT_S + 1 && left < due_in + 0.1,
		      "timerfd: absolute timer has %.3f s left, due in %.3f", left, due_in);
	p.fd = tm_abs;
	r = poll(&p, 1, (int)((left + 2) * 1000));
	CHECK(r == 1 && read_u64(tm_abs, &v) == 8 && v == 1, "timerfd: absolute timer did not fire once (read %llu)",
	      (unsigned long long)v);
	(void)t1;
}

/* ---------------- late: timers a slow restore must not eat ----------------
 *
 * For a restore made slow on purpose (anon_fds.timerfd_slow): a one-shot
 * with LATE_ONE_S left and a periodic timer that ticked once, unread,
 * and is due again LATE_PER_S after. Armed when the restore began, both
 * would expire while it runs; armed as the tree resumes, the one-shot
 * has not fired when the program runs again and fires after the time it
 * had left, and the periodic one has its one unread expiry, no more. An
 * absolute realtime timer (TFD_TIMER_CANCEL_ON_SET too) due LATE_ABS_S
 * after setup is due as long after the restore as it had left, with its
 * flags. */

#define LATE_ONE_S 5
static void ep_add(int e, int fd, uint32_t events, uint64_t data);
#define LATE_PER_S 6
#define LATE_ABS_S 7
static int late_one, late_per, late_ep, late_abs;

static void late_setup(void)
{
	struct itimerspec one = { { 0, 0 }, { LATE_ONE_S, 0 } };
	struct itimerspec per = { { LATE_PER_S, 0 }, { 0, 100000000 } };

	late_one = timerfd_create(CLOCK_MONOTONIC, 0);
	late_per = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	if (late_one < 0 || late_per < 0 || timerfd_settime(late_one, 0, &one, NULL) ||
	    timerfd_settime(late_per, 0, &per, NULL))
		die("late timerfds");
	struct itimerspec abs = { { 0, 0 }, { 0, 0 } };
	late_abs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	clock_gettime(CLOCK_REALTIME, &abs.it_value);
	abs.it_value.tv_sec += LATE_ABS_S;
	if (late_abs < 0 || timerfd_settime(late_abs, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &abs, NULL))
		die("late absolute timerfd");
	late_ep = epoll_create1(0);
	if (late_ep < 0)
		die("epoll_create1");
	ep_add(late_ep, late_one, EPOLLIN, 0x1a7e);
	msleep(300);	/* late_per's first expiry, unread */
}

/* Waits for a timer with left seconds left: it must not be ready now, and
 * fire within generous bounds of that (a loaded machine). */
static void late_fires(int fd, double left, const char *what)
{
	struct pollfd p = { fd, POLLIN, 0 };
	CHECK(poll(&p, 1, 0) == 0, "late: %s had fired when the program ran again", what);
	double t0 = now_mono();
	int r = poll(&p, 1, (int)((left + 5) * 1000));
	double took = now_mono() - t0;
	CHECK(r == 1 && took > left - 0.5, "late: %s with %.3f s left fired after %.3f s (poll %d)", what,
	      left, took, r);
}

static void late_check(void)
{
	struct itimerspec cur;
	uint64_t v = 0;

	/* the absolute timer first: it is due last, and is waited for last */
	timerfd_gettime(late_abs, &cur);
	double aleft = ts_d(cur.it_value), at = now_mono();
	struct pollfd ap = { late_abs, POLLIN, 0 };
	CHECK(aleft > 0 && aleft <= LATE_ABS_S && poll(&ap, 1, 0) == 0,
	      "late: absolute timer has %.3f s left (due %d s after setup)", aleft, LATE_ABS_S);

	timerfd_gettime(late_one, &cur);
	double left = ts_d(cur.it_value);
	CHECK(left > 0 && left <= LATE_ONE_S, "late: one-shot has %.3f s left (armed for %d)", left, LATE_ONE_S);
	timerfd_gettime(late_per, &cur);
	double pleft = ts_d(cur.it_value);
	CHECK(pleft > 0 && pleft <= LATE_PER_S && ts_d(cur.it_interval) == LATE_PER_S,
	      "late: periodic timer has %.3f s left, period %.3f (armed for %d)", pleft,
	      ts_d(cur.it_interval), LATE_PER_S);
	ssize_t n = read_u64(late_per, &v);
	CHECK(n == 8 && v == 1, "late: periodic timer reads %llu expiries (%s), expected its 1 unread",
	      (unsigned long long)v, n == 8 ? "read" : strerror(errno));
	struct epoll_event ev;
	CHECK(epoll_wait(late_ep, &ev, 1, 0) == 0, "late: epoll reports the one-shot before it fired");
	if (left > 0)
		late_fires(late_one, left, "one-shot");
	CHECK(epoll_wait(late_ep, &ev, 1, 0) == 1 && ev.data.u64 == 0x1a7e,
	      "late: epoll does not report the one-shot once it fired");
	CHECK(read_u64(late_one, &v) == 8 && v == 1, "late: one-shot read %llu", (unsigned long long)v);
	timerfd_gettime(late_per, &cur);
	pleft = ts_d(cur.it_value);
	if (pleft > 0)
		late_fires(late_per, pleft, "periodic timer");
	CHECK(read_u64(late_per, &v) == 8 && v == 1, "late: periodic timer read %llu once due",
	      (unsigned long long)v);

	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", late_abs);
	int f = open(path, O_RDONLY);
	ssize_t len = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	buf[len > 0 ? len : 0] = 0;
	if (f >= 0)
		close(f);
	const char *sf = strstr(buf, "settime flags:");
	unsigned flags = 0;
	CHECK(sf && sscanf(sf, "settime flags: %o", &flags) == 1 &&
	      flags == (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET),
	      "late: the absolute timer's settime flags are %#o, not TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET",
	      flags);
	double rest = aleft - (now_mono() - at);
	int r = poll(&ap, 1, (int)((rest > 0 ? rest + 5 : 5) * 1000));
	double took = now_mono() - at;
	CHECK(r == 1 && took > aleft - 0.5, "late: absolute timer with %.3f s left fired after %.3f s (poll %d)",
	      aleft, took, r);
}

/* ---------------- flight: timerfds only in a socket's queue ----------------
 *
 * A one-shot and a periodic timer with unread expiries, sent over a
 * unix socket (SCM_RIGHTS) and closed: no process holds them, only the
 * queue. After the restore they come out armed (once: the one-shot
 * fires once, the periodic one ticks at its period) with the expiries. */

#define FLIGHT_ONE_S ((int)ONESHOT_S - 1)
static int fl_sk[2];

static void flight_setup(void)
{
	struct itimerspec one = { { 0, 0 }, { FLIGHT_ONE_S, 0 } };
	struct itimerspec per = { { 0, 50000000 }, { 0, 50000000 } };
	int tm[2] = { timerfd_create(CLOCK_MONOTONIC, 0), timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK) };
	char cbuf[CMSG_SPACE(sizeof(tm))] = { 0 };
	struct iovec iov = { "timers", 6 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	if (tm[0] < 0 || tm[1] < 0 || timerfd_settime(tm[0], 0, &one, NULL) ||
	    timerfd_settime(tm[1], 0, &per, NULL) || socketpair(AF_UNIX, SOCK_DGRAM, 0, fl_sk))
		die("flight setup");
	msleep(200);	/* a few expiries of the periodic timer, unread */
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(tm));
	memcpy(CMSG_DATA(c), tm, sizeof(tm));
	if (sendmsg(fl_sk[0], &mh, 0) != 6)
		die("sendmsg");
	close(tm[0]);
	close(tm[1]);
}

static void flight_check(void)
{
	char buf[16], cbuf[CMSG_SPACE(sizeof(int) * 2)];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct itimerspec cur;
	uint64_t v = 0;
	int tm[2];

	struct cmsghdr *c = recvmsg(fl_sk[1], &mh, MSG_DONTWAIT) == 6 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(tm))) {
		fail("flight: the message with the timerfds did not come back (%s)", strerror(errno));
		return;
	}
	memcpy(tm, CMSG_DATA(c), sizeof(tm));
	timerfd_gettime(tm[1], &cur);
	CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 50000000,
	      "flight: period is %.3f s, expected 0.050", ts_d(cur.it_interval));
	CHECK(read_u64(tm[1], &v) == 8 && v >= 1, "flight: periodic timer reads %llu expiries (%s)",
	      (unsigned long long)v, strerror(errno));
	double t0 = now_mono();
	msleep(500);
	v = 0;
	ssize_t n = read_u64(tm[1], &v);
	double want = (now_mono() - t0) / 0.05;
	CHECK(n == 8 && v >= want / 2 && v <= want + 3,
	      "flight: periodic 50 ms timer ticked %llu times in %.3f s", (unsigned long long)v, want * 0.05);
	timerfd_gettime(tm[0], &cur);
	double left = ts_d(cur.it_value);
	CHECK(left > 0 && left <= FLIGHT_ONE_S, "flight: one-shot has %.3f s left (armed for %d)", left,
	      FLIGHT_ONE_S);
	struct pollfd p = { tm[0], POLLIN, 0 };
	CHECK(poll(&p, 1, (int)((left + 5) * 1000)) == 1 && read_u64(tm[0], &v) == 8 && v == 1,
	      "flight: one-shot did not fire once (read %llu)", (unsigned long long)v);
}

/* ---------------- inotify ---------------- */

static int ify, wd_dir, wd_file;

static void inotify_setup(void)
{
	if (mkdir("watched", 0755) < 0 || mkdir("unwatched", 0755) < 0)
		die("mkdir");
	int f = open("watched/file.txt", O_CREAT | O_WRONLY, 0644);
	if (f < 0)
		die("create watched/file.txt");
	close(f);
	ify = inotify_init1(IN_NONBLOCK);
	if (ify < 0)
		die("inotify_init1");
	/* A removed watch first, so the numbers are not simply 1, 2. */
	int gone = inotify_add_watch(ify, "unwatched", IN_CREATE);
	wd_dir = inotify_add_watch(ify, "watched", IN_CREATE | IN_DELETE);
	inotify_rm_watch(ify, gone);
	wd_file = inotify_add_watch(ify, "watched/file.txt", IN_MODIFY);
	if (gone < 0 || wd_dir < 0 || wd_file < 0)
		die("inotify_add_watch");
	char buf[4096];	/* drop the IN_IGNORED of the removed watch */
	while (read(ify, buf, sizeof(buf)) > 0)
		;
}

/* Reads the next event: its wd, mask and name. */
static int next_event(int *wd, uint32_t *mask, char *name, size_t len)
{
	static char buf[4096] __attribute__((aligned(8)));
	static ssize_t have, off;
	struct pollfd p = { ify, POLLIN, 0 };

	if (off >= have) {
		if (poll(&p, 1, 2000) != 1)
			return -1;
		have = read(ify, buf, sizeof(buf));
		off = 0;
		if (have <= 0)
			return -1;
	}
	struct inotify_event *e = (struct inotify_event *)(buf + off);
	*wd = e->wd;
	*mask = e->mask;
	snprintf(name, len, "%s", e->len ? e->name : "");
	off += sizeof(*e) + e->len;
	return 0;
}

static void inotify_check(void)
{
	int wd, f;
	uint32_t mask;
	char name[256], buf[4096];

	CHECK(nonblocking(ify), "inotify: O_NONBLOCK lost");
	CHECK(read(ify, buf, sizeof(buf)) < 0 && errno == EAGAIN, "inotify: events before any change");
	f = open("unwatched/x", O_CREAT | O_WRONLY, 0644);
	close(f);
	f = open("watched/new.txt", O_CREAT | O_WRONLY, 0644);
	close(f);
	CHECK(next_event(&wd, &mask, name, sizeof(name)) == 0 && wd == wd_dir && (mask & IN_CREATE) &&
	      !strcmp(name, "new.txt"), "inotify: creating watched/new.txt gave wd %d mask %#x name '%s' "
	      "(expected wd %d IN_CREATE new.txt)", wd, mask, name, wd_dir);
	f = open("watched/file.txt", O_WRONLY | O_APPEND);
	if (write(f, "x", 1) != 1)
		fail("inotify: write watched/file.txt: %s", strerror(errno));
	close(f);
	wd = -1;
	CHECK(next_event(&wd, &mask, name, sizeof(name)) == 0 && wd == wd_file && (mask & IN_MODIFY),
	      "inotify: writing watched/file.txt gave wd %d mask %#x (expected wd %d IN_MODIFY)", wd,
	      mask, wd_file);
	unlink("watched/new.txt");
	wd = -1;
	CHECK(next_event(&wd, &mask, name, sizeof(name)) == 0 && wd == wd_dir && (mask & IN_DELETE),
	      "inotify: deleting watched/new.txt gave wd %d mask %#x", wd, mask);
	CHECK(read(ify, buf, sizeof(buf)) < 0 && errno == EAGAIN, "inotify: an event from the unwatched dir");
	int wd_new = inotify_add_watch(ify, "unwatched", IN_CREATE);
	CHECK(wd_new > 0 && wd_new != wd_dir && wd_new != wd_file, "inotify: new watch got wd %d", wd_new);
}

/* ---------------- epoll ---------------- */

enum { D_P1 = 0x1111, D_P2 = 0x2222, D_EV = 0xe1e1, D_ET = 0xe2e2, D_TM = 0x7777, D_NEST = 0xabcdef0123ULL };
static int ep, ep_outer, p1[2], p2[2], p3[2], ep_ev, ep_et, ep_tm;

static void ep_add(int e, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	if (epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
}

static void epoll_setup(void)
{
	if (pipe(p1) || pipe(p2) || pipe(p3))
		die("pipe");
	ep_ev = eventfd(0, EFD_NONBLOCK);
	ep_et = eventfd(0, EFD_NONBLOCK);
	ep_tm = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ep_outer = epoll_create1(0);
	if (ep_ev < 0 || ep_et < 0 || ep_tm < 0 || ep < 0 || ep_outer < 0)
		die("epoll setup");
	ep_add(ep, p1[0], EPOLLIN, D_P1);
	ep_add(ep, p2[0], EPOLLIN, D_P2);
	ep_add(ep, ep_ev, EPOLLIN, D_EV);
	ep_add(ep, ep_et, EPOLLIN | EPOLLET, D_ET);
	ep_add(ep, ep_tm, EPOLLIN, D_TM);
	ep_add(ep_outer, ep, EPOLLIN, D_NEST);	/* an epoll watching an epoll */
	if (write(p2[1], "ready", 5) != 5 || write(p3[1], "unwatched", 9) != 9)
		die("write pipe");
}

/* The data of what epoll_wait reports now, as a bit set over the D_*. */
static unsigned ready_set(int e, int timeout)
{
	struct epoll_event evs[16];
	unsigned set = 0;
	int n = epoll_wait(e, evs, 16, timeout);
	for (int i = 0; i < n; i++) {
		switch (evs[i].data.u64) {
		case D_P1: set |= 1; break;
		case D_P2: set |= 2; break;
		case D_EV: set |= 4; break;
		case D_ET: set |= 8; break;
		case D_TM: set |= 16; break;
		case D_NEST: set |= 32; break;
		default: fail("epoll: reported unknown data %#llx", (unsigned long long)evs[i].data.u64);
		}
	}
	return set;
}

static void epoll_check(void)
{
	unsigned s;
	uint64_t v;
	char buf[16];

	CHECK(cloexec(ep) && !cloexec(ep_outer), "epoll: FD_CLOEXEC not as set");
	s = ready_set(ep, 0);
	CHECK(s == 2, "epoll: at first reports set %#x, expected only the readable pipe (0x2)", s);
	s = ready_set(ep_outer, 0);
	CHECK(s == 32, "epoll: outer epoll reports %#x, expected the inner one (0x20)", s);
	if (write(p1[1], "x", 1) != 1)
		fail("epoll: write p1");
	write_u64(ep_ev, 1);
	s = ready_set(ep, 0);
	CHECK(s == 7, "epoll: reports %#x after p1 and the eventfd became ready, expected 0x7", s);
	write_u64(ep_et, 1);
	s = ready_set(ep, 0);
	CHECK(s == 15, "epoll: reports %#x after the edge-triggered eventfd too, expected 0xf", s);
	s = ready_set(ep, 0);
	CHECK(s == 7, "epoll: edge-triggered eventfd reported twice (%#x)", s);
	struct itimerspec soon = { { 0, 0 }, { 0, 20000000 } };
	timerfd_settime(ep_tm, 0, &soon, NULL);
	msleep(100);
	s = ready_set(ep, 0);
	CHECK(s & 16, "epoll: armed timerfd not reported (%#x)", s);
	read(p1[0], buf, sizeof(buf));
	read(p2[0], buf, sizeof(buf));
	read_u64(ep_ev, &v);
	read_u64(ep_tm, &v);
	s = ready_set(ep, 0);
	CHECK(s == 0, "epoll: reports %#x after everything was read", s);
	s = ready_set(ep_outer, 0);
	CHECK(s == 0, "epoll: outer reports %#x with the inner one idle", s);
}

/* ---------------- shared with a child ---------------- */

static int sh_ev, sh_ep, sh_tm, sh_go[2], sh_res[2], sh_own, sh_with_own;
static pid_t sh_child;

static void shared_child(void)
{
	char c, msg[256] = "ok";
	struct epoll_event ev;
	uint64_t v = 0;

	ssize_t n;
	int r;

	/* shared_own: a target of the shared epoll that only the child has
	 * (at a number the parent never uses) */
	if (sh_with_own) {
		int e = eventfd(0, EFD_NONBLOCK);
		sh_own = fcntl(e, F_DUPFD, 300);
		close(e);
		ev.events = EPOLLIN;
		ev.data.u64 = 0xc1d;
		if (e < 0 || sh_own < 0 || epoll_ctl(sh_ep, EPOLL_CTL_ADD, sh_own, &ev) < 0)
			snprintf(msg, sizeof(msg), "child: setup: %s", strerror(errno));
	}
	write_all(sh_res[1], "", 1);
	while ((n = read(sh_go[0], &c, 1)) < 0 && errno == EINTR)
		;
	while ((r = epoll_wait(sh_ep, &ev, 1, 5000)) < 0 && errno == EINTR)
		;
	if (n != 1) {
		snprintf(msg, sizeof(msg), "child: no go");
	} else if (r != 1 || ev.data.u64 != 0x5eed) {
		snprintf(msg, sizeof(msg), "child: shared epoll did not report the eventfd");
	} else if (read_u64(sh_ev, &v) != 8 || v != 10) {
		snprintf(msg, sizeof(msg), "child: shared eventfd read %llu, expected 10", (unsigned long long)v);
	} else if (read_u64(sh_tm, &v) != 8 || v < 1) {
		snprintf(msg, sizeof(msg), "child: shared timerfd read %llu", (unsigned long long)v);
	} else if (sh_with_own && (write_u64(sh_own, 1), epoll_wait(sh_ep, &ev, 1, 1000) != 1 ||
				   ev.data.u64 != 0xc1d)) {
		snprintf(msg, sizeof(msg), "child: shared epoll does not report the child's own eventfd");
	} else if (sh_with_own && (read_u64(sh_own, &v) != 8 || v != 1)) {
		snprintf(msg, sizeof(msg), "child: own eventfd read %llu", (unsigned long long)v);
	}
	write_all(sh_res[1], msg, strlen(msg) + 1);
	_exit(0);
}

static void shared_own_setup(void)
{
	sh_with_own = 1;
}

static void shared_setup(void)
{
	struct itimerspec per = { { 0, 100000000 }, { 0, 100000000 } };

	sh_ev = eventfd(10, 0);
	sh_ep = epoll_create1(0);
	sh_tm = timerfd_create(CLOCK_MONOTONIC, 0);
	if (sh_ev < 0 || sh_ep < 0 || sh_tm < 0 || pipe(sh_go) || pipe(sh_res) ||
	    timerfd_settime(sh_tm, 0, &per, NULL))
		die("shared setup");
	ep_add(sh_ep, sh_ev, EPOLLIN, 0x5eed);
	sh_child = fork();
	if (sh_child < 0)
		die("fork");
	if (sh_child == 0)
		shared_child();
	char c;
	if (read(sh_res[0], &c, 1) != 1)
		die("child setup");
}

static int count_tfd_lines(int fd)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY), n = 0;
	ssize_t len = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (len < 0)
		return -1;
	buf[len] = 0;
	for (char *p = buf; (p = strstr(p, "tfd:")); p++)
		n++;
	return n;
}

static void shared_own_check(void)
{
}

static void shared_check(void)
{
	char msg[256] = "";
	uint64_t v;
	int status;
	struct epoll_event ev;

	int want = 1 + sh_with_own;
	CHECK(count_tfd_lines(sh_ep) == want, "shared: epoll watches %d files, expected %d",
	      count_tfd_lines(sh_ep), want);
	if (write(sh_go[1], "g", 1) != 1)
		fail("shared: can't start the child");
	ssize_t n;
	while ((n = read(sh_res[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
		;
	CHECK(n > 0 && !strcmp(msg, "ok"), "shared: %s", n > 0 ? msg : "no answer from the child");
	/* The child took the count: this is the same eventfd. */
	fcntl(sh_ev, F_SETFL, O_NONBLOCK);
	CHECK(read_u64(sh_ev, &v) < 0 && errno == EAGAIN, "shared: parent's eventfd still has a count");
	CHECK(epoll_wait(sh_ep, &ev, 1, 0) == 0, "shared: epoll reports an empty eventfd");
	write_u64(sh_ev, 1);
	CHECK(epoll_wait(sh_ep, &ev, 1, 0) == 1 && ev.data.u64 == 0x5eed, "shared: epoll does not report the eventfd");
	CHECK(waitpid(sh_child, &status, 0) == sh_child && WIFEXITED(status) && !WEXITSTATUS(status),
	      "shared: child did not exit cleanly");
}

/* ---------------- main ---------------- */

static const struct mode {
	const char *name;
	void (*setup)(void), (*check)(void);
} modes[] = {
	{ "eventfd", eventfd_setup, eventfd_check },
	{ "evmodes", evmodes_setup, evmodes_check },
	{ "signalfd", signalfd_setup, signalfd_check },
	{ "inotify", inotify_setup, inotify_check },
	{ "epoll", epoll_setup, epoll_check },
	{ "shared_own", shared_own_setup, shared_own_check },	/* before shared: sets its flag */
	{ "shared", shared_setup, shared_check },
	{ "flight", flight_setup, flight_check },
	{ "timerfd", timerfd_setup, timerfd_check },	/* it waits for its timers */
	{ "late", late_setup, late_check },	/* not in all: for a slow restore */
};
#define NR_MODES (sizeof(modes) / sizeof(modes[0]))

int main(int argc, char **argv)
{
	int on[NR_MODES] = { 0 };
	char *list = argc > 1 ? argv[1] : "all";

	for (char *m = strtok(list, ","); m; m = strtok(NULL, ",")) {
		size_t i;
		for (i = 0; i < NR_MODES; i++)
			if ((!strcmp(m, "all") && strcmp(modes[i].name, "late")) || !strcmp(m, modes[i].name) ||
			    (!strcmp(m, "shared_own") && !strcmp(modes[i].name, "shared")))
				on[i] = 1;
		if (strcmp(m, "all")) {
			for (i = 0; i < NR_MODES && strcmp(m, modes[i].name); i++)
				;
			if (i == NR_MODES) {
				sayf("FAIL: setup: unknown mode %s\n", m);
				return 2;
			}
		}
	}
	proto_init();
	for (size_t i = 0; i < NR_MODES; i++)
		if (on[i])
			modes[i].setup();
	proto_ready();
	proto_wait();
	for (size_t i = 0; i < NR_MODES; i++)
		if (on[i])
			modes[i].check();
	return proto_finish();
}
