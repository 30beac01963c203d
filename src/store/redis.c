/* redis.c - the Redis backend: one server, one connection per handle.
 *
 * A read batch is one MGET; a write batch is pipelined SETs (every command
 * appended, one flush, then one reply per page: an OOM error is FM_STORE_FULL
 * for that page only); a remove batch is DEL of up to 512 keys per command.
 * Values are sealed pages (seal.h; encrypted when the io carries the region's
 * secret), keys the text of fm_store_key_format().
 * The connection uses the URL's timeout for connect and for every reply,
 * sends AUTH (with an ACL user if given) and SELECT on each (re)connect, and
 * PINGs at open so a wrong port or a missing password fails at start.
 *
 * Outages: an I/O error or timeout closes the connection and marks the
 * server down; it is reconnected on use after a backoff (50 ms doubling to
 * 2 s). A call waits and retries while the outage is younger than retry_ms,
 * never longer than retry_ms in all, and then reports FM_STORE_UNAVAILABLE
 * for its pages. A failed batch is resent whole: reads and writes are
 * idempotent.
 *
 * Not here: printing (describe() reports health), Redis Cluster or Sentinel,
 * TLS, threads (one handle per thread). */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "fluidmem/store.h"
#include "clock.h"
#include "seal.h"
#include "url.h"

#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u
#define DEL_CHUNK 512

struct rd_store {
	struct fm_store base;
	redisContext *c;            /* NULL while down */
	struct fm_url_host host;
	char name[FM_URL_HOST_MAX + 8];
	char user[FM_URL_SECRET_MAX], password[FM_URL_SECRET_MAX];
	int has_password;
	unsigned db;
	uint64_t timeout_ms, retry_ms;
	int up;
	uint64_t down_since, next_try; /* ns, CLOCK_MONOTONIC */
	unsigned backoff_ms;
	uint64_t failures;
	char last_err[160];         /* why it went down */
	/* scratch, grown to the largest batch */
	size_t cap;
	char (*keys)[FM_KEY_MAX];
	const char **argv;
	size_t *argvlen;
	unsigned char *sealed;
};

extern const struct fm_store_ops fm_store_redis_ops;

static void rd_down(struct rd_store *s, const char *why)
{
	uint64_t n = now_ns();
	if (s->up) {
		s->up = 0;
		s->down_since = n;
		s->backoff_ms = BACKOFF_MIN_MS;
		s->failures++;
	} else {
		s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	}
	s->next_try = n + (uint64_t)s->backoff_ms * 1000000ull;
	snprintf(s->last_err, sizeof(s->last_err), "%s", why && *why ? why : "connection lost");
	if (s->c) {
		redisFree(s->c);
		s->c = NULL;
	}
}

/* Run one setup command; 0, -EACCES (auth), -EINVAL (refused), -EIO (I/O). */
static int setup_cmd(struct rd_store *s, int argc, const char **argv, char *err, size_t errlen)
{
	redisReply *r = redisCommandArgv(s->c, argc, argv, NULL);
	if (!r) {
		snprintf(err, errlen, "%s", s->c->errstr[0] ? s->c->errstr : "no reply");
		return -EIO;
	}
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		/* never echo the password: only the command name and the server's words */
		snprintf(err, errlen, "%s refused: %.*s", argv[0], (int)r->len, r->str);
		rc = strncmp(argv[0], "AUTH", 4) == 0 || strncmp(r->str, "NOAUTH", 6) == 0 ||
		     strncmp(r->str, "WRONGPASS", 9) == 0 ? -EACCES : -EINVAL;
	}
	freeReplyObject(r);
	return rc;
}

/* Connect, authenticate, select, ping. On failure s->c is NULL. */
static int rd_connect(struct rd_store *s, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = (time_t)(s->timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(s->timeout_ms % 1000) * 1000 };
	s->c = redisConnectWithTimeout(s->host.name, s->host.port, tv);
	if (!s->c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	if (s->c->err) {
		snprintf(err, errlen, "%s", s->c->errstr);
		rc = strstr(s->c->errstr, "timed out") ? -ETIMEDOUT : -ECONNREFUSED;
	}
	if (!rc && redisSetTimeout(s->c, tv) != REDIS_OK) {
		snprintf(err, errlen, "cannot set the I/O timeout");
		rc = -EIO;
	}
	if (!rc && s->has_password) {
		const char *a[3] = { "AUTH", s->user, s->password };
		rc = s->user[0] ? setup_cmd(s, 3, a, err, errlen)
				: setup_cmd(s, 2, (const char *[]){ "AUTH", s->password }, err, errlen);
	}
	if (!rc && s->db) {
		char db[16];
		snprintf(db, sizeof(db), "%u", s->db);
		rc = setup_cmd(s, 2, (const char *[]){ "SELECT", db }, err, errlen);
	}
	if (!rc)
		rc = setup_cmd(s, 1, (const char *[]){ "PING" }, err, errlen);
	if (rc) {
		redisFree(s->c);
		s->c = NULL;
	}
	return rc;
}

/* Is the connection there, or may it be made again now? */
static int rd_usable(struct rd_store *s)
{
	if (s->c)
		return 1;
	if (now_ns() < s->next_try)
		return 0;
	char why[256];
	if (rd_connect(s, why, sizeof(why)) != 0) {
		rd_down(s, why);
		return 0;
	}
	s->up = 1;
	return 1;
}

static int reserve(struct rd_store *s, size_t n, int sealed)
{
	if (n <= s->cap && (!sealed || s->sealed))
		return 0;
	size_t c = n > s->cap ? n : s->cap;
	if (c < 64)
		c = 64;
#define GROW(p, sz) do { void *q_ = realloc((p), (sz)); if (!q_) return -ENOMEM; (p) = q_; } while (0)
	GROW(s->keys, c * sizeof(*s->keys));
	GROW(s->argv, (c * 3 + 1) * sizeof(*s->argv));
	GROW(s->argvlen, (c * 3 + 1) * sizeof(*s->argvlen));
	if (sealed || s->sealed)
		GROW(s->sealed, c * FM_SEALED_MAX);
#undef GROW
	s->cap = c;
	return 0;
}

/* One attempt of a batch on a live connection: 0, or -EIO when the
 * connection failed (then every status is left to the caller). */
typedef int (*rd_attempt)(struct rd_store *s, struct fm_store_io *ios, size_t n);

static int try_read(struct rd_store *s, struct fm_store_io *ios, size_t n)
{
	s->argv[0] = "MGET";
	s->argvlen[0] = 4;
	for (size_t i = 0; i < n; i++) {
		s->argv[i + 1] = s->keys[i];
		s->argvlen[i + 1] = strlen(s->keys[i]);
	}
	redisReply *r = redisCommandArgv(s->c, (int)n + 1, s->argv, s->argvlen);
	if (!r)
		return -EIO;
	int rc = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
		rc = -EPROTO;
		rd_down(s, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to MGET");
	} else {
		for (size_t i = 0; i < n; i++) {
			redisReply *e = r->element[i];
			if (e->type == REDIS_REPLY_STRING)
				ios[i].status = fm_unseal_with(ios[i].secret, &ios[i].key, ios[i].version,
							       e->str, e->len, ios[i].page, NULL);
			else
				ios[i].status = FM_STORE_MISSING;
		}
	}
	freeReplyObject(r);
	return rc;
}

static int try_write(struct rd_store *s, struct fm_store_io *ios, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *argv[3] = { "SET", s->keys[i], (const char *)s->sealed + i * FM_SEALED_MAX };
		size_t len[3] = { 3, strlen(s->keys[i]), fm_sealed_size(ios[i].secret) };
		if (redisAppendCommandArgv(s->c, 3, argv, len) != REDIS_OK)
			return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *r;
		if (redisGetReply(s->c, (void **)&r) != REDIS_OK || !r)
			return -EIO;
		if (r->type == REDIS_REPLY_ERROR)
			ios[i].status = strncmp(r->str, "OOM", 3) == 0 ? FM_STORE_FULL : FM_STORE_UNAVAILABLE;
		else
			ios[i].status = FM_STORE_OK;
		freeReplyObject(r);
	}
	return 0;
}

/* Run attempt on a live connection; wait for a young outage to end, at most
 * retry_ms; else every page is UNAVAILABLE. */
static int rd_run(struct rd_store *s, rd_attempt attempt, struct fm_store_io *ios, size_t n)
{
	uint64_t deadline = now_ns() + s->retry_ms * 1000000ull;
	for (;;) {
		if (rd_usable(s)) {
			int rc = attempt(s, ios, n);
			if (rc == 0) {
				s->up = 1;
				return 0;
			}
			if (s->c)
				rd_down(s, s->c->errstr);
		}
		uint64_t now = now_ns();
		if (now >= deadline || now >= s->down_since + s->retry_ms * 1000000ull)
			break;
		sleep_until(s->next_try < deadline ? s->next_try : deadline);
	}
	for (size_t i = 0; i < n; i++)
		ios[i].status = FM_STORE_UNAVAILABLE;
	return 0;
}

static int rd_read(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct rd_store *s = (struct rd_store *)base;
	if (n == 0)
		return 0;
	if (reserve(s, n, 0))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		fm_store_key_format(&ios[i].key, s->keys[i]);
	return rd_run(s, try_read, ios, n);
}

static int rd_write(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct rd_store *s = (struct rd_store *)base;
	if (n == 0)
		return 0;
	if (reserve(s, n, 1))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		fm_store_key_format(&ios[i].key, s->keys[i]);
		fm_seal_with(ios[i].secret, &ios[i].key, ios[i].version, ios[i].page, s->sealed + i * FM_SEALED_MAX);
	}
	return rd_run(s, try_write, ios, n);
}

/* Best effort, never waits for a dead server: returns -EAGAIN when some keys
 * could not be removed (the monitor may retry later). */
static int rd_remove(struct fm_store *base, const struct fm_page_key *keys, size_t n)
{
	struct rd_store *s = (struct rd_store *)base;
	if (n == 0)
		return 0;
	if (reserve(s, n < DEL_CHUNK ? n : DEL_CHUNK, 0))
		return -ENOMEM;
	for (size_t at = 0; at < n; at += DEL_CHUNK) {
		size_t m = n - at < DEL_CHUNK ? n - at : DEL_CHUNK;
		if (!rd_usable(s))
			return -EAGAIN;
		s->argv[0] = "DEL";
		s->argvlen[0] = 3;
		for (size_t i = 0; i < m; i++) {
			s->argvlen[i + 1] = (size_t)fm_store_key_format(&keys[at + i], s->keys[i]);
			s->argv[i + 1] = s->keys[i];
		}
		redisReply *r = redisCommandArgv(s->c, (int)m + 1, s->argv, s->argvlen);
		if (!r) {
			rd_down(s, s->c->errstr);
			return -EAGAIN;
		}
		freeReplyObject(r);
	}
	return 0;
}

static void rd_close(struct fm_store *base)
{
	struct rd_store *s = (struct rd_store *)base;
	if (!s)
		return;
	if (s->c)
		redisFree(s->c);
	free(s->keys);
	free(s->argv);
	free(s->argvlen);
	free(s->sealed);
	memset(s->password, 0, sizeof(s->password));
	free(s);
}

static int rd_open(const char *url, struct fm_store **out, char *err, size_t errlen)
{
	struct fm_store_url *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int rc = fm_store_url_for(url, FM_URL_REDIS, "redis", u, err, errlen);
	struct rd_store *s = rc ? NULL : calloc(1, sizeof(*s));
	if (!rc && !s)
		rc = -ENOMEM;
	if (!rc) {
		s->base.ops = &fm_store_redis_ops;
		s->host = u->hosts[0];
		fm_url_host_format(&s->host, s->name, sizeof(s->name));
		memcpy(s->user, u->user, sizeof(s->user));
		memcpy(s->password, u->password, sizeof(s->password));
		s->has_password = u->has_password;
		s->db = u->db;
		s->timeout_ms = u->timeout_ms;
		s->retry_ms = u->retry_ms;
		char why[400];
		rc = rd_connect(s, why, sizeof(why));
		if (rc)
			snprintf(err, errlen, "redis: cannot use %s: %s", s->name, why);
		s->up = 1;
	}
	memset(u->password, 0, sizeof(u->password));
	free(u);
	if (rc) {
		rd_close(s ? &s->base : NULL);
		return rc;
	}
	*out = &s->base;
	return 0;
}

static void rd_describe(struct fm_store *base, char *buf, size_t len)
{
	struct rd_store *s = (struct rd_store *)base;
	if (s->up)
		snprintf(buf, len, "redis: %s up, db %u", s->name, s->db);
	else
		snprintf(buf, len, "redis: %s down %.1f s (%s)", s->name,
			 (double)(now_ns() - s->down_since) / 1e9, s->last_err);
}

const struct fm_store_ops fm_store_redis_ops = {
	.scheme = "redis",
	.open = rd_open,
	.close = rd_close,
	.read = rd_read,
	.write = rd_write,
	.remove = rd_remove,
	.describe = rd_describe,
};
