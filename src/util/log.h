/* Logging: one log sink (stderr or -o FILE) with CRIU-style verbosity. */
#ifndef STASIS_LOG_H
#define STASIS_LOG_H

#include <errno.h>
#include <stdbool.h>

enum log_level { LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

int log_init(const char *path, int level);
/* The log in an open directory (the RPC client's work directory). */
int log_init_at(int dirfd, const char *name, int level);
void log_close(void);
/* Moves the log's fds (file and stderr) to *next and up, so that a
 * restored task's fds can take the low numbers. */
int log_move_fds(int *next);
/* The fds the log writes to (-1: none): what a forked helper keeps. */
int log_fds(int fds[2]);
/* The first error logged since log_init, without its "Error: " (for RPC
 * replies); "" if none. */
const char *log_first_error(void);
/* An errno that says what failed, for RPC clients (cr_errno): the first
 * one recorded since log_init wins; 0 if none. */
void log_set_errno(int err);
/* In a forked helper whose parent says its errors: they are only noted
 * (log_first_error, log_first_errno), from now on. */
void log_quiet_errors(void);
int log_first_errno(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether messages of level are written (to spare work done only for them). */
bool log_wants(int level);

/* Errors go to the log and, when the log is a file, to stderr too, so the
 * user always sees the one line that says what failed. */
#define pr_err(fmt, ...)   log_msg(LOG_ERROR, "Error: " fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, "Warn: " fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt, ##__VA_ARGS__)
/* The errno also becomes the RPC reply's cr_errno, if it is the first. */
#define pr_perror(fmt, ...) (log_set_errno(errno), pr_err(fmt ": %m", ##__VA_ARGS__))

#endif
