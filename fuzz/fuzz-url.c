/* fuzz-url.c - fm_store_url_parse (src/store/url.c): the store URL comes
 * from the command line, the environment or the configuration file.
 *
 * Invariants beyond "no crash":
 * - the result is 0 or -EINVAL, and a rejection says why in one line that
 *   does not contain the decoded password;
 * - an accepted URL keeps the documented limits (1..32 servers, one for
 *   redis, replicas <= servers, timeouts in range, no server twice, ports
 *   1-65535, IPv6 names valid);
 * - an accepted URL written back out (every field spelled, the credentials
 *   percent-encoded) parses to the identical struct, and writing that out
 *   again gives the same text.
 * sources: src/store/url.c */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "url.h"

static size_t put_encoded(char *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			o[n++] = (char)c;
		} else {
			o[n++] = '%';
			o[n++] = hex[c >> 4];
			o[n++] = hex[c & 15];
		}
	}
	o[n] = 0;
	return n;
}

/* The URL of u, every field explicit. buf must hold 16 KiB. */
static void format_url(const struct fm_store_url *u, char *buf)
{
	char *p = buf;
	p += sprintf(p, "%s://", u->scheme == FM_URL_MEMCACHED ? "memcached" : "redis");
	if (u->has_password) {
		p += put_encoded(p, u->user);
		*p++ = ':';
		p += put_encoded(p, u->password);
		*p++ = '@';
	}
	for (unsigned i = 0; i < u->nhosts; i++) {
		if (i)
			*p++ = ',';
		p += fm_url_host_format(&u->hosts[i], p, 512);
	}
	if (u->scheme == FM_URL_REDIS && u->db)
		p += sprintf(p, "/%u", u->db);
	p += sprintf(p, "?timeout_ms=%u&retry_ms=%u", u->timeout_ms, u->retry_ms);
	if (u->scheme == FM_URL_MEMCACHED)
		sprintf(p, "&replicas=%u", u->replicas);
}

static void check_limits(const char *in, const struct fm_store_url *u)
{
	CHECK(u->scheme == FM_URL_MEMCACHED || u->scheme == FM_URL_REDIS, "'%s': scheme %d", in, u->scheme);
	CHECK(u->nhosts >= 1 && u->nhosts <= FM_URL_MAX_HOSTS, "'%s': %u hosts", in, u->nhosts);
	CHECK(u->scheme == FM_URL_MEMCACHED || u->nhosts == 1, "'%s': redis with %u hosts", in, u->nhosts);
	CHECK(u->replicas >= 1 && u->replicas <= u->nhosts, "'%s': replicas %u of %u", in, u->replicas, u->nhosts);
	CHECK(u->scheme == FM_URL_MEMCACHED || u->replicas == 1, "'%s': redis replicas %u", in, u->replicas);
	CHECK(u->timeout_ms >= 1 && u->timeout_ms <= 600000, "'%s': timeout %u", in, u->timeout_ms);
	CHECK(u->retry_ms <= 3600000, "'%s': retry %u", in, u->retry_ms);
	CHECK(u->scheme == FM_URL_REDIS || (!u->db && !u->has_password && !u->user[0]),
	      "'%s': memcached with a db or credentials", in);
	CHECK(u->has_password ? u->password[0] != 0 : !u->password[0] && !u->user[0],
	      "'%s': has_password %d but password '%s'", in, u->has_password, u->password);
	CHECK(memchr(u->user, 0, sizeof(u->user)) && memchr(u->password, 0, sizeof(u->password)),
	      "'%s': credentials not terminated", in);
	for (unsigned i = 0; i < u->nhosts; i++) {
		const struct fm_url_host *h = &u->hosts[i];
		CHECK(memchr(h->name, 0, sizeof(h->name)) && h->name[0], "'%s': host %u has no name", in, i);
		CHECK(h->port >= 1, "'%s': host %u port 0", in, i);
		if (h->ipv6) {
			struct in6_addr a;
			CHECK(inet_pton(AF_INET6, h->name, &a) == 1, "'%s': '%s' is not IPv6", in, h->name);
		} else {
			CHECK(strspn(h->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
				      strlen(h->name),
			      "'%s': host '%s' has a bad character", in, h->name);
		}
		for (unsigned k = 0; k < i; k++)
			CHECK(!(h->port == u->hosts[k].port && strcasecmp(h->name, u->hosts[k].name) == 0),
			      "'%s': host '%s' listed twice", in, h->name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char in[8192], out1[16384], out2[16384], err[256];
	static struct fm_store_url u, v, w;
	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = 0;

	memset(err, 0, sizeof(err));
	int rc = fm_store_url_parse(in, &u, err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL, "'%s' returned %d", in, rc);
	if (rc) {
		CHECK(err[0] && !strchr(err, '\n'), "'%s' rejected without a one-line reason: '%s'", in, err);
		/* A password decoded before the rejection must not be in the
		 * reason, unless the reason quotes an equal host name or port. */
		const char *at = strrchr(in, '@');
		if (strlen(u.password) >= 8 && at && !strstr(at, u.password))
			CHECK(!strstr(err, u.password), "'%s': the reason '%s' shows the password", in, err);
		return 0;
	}
	check_limits(in, &u);

	format_url(&u, out1);
	memset(err, 0, sizeof(err));
	rc = fm_store_url_parse(out1, &v, err, sizeof(err));
	CHECK(rc == 0, "'%s' was accepted, its canonical form '%s' is not: %s", in, out1, err);
	CHECK(memcmp(&u, &v, sizeof(u)) == 0, "'%s' and its canonical form '%s' parse differently", in, out1);
	format_url(&v, out2);
	CHECK(strcmp(out1, out2) == 0, "'%s' formats as '%s', then as '%s'", in, out1, out2);
	rc = fm_store_url_parse(out2, &w, NULL, 0);
	CHECK(rc == 0 && memcmp(&u, &w, sizeof(u)) == 0, "'%s' does not parse back without an error buffer", out2);
	return 0;
}
