/* A UTS namespace: its host and domain names (utsns-ID.img). Read by a
 * thread of ours that joins the namespace (UTS is per thread), written
 * by the tree's first process inside the one restore made for it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "image/img.h"
#include "ns/ns.h"
#include "util/log.h"

struct uts_read {
	int nsfd;
	struct utsname u;
	int err;		/* errno of what failed, 0 if none */
	const char *what;
};

static void *read_names(void *arg)
{
	struct uts_read *r = arg;
	if (setns(r->nsfd, CLONE_NEWUTS) < 0) {
		r->err = errno;
		r->what = "join";
	} else if (uname(&r->u) < 0) {
		r->err = errno;
		r->what = "read the names of";
	}
	return NULL;
}

int uts_dump(int dirfd, pid_t root, uint32_t id)
{
	struct uts_read r = { .nsfd = -1 };
	char path[64];
	pthread_t th;

	snprintf(path, sizeof(path), "/proc/%d/ns/uts", root);
	r.nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.nsfd < 0) {
		pr_perror("pid %d: can't open its UTS namespace", root);
		return -1;
	}
	/* a thread of its own: the namespace it joins goes with it */
	int e = pthread_create(&th, NULL, read_names, &r);
	if (e == 0)
		pthread_join(th, NULL);
	close(r.nsfd);
	if (e) {
		errno = e;
		pr_perror("pid %d: can't start a thread to read its UTS namespace", root);
		return -1;
	}
	if (r.err) {
		errno = r.err;
		pr_perror("pid %d: can't %s its UTS namespace", root, r.what);
		return -1;
	}
	UtsnsEntry ue = UTSNS_ENTRY__INIT;
	ue.nodename = r.u.nodename;
	ue.domainname = r.u.domainname;
	pr_debug("pid %d: UTS namespace %u: host name %s, domain name %s", root, id, ue.nodename,
		 ue.domainname);
	return img_store_one(dirfd, IMG_UTSNS, id, &ue.base);
}

int uts_load(int dirfd, uint32_t id, UtsnsEntry **e)
{
	char name[IMG_NAME_MAX];
	if (img_load_one(dirfd, IMG_UTSNS, id, (ProtobufCMessage **)e) < 0)
		return -1;
	img_name(name, sizeof(name), IMG_UTSNS, id);
	/* the kernel's limit, __NEW_UTS_LEN */
	if (strlen((*e)->nodename) > 64 || strlen((*e)->domainname) > 64) {
		pr_err("image %s: a name longer than the kernel's 64 bytes", name);
		return -1;
	}
	return 0;
}

int uts_fill(const UtsnsEntry *e)
{
	if (sethostname(e->nodename, strlen(e->nodename)) < 0) {
		pr_perror("can't set the host name %s of the tree's UTS namespace", e->nodename);
		return -1;
	}
	if (setdomainname(e->domainname, strlen(e->domainname)) < 0) {
		pr_perror("can't set the domain name %s of the tree's UTS namespace", e->domainname);
		return -1;
	}
	return 0;
}
