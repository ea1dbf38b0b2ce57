/*
 * fuzz.c - a small tree whose dump is the seed of the image fuzzer
 * (tests/cases/fuzz.sh): something for every image restore loads.
 *
 *   - a child process (pstree with two entries, ppid links);
 *   - a second thread (two core images for one process);
 *   - a pipe with unread bytes (files.img pipe entries, pipes-data.img);
 *   - a regular file open at an offset, a file mapping (mm, files.img);
 *   - a datagram socketpair holding a message that carries the read end
 *     of another pipe, only in flight (unix entries, sk-queues.img with
 *     SCM_RIGHTS);
 *   - a TCP listener and a UDP socket (files.img inet entries).
 *
 * Protocol as every test program: READY, wait for SIGUSR1, check, PASS.
 * After a restore the pipe still holds its bytes, the file its offset,
 * the message its pipe, and the listener its port.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common.h"

static const char pipe_bytes[] = "bytes left in the pipe for the fuzz seed";

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	int p[2], fd;
	pthread_t th;
	char back[sizeof(pipe_bytes)];

	proto_init();
	if (pipe(p) < 0 || write(p[1], pipe_bytes, sizeof(pipe_bytes)) != sizeof(pipe_bytes))
		die("pipe");
	fd = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || lseek(fd, 4, SEEK_SET) != 4)
		die("data.txt");
	if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		die("mmap data.txt");
	int sk[2], q[2];
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, c = 'm';
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sk) < 0 || pipe(q) < 0 || write(q[1], "q", 1) != 1)
		die("socketpair");
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &q[0], sizeof(int));
	if (sendmsg(sk[0], &mh, 0) != 1)
		die("sendmsg");
	close(q[0]);
	close(q[1]);
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, got;
	socklen_t len = sizeof(got);
	int tcp = socket(AF_INET, SOCK_STREAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0);
	if (tcp < 0 || udp < 0 || bind(tcp, (struct sockaddr *)&lo, sizeof(lo)) < 0 || listen(tcp, 3) < 0 ||
	    bind(udp, (struct sockaddr *)&lo, sizeof(lo)) < 0 || getsockname(tcp, (struct sockaddr *)&lo, &len) < 0)
		die("sockets");
	if (pthread_create(&th, NULL, idle_thread, NULL) != 0)
		die("pthread_create");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	proto_ready();
	proto_wait();
	CHECK(read(p[0], back, sizeof(back)) == (ssize_t)sizeof(back) && !memcmp(back, pipe_bytes, sizeof(back)),
	      "the pipe lost its bytes");
	CHECK(lseek(fd, 0, SEEK_CUR) == 4, "data.txt is not at offset 4");
	c = 0;
	int passed = -1;
	if (recvmsg(sk[1], &mh, MSG_DONTWAIT) == 1 && c == 'm' && (cm = CMSG_FIRSTHDR(&mh)) &&
	    cm->cmsg_type == SCM_RIGHTS)
		memcpy(&passed, CMSG_DATA(cm), sizeof(int));
	CHECK(passed >= 0 && read(passed, &c, 1) == 1 && c == 'q', "the message lost its pipe");
	CHECK(kill(child, 0) == 0, "the child %d is gone", child);
	len = sizeof(got);
	CHECK(getsockname(tcp, (struct sockaddr *)&got, &len) == 0 && got.sin_port == lo.sin_port,
	      "the TCP listener lost its port");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return proto_finish();
}
