/* crit's command line: decode, encode, info, show, x. Input and output
 * are files or stdin/stdout, as crit's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crit/crit.h"
#include "crit/explore.h"
#include "crit/imgjson.h"
#include "util/io.h"
#include "util/log.h"
#include "util/grow.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stasis crit CMD ...   (CRIU's crit, for the images stasis writes)\n"
"  decode [--pretty] [-i IN] [-o OUT]  image to JSON (stdin, stdout by default)\n"
"  encode [-i IN] [-o OUT]             JSON to image\n"
"  info IN                             the image's magic and number of entries\n"
"  show IN [--nopl]                    decode --pretty; --nopl: raw data only by size\n"
"  x DIR ps|fds|mems|rss               explore a dump: processes, files, mappings,\n"
"                                      resident pages\n");
}

/* Copies what fd holds to a memfd, which can seek (crit reads a pipe). */
static int seekable(int fd, const char *name)
{
	char buf[65536];
	ssize_t n;

	if (lseek(fd, 0, SEEK_CUR) >= 0)
		return fd;
	int copy = memfd_create("crit-input", MFD_CLOEXEC);
	if (copy < 0) {
		pr_perror("can't make a copy of %s", name);
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write_all(copy, buf, n) < 0)
			break;
	if (n != 0 || lseek(copy, 0, SEEK_SET) < 0) {
		pr_perror("can't read %s", name);
		close(copy);
		copy = -1;
	}
	close(fd);
	return copy;
}

/* The input (path, or stdin when NULL), its fd ours to close. */
static int open_in(const char *path, bool seek)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : fcntl(0, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		pr_perror("can't open %s", path ? path : "stdin");
		return -1;
	}
	return seek ? seekable(fd, path ? path : "stdin") : fd;
}

static int open_out(const char *path)
{
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : fcntl(1, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		pr_perror("can't open %s", path ? path : "stdout");
	return fd;
}

static struct json *load(const char *in, bool pretty, bool nopl, enum img_kind *kind)
{
	struct img img;
	int fd = open_in(in, true);

	if (fd < 0)
		return NULL;
	if (img_open_fd(&img, fd, in ? in : "stdin", kind) < 0) {
		close(fd);
		return NULL;
	}
	struct json *image = crit_load(&img, *kind, pretty, nopl);
	img_close(&img);
	return image;
}

/* The text of v to out (stdout, then with a newline, when NULL). */
static int write_json(const struct json *v, int indent, const char *out)
{
	size_t len;
	char *text = json_dump(v, indent, &len);
	int fd = text ? open_out(out) : -1;
	int ret = -1;

	if (!text)
		pr_err("out of memory");
	if (fd >= 0 && write_all(fd, text, len) == 0 && (out || write_all(fd, "\n", 1) == 0))
		ret = 0;
	else if (fd >= 0)
		pr_perror("can't write %s", out ? out : "stdout");
	if (fd >= 0 && close(fd) < 0 && !ret) {
		pr_perror("can't write %s", out ? out : "stdout");
		ret = -1;
	}
	free(text);
	return ret;
}

static int decode(const char *in, const char *out, bool pretty, bool nopl)
{
	enum img_kind kind;
	struct json *image = load(in, pretty, nopl, &kind);
	int ret = image ? write_json(image, pretty ? 4 : 0, out) : -1;
	json_free(image);
	return ret;
}

/* The number of entries, a head not counted (crit counts a pagemap's so). */
static int info(const char *in)
{
	enum img_kind kind;
	struct json *image = load(in, false, true, &kind), *res = json_new(JSON_OBJECT);
	int ret = -1;

	if (image && res) {
		const struct json *entries = json_get(image, "entries");
		size_t n = entries->n - (img_kinds[kind].head && entries->n ? 1 : 0);
		if (json_set(res, "magic", json_str(img_kinds[kind].magic_name)) == 0 &&
		    json_set(res, "count", json_uint(n)) == 0)
			ret = write_json(res, 4, NULL);
	}
	json_free(image);
	json_free(res);
	return ret;
}

static char *read_all(int fd, const char *name, size_t *len)
{
	size_t cap = 0;
	char *buf = NULL;
	ssize_t n;

	*len = 0;
	do {
		if (grow_array(buf, cap, *len + 1, 65536) < 0) {
			pr_err("out of memory reading %s", name);
			free(buf);
			return NULL;
		}
		n = read(fd, buf + *len, cap - *len);
		if (n > 0)
			*len += n;
	} while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0) {
		pr_perror("can't read %s", name);
		free(buf);
		buf = NULL;
	}
	return buf;
}

static int encode(const char *in, const char *out)
{
	const char *name = in ? in : "stdin";
	size_t len;
	char err[128];
	int fd = open_in(in, false);
	char *text = fd >= 0 ? read_all(fd, name, &len) : NULL;
	struct json *image = text ? json_parse(text, len, err, sizeof(err)) : NULL;
	int ret = -1;

	if (fd >= 0)
		close(fd);
	if (text && !image)
		pr_err("%s is not JSON: %s", name, err);
	if (image && (fd = open_out(out)) >= 0)
		ret = crit_store(image, name, fd, out ? out : "stdout");
	json_free(image);
	free(text);
	return ret;
}

/* Which of crit's options each command takes. */
struct args {
	const char *in, *out;
	bool pretty, nopl;
	unsigned given;		/* the options seen, as bits of their letters below */
};

#define OPT_BIT(c) (1u << ((c) - 'a'))

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "nopl", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': a->in = optarg; break;
		case 'o': a->out = optarg; break;
		case 'p': a->pretty = true; break;
		case 'n': a->nopl = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
		a->given |= OPT_BIT(c);
	}
	return 0;
}

static const struct command {
	const char *name;
	int positional;		/* arguments it takes */
	unsigned options;	/* OPT_BITs */
} commands[] = {
	{ "decode", 0, OPT_BIT('i') | OPT_BIT('o') | OPT_BIT('p') },
	{ "encode", 0, OPT_BIT('i') | OPT_BIT('o') },
	{ "info", 1, 0 },
	{ "show", 1, OPT_BIT('n') },
	{ "x", 2, 0 },
};

/* The command named, if its arguments and options are its own. */
static const struct command *command(const char *name, const struct args *a, int positional)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->name, name))
			continue;
		if (positional == c->positional && !(a->given & ~c->options))
			return c;
		fprintf(stderr, "crit: error: wrong arguments for %s\n", name);
		return NULL;
	}
	fprintf(stderr, "crit: error: unknown command '%s'\n", name);
	return NULL;
}

int crit_main(int argc, char **argv)
{
	struct args a = { 0 };
	const struct command *c;
	int ret;

	log_init(NULL, LOG_ERROR);
	if (parse(argc, argv, &a) < 0 || optind >= argc ||
	    !(c = command(argv[optind], &a, argc - optind - 1))) {
		usage(stderr);
		return 2;
	}
	char **pos = argv + optind + 1;
	if (!strcmp(c->name, "decode"))
		ret = decode(a.in, a.out, a.pretty, false);
	else if (!strcmp(c->name, "encode"))
		ret = encode(a.in, a.out);
	else if (!strcmp(c->name, "info"))
		ret = info(pos[0]);
	else if (!strcmp(c->name, "show"))
		ret = decode(pos[0], NULL, true, a.nopl);
	else
		ret = crit_explore(pos[0], pos[1], stdout);
	if (fflush(stdout) != 0)
		ret = -1;
	return ret < 0 ? 1 : 0;
}
