/* The environment tar runs in, for a tmpfs's files (see mnt.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ns/mnt.h"

/* GNU tar starts gzip with /bin/sh -c, and the shell asks getcwd() for
 * its directory unless PWD names it. tar's directory is the tmpfs, which
 * the dump reaches through a detached clone that no path leads to: there
 * getcwd() fails and the shell says so on our stderr, one line a tmpfs,
 * which a runtime passes on to its user (crun prints them). PWD as
 * /proc/self/cwd names that directory (the shell takes PWD when it is
 * the same directory as "."). Made before the fork: the child only
 * execs. */
char **mnt_tar_env(void)
{
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PWD=", 4))
			env[k++] = environ[i];
	env[k] = "PWD=/proc/self/cwd";
	return env;
}
