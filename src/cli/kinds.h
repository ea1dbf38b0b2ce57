#ifndef STASIS_CLI_KINDS_H
#define STASIS_CLI_KINDS_H
#include <stdio.h>
/* `stasis image-kinds`: the table of image kinds, one tab-separated line
 * per kind: name (printf format of its id), magic, header (common, own,
 * none), entry type, head type, optional or required; "-" for none. The
 * fuzzer's scripts and the tests read their image lists from it. */
void print_image_kinds(FILE *out);
#endif
