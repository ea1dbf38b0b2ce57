#ifndef STASIS_CHECK_H
#define STASIS_CHECK_H
/* Prints the kernel features stasis relies on; -1 if a required one is missing. */
int stasis_check(void);
#endif
