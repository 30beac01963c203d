/* url.h - parse the URL of a remote store into a plain struct.
 *
 *   memcached://host[:port][,host[:port]...][?replicas=N&timeout_ms=T&retry_ms=R]
 *   redis://[[user]:password@]host[:port][/db][?timeout_ms=T&retry_ms=R]
 *
 * A host is a name, an IPv4 address or a bracketed IPv6 address ("[::1]:11211").
 * Default ports: memcached 11211, redis 6379. A password may be percent-encoded
 * (%40 for '@', %2F for '/'). Unknown parameters are errors, so a typo is not
 * silently ignored.
 *
 * Not here: name resolution, connecting, anything backend specific. The parser
 * allocates nothing and touches no global state (it is a fuzzing target). */
#ifndef FLUIDMEM_STORE_URL_H
#define FLUIDMEM_STORE_URL_H

#include <stddef.h>
#include <stdint.h>

#define FM_URL_MAX_HOSTS 32
#define FM_URL_HOST_MAX 256     /* a DNS name is at most 253 bytes */
#define FM_URL_SECRET_MAX 256

#define FM_URL_DEFAULT_TIMEOUT_MS 500   /* connect and per-request I/O timeout */
#define FM_URL_DEFAULT_RETRY_MS 5000    /* longest a call waits for a dead server */

enum fm_url_scheme { FM_URL_MEMCACHED = 1, FM_URL_REDIS };

struct fm_url_host {
	char name[FM_URL_HOST_MAX]; /* host name or address, IPv6 without brackets */
	uint16_t port;
	int ipv6;                   /* name is an IPv6 literal (print it in brackets) */
};

struct fm_store_url {
	enum fm_url_scheme scheme;
	struct fm_url_host hosts[FM_URL_MAX_HOSTS];
	unsigned nhosts;            /* memcached: 1..FM_URL_MAX_HOSTS; redis: 1 */
	unsigned replicas;          /* memcached: copies of each page on distinct servers, 1..nhosts */
	unsigned timeout_ms;        /* 1..600000 */
	unsigned retry_ms;          /* 0..3600000; 0 = never wait for a dead server */
	unsigned db;                /* redis: database number for SELECT (0 = default, no SELECT) */
	char user[FM_URL_SECRET_MAX];     /* redis: ACL user name, "" = none */
	char password[FM_URL_SECRET_MAX]; /* redis: decoded password, "" = no AUTH */
	int has_password;
};

/* Parse url into *out (fully overwritten). Returns 0, or -EINVAL with a
 * one-line reason in err that never contains the password. */
int fm_store_url_parse(const char *url, struct fm_store_url *out, char *err, size_t errlen);
/* Parse, check the scheme is `scheme` (named `name` in errors) and initialise
 * sealing: a remote backend's first step on open (in store.c). */
int fm_store_url_for(const char *url, enum fm_url_scheme scheme, const char *name, struct fm_store_url *u, char *err,
		     size_t errlen);

/* "host:port", or "[v6]:port". Returns snprintf's result. */
int fm_url_host_format(const struct fm_url_host *h, char *buf, size_t len);

#endif
