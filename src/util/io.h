/* Whole writes, retried on EINTR and short writes. */
#ifndef STASIS_IO_H
#define STASIS_IO_H
#include <stddef.h>
#include <stdint.h>
/* 0, or -1 with errno (a write that wrote nothing counts as an error). */
int write_all(int fd, const void *buf, size_t len);
/* stdin, stdout and stderr on /dev/null: a server that outlives its
 * caller must not hold the caller's pipes open. */
void stdio_to_null(void);
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* After a writev or sendmsg that moved done bytes of the *n pieces at
 * *iov: past the pieces it finished, into the one it stopped in. */
struct iovec;
void iov_advance(struct iovec **iov, int *n, size_t done);
/* A small text file of dirfd (a note), never through a symlink, read
 * whole into buf (len bytes at most, NUL-terminated); false if it isn't
 * there or is empty. */
#include <stdbool.h>
bool read_note(int dirfd, const char *name, char *buf, size_t len);
/* Replaces note name of dirfd with len bytes of buf at once (a temporary
 * file renamed over it, never through a symlink); 0, or -1 with errno
 * and nothing left behind. */
int write_note(int dirfd, const char *name, const char *buf, size_t len);
/* A file of an images directory replaced by len bytes of buf at once
 * (a temporary file renamed over it), made through util/fsop: with the
 * client's credentials when a client's request makes it. 0, or -1 with
 * errno and nothing left behind. */
int write_whole(int dirfd, const char *name, const void *buf, size_t len);
#endif
