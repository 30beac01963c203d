/* store.c - backend table and the helpers every backend shares.
 * Picks a backend by URL scheme; knows nothing about any backend's insides. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fluidmem/store.h"
#include "seal.h"
#include "url.h"

extern const struct fm_store_ops fm_store_local_ops;
extern const struct fm_store_ops fm_store_memcached_ops __attribute__((weak));
extern const struct fm_store_ops fm_store_redis_ops __attribute__((weak));

static const struct fm_store_ops *backend_for(const char *url, size_t scheme_len)
{
	const struct fm_store_ops *table[] = {
		&fm_store_local_ops, &fm_store_memcached_ops, &fm_store_redis_ops,
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct fm_store_ops *ops = table[i];
		if (ops && strlen(ops->scheme) == scheme_len &&
		    strncmp(ops->scheme, url, scheme_len) == 0)
			return ops;
	}
	return NULL;
}

int fm_store_open(const char *url, struct fm_store **out, char *err, size_t errlen)
{
	const char *sep = url ? strstr(url, "://") : NULL;
	if (!sep) {
		snprintf(err, errlen, "store URL '%s' has no scheme (try local://, memcached://host:port, redis://host:port)",
			 url ? url : "");
		return -EINVAL;
	}
	const struct fm_store_ops *ops = backend_for(url, (size_t)(sep - url));
	if (!ops) {
		snprintf(err, errlen, "unknown store scheme in '%s' (known: local, memcached, redis)", url);
		return -EPROTONOSUPPORT;
	}
	return ops->open(url, out, err, errlen);
}

const char *fm_store_strstatus(int status)
{
	switch (status) {
	case FM_STORE_OK: return "ok";
	case FM_STORE_MISSING: return "missing";
	case FM_STORE_CORRUPT: return "integrity check failed";
	case FM_STORE_UNAVAILABLE: return "store unavailable";
	case FM_STORE_FULL: return "store full";
	default: return "unknown status";
	}
}

int fm_store_key_format(const struct fm_page_key *key, char *buf)
{
	return snprintf(buf, FM_KEY_MAX, "fm:%016llx%016llx:%llx",
			(unsigned long long)key->region[0], (unsigned long long)key->region[1],
			(unsigned long long)key->page);
}

/* What every remote backend does first on open: parse the URL, check it
 * names this backend, and make sure sealing (libsodium) is ready. */
int fm_store_url_for(const char *url, enum fm_url_scheme scheme, const char *name, struct fm_store_url *u, char *err,
		     size_t errlen)
{
	int rc = fm_store_url_parse(url, u, err, errlen);
	if (rc == 0 && u->scheme != scheme) {
		snprintf(err, errlen, "not a %s URL", name);
		rc = -EINVAL;
	}
	if (rc == 0 && (rc = fm_seal_init()) != 0)
		snprintf(err, errlen, "%s: libsodium failed to initialise (no encryption possible)", name);
	return rc;
}
