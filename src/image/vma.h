/* VmaEntry.status bits and pagemap flags (CRIU's values). */
#ifndef STASIS_VMA_H
#define STASIS_VMA_H

#define VMA_AREA_REGULAR  (1 << 0)
#define VMA_AREA_STACK    (1 << 1)
#define VMA_AREA_VSYSCALL (1 << 2)
#define VMA_AREA_VDSO     (1 << 3)
#define VMA_AREA_HEAP     (1 << 5)
#define VMA_FILE_PRIVATE  (1 << 6)
#define VMA_FILE_SHARED   (1 << 7)
#define VMA_ANON_SHARED   (1 << 8)
#define VMA_ANON_PRIVATE  (1 << 9)
#define VMA_AREA_SYSVIPC  (1 << 10)
#define VMA_AREA_SOCKET   (1 << 11)	/* a packet socket's rings; shmid: its file */
#define VMA_AREA_VVAR     (1 << 12)
#define VMA_AREA_AIORING  (1 << 13)	/* alone: not VMA_AREA_REGULAR, as CRIU */
#define VMA_AREA_MEMFD    (1 << 14)
#define VMA_AREA_GUARD    (1 << 16)	/* alone: a guard region, not a mapping (task/guards.h) */

#define PE_PARENT  (1 << 0)
#define PE_LAZY    (1 << 1)
#define PE_PRESENT (1 << 2)

#define PAGE_SZ 4096ul

/* Does the process's pagemap carry this mapping's page contents? Private
 * memory only, as in CRIU: shared anonymous memory is saved once per
 * object (pagemap-shmem-SHMID.img), shared files stay in their files.
 * The vdso's are saved too, as CRIU does (its restore reads the old vdso
 * from them), but restore puts this kernel's live vdso there instead. */
static inline int vma_has_pages(unsigned status)
{
	if (status & VMA_AREA_AIORING)
		return 1;	/* the ring, whole: restore copies it into a new one */
	return (status & VMA_AREA_REGULAR) &&
	       !(status & (VMA_AREA_VVAR | VMA_AREA_VSYSCALL)) &&
	       (status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE));
}

/* Does restore write the saved pages back into the mapping? */
static inline int vma_restores_pages(unsigned status)
{
	return vma_has_pages(status) && !(status & VMA_AREA_VDSO);
}

#endif
