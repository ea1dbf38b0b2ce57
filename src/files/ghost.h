/* Ghost files: regular files that were deleted while open. Their bytes are
 * saved (ghost-file-ID.img, linked to the reg_file_entry by remap-fpath.img)
 * and, on restore, written to a new file at the old path, which is opened
 * and unlinked again. Used by reg.c only; ghost.c's own row of the table
 * of kinds holds their state and images. */
#ifndef STASIS_GHOST_H
#define STASIS_GHOST_H

#include "files/kind.h"

/* Saves the deleted file open at src (a /proc link: fd/N, map_files/A-B,
 * exe) for the reg_file_entry file_id, once per inode. readable: the task's fd or
 * mapping reads the file (fs_open_task_file). what names it in errors. */
int ghost_save(struct file_table *t, const struct opts *o, const char *src, bool readable,
	       const struct stat *st, uint32_t file_id, const char *what);
/* The reg_file_entry file_id is the /proc entry of pid, a dead process:
 * restore makes a helper process of that pid while the file is opened
 * (as CRIU, a PROCFS remap). what names it in errors. */
int ghost_save_dead_pid(struct file_table *t, uint32_t file_id, pid_t pid, const char *what);
/* The reg_file_entry file_id is kept by a new hard link, the file
 * link_id (CRIU's linked remap: remap_link.c). */
int ghost_save_linked(struct file_table *t, uint32_t file_id, uint32_t link_id, const char *what);
/* Restore: the link that keeps file_id (a linked remap), or NULL; with
 * file_id 0, the nth link of the images (NULL past the last). */
const RegFileEntry *ghost_link_of(const struct rst_files *rf, uint32_t file_id, int nth);
/* Is file_id (a reg_file_entry) saved as a ghost? */
bool ghost_is_remapped(const struct file_table *t, uint32_t file_id);

/* Is the inode ino of device kdev (the kernel's encoding) saved as a
 * ghost (so far: call it once every task is dumped)? */
bool ghost_has_inode(const struct file_table *t, uint32_t kdev, uint64_t ino);

/* A new fd (flags) on the ghost that was inode ino of device kdev,
 * recreated the first time: the fd, -1 (reported), or -2 if no ghost was
 * that inode. For a watch on a deleted file (inotify, fanotify). */
int ghost_open_inode(struct rst_files *rf, uint32_t kdev, uint64_t ino, uint32_t flags);
/* Whether a ghost was inode ino of device kdev (ghost_open_inode opens it). */
bool ghost_is_inode(const struct rst_files *rf, uint32_t kdev, uint64_t ino);

/* If the reg_file_entry r is a ghost: opens it (recreating it the first
 * time) with flags and r's position. Returns the fd, -1 (reported), or -2
 * if r is not a ghost. */
int ghost_open(struct rst_files *rf, const RegFileEntry *r, uint32_t flags);

#endif
