/* Which namespace a process is in, by kind: the identity of
 * /proc/PID/ns/KIND (its device and inode). A dump asks it of each process
 * again and again (the mount namespace for each mapped file, the same
 * kinds for stasis itself, ...); while the tree is seized its processes
 * can't change namespace, so a dump keeps what it read. */
#ifndef STASIS_PROC_NS_IDS_H
#define STASIS_PROC_NS_IDS_H

#include <sys/types.h>

struct ns_ident {
	dev_t dev;
	ino_t ino;
};

/* From ns_ids_keep() on, each process's namespace of each kind is read
 * once and kept (what failed, too) until ns_ids_drop(); outside, every
 * call reads /proc. */
void ns_ids_keep(void);
void ns_ids_drop(void);

/* pid's namespace of kind ("mnt", "net", "time_for_children", ...); pid 0
 * is stasis itself. 0, or -1 with errno (a kind this kernel
 * lacks, a process gone). */
int ns_ident(pid_t pid, const char *kind, struct ns_ident *id);

/* Are a and b in the same namespace of kind? 1 yes, 0 no, -1 unreadable. */
int ns_same(pid_t a, pid_t b, const char *kind);

#endif
