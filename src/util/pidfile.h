/* --pidfile: restore's restored root, the service's daemon. */
#ifndef STASIS_PIDFILE_H
#define STASIS_PIDFILE_H
#include <sys/types.h>
/* Writes pid (no newline, as CRIU) to path; -1 reported. */
int write_pidfile(const char *path, pid_t pid);
#endif
