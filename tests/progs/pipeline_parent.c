/* A pipeline made the way a C program makes one: pipe(), two forks, each
 * child dup2()s its end and execs; the parent keeps no end and waits.
 *
 *   pipeline_parent OUT     producer: a shell counter, 1 line per 10 ms
 *                           consumer: cat > OUT
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(int in, int out, char *const argv[])
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (in >= 0 && dup2(in, 0) < 0)
		_exit(126);
	if (out >= 0 && dup2(out, 1) < 0)
		_exit(126);
	for (int fd = 3; fd < 64; fd++)
		close(fd);
	execvp(argv[0], argv);
	_exit(127);
}

int main(int argc, char **argv)
{
	int p[2], st;
	if (argc != 2 || pipe(p) < 0)
		return 2;
	int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return 2;
	char *producer[] = { "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done", NULL };
	char *consumer[] = { "cat", NULL };
	pid_t a = spawn(-1, p[1], producer);
	pid_t b = spawn(p[0], out, consumer);
	close(p[0]);
	close(p[1]);
	close(out);
	if (a < 0 || b < 0)
		return 2;
	while (wait(&st) > 0)
		;
	return 0;
}
