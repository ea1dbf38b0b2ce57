/* A libcriu program, built against libstasis (tests/cases/libstasis.sh).
 *
 *   lib_client [-b BINARY | -a SOCKET] [-D IMGDIR] [-W WORKDIR] [-t PID]
 *              [-P PARENT] [-n] [-V STAGE] CMD...
 *
 * -b: swrk mode with that binary; -a: a service socket. -n: a notify
 * callback that records each stage; -V STAGE: it vetoes that stage.
 * -P: the dump's parent images (criu_set_parent_images, with track_mem).
 * Commands, run in order, each printing one line "CMD RESULT errno=E":
 *   check, version, features, dump, restore (criu_restore),
 *   predump (criu_pre_dump, with track_mem, into predump.log),
 *   restore_child (criu_local_restore_child on an option set of its own;
 *     then checks the restored root is our child, lets it run 1 s, kills
 *     and reaps it: "reaped PID"),
 *   selfdump (criu_dump of ourselves, no pid: 1 in the restored copy).
 * Notifications print "notify STAGE PID". Exit status 0 unless the
 * arguments were wrong: the runner judges the lines. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criu/criu.h>

static const char *veto_stage;
static const char *binary, *address, *parent;
static int images_fd = -1, work_fd = -1, pid;
static int use_notify;

static int on_notify(char *stage, criu_notify_arg_t na)
{
	printf("notify %s %d\n", stage, criu_notify_pid(na));
	if (veto_stage && !strcmp(stage, veto_stage)) {
		printf("veto %s\n", stage);
		return -1;
	}
	return 0;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_DIRECTORY | O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "lib_client: can't open %s: %m\n", path);
		exit(2);
	}
	return fd;
}

/* The flags, applied to the global set or to one of our own. */
static int setup_global(void)
{
	if (criu_init_opts() < 0)
		return -1;
	if (address && criu_set_service_address(address) < 0)
		return -1;
	if (binary && criu_set_service_binary(binary) < 0)
		return -1;
	criu_set_images_dir_fd(images_fd);
	if (work_fd >= 0)
		criu_set_work_dir_fd(work_fd);
	if (pid)
		criu_set_pid(pid);
	criu_set_leave_running(false);
	if (parent) {
		criu_set_track_mem(true);
		criu_set_parent_images(parent);
	}
	criu_set_log_level(CRIU_LOG_DEBUG);
	if (use_notify)
		criu_set_notify_cb(on_notify);
	return 0;
}

static criu_opts *setup_local(void)
{
	criu_opts *o = NULL;
	if (criu_local_init_opts(&o) < 0)
		return NULL;
	if (binary)
		criu_local_set_service_binary(o, binary);
	criu_local_set_images_dir_fd(o, images_fd);
	if (work_fd >= 0)
		criu_local_set_work_dir_fd(o, work_fd);
	criu_local_set_log_level(o, CRIU_LOG_DEBUG);
	criu_local_set_log_file(o, "restore_child.log");
	if (use_notify)
		criu_local_set_notify_cb(o, on_notify);
	return o;
}

static void result(const char *cmd, int ret)
{
	printf("%s %d errno=%d\n", cmd, ret, errno);
}

static int parent_of(int p)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", p);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')');
	int ppid;
	return s && sscanf(s, ") %*c %d", &ppid) == 1 ? ppid : -1;
}

static void restore_child(void)
{
	criu_opts *o = setup_local();
	int root, status;

	if (!o) {
		printf("restore_child: no option set\n");
		return;
	}
	root = criu_local_restore_child(o);
	result("restore_child", root);
	criu_local_free_opts(o);
	if (root <= 0)
		return;
	printf("parent %d self %d\n", parent_of(root), getpid());
	sleep(1);
	kill(root, SIGKILL);
	if (waitpid(root, &status, 0) == root && WIFSIGNALED(status))
		printf("reaped %d\n", root);
	else
		printf("not reaped %d: %m\n", root);
}

static void self_dump(void)
{
	printf("READY\n");
	criu_set_log_file("selfdump.log");
	int ret = criu_dump();
	result("selfdump", ret);
	if (ret == 1)
		printf("PASS\n");
}

static void run(const char *cmd)
{
	struct criu_feature_check fc = { .mem_track = true };

	if (!strcmp(cmd, "check"))
		result(cmd, criu_check());
	else if (!strcmp(cmd, "version"))
		result(cmd, criu_get_version());
	else if (!strcmp(cmd, "features")) {
		int r = criu_feature_check(&fc, sizeof(fc));
		result(cmd, r);
	} else if (!strcmp(cmd, "dump")) {
		criu_set_log_file("dump.log");
		result(cmd, criu_dump());
	} else if (!strcmp(cmd, "predump")) {
		criu_set_log_file("predump.log");
		criu_set_track_mem(true);
		result(cmd, criu_pre_dump());
	} else if (!strcmp(cmd, "restore")) {
		criu_set_log_file("restore.log");
		result(cmd, criu_restore());
	} else if (!strcmp(cmd, "restore_child"))
		restore_child();
	else if (!strcmp(cmd, "selfdump"))
		self_dump();
	else {
		fprintf(stderr, "lib_client: unknown command %s\n", cmd);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "b:a:D:W:t:P:nV:")) != -1) {
		switch (c) {
		case 'b': binary = optarg; break;
		case 'a': address = optarg; break;
		case 'D': images_fd = open_dir(optarg); break;
		case 'W': work_fd = open_dir(optarg); break;
		case 't': pid = atoi(optarg); break;
		case 'P': parent = optarg; break;
		case 'n': use_notify = 1; break;
		case 'V': use_notify = 1; veto_stage = optarg; break;
		default: return 2;
		}
	}
	if (optind >= argc || setup_global() < 0) {
		fprintf(stderr, "usage: lib_client [-b BIN|-a SOCK] [-D DIR] [-W DIR] [-t PID] [-P DIR] [-n] [-V STAGE] CMD...\n");
		return 2;
	}
	for (int i = optind; i < argc; i++)
		run(argv[i]);
	criu_free_opts();
	return 0;
}
