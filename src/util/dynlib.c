/* dlopen on first use: see dynlib.h. */
#include <dlfcn.h>
#include <pthread.h>

#include "util/dynlib.h"
#include "util/log.h"

/* The page server's and the network lock's threads don't race here, but
 * the check is cheap and keeps a half-filled table from being seen. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int resolve(void *h, const char *soname, const char *what, const struct dynsym *syms, int n, bool quiet)
{
	for (int i = 0; i < n; i++) {
		dlerror();
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			if (!quiet)
				pr_err("%s, needed for %s, has no %s: %s", soname, what, syms[i].name, dlerror());
			return -1;
		}
		*syms[i].slot = p;
	}
	return 0;
}

int dynlib_load(const char *soname, const char *what, const struct dynsym *syms, int n, bool quiet)
{
	int ret = 0;
	pthread_mutex_lock(&lock);
	if (n > 0 && *syms[0].slot)	/* loaded before: every slot is set */
		goto out;
	/* RTLD_LOCAL: its symbols are reached through syms only */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		if (!quiet)
			pr_err("can't load %s, needed for %s: %s (is its package installed?)", soname, what, dlerror());
		ret = -1;
	} else if (resolve(h, soname, what, syms, n, quiet) < 0) {
		for (int i = 0; i < n; i++)
			*syms[i].slot = NULL;
		dlclose(h);
		ret = -1;
	} else {
		pr_debug("loaded %s for %s", soname, what);
	}
out:
	pthread_mutex_unlock(&lock);
	return ret;
}
