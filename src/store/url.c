/* url.c - the store URL parser (see url.h for the syntax).
 *
 * Walks the string once, left to right: scheme, optional userinfo, the host
 * list, an optional path, the query. Every rejection names the part at fault
 * in one line for the operator. No allocation, no I/O, no backend code; the
 * password never appears in an error. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "url.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Parse an unsigned decimal of at most 10 digits in [lo, hi]. */
static int parse_uint(const char *s, size_t len, unsigned long lo, unsigned long hi, unsigned long *out)
{
	if (len == 0 || len > 10)
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..len) into out (FM_URL_SECRET_MAX bytes). */
static int decode_secret(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || o + 1 >= FM_URL_SECRET_MAX)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* One "host[:port]" or "[v6][:port]" in s[0..len). */
static int parse_host(const char *what, const char *s, size_t len, uint16_t defport,
		      struct fm_url_host *h, char *err, size_t errlen)
{
	const char *port = NULL;
	size_t hlen;
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return bad(err, errlen, "%s URL: empty host name in the server list", what);
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return bad(err, errlen, "%s URL: '[' without ']' in host '%.*s'", what, (int)len, s);
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
			return bad(err, errlen, "%s URL: '%.*s' is not an IPv6 address", what, (int)len, s);
		memcpy(h->name, s + 1, hlen);
		h->name[hlen] = '\0';
		struct in6_addr a;
		if (inet_pton(AF_INET6, h->name, &a) != 1)
			return bad(err, errlen, "%s URL: '%.*s' is not an IPv6 address", what, (int)len, s);
		h->ipv6 = 1;
		const char *rest = close + 1;
		size_t rlen = len - (size_t)(rest - s);
		if (rlen > 0) {
			if (rest[0] != ':')
				return bad(err, errlen, "%s URL: unexpected '%.*s' after ']' (use [addr]:port)",
					   what, (int)rlen, rest);
			port = rest + 1;
		}
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
			return bad(err, errlen, "%s URL: '%.*s': an IPv6 address needs brackets, as in [::1]:%u",
				   what, (int)len, s, defport);
		hlen = colon ? (size_t)(colon - s) : len;
		if (hlen == 0)
			return bad(err, errlen, "%s URL: empty host name in '%.*s'", what, (int)len, s);
		if (hlen >= FM_URL_HOST_MAX)
			return bad(err, errlen, "%s URL: host name longer than %d bytes", what, FM_URL_HOST_MAX - 1);
		for (size_t i = 0; i < hlen; i++)
			if (!host_char(s[i]))
				return bad(err, errlen, "%s URL: invalid character '%c' in host '%.*s'",
					   what, s[i], (int)hlen, s);
		memcpy(h->name, s, hlen);
		h->name[hlen] = '\0';
		if (colon)
			port = colon + 1;
	}
	h->port = defport;
	if (port) {
		size_t plen = len - (size_t)(port - s);
		unsigned long v;
		if (parse_uint(port, plen, 1, 65535, &v) != 0)
			return bad(err, errlen, "%s URL: port '%.*s' of host '%s' is not a number in 1-65535",
				   what, (int)plen, port, h->name);
		h->port = (uint16_t)v;
	}
	return 0;
}

static int same_host(const struct fm_url_host *a, const struct fm_url_host *b)
{
	return a->port == b->port && strcasecmp(a->name, b->name) == 0;
}

static int parse_query(const char *what, const char *q, struct fm_store_url *u,
		       char *err, size_t errlen)
{
	while (*q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		if (len == 0)
			return bad(err, errlen, "%s URL: empty parameter in the query ('&&' or a trailing '&')", what);
		if (!eq)
			return bad(err, errlen, "%s URL: parameter '%.*s' has no value (use name=value)",
				   what, (int)len, q);
		size_t klen = (size_t)(eq - q);
		const char *v = eq + 1;
		size_t vlen = len - klen - 1;
		unsigned long n;
#define KEY(name) (klen == sizeof(name) - 1 && memcmp(q, name, klen) == 0)
		if (KEY("timeout_ms")) {
			if (parse_uint(v, vlen, 1, 600000, &n) != 0)
				return bad(err, errlen, "%s URL: timeout_ms='%.*s' must be a number of milliseconds in 1-600000",
					   what, (int)vlen, v);
			u->timeout_ms = (unsigned)n;
		} else if (KEY("retry_ms")) {
			if (parse_uint(v, vlen, 0, 3600000, &n) != 0)
				return bad(err, errlen, "%s URL: retry_ms='%.*s' must be a number of milliseconds in 0-3600000",
					   what, (int)vlen, v);
			u->retry_ms = (unsigned)n;
		} else if (KEY("replicas") && u->scheme == FM_URL_MEMCACHED) {
			if (parse_uint(v, vlen, 1, FM_URL_MAX_HOSTS, &n) != 0)
				return bad(err, errlen, "%s URL: replicas='%.*s' must be a number in 1-%d",
					   what, (int)vlen, v, FM_URL_MAX_HOSTS);
			u->replicas = (unsigned)n;
		} else {
			return bad(err, errlen, "%s URL: unknown parameter '%.*s' (known: %s)", what, (int)klen, q,
				   u->scheme == FM_URL_MEMCACHED ? "replicas, timeout_ms, retry_ms"
								 : "timeout_ms, retry_ms");
		}
#undef KEY
		if (!end)
			break;
		q = end + 1;
		if (*q == '\0')
			return bad(err, errlen, "%s URL: empty parameter in the query ('&&' or a trailing '&')", what);
	}
	return 0;
}

int fm_store_url_parse(const char *url, struct fm_store_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->replicas = 1;
	u->timeout_ms = FM_URL_DEFAULT_TIMEOUT_MS;
	u->retry_ms = FM_URL_DEFAULT_RETRY_MS;
	if (!url)
		return bad(err, errlen, "store URL is missing");

	const char *what;
	uint16_t defport;
	const char *p;
	if (strncmp(url, "memcached://", 12) == 0) {
		u->scheme = FM_URL_MEMCACHED;
		what = "memcached";
		defport = 11211;
		p = url + 12;
	} else if (strncmp(url, "redis://", 8) == 0) {
		u->scheme = FM_URL_REDIS;
		what = "redis";
		defport = 6379;
		p = url + 8;
	} else {
		return bad(err, errlen, "store URL must start with memcached:// or redis://");
	}
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return bad(err, errlen, "%s URL: contains a space or control character", what);
	if (strchr(p, '#'))
		return bad(err, errlen, "%s URL: '#' is not allowed (percent-encode it as %%23 in a password)", what);

	/* The authority runs to the first '/' or '?'; userinfo ends at its last '@'. */
	size_t alen = strcspn(p, "/?");
	if (strchr(p + alen, '@'))
		return bad(err, errlen, "%s URL: '@' after the host (percent-encode '/', '?' and '@' in a password as %%2F, %%3F, %%40)", what);
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (p[i] == '@')
			at = p + i;
	if (at) {
		if (u->scheme != FM_URL_REDIS)
			return bad(err, errlen, "%s URL: user names and passwords are not supported (remove the part before '@')", what);
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (!colon)
			return bad(err, errlen, "%s URL: credentials must be ':password@' or 'user:password@'", what);
		if (decode_secret(p, (size_t)(colon - p), u->user) != 0)
			return bad(err, errlen, "%s URL: the user name is too long or badly percent-encoded", what);
		if (decode_secret(colon + 1, (size_t)(at - colon - 1), u->password) != 0)
			return bad(err, errlen, "%s URL: the password is too long, empty or badly percent-encoded", what);
		if (u->password[0] == '\0')
			return bad(err, errlen, "%s URL: empty password after ':' (drop the '@' part for no AUTH)", what);
		u->has_password = 1;
		alen -= (size_t)(at + 1 - p);
		p = at + 1;
	}

	if (alen == 0)
		return bad(err, errlen, "%s URL: no server given (%s://host:port)", what, what);
	const char *h = p, *aend = p + alen;
	while (h <= aend) {
		const char *comma = memchr(h, ',', (size_t)(aend - h));
		const char *hend = comma ? comma : aend;
		if (u->nhosts == FM_URL_MAX_HOSTS)
			return bad(err, errlen, "%s URL: more than %d servers", what, FM_URL_MAX_HOSTS);
		struct fm_url_host *host = &u->hosts[u->nhosts];
		int rc = parse_host(what, h, (size_t)(hend - h), defport, host, err, errlen);
		if (rc)
			return rc;
		for (unsigned i = 0; i < u->nhosts; i++)
			if (same_host(&u->hosts[i], host))
				return bad(err, errlen, "%s URL: server '%s' port %u is listed twice", what,
					   host->name, host->port);
		u->nhosts++;
		if (!comma)
			break;
		h = comma + 1;
	}
	if (u->scheme == FM_URL_REDIS && u->nhosts != 1)
		return bad(err, errlen, "redis URL: exactly one server is supported, got %u", u->nhosts);
	p = aend;

	if (*p == '/') {
		size_t plen = strcspn(p + 1, "?");
		if (u->scheme == FM_URL_MEMCACHED && plen > 0)
			return bad(err, errlen, "memcached URL: unexpected path '/%.*s' (memcached has no databases)",
				   (int)plen, p + 1);
		if (plen > 0) {
			unsigned long db;
			if (parse_uint(p + 1, plen, 0, 1000000, &db) != 0)
				return bad(err, errlen, "redis URL: database '/%.*s' must be a number", (int)plen, p + 1);
			u->db = (unsigned)db;
		}
		p += 1 + plen;
	}

	if (*p == '?') {
		int rc = parse_query(what, p + 1, u, err, errlen);
		if (rc)
			return rc;
	}
	if (u->replicas > u->nhosts)
		return bad(err, errlen, "memcached URL: replicas=%u needs at least %u servers, %u given",
			   u->replicas, u->replicas, u->nhosts);
	return 0;
}

int fm_url_host_format(const struct fm_url_host *h, char *buf, size_t len)
{
	return snprintf(buf, len, h->ipv6 ? "[%s]:%u" : "%s:%u", h->name, h->port);
}
