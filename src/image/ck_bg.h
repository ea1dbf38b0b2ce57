/* The checksums of the pages images, checked beside a restore instead of
 * before it: hashing them reads every byte of the dump's memory (0.1 s
 * of CPU for 400 MiB) while the restore itself waits mostly on the
 * processes it makes. A child process does it, forked while stasis is
 * still small and has no thread: it opens nothing of stasis's (its fds
 * are its own), takes no lock stasis could be holding in a fork of its,
 * and may make namespaces' setns/unshare (single-threaded only) fail for
 * none. Its verdict is waited for before anything made from the images
 * runs. */
#ifndef STASIS_CK_BG_H
#define STASIS_CK_BG_H

#include <stdbool.h>
#include <sys/types.h>

struct ck_bg {
	pid_t pid;		/* the checker while it runs, else 0 */
	int ret;		/* its verdict, once known: 0 whole, -1 not */
	struct ck_bg_result *res;	/* shared with it */
};

/* Starts the check of the pages files listed in the lists of dirfd and
 * of its parent dumps (named dirname in messages). If no checker can be
 * forked, checks them here and now. -1 (said) if one is damaged then. */
int ck_bg_start(struct ck_bg *bg, int dirfd, const char *dirname);
/* Whether the checker runs as pid (its number may be one the restore
 * must take). */
bool ck_bg_holds(const struct ck_bg *bg, pid_t pid);
/* Waits for the verdict: 0 if every pages file is whole, -1 naming the
 * first damaged one (or why the check failed), said once here. */
int ck_bg_wait(struct ck_bg *bg);

#endif
