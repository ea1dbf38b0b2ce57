/* page-server --lazy-pages: the lazy pages of a finished dump, served
 * from its images to a remote `lazy-pages --page-server` (CRIU's way of
 * lazy migration from images, ps_lazy.h). */
#ifndef STASIS_PS_IMAGES_H
#define STASIS_PS_IMAGES_H

#include "pagexfer/ps_lazy.h"

/* The lazy runs of every process of the dump in dirfd (pstree.img; its
 * pagemap-PID.img runs marked PE_LAZY whose bytes are in its pages
 * image), ready to be served: NULL, said, if the images can't be read. */
struct ps_pages *ps_images_open(int dirfd, const struct opts *o);
void ps_images_close(struct ps_pages *p);

#endif
