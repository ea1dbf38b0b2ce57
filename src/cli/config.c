/* CRIU's configuration files, read as CRIU reads them, so a machine set up
 * for CRIU (or a runtime that writes one) configures stasis the same way.
 *
 * Sources, in this order, each overriding the one before: /etc/criu/
 * default.conf, $HOME/.criu/default.conf (both skipped with
 * --no-default-config or --config), the file named by $CRIU_CONFIG_FILE,
 * the file of --config, and last the command line itself. A file that does
 * not exist is skipped, as CRIU skips it.
 *
 * The syntax: one option per line, its name without the leading "--",
 * then its value if it takes one ("log-file /tmp/x.log", read as
 * --log-file=/tmp/x.log); '#' starts a
 * comment; a value with spaces is written in double quotes, \" inside them
 * standing for a quote. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "util/grow.h"

struct words {
	char **v;
	int n, cap;
};

static int words_add(struct words *w, char *s)
{
	if (!s)
		return -1;
	if (grow_array(w->v, w->cap, w->n + 2, 16) < 0) {	/* and the NULL after */
		free(s);
		return -1;
	}
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
	return 0;
}

/* One quoted value starting after its opening quote at *p: up to the
 * closing quote, with \" kept as a quote. *p is left past the closing one. */
static char *quoted_word(const char **p, const char *file, int line)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s && *s != '"' && *s != '\n'; s++) {
		if (s[0] == '\\' && s[1] == '"')
			s++;
		*o++ = *s;
	}
	if (*s != '"') {
		fprintf(stderr, "Error: %s:%d: a quoted value has no closing quote\n", file, line);
		free(out);
		return NULL;
	}
	*o = 0;
	*p = s + 1;
	return out;
}

/* An option and its value become one "--name=value", so that options
 * whose value is optional on the command line (verbosity, ext-unix-sk)
 * take it from a file as well. */
static int join_value(struct words *w)
{
	char *opt;
	if (asprintf(&opt, "%s=%s", w->v[w->n - 2], w->v[w->n - 1]) < 0)
		return -1;
	free(w->v[w->n - 2]);
	free(w->v[w->n - 1]);
	w->n--;
	w->v[w->n - 1] = opt;
	w->v[w->n] = NULL;
	return 0;
}

/* The words of one line; the first, the option's name, gets its "--". */
static int line_words(const char *s, struct words *w, const char *file, int line)
{
	int start = w->n;
	bool first = true;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s || *s == '\n' || *s == '#')
			return w->n - start == 2 ? join_value(w) : 0;
		char *word;
		if (*s == '"') {
			s++;
			word = quoted_word(&s, file, line);
			if (!word)
				return -1;
		} else {
			size_t len = strcspn(s, " \t\r\n");
			word = strndup(s, len);
			s += len;
		}
		if (word && first) {
			char *opt;
			if (asprintf(&opt, "--%s", word) < 0)
				opt = NULL;
			free(word);
			word = opt;
		}
		first = false;
		if (words_add(w, word) < 0)
			return -1;
	}
}

static int read_file(const char *path, struct words *w)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	int line = 0, ret = 0;

	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		fprintf(stderr, "Error: can't read configuration file %s: %m\n", path);
		return -1;
	}
	while (ret == 0 && getline(&buf, &cap, f) >= 0)
		ret = line_words(buf, w, path, ++line);
	free(buf);
	fclose(f);
	return ret;
}

/* What the command line says about configuration files, read before the
 * options themselves since the files' options come first. */
static void config_wanted(int argc, char **argv, bool *defaults, const char **file)
{
	*defaults = true;
	*file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--no-default-config")) {
			*defaults = false;
		} else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			*file = argv[++i];
			*defaults = false;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			*file = argv[i] + 9;
			*defaults = false;
		}
	}
}

int config_args(int argc, char **argv, int *nargc, char ***nargv)
{
	struct words w = { NULL, 0, 0 };
	bool defaults;
	const char *file, *home = getenv("HOME"), *env = getenv("CRIU_CONFIG_FILE");
	char *user = NULL;
	int ret = 0;

	config_wanted(argc, argv, &defaults, &file);
	if (words_add(&w, strdup(argv[0])) < 0)
		return -1;
	if (defaults) {
		ret = read_file("/etc/criu/default.conf", &w);
		if (ret == 0 && home && asprintf(&user, "%s/.criu/default.conf", home) >= 0)
			ret = read_file(user, &w);
		free(user);
	}
	if (ret == 0 && env && *env)
		ret = read_file(env, &w);
	if (ret == 0 && file)
		ret = read_file(file, &w);
	for (int i = 1; ret == 0 && i < argc; i++)
		ret = words_add(&w, strdup(argv[i]));
	if (ret < 0) {
		for (int i = 0; i < w.n; i++)
			free(w.v[i]);
		free(w.v);
		return -1;
	}
	*nargc = w.n;
	*nargv = w.v;
	return 0;
}

int config_file_args(const char *path, int *nargc, char ***nargv)
{
	struct words w = { NULL, 0, 0 };
	if (words_add(&w, strdup("stasis")) < 0 || read_file(path, &w) < 0) {
		for (int i = 0; i < w.n; i++)
			free(w.v[i]);
		free(w.v);
		return -1;
	}
	*nargc = w.n;
	*nargv = w.v;
	return 0;
}
