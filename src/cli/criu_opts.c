#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/criu_opts.h"

struct criu_opt {
	const char *name;
	char short_name;	/* 0: none */
	bool is_switch;		/* CRIU's BOOL_OPT: --NAME and --no-NAME */
	const char *what;
};

/* From CRIU 4.2's criu --help and option table. */
static const struct criu_opt unsupported[] = {
	{ "leave-stopped", 's', false, "leaves the tree stopped after the dump" },
	{ "restore-sibling", 'S', true, "restores the tree as criu's sibling (stasis: swrk's rst_sibling)" },
	{ "libdir", 'L', false, "loads plugins" },
	{ "close", 0, false, "closes an fd before the restore" },
	{ "log-pid", 0, true, "writes a log file per process" },
	{ "evasive-devices", 0, true, "lets a device be opened by another name" },
	{ "ms", 0, false, "checks mainstream kernel features only" },
	{ "cpu-cap", 0, false, "checks CPU features against the images" },
	{ "exec-cmd", 0, false, "runs a command after the restore" },
	{ "enable-external-sharing", 0, false, "allows external mount sharing" },
	{ "enable-external-masters", 0, false, "allows external mount masters" },
	{ "lsm-profile", 0, false, "restores with another LSM profile" },
	{ "lsm-mount-context", 0, false, "sets the LSM mount context" },
	{ "extra", 0, true, "checks extra kernel features" },
	{ "experimental", 0, true, "checks experimental kernel features" },
	{ "all", 0, false, "checks every kernel feature" },
	{ "deprecated", 0, true, "allows deprecated features" },
	{ "weak-sysctls", 0, true, "skips sysctls the kernel lacks" },
	{ "stream", 0, true, "streams images through criu-image-streamer" },
	{ "skip-file-rwx-check", 0, true, "skips the access check of restored files" },
	{ "unprivileged", 0, true, "runs criu without root" },
	{ "allow-uprobes", 0, true, "allows uprobes mappings" },
};

static const struct criu_opt *find(const char *name, size_t len, char short_name)
{
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		const struct criu_opt *c = &unsupported[i];
		if (short_name ? c->short_name == short_name : strlen(c->name) == len && !strncmp(c->name, name, len))
			return c;
	}
	return NULL;
}

int criu_opt_unknown(char **argv, int optind, int optopt)
{
	const struct criu_opt *c;

	if (optopt) {	/* a short option (getopt_long leaves 0 for a long one) */
		if ((c = find(NULL, 0, (char)optopt))) {
			fprintf(stderr, "Error: -%c (--%s): CRIU's option that %s; stasis does not support it\n",
				optopt, c->name, c->what);
			return -1;
		}
		fprintf(stderr, "Error: unknown option -%c\n", optopt);
		return -1;
	}
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	const char *name = arg + (strncmp(arg, "--", 2) ? 0 : 2);
	size_t len = strcspn(name, "=");
	if (len > 3 && !strncmp(name, "no-", 3) && (c = find(name + 3, len - 3, 0)) && c->is_switch)
		return 0;	/* off: as stasis is */
	if ((c = find(name, len, 0))) {
		fprintf(stderr, "Error: --%s: CRIU's option that %s; stasis does not support it\n", c->name, c->what);
		return -1;
	}
	fprintf(stderr, "Error: unknown option --%.*s\n", (int)len, name);
	return -1;
}
