/* Guard regions of a process (madvise(MADV_GUARD_INSTALL), 6.13+): pages
 * of a mapping that fault with SIGSEGV on any access, without a mapping
 * of their own. As CRIU saves them: one VmaEntry per region at the end
 * of mm-PID.img with VMA_AREA_GUARD alone in its status, start and end;
 * no mapping is made for them on restore, the process installs them
 * again over its restored mappings.
 *
 * Dump: PAGEMAP_SCAN reports them (PAGE_IS_GUARD, 6.14+); a kernel
 * whose scan does not know them (6.1) has none to save. A guarded page
 * has no contents: the pagemap sees a marker, never a page. */
#ifndef STASIS_TASK_GUARDS_H
#define STASIS_TASK_GUARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "image/vma.h"
#include "mm.pb-c.h"

struct inj;
struct proc_vmas;

/* Does this kernel's PAGEMAP_SCAN find guard regions (and can a process
 * install them)? */
bool guards_supported(void);

/* The guard regions inside the mappings vmas of process pid, as entries
 * appended to *out (*nr of them). 0, or -1 (reported). */
int guards_dump(pid_t pid, const struct proc_vmas *vmas, VmaEntry ***out, size_t *nr);

/* Restore: the guard entries at the end of mm's vmas are taken out of
 * them (mm->n_vmas counts the mappings only) into *guards; guards_put_back
 * before mm is freed. An entry of a guard between mappings, or of a
 * mapping with the guard bit, is an error. */
int guards_split(pid_t pid, MmEntry *mm, size_t *nr_guards);
void guards_put_back(MmEntry *mm, size_t nr_guards);
/* Installs them, in the process, over its restored mappings. */
int guards_install(struct inj *ij, pid_t pid, VmaEntry *const *guards, size_t nr);

#endif
