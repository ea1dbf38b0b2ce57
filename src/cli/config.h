/* CRIU's configuration files (see config.c). */
#ifndef STASIS_CONFIG_H
#define STASIS_CONFIG_H

/* The command line to parse: argv[0], the options of the configuration
 * files argv asks for (or the default ones), then argv's own arguments,
 * so the command line overrides the files. Errors are printed. */
int config_args(int argc, char **argv, int *nargc, char ***nargv);

/* One file alone (an RPC request's config_file): argv[0] then its
 * options, as config_args reads them. */
int config_file_args(const char *path, int *nargc, char ***nargv);

#endif
