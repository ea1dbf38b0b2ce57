/* CRIU's command-line options stasis does not implement, so that each is
 * refused by name, saying what it is for, instead of getopt's bare
 * "unrecognized option". */
#ifndef STASIS_CLI_CRIU_OPTS_H
#define STASIS_CLI_CRIU_OPTS_H

/* Handles the option getopt_long did not know: argv[optind - 1] (or the
 * short option optopt). Prints one line and returns -1; returns 0 (and
 * prints nothing) for the "--no-" form of one of CRIU's switches that are
 * off by default: it asks for what stasis does anyway. */
int criu_opt_unknown(char **argv, int optind, int optopt);

#endif
