/* config.c - reads fluidmemd's configuration file into option arguments.
 *
 * Format (docs/configuration.md): one `key = value` per line; blank lines
 * and lines starting with `#` are ignored; a value may be "double quoted"
 * (\" and \\ inside) to keep spaces or a ` #`; otherwise ` #` starts a
 * trailing comment. Keys are fluidmemd's long option names; flags take
 * true/false (yes/no, on/off, 1/0). Each setting becomes `--key=value`
 * ahead of the command line's arguments, so flags override the file. A key
 * may be set once, except the lists (allow, reserve, store-cap), which add up.
 *
 * The parser is a pure function over a buffer (no I/O, no allocation) so it
 * can be fuzzed; the checker allocates only the argument strings. What this
 * file does not do: apply the options (main.c's getopt loop does, for file
 * and command line alike) or reload on SIGHUP. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "size.h"
#include "worker.h"

static int seterr(struct fm_config_err *err, unsigned line, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int seterr(struct fm_config_err *err, unsigned line, int rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->line = line;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* One line (no '\n', may hold anything): a setting, or nothing. */
static int parse_line(const char *s, size_t n, unsigned line, fm_config_fn fn, void *arg,
		      struct fm_config_err *err)
{
	char key[64], value[FM_CONFIG_LINE_MAX];
	size_t i = 0, k = 0, v = 0;

	while (i < n && is_blank(s[i]))
		i++;
	if (i == n || s[i] == '#')
		return 0;
	while (i < n && key_char(s[i])) {
		if (k + 1 >= sizeof(key))
			return seterr(err, line, -EINVAL, "key too long");
		key[k++] = s[i] == '_' ? '-' : s[i];
		i++;
	}
	key[k] = 0;
	while (i < n && is_blank(s[i]))
		i++;
	if (!k || i == n || s[i] != '=') {
		if (!k)
			return seterr(err, line, -EINVAL, "expected `key = value`, got '%c'",
				      isprint((unsigned char)s[i]) ? s[i] : '?');
		return seterr(err, line, -EINVAL, "expected `=` after '%s'", key);
	}
	i++;
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && s[i] == '"') {
		for (i++;; i++) {
			if (i == n)
				return seterr(err, line, -EINVAL, "unterminated quoted value of '%s'", key);
			if (s[i] == '"')
				break;
			if (s[i] == '\\') {
				if (i + 1 == n || (s[i + 1] != '"' && s[i + 1] != '\\'))
					return seterr(err, line, -EINVAL, "only \\\" and \\\\ may follow \\ in a quoted value");
				i++;
			}
			if (s[i] == 0)
				return seterr(err, line, -EINVAL, "NUL byte in value");
			value[v++] = s[i]; /* v < n <= FM_CONFIG_LINE_MAX - 1 */
		}
		for (i++; i < n && is_blank(s[i]); i++)
			;
		if (i < n && s[i] != '#')
			return seterr(err, line, -EINVAL, "text after the closing quote of '%s'", key);
	} else {
		for (; i < n; i++) {
			if (s[i] == '#' && (!v || is_blank(value[v - 1])))
				break; /* " # comment" */
			if (s[i] == 0)
				return seterr(err, line, -EINVAL, "NUL byte in value");
			value[v++] = s[i];
		}
		while (v && is_blank(value[v - 1]))
			v--;
	}
	value[v] = 0;
	char why[200] = "";
	int rc = fn(arg, key, value, line, why, sizeof(why));
	if (rc < 0)
		return seterr(err, line, rc, "%s", why[0] ? why : "invalid setting");
	return 0;
}

int fm_config_parse(const char *buf, size_t len, fm_config_fn fn, void *arg, struct fm_config_err *err)
{
	unsigned line = 1;
	size_t start = 0;
	if (err) {
		err->line = 0;
		err->msg[0] = 0;
	}
	while (start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - buf) : len;
		if (end - start >= FM_CONFIG_LINE_MAX)
			return seterr(err, line, -EINVAL, "line longer than %d bytes", FM_CONFIG_LINE_MAX - 1);
		int rc = parse_line(buf + start, end - start, line, fn, arg, err);
		if (rc < 0)
			return rc;
		start = end + 1;
		line++;
	}
	return 0;
}

/* ---- checking settings against fluidmemd's options ---- */

enum kind { K_STRING, K_PATH, K_SIZE, K_BATCH, K_MODE, K_ADDR };

/* Values fluidmemd's options take; options not listed are checked only for
 * being non-empty (their own handler in main.c checks the rest). */
static const struct {
	const char *key;
	enum kind kind;
} known[] = {
	{ "socket", K_PATH },      { "local-memory", K_SIZE }, { "store", K_STRING },
	{ "evict-batch", K_BATCH }, { "socket-mode", K_MODE }, { "metrics-listen", K_ADDR },
};

/* Keys that make no sense in the file. */
static const char *const refused[] = { "config", "help", "version" };

/* Options that add up rather than replace (lists): they may be given on
 * several lines, and the command line's add to the file's. */
static const char *const repeatable[] = { "allow", "reserve", "store-cap" };

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -EINVAL;
}

static int check_value(enum kind kind, const char *key, const char *v, char *why, size_t cap)
{
	uint64_t x;
	char *end;
	switch (kind) {
	case K_STRING:
		return 0;
	case K_PATH:
		if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(why, cap, "%s: path longer than %zu bytes", key,
				 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -ENAMETOOLONG;
		}
		return 0;
	case K_SIZE:
		if (fm_parse_size(v, &x) < 0 || x < 65536) {
			snprintf(why, cap, "%s: invalid size '%s' (e.g. 512M, 4G; at least 64K)", key, v);
			return -EINVAL;
		}
		return 0;
	case K_BATCH:
		errno = 0;
		x = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end || errno || x < 1 || x > FM_BATCH_MAX) {
			snprintf(why, cap, "%s: '%s' is not a number from 1 to %d", key, v, FM_BATCH_MAX);
			return -EINVAL;
		}
		return 0;
	case K_MODE:
		errno = 0;
		x = strtoull(v, &end, 8);
		if (!isdigit((unsigned char)v[0]) || *end || errno || x > 07777) {
			snprintf(why, cap, "%s: '%s' is not an octal mode such as 0660", key, v);
			return -EINVAL;
		}
		return 0;
	case K_ADDR: {
		const char *colon = strrchr(v, ':');
		errno = 0;
		x = colon ? strtoull(colon + 1, &end, 10) : 0;
		if (!colon || colon == v || !isdigit((unsigned char)colon[1]) || *end || errno || x < 1 || x > 65535) {
			snprintf(why, cap, "%s: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9464, [::1]:9464)", key, v);
			return -EINVAL;
		}
		return 0;
	}
	}
	return 0;
}

struct collect {
	const struct option *longopts;
	char **args;
	unsigned *lines;   /* line of each args[i], for duplicate reports */
	int n, cap;
};

static int collect_one(void *arg, const char *key, const char *value, unsigned line, char *why, size_t cap)
{
	struct collect *c = arg;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strcmp(key, refused[i]) == 0) {
			snprintf(why, cap, "'%s' cannot be set in the configuration file", key);
			return -EINVAL;
		}
	const struct option *o = c->longopts;
	while (o->name && strcmp(o->name, key) != 0)
		o++;
	if (!o->name) {
		snprintf(why, cap, "unknown key '%s' (keys are fluidmemd's long options, see fluidmemd --help)", key);
		return -EINVAL;
	}
	size_t klen = strlen(key);
	bool repeats = false;
	for (size_t i = 0; i < sizeof(repeatable) / sizeof(repeatable[0]); i++)
		repeats |= strcmp(key, repeatable[i]) == 0;
	for (int i = 0; i < c->n && !repeats; i++)
		if (strncmp(c->args[i] + 2, key, klen) == 0 && (c->args[i][2 + klen] == '=' || !c->args[i][2 + klen])) {
			snprintf(why, cap, "'%s' is already set on line %u", key, c->lines[i]);
			return -EINVAL;
		}
	char *a = NULL;
	if (o->has_arg == no_argument) {
		bool on;
		if (parse_bool(value, &on) < 0) {
			snprintf(why, cap, "%s: '%s' is not true or false", key, value);
			return -EINVAL;
		}
		if (!on)
			return 0; /* false: the flag's default, which is off */
		if (asprintf(&a, "--%s", key) < 0)
			return -ENOMEM;
	} else {
		if (!*value) {
			snprintf(why, cap, "%s: empty value", key);
			return -EINVAL;
		}
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			int rc = strcmp(known[i].key, key) == 0 ? check_value(known[i].kind, key, value, why, cap) : 0;
			if (rc < 0)
				return rc;
		}
		if (asprintf(&a, "--%s=%s", key, value) < 0)
			return -ENOMEM;
	}
	if (c->n + 2 > c->cap) {
		int ncap = c->cap ? c->cap * 2 : 16;
		char **na = realloc(c->args, sizeof(*na) * (size_t)ncap);
		if (na)
			c->args = na;
		unsigned *nl = realloc(c->lines, sizeof(*nl) * (size_t)ncap);
		if (nl)
			c->lines = nl;
		if (!na || !nl) {
			free(a);
			return -ENOMEM;
		}
		c->cap = ncap;
	}
	c->lines[c->n] = line;
	c->args[c->n++] = a;
	c->args[c->n] = NULL;
	return 0;
}

void fm_config_args_free(char **args)
{
	for (size_t i = 0; args && args[i]; i++)
		free(args[i]);
	free(args);
}

int fm_config_args(const char *buf, size_t len, const struct option *longopts, char ***out, int *n,
		   struct fm_config_err *err)
{
	struct collect c = { .longopts = longopts };
	int rc = fm_config_parse(buf, len, collect_one, &c, err);
	free(c.lines);
	if (rc < 0) {
		if (c.args)
			c.args[c.n] = NULL;
		fm_config_args_free(c.args);
		return rc;
	}
	if (!c.args && !(c.args = calloc(1, sizeof(char *))))
		return seterr(err, 0, -ENOMEM, "out of memory");
	*out = c.args;
	*n = c.n;
	return 0;
}

/* ---- the daemon's entry point: find, read, splice ---- */

/* --config FILE, --config=FILE, -c FILE or -cFILE before any "--". */
static const char *config_path(int argc, char **argv, bool *explicit)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(a, "--config=", 9) == 0)
			path = a + 9;
		else if (strncmp(a, "-c", 2) == 0 && a[2])
			path = a + 2;
	}
	*explicit = path != NULL;
	return path ? path : FM_CONFIG_DEFAULT;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b) {
			close(fd);
			return -ENOMEM;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			int e = -errno;
			free(b);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			if (cap >= (1u << 20)) {
				free(b);
				close(fd);
				return -EFBIG;
			}
			char *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

/* The spliced vector and the strings it points to, freed at exit (getopt
 * permutes the vector, so the strings are kept in their own list). */
static char **kept_vec, **kept_args;

static void free_kept(void)
{
	fm_config_args_free(kept_args);
	free(kept_vec);
}

int fm_config_argv(int argc, char **argv, const struct option *longopts, int *argc_out, char ***argv_out)
{
	bool explicit;
	const char *path = config_path(argc, argv, &explicit);
	char *buf = NULL;
	size_t len = 0;
	*argc_out = argc;
	*argv_out = argv;
	int rc = read_file(path, &buf, &len);
	if (rc == -ENOENT && !explicit)
		return 0; /* no default file: flags only */
	if (rc < 0) {
		fprintf(stderr, "fluidmemd: cannot read configuration %s: %s\n", path, strerror(-rc));
		return -1;
	}
	char **args;
	int n;
	struct fm_config_err err;
	rc = fm_config_args(buf, len, longopts, &args, &n, &err);
	free(buf);
	if (rc < 0) {
		if (err.line)
			fprintf(stderr, "fluidmemd: %s:%u: %s\n", path, err.line, err.msg);
		else
			fprintf(stderr, "fluidmemd: %s: %s\n", path, err.msg);
		return -1;
	}
	char **v = calloc((size_t)argc + (size_t)n + 1, sizeof(*v));
	if (!v) {
		fm_config_args_free(args);
		return -1;
	}
	v[0] = argv[0];
	memcpy(v + 1, args, sizeof(*v) * (size_t)n);
	memcpy(v + 1 + n, argv + 1, sizeof(*v) * (size_t)(argc - 1));
	kept_vec = v;
	kept_args = args;
	atexit(free_kept);
	*argc_out = argc + n;
	*argv_out = v;
	return 0;
}
