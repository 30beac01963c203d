/* store-url.c - the store URL parser accepts what operators write and turns
 * every malformed URL into one clear line (checked against expected words),
 * never leaking the password into it. Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <string.h>

#include "../src/store/url.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL line %d: ", __LINE__); \
	printf(__VA_ARGS__); printf("\n"); failures++; } } while (0)

static struct fm_store_url u;
static char err[512];

static int ok(const char *url)
{
	err[0] = '\0';
	int rc = fm_store_url_parse(url, &u, err, sizeof(err));
	CHECK(rc == 0, "'%s' rejected: %s", url, err);
	return rc == 0;
}

static void bad(const char *url, const char *words)
{
	err[0] = '\0';
	int rc = fm_store_url_parse(url, &u, err, sizeof(err));
	CHECK(rc != 0, "'%s' accepted", url);
	CHECK(strstr(err, words) != NULL, "'%s': error '%s' lacks '%s'", url, err, words);
	CHECK(strchr(err, '\n') == NULL, "'%s': error has a newline", url);
	CHECK(strstr(err, "hunter2") == NULL, "'%s': error leaks the password: %s", url, err);
	printf("  %-60s -> %s\n", url, err);
}

int main(void)
{
	if (ok("memcached://127.0.0.1:11211")) {
		CHECK(u.scheme == FM_URL_MEMCACHED && u.nhosts == 1 && u.hosts[0].port == 11211, "single");
		CHECK(u.replicas == 1 && u.timeout_ms == FM_URL_DEFAULT_TIMEOUT_MS &&
		      u.retry_ms == FM_URL_DEFAULT_RETRY_MS, "defaults");
	}
	if (ok("memcached://a.example:1,10.0.0.2,[::1]:3,[fe80::1]?replicas=3&timeout_ms=50&retry_ms=0")) {
		CHECK(u.nhosts == 4, "4 hosts, got %u", u.nhosts);
		CHECK(strcmp(u.hosts[0].name, "a.example") == 0 && u.hosts[0].port == 1, "host 0");
		CHECK(strcmp(u.hosts[1].name, "10.0.0.2") == 0 && u.hosts[1].port == 11211, "host 1 default port");
		CHECK(strcmp(u.hosts[2].name, "::1") == 0 && u.hosts[2].port == 3 && u.hosts[2].ipv6, "host 2 v6");
		CHECK(u.hosts[3].port == 11211 && u.hosts[3].ipv6, "host 3 v6 default port");
		CHECK(u.replicas == 3 && u.timeout_ms == 50 && u.retry_ms == 0, "params");
		char b[300];
		fm_url_host_format(&u.hosts[2], b, sizeof(b));
		CHECK(strcmp(b, "[::1]:3") == 0, "format v6: %s", b);
	}
	if (ok("memcached://h/"))
		CHECK(u.nhosts == 1, "trailing slash");
	if (ok("redis://localhost"))
		CHECK(u.scheme == FM_URL_REDIS && u.hosts[0].port == 6379 && !u.has_password && u.db == 0, "redis defaults");
	if (ok("redis://:p%40ss%2Fw@10.1.2.3:7000/5?timeout_ms=20&retry_ms=100"))
		CHECK(u.has_password && strcmp(u.password, "p@ss/w") == 0 && u.user[0] == 0 &&
		      u.db == 5 && u.hosts[0].port == 7000 && u.timeout_ms == 20 && u.retry_ms == 100, "redis full");
	if (ok("redis://fluid:hunter2@[::1]:6380/"))
		CHECK(strcmp(u.user, "fluid") == 0 && strcmp(u.password, "hunter2") == 0 && u.hosts[0].ipv6, "acl user");

	printf("rejections:\n");
	bad("", "must start with memcached:// or redis://");
	bad("memcache://h:1", "must start with");
	bad("memcached://", "no server given");
	bad("memcached://h:0", "not a number in 1-65535");
	bad("memcached://h:65536", "not a number in 1-65535");
	bad("memcached://h:12x", "not a number");
	bad("memcached://h:", "port '' of host 'h'");
	bad("memcached://a,,b", "empty host name");
	bad("memcached://a,", "empty host name");
	bad("memcached://::1:11211", "needs brackets");
	bad("memcached://[::1", "without ']'");
	bad("memcached://[nothex]:1", "not an IPv6 address");
	bad("memcached://[::1]x", "after ']'");
	bad("memcached://h?replicas=2", "replicas=2 needs at least 2 servers, 1 given");
	bad("memcached://a,b?replicas=0", "replicas='0'");
	bad("memcached://a,b?replica=2", "unknown parameter 'replica'");
	bad("memcached://a?timeout_ms=0", "timeout_ms='0'");
	bad("memcached://a?timeout_ms=", "timeout_ms=''");
	bad("memcached://a?retry_ms=-1", "retry_ms='-1'");
	bad("memcached://a?retry_ms=99999999999", "retry_ms=");
	bad("memcached://a?timeout_ms", "has no value");
	bad("memcached://a?timeout_ms=5&", "empty parameter");
	bad("memcached://a,a:11211", "listed twice");
	bad("memcached://a/b", "unexpected path");
	bad("memcached://u:hunter2@a", "not supported");
	bad("memcached://a b", "space or control");
	bad("memcached://h_o$t", "invalid character '$'");
	bad("redis://a,b", "exactly one server");
	bad("redis://a/x", "database '/x' must be a number");
	bad("redis://a?replicas=2", "unknown parameter 'replicas'");
	bad("redis://hunter2@a", "credentials must be");
	bad("redis://:@a", "empty password");
	bad("redis://:hunt/er2@a", "percent-encode");
	bad("redis://:hunter2?x@a", "percent-encode");
	bad("redis://:hunter2%zz@a", "badly percent-encoded");
	bad("redis://:hunter2#@a", "'#' is not allowed");
	char longhost[400] = "memcached://";
	memset(longhost + 12, 'h', 300);
	bad(longhost, "longer than");
	char many[2000] = "memcached://";
	for (int i = 0; i < 40; i++)
		sprintf(many + strlen(many), "%sh%d", i ? "," : "", i);
	bad(many, "more than 32 servers");
	CHECK(fm_store_url_parse(NULL, &u, err, sizeof(err)) != 0, "NULL accepted");
	CHECK(fm_store_url_parse("memcached://", &u, NULL, 0) != 0, "NULL err buffer");

	if (failures)
		return 1;
	printf("url parser passed\n");
	return 0;
}
