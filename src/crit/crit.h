#ifndef STASIS_CRIT_H
#define STASIS_CRIT_H
/* `stasis crit CMD ...`, or stasis run by the name crit: CRIU's image tool
 * (decode, encode, info, show, x) with its options, JSON and output, for
 * the kinds of image stasis knows. argv[0] is "crit". Exit status. */
int crit_main(int argc, char **argv);
#endif
