/* config.h - fluidmemd's configuration file (docs/configuration.md).
 *
 * The file holds `key = value` lines whose keys are fluidmemd's long option
 * names. It is turned into `--key=value` arguments placed before the command
 * line's, so the one option parser in main.c sees both and a flag given on
 * the command line overrides the file (getopt keeps the last value). */
#ifndef FM_CONFIG_H
#define FM_CONFIG_H

#include <getopt.h>
#include <stddef.h>

#define FM_CONFIG_DEFAULT "/etc/fluidmem/fluidmemd.conf"
#define FM_CONFIG_LINE_MAX 4096

struct fm_config_err {
	unsigned line;   /* 1-based; 0 when the error is not about one line */
	char msg[256];
};

/* Called once per setting, key and value NUL-terminated (value unquoted).
 * Returns 0, or -errno with a reason written to why. */
typedef int (*fm_config_fn)(void *arg, const char *key, const char *value, unsigned line,
			    char *why, size_t cap);

/* Parse a whole file held in buf (len bytes, need not be NUL-terminated):
 * the syntax only, each setting handed to fn. Pure: no I/O, no allocation.
 * Returns 0, or -EINVAL (or fn's error) with err filled in. */
int fm_config_parse(const char *buf, size_t len, fm_config_fn fn, void *arg, struct fm_config_err *err);

/* Parse buf and check every setting against longopts (unknown keys, values
 * of the options fluidmemd knows, booleans of flags, duplicates): on success
 * *out is a NULL-terminated malloc'd vector of "--key=value" / "--flag"
 * strings (free with fm_config_args_free) and *n its length. No I/O. */
int fm_config_args(const char *buf, size_t len, const struct option *longopts, char ***out, int *n,
		   struct fm_config_err *err);
void fm_config_args_free(char **args);

/* The argument vector fluidmemd parses: argv[0], the settings of the
 * configuration file (--config FILE / -c FILE, else FM_CONFIG_DEFAULT when it
 * exists), then argv[1..]. Prints "fluidmemd: FILE:LINE: reason" and returns
 * -1 on a bad file. The vector lives until exit. */
int fm_config_argv(int argc, char **argv, const struct option *longopts, int *argc_out, char ***argv_out);

#endif
