/* --freeze-cgroup PATH (RPC freeze_cgroup): the tree is frozen with the
 * cgroup freezer before it is seized, as CRIU does, so that no task of
 * the cgroup can fork or exit while the tree is walked. Every thread of
 * the cgroup and its descendants is seized with ptrace and interrupted
 * while frozen; the cgroup is then thawed, and the interrupts stop each
 * thread before it runs a single instruction of its own. The dump takes
 * the threads of its tree from here (freezer_take); the others are let
 * go at the end, and a cgroup found frozen is frozen again.
 *
 * cgroup v1: freezer.state (FROZEN, FREEZING, THAWED) and the tasks file;
 * v2: cgroup.freeze (0, 1), cgroup.events ("frozen 1") and
 * cgroup.threads. For a non-root RPC client the files are opened by its
 * broker (util/fsop.h): it freezes only what it could itself. */
#ifndef STASIS_FREEZER_H
#define STASIS_FREEZER_H

#include <stdbool.h>
#include <sys/types.h>

struct freezer {
	const char *path;
	int statefd;		/* freezer.state or cgroup.freeze; -1: none */
	int dirfd;		/* the cgroup's directory */
	bool v2;
	bool was_frozen;	/* found frozen: frozen again by freezer_release */
	pid_t *tids;		/* seized and interrupted while frozen */
	bool *taken;		/* ... and taken by the dump since */
	int nr, cap;
};

/* Freezes the cgroup at path, seizes and interrupts every thread in it
 * and below, and thaws it (timeout_s: how long it may take to freeze, 0:
 * 10 s). 0, or -1 (reported) with nothing left seized and the cgroup in
 * its old state. */
int freezer_seize(struct freezer *f, const char *path, unsigned timeout_s);
/* Whether thread tid was seized here (and is now the caller's). */
bool freezer_take(struct freezer *f, pid_t tid);
/* Lets go of the threads not taken, once they stopped, and freezes the
 * cgroup again if it was found frozen, returning once it is (or after
 * 10 s, saying so). Safe on a freezer never used. */
void freezer_release(struct freezer *f);

#endif
