/* fuzz-config.c - fluidmemd's configuration file parser
 * (src/monitor/config.c): fm_config_parse (the syntax) and fm_config_args
 * (settings checked against the daemon's options, turned into arguments).
 *
 * Invariants beyond "no crash" (and, under libFuzzer, no leak):
 * - every setting handed to the callback has a key of [a-z0-9-], a value
 *   without a newline, and line numbers that grow and stay within the file;
 * - a rejection names a line within the file and a non-empty reason; an error
 *   of the callback stops the parse and comes back with its line;
 * - the settings written back out (every value quoted, \" and \\ escaped)
 *   parse to the same settings;
 * - fm_config_args gives only "--name" (flags) or "--name=value" (options
 *   with a non-empty value) of known, settable options, each at most once
 *   but the lists (allow, reserve), NULL-terminated, n of them.
 * sources: src/monitor/config.c src/common/size.c
 * libs: -lm */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

/* fluidmemd's options, as in main.c (keep in step). */
static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "socket", required_argument, NULL, 's' },
	{ "local-memory", required_argument, NULL, 'm' },
	{ "store", required_argument, NULL, 'S' },
	{ "evict-batch", required_argument, NULL, 'b' },
	{ "socket-mode", required_argument, NULL, 'M' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "metrics-listen", required_argument, NULL, 'L' },
	{ "poll-us", required_argument, NULL, 'P' },
	{ "prefetch", required_argument, NULL, 'F' },
	{ "no-zero-skip", no_argument, NULL, 'Z' },
	{ "no-encrypt", no_argument, NULL, 'E' },
	{ "allow", required_argument, NULL, 'A' },
	{ "async-evict", required_argument, NULL, 'W' },
	{ "clean-tracking", no_argument, NULL, 'K' },
	{ "affinity", required_argument, NULL, 'Y' },
	{ "reserve", required_argument, NULL, 'R' },
	{ "store-cap", required_argument, NULL, 'C' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

#define MAX_SETTINGS 512

struct setting {
	char *key, *value;
	unsigned line;
};

struct record {
	struct setting s[MAX_SETTINGS];
	int n;
	unsigned lines;   /* lines in the file */
	int fail_at;      /* -1, or make the callback fail on this setting */
	unsigned fail_line;
};

static int record_one(void *arg, const char *key, const char *value, unsigned line, char *why, size_t cap)
{
	struct record *r = arg;
	CHECK(key[0] && strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(key), "key '%s'", key);
	CHECK(!strchr(value, '\n'), "a value holds a newline");
	CHECK(line >= 1 && line <= r->lines, "line %u of %u", line, r->lines);
	CHECK(!r->n || line > r->s[r->n - 1].line, "line %u after line %u", line, r->n ? r->s[r->n - 1].line : 0);
	if (r->n == r->fail_at) {
		r->fail_line = line;
		snprintf(why, cap, "refused by the fuzzer");
		return -ENOTSUP;
	}
	if (r->n == MAX_SETTINGS) {
		snprintf(why, cap, "too many");
		return -E2BIG;
	}
	r->s[r->n].key = strdup(key);
	r->s[r->n].value = strdup(value);
	r->s[r->n].line = line;
	r->n++;
	return 0;
}

static void record_free(struct record *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->s[i].key);
		free(r->s[i].value);
	}
	r->n = 0;
}

/* The settings as a file of `key = "value"` lines. */
static char *write_back(const struct record *r, size_t *len)
{
	size_t cap = 64;
	for (int i = 0; i < r->n; i++)
		cap += strlen(r->s[i].key) + 2 * strlen(r->s[i].value) + 8;
	char *out = malloc(cap), *p = out;
	for (int i = 0; i < r->n; i++) {
		p += sprintf(p, "%s = \"", r->s[i].key);
		for (const char *v = r->s[i].value; *v; v++) {
			if (*v == '"' || *v == '\\')
				*p++ = '\\';
			*p++ = *v;
		}
		*p++ = '"';
		*p++ = '\n';
	}
	*len = (size_t)(p - out);
	return out;
}

static bool is_known(const char *arg, bool *flag)
{
	static const char *const refused[] = { "config", "help", "version" };
	const char *eq = strchr(arg + 2, '=');
	size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
	for (size_t i = 0; i < 3; i++)
		if (strlen(refused[i]) == klen && memcmp(arg + 2, refused[i], klen) == 0)
			return false;
	for (const struct option *o = longopts; o->name; o++)
		if (strlen(o->name) == klen && memcmp(arg + 2, o->name, klen) == 0) {
			*flag = o->has_arg == no_argument;
			return true;
		}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct record r, r2;
	if (size < 1 || size > 64 * 1024)
		return 0;
	int fail_at = data[0] < 0xf0 ? -1 : data[0] & 7;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;

	r.lines = 1;
	for (size_t i = 0; i < len; i++)
		r.lines += buf[i] == '\n';
	r.fail_at = fail_at;
	r.fail_line = 0;
	struct fm_config_err err;
	memset(&err, 0x55, sizeof(err));
	int rc = fm_config_parse(buf, len, record_one, &r, &err);
	if (rc < 0) {
		CHECK(err.line >= 1 && err.line <= r.lines, "error on line %u of %u", err.line, r.lines);
		CHECK(memchr(err.msg, 0, sizeof(err.msg)) && err.msg[0], "error without a reason");
		if (r.fail_line)
			CHECK(rc == -ENOTSUP && err.line == r.fail_line, "the callback's error came back as %d line %u",
			      rc, err.line);
		else
			CHECK(rc == -EINVAL || rc == -E2BIG, "result %d", rc);
	} else {
		CHECK(fail_at < 0 || r.n <= fail_at, "%d settings, the callback fails the %dth", r.n, fail_at + 1);
		/* write back, parse again: the same settings */
		size_t blen;
		char *back = write_back(&r, &blen);
		r2.lines = 1;
		for (size_t i = 0; i < blen; i++)
			r2.lines += back[i] == '\n';
		r2.fail_at = -1;
		rc = fm_config_parse(back, blen, record_one, &r2, &err);
		CHECK(rc == 0, "the settings written back do not parse: line %u: %s", err.line, err.msg);
		CHECK(r2.n == r.n, "%d settings, %d written back", r.n, r2.n);
		for (int i = 0; i < r.n; i++)
			CHECK(strcmp(r.s[i].key, r2.s[i].key) == 0 && strcmp(r.s[i].value, r2.s[i].value) == 0,
			      "setting %d: '%s' = '%s' comes back as '%s' = '%s'", i, r.s[i].key, r.s[i].value,
			      r2.s[i].key, r2.s[i].value);
		record_free(&r2);
		free(back);
	}
	record_free(&r);

	/* the daemon's view: checked arguments */
	char **args = NULL;
	int n = -1;
	rc = fm_config_args(buf, len, longopts, &args, &n, &err);
	if (rc < 0) {
		CHECK(err.msg[0] && err.line <= r.lines, "args: error on line %u without reason", err.line);
		return 0;
	}
	CHECK(args && n >= 0 && !args[n], "args: %d, not NULL-terminated", n);
	for (int i = 0; i < n; i++) {
		bool flag = false;
		const char *a = args[i];
		CHECK(a && a[0] == '-' && a[1] == '-' && is_known(a, &flag), "args: '%s'", a ? a : "(null)");
		const char *eq = strchr(a, '=');
		CHECK(flag ? !eq : eq && eq[1], "args: '%s' (a %s)", a, flag ? "flag" : "option with a value");
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		/* lists add up: they may repeat (config.c's `repeatable`) */
		if (strncmp(a, "--allow=", 8) == 0 || strncmp(a, "--reserve=", 10) == 0 ||
		    strncmp(a, "--store-cap=", 12) == 0)
			continue;
		for (int k = 0; k < i; k++)
			CHECK(!(strncmp(args[k], a, klen) == 0 && (args[k][klen] == '=' || !args[k][klen])),
			      "args: '%s' twice", a);
	}
	fm_config_args_free(args);
	return 0;
}
