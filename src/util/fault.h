/* Named fault points, for the tests of what a dump or a restore cut short
 * leaves behind. With STASIS_TEST_DIE_AT=NAME[:N] in the environment,
 * stasis kills itself (SIGKILL: no cleanup of its own runs) the Nth time,
 * default 1, that a process of it passes the point NAME. Without the
 * variable a point costs a comparison. With STASIS_TEST_SLOW_AT=NAME:MS,
 * each pass of the point NAME sleeps MS milliseconds first (a slow
 * restore, for what must not count the time it takes). The points, and
 * what a test shows at each: tests/README.md, "What a failure does". */
#ifndef STASIS_FAULT_H
#define STASIS_FAULT_H
void fault_point(const char *name);
#endif
