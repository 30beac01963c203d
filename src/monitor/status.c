/* status.c - what `fluidmem status` shows: the budget, the store, and per
 * client and tag counters, as an aligned table or as JSON. A non-root
 * requester sees only its own processes (tenants never learn of each other). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluidmemd.h"
#include "worker.h"

struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	if (o->len >= o->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap;
}

/* Live counters of a client: its own plus what its regions hold now.
 * Caller holds c->lock. */
static void client_stats(struct fm_client *c, struct fm_stats *s)
{
	*s = c->st;
	s->resident_pages = atomic_load(&c->resident);
	s->stored_pages = 0;
	for (struct fm_region *r = c->regions; r; r = r->next)
		s->stored_pages += r->stored;
	for (unsigned i = 0; i < c->nshared; i++) {
		struct fm_region *r = c->shared[i];
		shared_lock(r);
		if (r->owner == c) { /* its owner shows it; its counters are its own */
			fm_stats_add(s, &r->sst);
			s->stored_pages += r->stored;
		}
		shared_unlock(r);
	}
	s->clients = 1;
}

static void put_stats_json(struct out *o, const struct fm_stats *s)
{
#define X(f) put(o, "\"" #f "\":%llu,", (unsigned long long)s->f);
	FM_STATS_FIELDS(X)
#undef X
	put(o, "\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f", fm_lat_percentile(s->lat, 0.5) / 1e3,
	    fm_lat_percentile(s->lat, 0.99) / 1e3);
}

static void hex_id(char out[33], const uint64_t id[2])
{
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)id[0], (unsigned long long)id[1]);
}

/* A client's counters for a reader, and whether its lock came in time:
 * taken under its lock (which is held across store I/O) within LOCK_MS,
 * else the last ones a reader saw. Never called with D.lock held. Returns
 * true with c's lock held (the caller lets go), false when it stayed busy. */
#define LOCK_MS 200

bool client_view(struct fm_client *c, struct fm_stats *s, uint64_t *size)
{
	bool locked = client_lock_for(c, LOCK_MS);
	if (locked) {
		client_stats(c, s);
		*size = 0;
		for (struct fm_region *r = c->regions; r; r = r->next)
			*size += r->npages * PAGE;
	}
	pthread_mutex_lock(&c->seen_lock);
	if (locked) {
		c->seen = *s;
		c->seen_size = *size;
	} else {
		*s = c->seen;
		*size = c->seen_size;
		s->resident_pages = atomic_load(&c->resident);
		s->clients = 1;
	}
	pthread_mutex_unlock(&c->seen_lock);
	return locked;
}

/* One client's row. */
static void client_row(struct fm_client *c, bool json, FILE *f, struct fm_stats *s)
{
	uint64_t size;
	bool locked = client_view(c, s, &size);
	if (json) {
		fprintf(f, "{\"pid\":%d,\"uid\":%d,\"tag\":\"%s\",\"size_bytes\":%llu,", (int)c->pid, (int)c->uid,
			c->tag ? c->tag->name : "", (unsigned long long)size);
		struct out o = { NULL, 0, 0 };
		char tmp[4096];
		o.buf = tmp;
		o.cap = sizeof(tmp);
		put_stats_json(&o, s);
		fwrite(tmp, 1, o.len, f);
		fprintf(f, ",\"inflight_max\":%u,\"fault_threads\":%u,\"busy\":%s", c->inflight_max,
			c->nhelpers + 1, locked ? "false" : "true");
		fprintf(f, ",\"regions_detail\":[");
		bool rfirst = true;
		for (struct fm_region *r = locked ? c->regions : NULL; r; r = r->next) {
			char id[33];
			hex_id(id, r->id);
			fprintf(f, "%s{\"id\":\"%s\",\"size_bytes\":%llu,\"resident_pages\":%llu,\"stored_pages\":%llu,\"adopted\":%s}",
				rfirst ? "" : ",", id, (unsigned long long)(r->npages * PAGE),
				(unsigned long long)r->resident, (unsigned long long)r->stored,
				(r->flags & FM_REGISTER_ADOPTED) ? "true" : "false");
			rfirst = false;
		}
		/* shared regions: listed by their owner, with how many processes map them */
		for (unsigned i = 0; locked && i < c->nshared; i++) {
			struct fm_region *r = c->shared[i];
			char id[33];
			shared_lock(r);
			if (r->owner == c) {
				hex_id(id, r->id);
				fprintf(f, "%s{\"id\":\"%s\",\"size_bytes\":%llu,\"resident_pages\":%llu,\"stored_pages\":%llu,\"adopted\":false,\"shared\":true,\"processes\":%u}",
					rfirst ? "" : ",", id, (unsigned long long)(r->npages * PAGE),
					(unsigned long long)r->resident, (unsigned long long)r->stored, r->nholders);
				rfirst = false;
			}
			shared_unlock(r);
		}
		fprintf(f, "]}");
	} else {
		fprintf(f, "%8d %6d %-16.16s %7llu %10llu %10llu %10llu %10llu %10llu %9.1f %9.1f\n", (int)c->pid,
			(int)c->uid, c->tag ? c->tag->name : "", (unsigned long long)s->regions,
			(unsigned long long)(size >> 20), (unsigned long long)(s->resident_pages * PAGE >> 20),
			(unsigned long long)(s->stored_pages * PAGE >> 20),
			(unsigned long long)(s->faults_zero + s->faults_store), (unsigned long long)s->evictions,
			fm_lat_percentile(s->lat, 0.5) / 1e3, fm_lat_percentile(s->lat, 0.99) / 1e3);
	}
	if (locked)
		pthread_mutex_unlock(&c->lock);
}

struct row {
	char *text;
	size_t len;
	struct fm_stats s;
};

/* The status in three steps: references on the clients (D.lock, briefly),
 * each client's row (its lock, within LOCK_MS, D.lock not held: a client
 * busy in store I/O delays only its own row), then the totals and the rows
 * of the clients still on the list (D.lock): a client that exited
 * meanwhile is in D.done instead, so the totals count everyone once. */
int status_render(char *buf, size_t cap, bool json, uid_t uid)
{
	struct out o = { buf, cap, 0 };
	struct fm_stats total = { 0 };
	char store[256] = "";
	struct fm_store *st = worker_store();
	if (st && st->ops->describe)
		st->ops->describe(st, store, sizeof(store));

	struct fm_share_counters sh;
	share_counters(&sh);
	size_t n;
	struct fm_client **v = clients_get(&n);
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		clients_put(v, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (uid != 0 && v[i]->uid != uid)
			continue;
		FILE *f = open_memstream(&rows[i].text, &rows[i].len);
		if (!f)
			continue;
		client_row(v[i], json, f, &rows[i].s);
		if (fclose(f) != 0)
			rows[i].text = NULL;
	}
	pthread_mutex_lock(&D.lock);
	if (uid == 0)
		total = D.done;
	uint64_t budget = atomic_load(&D.budget_pages), resident = atomic_load(&D.resident);
	uint64_t uptime = (fm_now_ns() - D.start_ns) / 1000000000ull;
	if (json) {
		put(&o, "{\"version\":1,\"uptime_s\":%llu,", (unsigned long long)uptime);
		if (uid == 0) /* the URL may hold a password, the health names servers */
			put(&o, "\"store_url\":\"%s\",\"store\":\"%s\",", D.opt.store_url, store);
		if (uid == 0)
			put(&o, "\"budget_bytes\":%llu,\"resident_bytes\":%llu,\"peak_resident_bytes\":%llu,",
			    (unsigned long long)(budget * PAGE), (unsigned long long)(resident * PAGE),
			    (unsigned long long)(atomic_load(&D.peak_resident) * PAGE));
		if (uid == 0) /* fork: store copies shared rather than copied (share.c) */
			put(&o, "\"store_shared_pages\":%llu,\"fork_pages_shared\":%llu,\"fork_pages_copied\":%llu,",
			    (unsigned long long)sh.shared_now, (unsigned long long)sh.fork_shared,
			    (unsigned long long)sh.fork_copied);
		put(&o, "\"clients\":[");
	} else {
		if (uid == 0)
			put(&o, "budget %llu MiB, resident %llu MiB (peak %llu MiB), store %s\n",
			    (unsigned long long)(budget * PAGE >> 20), (unsigned long long)(resident * PAGE >> 20),
			    (unsigned long long)(atomic_load(&D.peak_resident) * PAGE >> 20), store);
		if (uid == 0 && sh.shared_now)
			put(&o, "%llu MiB of stored pages shared between forked processes\n",
			    (unsigned long long)(sh.shared_now * PAGE >> 20));
		put(&o, "%8s %6s %-16s %7s %10s %10s %10s %10s %10s %9s %9s\n", "PID", "UID", "TAG", "REGIONS",
		    "SIZE_MIB", "RES_MIB", "STORE_MIB", "FAULTS", "EVICTIONS", "P50_US", "P99_US");
	}
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].text || !v[i]->linked)
			continue;
		put(&o, "%s%.*s", json && !first ? "," : "", (int)rows[i].len, rows[i].text);
		rows[i].s.regions = 0; /* totals count live regions below */
		fm_stats_add(&total, &rows[i].s);
		first = false;
	}
	/* Tenants: a row per uid (a tenant sees only its own). */
	if (json) {
		put(&o, "],\"tenants\":[");
	} else {
		if (first)
			put(&o, "(no clients)\n");
		put(&o, "\n%8s %12s %12s %12s %12s\n", "UID", "RESERVE_MIB", "RES_MIB", "STORED_MIB", "CAP_MIB");
	}
	bool tfirst = true;
	for (struct fm_tenant *t = D.tenants; t; t = t->next) {
		if (uid != 0 && t->uid != uid)
			continue;
		uint64_t res = atomic_load(&t->resident), sto = atomic_load(&t->stored);
		if (json)
			put(&o, "%s{\"uid\":%d,\"reserve_bytes\":%llu,\"resident_bytes\":%llu,\"stored_bytes\":%llu,"
			    "\"store_cap_bytes\":%llu}", tfirst ? "" : ",", (int)t->uid,
			    (unsigned long long)(t->reserve_pages * PAGE), (unsigned long long)(res * PAGE),
			    (unsigned long long)(sto * PAGE), (unsigned long long)(t->store_cap_pages * PAGE));
		else
			put(&o, "%8d %12llu %12llu %12llu %12llu\n", (int)t->uid,
			    (unsigned long long)(t->reserve_pages * PAGE >> 20), (unsigned long long)(res * PAGE >> 20),
			    (unsigned long long)(sto * PAGE >> 20), (unsigned long long)(t->store_cap_pages * PAGE >> 20));
		tfirst = false;
	}
	if (json) {
		put(&o, "],\"totals\":{");
		put_stats_json(&o, &total);
		put(&o, "}}\n");
	}
	pthread_mutex_unlock(&D.lock);
	for (size_t i = 0; i < n; i++)
		free(rows[i].text);
	free(rows);
	clients_put(v, n);
	if (o.len >= o.cap)
		return -1;
	return (int)o.len;
}

/* A tag's counters: its exited processes and its live ones. `clients` is
 * the number still connected, so a caller can wait for them to finish.
 * A non-root caller sees only a tag of its own uid (others read as empty).
 * Counted like status_render: the clients' locks without D.lock. */
void tag_stats(const char *tag, uid_t uid, struct fm_stats *out)
{
	uint64_t live = 0;
	memset(out, 0, sizeof(*out));
	size_t n;
	struct fm_client **v = clients_get(&n);
	struct fm_stats *s = calloc(n ? n : 1, sizeof(*s));
	bool *mine = calloc(n ? n : 1, sizeof(*mine));
	for (size_t i = 0; s && mine && i < n; i++) {
		struct fm_client *c = v[i];
		if (!c->tag || strncmp(c->tag->name, tag, FM_TAG_MAX) != 0 || (uid != 0 && c->uid != uid))
			continue;
		uint64_t size;
		if (client_view(c, &s[i], &size))
			pthread_mutex_unlock(&c->lock);
		mine[i] = true;
	}
	pthread_mutex_lock(&D.lock);
	struct fm_tag *found = NULL;
	for (struct fm_tag *t = D.tags; t; t = t->next)
		if (strncmp(t->name, tag, FM_TAG_MAX) == 0 && (uid == 0 || t->uid == uid)) {
			*out = t->done;
			found = t;
		}
	for (size_t i = 0; s && mine && i < n; i++) {
		if (!mine[i] || !v[i]->linked)
			continue;
		fm_stats_add(out, &s[i]);
		live++;
	}
	out->clients = live;
	/* the sum of its processes' peaks would overstate it */
	if (found)
		out->peak_resident_pages = atomic_load(&found->peak);
	pthread_mutex_unlock(&D.lock);
	free(s);
	free(mine);
	clients_put(v, n);
}
