/* The one-line progress display of a long dump or restore on a terminal:
 * processes done of all, MiB done of all, MiB/s, time left. Redrawn at
 * most five times a second by a thread of its own, shown only once the
 * operation has run half a second and only for 64 MiB or 16 processes or
 * more (for a small one under load, a line would flash by for nothing),
 * and cleared before anything else is printed on stderr (log.c) and when
 * the operation ends.
 *
 * The counters live in a shared page: the processes a restore forks fill
 * their own memory (restore/fill.c) and count into the same page. The
 * copying code only adds to them (progress_bytes: one relaxed atomic
 * add, or a load and a branch when the display is off), once per buffer,
 * never per page. */
#ifndef STASIS_PROGRESS_H
#define STASIS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

/* The command line's say (never the service's): whether a display may be
 * shown at all. main.c decides: stderr a terminal, not -v0, and the log
 * not written on that terminal. */
void progress_allow(bool yes);

/* The operation starts: "dump" or "restore", its processes and the bytes
 * expected (corrected later with progress_grow). Nothing if not allowed.
 * progress_show starts the drawing; progress_begin does not, for a
 * restore that must stay single-threaded until its processes exist. */
void progress_begin(const char *what, unsigned tasks, uint64_t bytes);
void progress_show(void);

/* What the copying code counts; cheap, safe from any thread or from a
 * process forked after progress_begin. */
void progress_bytes(uint64_t n);
void progress_grow(int64_t n);
void progress_task_done(void);

/* Stops the drawing and clears the line; again is harmless. Call it in
 * the process that called progress_begin. */
void progress_end(void);

/* Around a line written on stderr: the display's line is cleared first
 * and not drawn again until progress_resume. */
bool progress_pause(void);
void progress_resume(bool paused);

#endif
