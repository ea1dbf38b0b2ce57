/* The contents of one shared memory object (shared anonymous memory),
 * as CRIU keeps them: pagemap-shmem-SHMID.img, whose entries' vaddr are
 * byte offsets in the object, and the pages-N.img its head names, with
 * the bytes of the PE_PRESENT runs in the order of the entries. Pages
 * never written (holes) and all-zero pages are left out: an object
 * starts as zeros. */
#ifndef STASIS_SHMEM_PAGES_H
#define STASIS_SHMEM_PAGES_H

#include <stdint.h>

/* Each run of non-zero pages in the first size bytes of the object open
 * at fd, in offset order: nr pages at byte offset off, their bytes in
 * data (valid for the call). Holes and zero pages are skipped; a run may
 * be cut where the reads' chunks meet. A callback's -1 stops the scan. */
typedef int shmem_run_fn(void *arg, uint64_t off, const uint8_t *data, uint64_t nr);
int shmem_pages_scan(int fd, uint64_t size, const char *what, shmem_run_fn *run, void *arg);

/* Saves the first size bytes of the object open at fd (read-only is
 * enough) under shmid, its pages in pages-<pages_id>.img; what names it
 * in errors. *saved gets the bytes written. 0 or -1 (reported; the
 * images may be left half-written, as any failed dump's). */
int shmem_pages_write(int dirfd, uint64_t shmid, uint32_t pages_id, int fd, uint64_t size,
		      const char *what, uint64_t *saved);

/* Reads the saved pages of shmid into mem, the object's size bytes
 * (mapped, zero-filled); no pagemap image at all means all zeros. Every
 * run is checked to lie inside size. 0 or -1 (reported). */
int shmem_pages_read(int dirfd, uint64_t shmid, uint8_t *mem, uint64_t size);

#endif
