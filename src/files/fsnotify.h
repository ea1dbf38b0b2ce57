/* What inotify and fanotify share (fsnotify.c): the watched inode, named
 * by a file handle, turned into a path at dump time, and opened again at
 * restore. fsnotify.c's own row of the table of kinds keeps the watches
 * saved without a path, to check them once every task is dumped. */
#ifndef STASIS_FSNOTIFY_H
#define STASIS_FSNOTIFY_H

#include "files/kind.h"

#define FSN_HANDLE_MAX 128				/* MAX_HANDLE_SZ */
#define FSN_HANDLE_WORDS (FSN_HANDLE_MAX / 8)	/* as CRIU stores it: always 16 words */
/* The kernel's encoding of a dev_t, as in fdinfo's sdev. */
#define KDEV_MAJOR(d) ((unsigned)(d) >> 20)
#define KDEV_MINOR(d) ((unsigned)(d) & 0xfffff)

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
void fsn_unescape(char *s);

/* A handle of bytes bytes of type type from fdinfo's hex text (f_handle:
 * or fhandle:), in CRIU's form; NULL if out of memory or malformed. */
FhEntry *fsn_parse_handle(unsigned bytes, int type, const char *hex);

/* Dump: the path of the inode a watch is on into fh->path (what names the
 * watch in errors, f its fd). A watch whose handle gives no path (the file
 * is deleted) is, with --force-irmap, looked for by inode (irmap.c);
 * without it, saved without a path, which must then be a deleted file a
 * process of the tree has open (restored on the recreated file): checked
 * once every task is dumped. 0 or -1 (reported). */
int fsn_watch_path(struct file_table *t, const struct opts *o, const struct fd_facts *f, uint32_t kdev,
		   uint64_t ino, FhEntry *fh, const char *what);

/* Restore: an O_PATH fd on the watched inode: by its path if saved, else
 * the recreated deleted file that was that inode, else by its handle. -1
 * (reported). */
int fsn_open_watched(struct rst_files *rf, uint32_t kdev, uint64_t ino, const FhEntry *fh, const char *what);

#endif
