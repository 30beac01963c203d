/* memcached.c - the memcached backend: a pool of servers, N copies per page.
 *
 * Each server gets its own libmemcached handle (binary protocol, one server).
 * Placement is ours, not libmemcached's: rendezvous hashing ranks every server
 * for a key (XXH3 of the key seeded by the server's "host:port"), and the first
 * `replicas` servers of the ranking hold the copies. Adding or removing a
 * server moves only the keys it gains or loses, like ketama, and the copies of
 * one key always land on distinct servers (libmemcached's own replication
 * writes to "the next server" and never reports failures, so it is not used).
 *
 * Batches: a read groups its keys by the best live server and issues one
 * multi-get per server before fetching from any, so servers work in parallel;
 * a key that is missing, corrupt or unreachable there moves on to its next
 * copy. A write seals every page (seal.h: encrypted when the io carries the
 * region's secret) and pipelines quiet sets (SETQ) to each copy's server,
 * then one round-trip barrier per server, sent to all servers before waiting
 * for any, proves each server took them all.
 * Removes are pipelined the same way, as expired empty values (see
 * TOMBSTONE_EXPTIME); an empty value reads as missing. With replicas > 1, a
 * read without an expected version asks every copy and keeps the newest (see
 * next_stamp): a server back from an outage may hold stale copies.
 *
 * Outages: a server that fails is closed and marked down; it is retried on
 * use after a backoff (50 ms doubling to 2 s). A call whose pages have no
 * live copy waits and retries while the outage is younger than retry_ms, and
 * never longer than retry_ms in all; after that such pages fail fast as
 * FM_STORE_UNAVAILABLE. A write succeeds with at least one stored copy.
 *
 * Not here: printing or logging (describe() reports health), threads (one
 * handle per thread), URL syntax (url.c), the value format (seal.c).
 * Known limit: errors of quiet sets (a server started with -M that is full)
 * are dropped by libmemcached, so such a page shows up later as MISSING. */
#include <errno.h>
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "fluidmem/store.h"
#include "clock.h"
#include "seal.h"
#include "url.h"

#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u
#define BARRIER_KEY "fm:barrier"
/* Removes are quiet sets of an empty value that expires on arrival: an
 * absolute expiry time (anything above 30 days is one) in January 1970.
 * Not quiet deletes: memcached answers DELETEQ of a missing key with an
 * error that libmemcached then takes for the reply to the next request,
 * which desynchronises the connection. */
#define TOMBSTONE_EXPTIME ((time_t)2592001)

struct mc_server {
	memcached_st *mc;           /* NULL while down */
	char name[FM_URL_HOST_MAX + 8];
	struct fm_url_host host;
	uint64_t seed;              /* rendezvous seed: XXH3 of name */
	int up;
	uint64_t down_since;        /* ns (CLOCK_MONOTONIC) of the failure that began the outage */
	uint64_t next_try;          /* ns: no connection attempt before this */
	unsigned backoff_ms;
	memcached_return_t last_rc; /* why it went down */
	char why[112];              /* the same, with the system error if any */
	uint64_t failures;          /* outages since open */
	size_t *grp;                /* per call: indexes of the ios sent to this server */
	size_t ngrp;
	int took;                   /* per call: the server stored its whole group */
};

/* Per-io progress of a call. */
#define ST_DONE 1u
#define ST_CORRUPT 2u     /* a copy failed its integrity check */
#define ST_MISSING 4u     /* a live server answered "no such key" */
#define ST_FULL 8u

struct mc_store {
	struct fm_store base;
	struct mc_server *srv;
	unsigned nsrv, replicas;
	uint64_t timeout_ms, retry_ms;
	/* scratch, grown to the largest batch seen */
	size_t cap;
	uint8_t *order;             /* cap * replicas server indexes, best first */
	uint8_t *tried;             /* copies tried so far this pass */
	uint8_t *flags;
	uint8_t *copies;            /* writes: copies stored */
	uint64_t *best;             /* reads of every copy: version of the copy kept */
	unsigned char *tmp;         /* one page: a copy being compared */
	char (*keys)[FM_KEY_MAX];
	size_t *keylen;
	const char **kp;            /* multi-get key arrays of one server */
	size_t *kl;
	unsigned char *sealed;      /* writes: cap * FM_SEALED_MAX */
	size_t *sealed_len;         /* writes: the length of each sealed value */
	/* a read begun by mc_read_start: its ios, and how many (0: none) */
	struct fm_store_io *started_ios;
	size_t started;
};

extern const struct fm_store_ops fm_store_memcached_ops;

/* ---- servers ---- */

static memcached_return_t srv_connect(struct mc_store *s, struct mc_server *v)
{
	memcached_st *mc = memcached_create(NULL);
	if (!mc)
		return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
	memcached_return_t rc = memcached_server_add(mc, v->host.name, v->host.port);
	uint64_t t = s->timeout_ms;
	if (rc == MEMCACHED_SUCCESS) {
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, t);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, t);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, t * 1000);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, t * 1000);
		/* Our own backoff decides when to retry: a handle is dropped on failure. */
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
	}
	if (rc != MEMCACHED_SUCCESS) {
		memcached_free(mc);
		return rc;
	}
	v->mc = mc;
	return MEMCACHED_SUCCESS;
}

static void srv_fail(struct mc_server *v, memcached_return_t rc)
{
	uint64_t n = now_ns();
	if (v->up) {
		v->up = 0;
		v->down_since = n;
		v->backoff_ms = BACKOFF_MIN_MS;
		v->failures++;
	} else {
		v->backoff_ms = v->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : v->backoff_ms * 2;
	}
	v->next_try = n + (uint64_t)v->backoff_ms * 1000000ull;
	v->last_rc = rc;
	/* Keep the first reason of an outage, unless a later one says more. */
	int e = v->mc ? memcached_last_error_errno(v->mc) : 0;
	if (v->backoff_ms == BACKOFF_MIN_MS || e)
		snprintf(v->why, sizeof(v->why), "%s%s%s%s", memcached_strerror(NULL, rc), e ? " (" : "",
			 e ? strerror(e) : "", e ? ")" : "");
	if (v->mc) {
		memcached_free(v->mc);
		v->mc = NULL;
	}
}

static void srv_ok(struct mc_server *v)
{
	v->up = 1;
	v->backoff_ms = 0;
}

/* May this server be tried now? Connects a down server whose backoff is over. */
static int srv_usable(struct mc_store *s, struct mc_server *v)
{
	if (v->mc)
		return 1;
	if (v->up || now_ns() >= v->next_try) {
		memcached_return_t rc = srv_connect(s, v);
		if (rc != MEMCACHED_SUCCESS) {
			srv_fail(v, rc);
			return 0;
		}
		return 1;
	}
	return 0;
}

/* Errors that say the server itself is fine but refused this one value. */
static int rc_is_full(memcached_return_t rc)
{
	return rc == MEMCACHED_E2BIG || rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE ||
	       rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE;
}

/* How a call on this handle really went. libmemcached reports a server that
 * times out or resets during a multi-get as "not found" from both
 * memcached_mget and memcached_fetch_result; only the handle's last error
 * (reset by each call) tells the truth. */
static memcached_return_t call_result(memcached_st *mc, memcached_return_t rc)
{
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND)
		return rc;
	memcached_return_t le = memcached_last_error(mc);
	if (le != MEMCACHED_SUCCESS && le != MEMCACHED_END && le != MEMCACHED_NOTFOUND)
		return le;
	return MEMCACHED_SUCCESS;
}

/* A round trip that proves every request sent before it was processed: a
 * multi-get of a key nobody stores, in two halves so that several servers
 * can be waited for at once. */
static memcached_return_t barrier_send(struct mc_server *v)
{
	const char *k[1] = { BARRIER_KEY };
	size_t kl[1] = { sizeof(BARRIER_KEY) - 1 };
	return call_result(v->mc, memcached_mget(v->mc, k, kl, 1));
}

static memcached_return_t barrier_wait(struct mc_server *v)
{
	memcached_return_t rc = MEMCACHED_SUCCESS;
	memcached_result_st res;
	if (!memcached_result_create(v->mc, &res))
		return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
	while (memcached_fetch_result(v->mc, &res, &rc))
		;
	memcached_result_free(&res);
	return call_result(v->mc, rc);
}

static memcached_return_t srv_barrier(struct mc_server *v)
{
	memcached_return_t rc = barrier_send(v);
	return rc == MEMCACHED_SUCCESS ? barrier_wait(v) : rc;
}

/* ---- placement ---- */

static void rank(const struct mc_store *s, const struct fm_page_key *k, uint8_t *out)
{
	uint64_t best[FM_URL_MAX_HOSTS];
	unsigned n = 0;
	for (unsigned i = 0; i < s->nsrv; i++) {
		uint64_t score = XXH3_64bits_withSeed(k, sizeof(*k), s->srv[i].seed);
		/* insertion into the top `replicas`, highest score first */
		unsigned j = n < s->replicas ? n++ : n;
		if (j == s->replicas) {
			if (score <= best[j - 1])
				continue;
			j--;
		}
		while (j > 0 && best[j - 1] < score) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		best[j] = score;
		out[j] = (uint8_t)i;
	}
}

static int reserve(struct mc_store *s, size_t n, int sealed)
{
	if (n <= s->cap && (!sealed || s->sealed))
		return 0;
	size_t c = n > s->cap ? n : s->cap;
	if (c < 64)
		c = 64;
#define GROW(p, sz) do { void *q_ = realloc((p), (sz)); if (!q_) return -ENOMEM; (p) = q_; } while (0)
	GROW(s->order, c * s->replicas);
	GROW(s->tried, c);
	GROW(s->flags, c);
	GROW(s->copies, c);
	GROW(s->best, c * sizeof(*s->best));
	GROW(s->keys, c * sizeof(*s->keys));
	GROW(s->keylen, c * sizeof(*s->keylen));
	GROW(s->kp, c * sizeof(*s->kp));
	GROW(s->kl, c * sizeof(*s->kl));
	for (unsigned i = 0; i < s->nsrv; i++)
		GROW(s->srv[i].grp, c * sizeof(size_t));
	if (sealed || s->sealed) {
		GROW(s->sealed, c * FM_SEALED_MAX);
		GROW(s->sealed_len, c * sizeof(*s->sealed_len));
	}
#undef GROW
	s->cap = c;
	return 0;
}

static void prepare(struct mc_store *s, const struct fm_page_key *key, size_t i)
{
	s->keylen[i] = (size_t)fm_store_key_format(key, s->keys[i]);
	rank(s, key, &s->order[i * s->replicas]);
	s->tried[i] = 0;
	s->flags[i] = 0;
	s->copies[i] = 0;
	s->best[i] = 0;
}

static void groups_clear(struct mc_store *s)
{
	for (unsigned i = 0; i < s->nsrv; i++)
		s->srv[i].ngrp = 0;
}

/* Should a call still wait for a server to come back? Only while the outage
 * of one of key i's servers is younger than retry_ms. Returns the time to try
 * again, or 0 for "give up". */
static uint64_t wait_target(struct mc_store *s, size_t i, uint64_t now)
{
	uint64_t t = 0;
	for (unsigned r = 0; r < s->replicas; r++) {
		struct mc_server *v = &s->srv[s->order[i * s->replicas + r]];
		if (v->up || v->mc)
			return now; /* came back meanwhile */
		if (now >= v->down_since + s->retry_ms * 1000000ull)
			continue;
		if (!t || v->next_try < t)
			t = v->next_try;
	}
	return t;
}

/* ---- versions ---- */

/* A write the caller gives no version is sealed with a stamp: a realtime
 * clock in ns, strictly increasing within the process (all handles). A read
 * without an expected version then asks every live copy and keeps the newest,
 * because a server that missed writes while it was unreachable still holds
 * older copies. With versions from the caller, the first copy that matches
 * is enough. */
static uint64_t next_stamp(void)
{
	static _Atomic uint64_t last;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	uint64_t prev = last;
	uint64_t want;
	do
		want = now > prev ? now : prev + 1;
	while (!__atomic_compare_exchange_n(&last, &prev, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return want;
}

static int every_copy(const struct mc_store *s, const struct fm_store_io *io)
{
	return s->replicas > 1 && io->version == 0;
}

/* ---- read ---- */

/* Keys per multi-get: the requests of one (~70 bytes each) fit libmemcached's
 * 8 KiB write buffer, so they leave in the one send that ends the call, and
 * its answers (4 KiB each) are read before the next is sent. A larger one
 * filled the write buffer mid-call: libmemcached then waited for the socket
 * once per remaining key (a poll timeout each when the server stopped
 * reading, minutes for a prefetch window), and a server writing answers we
 * were not reading yet stopped reading our requests (both socket buffers
 * full), the shape of a monitor freeze seen once in the soak. */
#define MGET_MAX 48

/* A server's keys in [lo, ngrp) will not be answered: count the copy tried
 * and take them out of the rest of this round. */
static void group_fail(struct mc_store *s, struct mc_server *v, size_t lo, memcached_return_t rc)
{
	srv_fail(v, rc);
	for (size_t g = lo; g < v->ngrp; g++)
		s->tried[v->grp[g]]++;
	v->ngrp = lo;
}

/* Keys [lo, lo + MGET_MAX) of every server's group: one multi-get per
 * server (chunk_send), then the answers of each (chunk_recv). */
static void chunk_send(struct mc_store *s, size_t lo)
{
	for (unsigned x = 0; x < s->nsrv; x++) {
		struct mc_server *v = &s->srv[x];
		if (v->ngrp <= lo)
			continue;
		size_t hi = v->ngrp - lo > MGET_MAX ? lo + MGET_MAX : v->ngrp;
		for (size_t g = lo; g < hi; g++) {
			s->kp[g - lo] = s->keys[v->grp[g]];
			s->kl[g - lo] = s->keylen[v->grp[g]];
		}
		memcached_return_t rc = memcached_mget(v->mc, s->kp, s->kl, hi - lo);
		if (rc != MEMCACHED_SUCCESS || (rc = call_result(v->mc, rc)) != MEMCACHED_SUCCESS)
			group_fail(s, v, lo, rc);
	}
}

static void chunk_recv(struct mc_store *s, struct fm_store_io *ios, size_t lo)
{
	for (unsigned x = 0; x < s->nsrv; x++) {
		struct mc_server *v = &s->srv[x];
		if (v->ngrp <= lo)
			continue;
		size_t hi = v->ngrp - lo > MGET_MAX ? lo + MGET_MAX : v->ngrp, ng = hi - lo;
		const size_t *grp = v->grp + lo;
		memcached_result_st res;
		if (!memcached_result_create(v->mc, &res)) {
			group_fail(s, v, lo, MEMCACHED_MEMORY_ALLOCATION_FAILURE);
			continue;
		}
		size_t cursor = 0;
		memcached_return_t rc = MEMCACHED_SUCCESS;
		/* answered[] reuses kl: 1 once the key came back */
		for (size_t g = 0; g < ng; g++)
			s->kl[g] = 0;
		while (memcached_fetch_result(v->mc, &res, &rc)) {
			const char *k = memcached_result_key_value(&res);
			size_t klen = memcached_result_key_length(&res);
			size_t g = cursor, seen = 0;
			while (seen < ng) {
				size_t i = grp[g];
				if (s->keylen[i] == klen && memcmp(s->keys[i], k, klen) == 0)
					break;
				g = (g + 1) % ng;
				seen++;
			}
			if (seen == ng)
				continue; /* a key we did not ask for */
			cursor = (g + 1) % ng;
			size_t i = grp[g];
			if (s->kl[g])
				continue;
			s->kl[g] = 1;
			size_t vlen = memcached_result_length(&res);
			if (vlen == 0) {
				s->kl[g] = 0; /* a tombstone not yet reaped: missing */
				continue;
			}
			const char *val = memcached_result_value(&res);
			if (!every_copy(s, &ios[i])) {
				if (fm_unseal_with(ios[i].secret, &ios[i].key, ios[i].version, val, vlen,
						   ios[i].page, NULL) == FM_STORE_OK)
					s->flags[i] |= ST_DONE;
				else
					s->flags[i] |= ST_CORRUPT;
				continue;
			}
			/* Keep the newest valid copy. */
			uint64_t ver;
			if (fm_unseal_with(ios[i].secret, &ios[i].key, 0, val, vlen, s->tmp, &ver) != FM_STORE_OK) {
				s->flags[i] |= ST_CORRUPT;
			} else if (!(s->flags[i] & ST_DONE) || ver > s->best[i]) {
				memcpy(ios[i].page, s->tmp, FM_PAGE_SIZE);
				s->best[i] = ver;
				s->flags[i] |= ST_DONE;
			}
		}
		memcached_result_free(&res);
		/* a timeout or reset here is an outage like a refused connection:
		 * the keys it did not answer are not "missing" */
		rc = call_result(v->mc, rc);
		if (rc != MEMCACHED_SUCCESS) {
			group_fail(s, v, lo, rc); /* answered keys keep their result */
			continue;
		}
		srv_ok(v);
		for (size_t g = 0; g < ng; g++) {
			size_t i = grp[g];
			if (!s->kl[g])
				s->flags[i] |= ST_MISSING;
			s->tried[i]++;
		}
	}
}

/* Send one multi-get per server, then fetch the answers of each, in chunks
 * of MGET_MAX keys per server. */
static void read_round(struct mc_store *s, struct fm_store_io *ios)
{
	size_t most = 0;
	for (unsigned x = 0; x < s->nsrv; x++)
		if (s->srv[x].ngrp > most)
			most = s->srv[x].ngrp;
	for (size_t lo = 0; lo < most; lo += MGET_MAX) {
		chunk_send(s, lo);
		chunk_recv(s, ios, lo);
	}
}

/* Each key not done yet to the next server that may hold a copy (every live
 * copy for keys read without a version), into the servers' groups. Returns
 * how many requests that makes. */
static size_t round_groups(struct mc_store *s, struct fm_store_io *ios, size_t n)
{
	size_t pending = 0;
	groups_clear(s);
	for (size_t i = 0; i < n; i++) {
		if (s->flags[i] & ST_DONE)
			continue;
		if (every_copy(s, &ios[i])) {
			/* ask every live copy at once */
			if (s->tried[i] >= s->replicas)
				continue;
			for (unsigned r = 0; r < s->replicas; r++) {
				struct mc_server *v = &s->srv[s->order[i * s->replicas + r]];
				if (srv_usable(s, v)) {
					v->grp[v->ngrp++] = i;
					pending++;
				}
			}
			s->tried[i] = (uint8_t)s->replicas;
			continue;
		}
		while (s->tried[i] < s->replicas) {
			struct mc_server *v = &s->srv[s->order[i * s->replicas + s->tried[i]]];
			if (srv_usable(s, v)) {
				v->grp[v->ngrp++] = i;
				pending++;
				break;
			}
			s->tried[i]++;
		}
	}
	return pending;
}

/* The read of ios[0, n), prepared; started: its first round's requests
 * were sent (mc_read_start) and only their answers are read here. */
static int read_rest(struct mc_store *s, struct fm_store_io *ios, size_t n, int started)
{
	uint64_t deadline = now_ns() + s->retry_ms * 1000000ull;
	for (;;) {
		/* Each round moves every pending key one copy further: at most
		 * `replicas` rounds. */
		for (unsigned round = 0; round < s->replicas; round++) {
			if (started) {
				started = 0;
				chunk_recv(s, ios, 0);
				continue;
			}
			if (!round_groups(s, ios, n))
				break;
			read_round(s, ios);
		}
		/* Keys no server answered for may wait for a young outage to end. */
		uint64_t now = now_ns(), until = 0;
		for (size_t i = 0; i < n; i++) {
			if (s->flags[i] & (ST_DONE | ST_CORRUPT | ST_MISSING))
				continue;
			uint64_t t = wait_target(s, i, now);
			if (t && (!until || t < until))
				until = t;
		}
		if (!until || now >= deadline)
			break;
		sleep_until(until < deadline ? until : deadline);
		for (size_t i = 0; i < n; i++)
			s->tried[i] = 0;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t f = s->flags[i];
		ios[i].status = f & ST_DONE ? FM_STORE_OK
			      : f & ST_CORRUPT ? FM_STORE_CORRUPT
			      : f & ST_MISSING ? FM_STORE_MISSING
			      : FM_STORE_UNAVAILABLE;
	}
	return 0;
}

/* A read started and not finished yet: its answers come first on the wire,
 * so any other call finishes it first. */
static int finish_started(struct mc_store *s)
{
	size_t n = s->started;
	if (!n)
		return 0;
	s->started = 0;
	return read_rest(s, s->started_ios, n, 1);
}

/* The scratch and per-key state of a read of ios[0, n). */
static int read_prepare(struct mc_store *s, struct fm_store_io *ios, size_t n)
{
	finish_started(s);
	if (reserve(s, n, 0))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		prepare(s, &ios[i].key, i);
	return 0;
}

static int mc_read(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct mc_store *s = (struct mc_store *)base;
	int rc = read_prepare(s, ios, n);
	return rc ? rc : read_rest(s, ios, n, 0);
}

/* Pipelining (store.h): the first round's multi-gets go out now, when each
 * server's share fits one; the servers answer while the caller works, and
 * mc_read_finish reads the answers (and does any further rounds). */
static int mc_read_start(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct mc_store *s = (struct mc_store *)base;
	int rc = read_prepare(s, ios, n);
	if (rc)
		return rc;
	if (!round_groups(s, ios, n))
		return 0;
	for (unsigned x = 0; x < s->nsrv; x++)
		if (s->srv[x].ngrp > MGET_MAX)
			return 0; /* more than one chunk: all at finish */
	chunk_send(s, 0);
	s->started = n;
	s->started_ios = ios;
	return 0;
}

static int mc_read_finish(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct mc_store *s = (struct mc_store *)base;
	if (s->started != n || s->started_ios != ios)
		return mc_read(base, ios, n); /* nothing sent: the whole read now */
	return finish_started(s);
}

/* ---- write and remove ---- */

/* Pipelined quiet sets (or deletes) of the server's group, then the
 * barrier's request. Returns 0 if the server failed already. */
static int write_send(struct mc_store *s, struct mc_server *v, int del)
{
	memcached_behavior_set(v->mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	memcached_return_t rc = MEMCACHED_SUCCESS;
	for (size_t g = 0; g < v->ngrp; g++) {
		size_t i = v->grp[g];
		if (del)
			rc = memcached_set(v->mc, s->keys[i], s->keylen[i], "", 0, TOMBSTONE_EXPTIME, 0);
		else
			rc = memcached_set(v->mc, s->keys[i], s->keylen[i],
					   (const char *)s->sealed + i * FM_SEALED_MAX, s->sealed_len[i], 0, 0);
		if (rc == MEMCACHED_NOTFOUND || rc == MEMCACHED_BUFFERED)
			rc = MEMCACHED_SUCCESS;
		if (rc != MEMCACHED_SUCCESS && rc_is_full(rc)) {
			s->flags[i] |= ST_FULL;
			rc = MEMCACHED_SUCCESS;
			continue;
		}
		if (rc != MEMCACHED_SUCCESS)
			break;
	}
	memcached_behavior_set(v->mc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
	if (rc == MEMCACHED_SUCCESS)
		rc = barrier_send(v);
	if (rc != MEMCACHED_SUCCESS) {
		srv_fail(v, rc);
		return 0;
	}
	return 1;
}

/* Send every server its group, then wait for each barrier: the servers work
 * in parallel. Afterwards a server's group counts only if `took` is set. */
static void write_all(struct mc_store *s, int del)
{
	for (unsigned x = 0; x < s->nsrv; x++) {
		struct mc_server *v = &s->srv[x];
		v->took = v->ngrp && write_send(s, v, del);
	}
	for (unsigned x = 0; x < s->nsrv; x++) {
		struct mc_server *v = &s->srv[x];
		if (!v->took)
			continue;
		memcached_return_t rc = barrier_wait(v);
		if (rc == MEMCACHED_SUCCESS) {
			srv_ok(v);
		} else {
			srv_fail(v, rc);
			v->took = 0;
		}
	}
}

static int mc_write(struct fm_store *base, struct fm_store_io *ios, size_t n)
{
	struct mc_store *s = (struct mc_store *)base;
	finish_started(s);
	if (reserve(s, n, 1))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		prepare(s, &ios[i].key, i);
		s->sealed_len[i] = fm_seal_with(ios[i].secret, &ios[i].key,
						ios[i].version ? ios[i].version : next_stamp(), ios[i].page,
						s->sealed + i * FM_SEALED_MAX);
	}
	uint64_t deadline = now_ns() + s->retry_ms * 1000000ull;
	for (;;) {
		groups_clear(s);
		for (size_t i = 0; i < n; i++) {
			if (s->copies[i] || (s->flags[i] & ST_FULL))
				continue;
			for (unsigned r = 0; r < s->replicas; r++) {
				struct mc_server *v = &s->srv[s->order[i * s->replicas + r]];
				if (srv_usable(s, v))
					v->grp[v->ngrp++] = i;
			}
		}
		write_all(s, 0);
		for (unsigned x = 0; x < s->nsrv; x++) {
			struct mc_server *v = &s->srv[x];
			if (v->took)
				for (size_t g = 0; g < v->ngrp; g++)
					if (!(s->flags[v->grp[g]] & ST_FULL))
						s->copies[v->grp[g]]++;
		}
		uint64_t now = now_ns(), until = 0;
		for (size_t i = 0; i < n; i++) {
			if (s->copies[i] || (s->flags[i] & ST_FULL))
				continue;
			uint64_t t = wait_target(s, i, now);
			if (t && (!until || t < until))
				until = t;
		}
		if (!until || now >= deadline)
			break;
		sleep_until(until < deadline ? until : deadline);
	}
	for (size_t i = 0; i < n; i++)
		ios[i].status = s->copies[i] ? FM_STORE_OK
			      : s->flags[i] & ST_FULL ? FM_STORE_FULL
			      : FM_STORE_UNAVAILABLE;
	return 0;
}

/* Best effort and never waits: copies on a server that is down stay there
 * (a versioned read would reject them later) and the call returns -EAGAIN. */
static int mc_remove(struct fm_store *base, const struct fm_page_key *keys, size_t n)
{
	struct mc_store *s = (struct mc_store *)base;
	finish_started(s);
	if (reserve(s, n, 0))
		return -ENOMEM;
	groups_clear(s);
	for (size_t i = 0; i < n; i++) {
		prepare(s, &keys[i], i);
		for (unsigned r = 0; r < s->replicas; r++) {
			struct mc_server *v = &s->srv[s->order[i * s->replicas + r]];
			if (srv_usable(s, v))
				v->grp[v->ngrp++] = i;
		}
	}
	for (size_t i = 0; i < n; i++)
		s->copies[i] = 0;
	write_all(s, 1);
	for (unsigned x = 0; x < s->nsrv; x++) {
		struct mc_server *v = &s->srv[x];
		if (v->took)
			for (size_t g = 0; g < v->ngrp; g++)
				s->copies[v->grp[g]]++;
	}
	for (size_t i = 0; i < n; i++)
		if (s->copies[i] < s->replicas)
			return -EAGAIN;
	return 0;
}

/* ---- open, close, describe ---- */

static void mc_close(struct fm_store *base)
{
	struct mc_store *s = (struct mc_store *)base;
	if (!s)
		return;
	for (unsigned i = 0; i < s->nsrv; i++) {
		if (s->srv[i].mc)
			memcached_free(s->srv[i].mc);
		free(s->srv[i].grp);
	}
	free(s->srv);
	free(s->order);
	free(s->tried);
	free(s->flags);
	free(s->copies);
	free(s->best);
	free(s->tmp);
	free(s->keys);
	free(s->keylen);
	free(s->kp);
	free(s->kl);
	free(s->sealed);
	free(s->sealed_len);
	free(s);
}

static int mc_open(const char *url, struct fm_store **out, char *err, size_t errlen)
{
	struct fm_store_url *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int rc = fm_store_url_for(url, FM_URL_MEMCACHED, "memcached", u, err, errlen);
	struct mc_store *s = rc ? NULL : calloc(1, sizeof(*s));
	if (!rc && !s)
		rc = -ENOMEM;
	if (!rc) {
		s->base.ops = &fm_store_memcached_ops;
		s->nsrv = u->nhosts;
		s->replicas = u->replicas;
		s->timeout_ms = u->timeout_ms;
		s->retry_ms = u->retry_ms;
		s->srv = calloc(s->nsrv, sizeof(*s->srv));
		s->tmp = malloc(FM_PAGE_SIZE);
		if (!s->srv || !s->tmp)
			rc = -ENOMEM;
	}
	unsigned up = 0;
	char why[512] = "";
	size_t wl = 0;
	for (unsigned i = 0; !rc && i < s->nsrv; i++) {
		struct mc_server *v = &s->srv[i];
		v->host = u->hosts[i];
		fm_url_host_format(&v->host, v->name, sizeof(v->name));
		v->seed = XXH3_64bits(v->name, strlen(v->name));
		v->up = 1;
		memcached_return_t mrc = srv_connect(s, v);
		if (mrc == MEMCACHED_SUCCESS)
			mrc = srv_barrier(v);
		if (mrc == MEMCACHED_SUCCESS) {
			up++;
			continue;
		}
		if (mrc == MEMCACHED_MEMORY_ALLOCATION_FAILURE)
			rc = -ENOMEM;
		srv_fail(v, mrc);
		if (wl < sizeof(why))
			wl += (size_t)snprintf(why + wl, sizeof(why) - wl, "%s%s: %s", wl ? "; " : "", v->name,
					       v->why);
	}
	free(u);
	if (!rc && up == 0) {
		snprintf(err, errlen, "memcached: no server reachable (%s)", why);
		rc = -ECONNREFUSED;
	}
	if (rc) {
		mc_close(s ? &s->base : NULL);
		return rc;
	}
	*out = &s->base;
	return 0;
}

static void mc_describe(struct fm_store *base, char *buf, size_t len)
{
	struct mc_store *s = (struct mc_store *)base;
	unsigned up = 0;
	for (unsigned i = 0; i < s->nsrv; i++)
		up += s->srv[i].up;
	int w = snprintf(buf, len, "memcached: %u servers, %u up, replicas=%u", s->nsrv, up, s->replicas);
	uint64_t now = now_ns();
	for (unsigned i = 0; i < s->nsrv && w >= 0 && (size_t)w < len; i++) {
		struct mc_server *v = &s->srv[i];
		if (v->up)
			continue;
		w += snprintf(buf + w, len - (size_t)w, "; %s down %.1f s (%s)", v->name,
			      (double)(now - v->down_since) / 1e9, v->why);
	}
}

const struct fm_store_ops fm_store_memcached_ops = {
	.scheme = "memcached",
	.open = mc_open,
	.close = mc_close,
	.read = mc_read,
	.read_start = mc_read_start,
	.read_finish = mc_read_finish,
	.write = mc_write,
	.remove = mc_remove,
	.describe = mc_describe,
};
