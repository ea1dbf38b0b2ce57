/* Helpers shared by the kinds of fds on anonymous inodes (eventfd,
 * signalfd, timerfd, inotify, epoll): their state is read from
 * /proc/PID/fdinfo/N and their files are made anew on restore. */
#ifndef STASIS_ANONFD_H
#define STASIS_ANONFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "files/kind.h"

/* Is the fd's link "anon_inode:NAME" (NAME as "[eventfd]", "inotify")? */
bool anon_link_is(const struct fd_facts *f, const char *name);

/* A zeroed fown_entry (F_SETOWN is not kept for these kinds). */
FownEntry *anon_fown_new(void);

/* The whole /proc/PID/fdinfo/FD text into buf; -1 (reported) if unreadable. */
int anon_fdinfo_read(pid_t pid, int fd, char *buf, size_t size);
/* The same for the kinds with a list in it (epoll targets, inotify and
 * fanotify marks): a buffer of up to 1 MiB to free; NULL if unreadable or
 * out of memory (reported). */
char *anon_fdinfo_load(const struct fd_facts *f);

/* The value of the first line "KEY:..." in an fdinfo text (spaces after
 * the colon skipped), or NULL. */
const char *anon_fdinfo_value(const char *text, const char *key);

/* O_NONBLOCK (the only status flag these files keep) as in flags. */
int anon_set_status_flags(int fd, uint32_t flags);

#endif
