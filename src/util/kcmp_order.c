/* util/kcmp_order.h */
#include <sys/syscall.h>
#include <unistd.h>

#include "util/kcmp_order.h"

int kcmp_bisect(int type, pid_t pid, unsigned long idx, kcmp_obj_fn obj, const void *arg, int n, bool *same)
{
	int lo = 0, hi = n;
	*same = false;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		pid_t p;
		unsigned long i;
		obj(arg, mid, &p, &i);
		long r = syscall(SYS_kcmp, pid, p, type, idx, i);
		if (r == 0) {
			*same = true;
			return mid;
		}
		if (r == 1)	/* ours is the lesser */
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else
			return -1;
	}
	return lo;
}
