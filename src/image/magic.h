/* The magics every image shares (CRIU's values, so that crit and CRIU
 * recognise our images); each kind's own is in its row of img_kinds. */
#ifndef STASIS_MAGIC_H
#define STASIS_MAGIC_H

#define IMG_COMMON_MAGIC   0x54564319
#define IMG_SERVICE_MAGIC  0x55105940

/* Version of the image set, as CRIU's CRTOOLS_IMAGES_V1_1. */
#define IMG_VERSION 2

#endif
