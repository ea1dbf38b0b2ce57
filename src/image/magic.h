/* Magic numbers at the head of each image file (CRIU's values, so that
 * crit and CRIU recognise our images). */
#ifndef STASIS_MAGIC_H
#define STASIS_MAGIC_H

#define IMG_COMMON_MAGIC   0x54564319
#define IMG_SERVICE_MAGIC  0x55105940

#define INVENTORY_MAGIC    0x58313116
#define PSTREE_MAGIC       0x50273030
#define FDINFO_MAGIC       0x56213732
#define PAGEMAP_MAGIC      0x56084025
#define CORE_MAGIC         0x55053847
#define IDS_MAGIC          0x54432030
#define FS_MAGIC           0x51403912
#define MM_MAGIC           0x57492820
#define FILES_MAGIC        0x56303138
#define TTY_INFO_MAGIC     0x59453036
#define PIPES_DATA_MAGIC   0x56453709
#define FILE_LOCKS_MAGIC   0x54323616
#define TTY_DATA_MAGIC     0x59413026
#define REMAP_FPATH_MAGIC  0x59133954
#define GHOST_FILE_MAGIC   0x52583605
#define FIFO_DATA_MAGIC    0x59333054
#define MEMFD_INODE_MAGIC  0x48453499
#define SK_QUEUES_MAGIC    0x56264026
#define SECCOMP_MAGIC      0x64413049

/* Version of the image set, as CRIU's CRTOOLS_IMAGES_V1_1. */
#define IMG_VERSION 2

#endif
