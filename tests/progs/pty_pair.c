/* pty_pair: a tree that owns a pty pair.
 *
 * The root holds the master. Its child C makes a session whose controlling
 * terminal is the slave, and a grandchild G (its own process group, the
 * terminal's foreground group) answers on the slave: "ping." gets
 * "E:PING;", "?." gets "S<sid>P<pgrp>;" as G sees its terminal, written
 * through /dev/tty (opened by G as fd 3), and the
 * terminal's interrupt character (set to ^G) makes the kernel send SIGINT
 * to G, which answers "INT;". The pty is in a raw-ish mode with ISIG, a
 * custom window size, and locked (TIOCSPTLCK) once the slave is open.
 *
 * A second pair stays in the root, both ends: master in packet mode, slave
 * exclusive, raw with echo and output processing (ONLCR); bytes are left
 * in flight both ways before READY ("abc" typed into the master, echoed,
 * not read by the slave's reader; "x\n" written by the slave, not read at
 * the master) and must come out exactly so after restore.
 *
 * Prints "PIDS C G", then READY; after SIGUSR1 it checks that the pair
 * still talks, that termios, window size and lock state are as set, and
 * that C's controlling terminal is the pair's slave with G in the
 * foreground; prints PASS or FAIL: reason, kills C and G and exits. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#define WS_ROW 33
#define WS_COL 97
#define WS_XPIX 123
#define INTR_CHAR 0x07

static volatile sig_atomic_t go;
static int master = -1, master2 = -1, slave2 = -1;
static pid_t child, grand;
static bool use_lock = true;	/* "nolock": CRIU can't restore a locked pty with a ctty */

static void on_usr1(int sig) { (void)sig; go = 1; }

static void on_int(int sig)
{
	(void)sig;
	if (write(1, "INT;", 4) < 0)
		_exit(3);
}

/* ---- G: the terminal's foreground job ---- */

static void reply(const char *msg, size_t n)
{
	char out[160];
	int len;
	if (n == 1 && msg[0] == '?') {
		/* through /dev/tty (fd 3), which must still be this terminal */
		len = snprintf(out, sizeof(out), "S%dP%d;", (int)tcgetsid(3), (int)tcgetpgrp(3));
		if (write(3, out, len) != len)
			_exit(3);
		return;
	} else {
		len = snprintf(out, sizeof(out), "E:");
		for (size_t i = 0; i < n && len < (int)sizeof(out) - 2; i++)
			out[len++] = toupper((unsigned char)msg[i]);
		out[len++] = ';';
	}
	if (write(1, out, len) != len)
		_exit(3);
}

static void grand_main(void)
{
	char msg[128], c;
	size_t n = 0;

	signal(SIGINT, on_int);
	while (tcgetpgrp(0) != getpid())
		usleep(1000);
	int tty = open("/dev/tty", O_RDWR);
	if (tty < 0 || dup2(tty, 3) < 0)
		_exit(2);
	if (tty != 3)
		close(tty);
	char hello[32];
	int len = snprintf(hello, sizeof(hello), "G%d;", (int)getpid());
	if (write(1, hello, len) != len)
		_exit(3);
	for (;;) {
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(0);
		if (c == '.') {
			reply(msg, n);
			n = 0;
		} else if (n < sizeof(msg)) {
			msg[n++] = c;
		}
	}
}

/* ---- C: the session leader ---- */

static void child_main(const char *pts)
{
	close(master);
	setsid();
	int fd = open(pts, O_RDWR);	/* becomes our controlling terminal */
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
		_exit(2);
	close(fd);
	pid_t g = fork();
	if (g == 0) {
		setpgid(0, 0);
		grand_main();
	}
	setpgid(g, g);
	if (tcsetpgrp(0, g) < 0)
		_exit(2);
	for (;;)
		pause();
}

/* ---- the root ---- */

/* Reads from the master until `;` (5 s at most). */
static int read_answer(char *buf, size_t size)
{
	size_t n = 0;
	while (n < size - 1) {
		struct pollfd p = { master, POLLIN, 0 };
		int r = poll(&p, 1, 5000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ssize_t k = read(master, buf + n, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if (buf[n++] == ';')
			break;
	}
	buf[n] = 0;
	return n > 0 && buf[n - 1] == ';' ? 0 : -1;
}

static int ask(const char *msg, const char *want, char *why, size_t whylen)
{
	char got[160];
	if (write(master, msg, strlen(msg)) != (ssize_t)strlen(msg)) {
		snprintf(why, whylen, "write %s to the master: %s", msg, strerror(errno));
		return -1;
	}
	if (read_answer(got, sizeof(got)) < 0 || strcmp(got, want)) {
		snprintf(why, whylen, "sent '%s', expected '%s', got '%s'", msg, want, got);
		return -1;
	}
	return 0;
}

static int set_terminal(void)
{
	struct termios tio;
	if (tcgetattr(master, &tio) < 0)
		return -1;
	tio.c_lflag &= ~(ECHO | ICANON | IEXTEN);
	tio.c_lflag |= ISIG;
	tio.c_iflag &= ~(ICRNL | IXON);
	tio.c_oflag &= ~OPOST;
	tio.c_cc[VINTR] = INTR_CHAR;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(master, TCSANOW, &tio) < 0)
		return -1;
	struct winsize ws = { WS_ROW, WS_COL, WS_XPIX, 45 };
	return ioctl(master, TIOCSWINSZ, &ws);
}

static long stat_field(pid_t pid, int n)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2;	/* field 3, the state */
	for (int i = 3; i < n; i++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	return strtol(p, NULL, 10);
}

static int check_after(char *why, size_t len)
{
	char want[64];
	struct termios tio;
	struct winsize ws;
	int lock = 0;
	unsigned ptn = 0;

	if (ask("after.", "E:AFTER;", why, len) < 0)
		return -1;
	snprintf(want, sizeof(want), "S%dP%d;", (int)child, (int)grand);
	if (ask("?.", want, why, len) < 0)
		return -1;
	if (tcgetattr(master, &tio) < 0 || (tio.c_lflag & (ECHO | ICANON)) || !(tio.c_lflag & ISIG) ||
	    (tio.c_oflag & OPOST) || tio.c_cc[VINTR] != INTR_CHAR || tio.c_cc[VMIN] != 1) {
		snprintf(why, len, "termios not restored (lflag %#x oflag %#x intr %#x)", tio.c_lflag,
			 tio.c_oflag, tio.c_cc[VINTR]);
		return -1;
	}
	if (ioctl(master, TIOCGWINSZ, &ws) < 0 || ws.ws_row != WS_ROW || ws.ws_col != WS_COL ||
	    ws.ws_xpixel != WS_XPIX) {
		snprintf(why, len, "window size %dx%d (%d px), expected %dx%d (%d px)", ws.ws_row,
			 ws.ws_col, ws.ws_xpixel, WS_ROW, WS_COL, WS_XPIX);
		return -1;
	}
	if (ioctl(master, TIOCGPTLCK, &lock) < 0 || lock != use_lock) {
		snprintf(why, len, "the pty's lock is %d, expected %d", lock, use_lock);
		return -1;
	}
	if (ioctl(master, TIOCGPTN, &ptn) < 0)
		return -1;
	long tty_nr = stat_field(child, 7), tpgid = stat_field(grand, 8);
	if (tty_nr != (long)makedev(136, ptn)) {
		snprintf(why, len, "controlling terminal of %d is %#lx, not /dev/pts/%u", (int)child,
			 tty_nr, ptn);
		return -1;
	}
	if (tpgid != grand) {
		snprintf(why, len, "foreground group of /dev/pts/%u is %ld, not %d", ptn, tpgid, (int)grand);
		return -1;
	}
	/* the interrupt character still makes SIGINT for the foreground */
	char intr[2] = { INTR_CHAR, 0 };
	if (ask(intr, "INT;", why, len) < 0)
		return -1;
	return ask("bye.", "E:BYE;", why, len);
}

/* Reads want from fd (master2 in packet mode: status bytes stripped). */
static int read_exact(int fd, bool packet, const char *want, char *why, size_t len)
{
	char got[256], buf[256];
	size_t n = 0, w = strlen(want);
	while (n < w) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 3000) <= 0)
			break;
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k <= 0)
			break;
		size_t from = packet ? 1 : 0;
		if (packet && buf[0] != TIOCPKT_DATA)
			continue;
		for (size_t i = from; i < (size_t)k && n < sizeof(got) - 1; i++)
			got[n++] = buf[i];
	}
	got[n] = 0;
	if (n != w || memcmp(got, want, w)) {
		snprintf(why, len, "second pty: expected '%s' (%zu bytes) on its %s, got '%s' (%zu bytes)",
			 want, w, fd == master2 ? "master" : "slave", got, n);
		return -1;
	}
	return 0;
}

static bool queued(int fd, int want)
{
	int n = 0;
	for (int i = 0; i < 2000; i++) {
		if (ioctl(fd, FIONREAD, &n) == 0 && n == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* The second pair, with bytes left in flight. */
static int setup_pair2(void)
{
	struct termios tio;
	int one = 1;

	master2 = posix_openpt(O_RDWR | O_NOCTTY);
	if (master2 < 0 || grantpt(master2) < 0 || unlockpt(master2) < 0)
		return -1;
	slave2 = open(ptsname(master2), O_RDWR | O_NOCTTY);
	if (slave2 < 0 || tcgetattr(slave2, &tio) < 0)
		return -1;
	cfmakeraw(&tio);
	tio.c_lflag |= ECHO;
	tio.c_lflag &= ~ECHOCTL;
	tio.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(slave2, TCSANOW, &tio) < 0 || ioctl(master2, TIOCPKT, &one) < 0 ||
	    ioctl(slave2, TIOCEXCL) < 0)
		return -1;
	if (write(master2, "abc", 3) != 3 || !queued(slave2, 3) || write(slave2, "x\n", 2) != 2 ||
	    !queued(master2, 6))
		return -1;
	return 0;
}

static int check_pair2(char *why, size_t len)
{
	int pkt = 0, excl = 0;
	if (ioctl(master2, TIOCGPKT, &pkt) < 0 || !pkt || ioctl(slave2, TIOCGEXCL, &excl) < 0 || !excl) {
		snprintf(why, len, "second pty: packet mode %d, exclusive %d, expected both on", pkt, excl);
		return -1;
	}
	if (read_exact(master2, true, "abcx\r\n", why, len) < 0 ||
	    read_exact(slave2, false, "abc", why, len) < 0)
		return -1;
	/* still a live pair with echo */
	if (write(master2, "z", 1) != 1 || read_exact(slave2, false, "z", why, len) < 0 ||
	    read_exact(master2, true, "z", why, len) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	char buf[160], why[256];

	use_lock = !(argc > 1 && !strcmp(argv[1], "nolock"));
	signal(SIGUSR1, on_usr1);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || set_terminal() < 0) {
		printf("FAIL: can't set up the pty: %s\n", strerror(errno));
		return 1;
	}
	const char *pts = ptsname(master);
	child = fork();
	if (child == 0)
		child_main(pts);
	if (read_answer(buf, sizeof(buf)) < 0 || sscanf(buf, "G%d;", &grand) != 1) {
		printf("FAIL: no hello from the foreground job: '%s'\n", buf);
		return 1;
	}
	snprintf(buf, sizeof(buf), "S%dP%d;", (int)child, (int)grand);
	if (ask("ping.", "E:PING;", why, sizeof(why)) < 0 || ask("?.", buf, why, sizeof(why)) < 0) {
		printf("FAIL: before dump: %s\n", why);
		return 1;
	}
	if (setup_pair2() < 0) {
		printf("FAIL: can't set up the second pty: %s\n", strerror(errno));
		return 1;
	}
	int lock = use_lock;
	if (ioctl(master, TIOCSPTLCK, &lock) < 0) {
		printf("FAIL: can't lock the pty: %s\n", strerror(errno));
		return 1;
	}
	printf("PIDS %d %d\nREADY\n", (int)child, (int)grand);
	fflush(stdout);
	while (!go)
		usleep(10000);
	if (check_after(why, sizeof(why)) < 0 || check_pair2(why, sizeof(why)) < 0)
		printf("FAIL: %s\n", why);
	else
		printf("PASS\n");
	fflush(stdout);
	kill(grand, SIGKILL);
	kill(child, SIGKILL);
	return 0;
}
