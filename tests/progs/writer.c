/*
 * writer: a process busy writing when it is dumped.
 *
 * Appends "%08d\n" lines (1, 2, 3, ...) to seq.txt in the current directory,
 * sleeping 1 ms between lines, until SIGUSR1.  Then it reads the file back:
 * it must hold exactly lines 1..N with N the last number written -- no gap
 * (a write lost across dump/restore) and no repeat (a write replayed, or a
 * restored file offset that is off).  The harness checks seq.txt too.
 *
 * Plain O_WRONLY, not O_APPEND: the restored file offset must be right.
 *
 * test writer: plain restore chain leave_running
 */
#include "common.h"

#include <fcntl.h>
#include <time.h>

#define LINE_LEN 9 /* "%08d\n" */
#define READY_AFTER 20

static void pause_1ms(void)
{
	struct timespec ts = { 0, 1000 * 1000 };

	nanosleep(&ts, NULL); /* EINTR is fine: the loop re-checks the flag */
}

static void verify(long last)
{
	char line[LINE_LEN + 1];
	long n = 0;
	FILE *f = fopen("seq.txt", "r");

	if (!f) {
		fail("cannot reopen seq.txt: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		long v = strtol(line, NULL, 10);

		if (strlen(line) != LINE_LEN || v != n + 1) {
			fail("seq.txt line %ld is '%.8s', expected %08ld", n + 1, line, n + 1);
			break;
		}
		n = v;
	}
	fclose(f);
	CHECK(n == last, "seq.txt ends at %ld, but %ld lines were written", n, last);
}

int main(void)
{
	char buf[32];
	long i = 0;
	int fd;

	proto_init();
	fd = open("seq.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open seq.txt");
	while (!go_flag) {
		int len = snprintf(buf, sizeof(buf), "%08ld\n", ++i);

		write_all(fd, buf, (size_t)len);
		if (i == READY_AFTER)
			proto_ready();
		pause_1ms();
	}
	close(fd);
	if (i < READY_AFTER)
		fail("only %ld lines written", i);
	verify(i);
	return proto_finish();
}
