/* A UTS namespace: its host and domain names (utsns-ID.img), read by a
 * thread of ours in the namespace, written by the tree's first process
 * inside the one restore made for it. */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "image/img.h"
#include "ns/ns.h"
#include "util/log.h"

static int read_names(void *arg)
{
	if (uname(arg) < 0) {
		pr_perror("can't read the names of a UTS namespace");
		return -1;
	}
	return 0;
}

int uts_dump(int dirfd, pid_t root, uint32_t id)
{
	struct utsname u;
	if (ns_in_thread(root, CLONE_NEWUTS, read_names, &u) < 0)
		return -1;
	UtsnsEntry ue = UTSNS_ENTRY__INIT;
	ue.nodename = u.nodename;
	ue.domainname = u.domainname;
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
