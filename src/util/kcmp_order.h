/* kcmp(2) says whether two kernel objects (files, fd tables, ...) of two
 * processes are one, and otherwise orders them (by their obfuscated
 * addresses, stable while they live): objects kept in that order are found
 * by bisection, not compared with each. */
#ifndef STASIS_UTIL_KCMP_ORDER_H
#define STASIS_UTIL_KCMP_ORDER_H

#include <stdbool.h>
#include <sys/types.h>

/* The i-th object of a sorted array: its process and kcmp index. */
typedef void (*kcmp_obj_fn)(const void *arg, int i, pid_t *pid, unsigned long *idx);

/* Where object (pid, idx) of kcmp type `type` is among the n objects
 * obj(arg, 0..n-1) (kept in kcmp's order), or where it goes; *same if one
 * of them is it. -1 if a kcmp can't order the two (a process or fd gone):
 * the caller scans instead. */
int kcmp_bisect(int type, pid_t pid, unsigned long idx, kcmp_obj_fn obj, const void *arg, int n, bool *same);

#endif
