/* What the userfaultfd tracker (track_uffd.c) and the soft-dirty one
 * (softdirty.c) share: the parent's pages, which memory is tracked, and
 * the numbers an arming draws. */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "dump/track_backend.h"
#include "image/vma.h"
#include "util/log.h"
#include "proc/ns_ids.h"

bool track_parent_covers(const struct parent_cover *c, uint64_t start, uint64_t end)
{
	return ranges_cover(&c->pages, start, end);
}

void track_drop_parent(struct dump_ctx *dc, const char *why)
{
	pr_warn("pid %d: %s: every page is saved", dc->pid, why);
	ranges_free(&dc->cover->pages);
	free(dc->cover);
	dc->cover = NULL;
}

bool track_vma_trackable(const struct proc_vma *v, const VmaEntry *e)
{
	return !v->shared && !v->has_file && (v->prot & PROT_WRITE) &&
	       (e->status & VMA_ANON_PRIVATE) && !(e->status & (VMA_AREA_VDSO | VMA_AREA_VVAR));
}

int track_draw_armed(uint64_t *armed)
{
	do {
		if (getrandom(armed, sizeof(*armed), 0) != sizeof(*armed)) {
			pr_perror("can't draw a random number to arm a memory tracker");
			return -1;
		}
	} while (!*armed);
	return 0;
}

unsigned long track_pidns_ino(void)
{
	struct ns_ident id;
	return ns_ident(0, "pid", &id) < 0 ? 0 : (unsigned long)id.ino;
}
