/* metrics.c - fluidmemd's counters for Prometheus, served by libmicrohttpd.
 *
 * One scrape counts like `fluidmem status` (each client under its lock,
 * or what was seen last while it stays busy; then D.lock for the totals of
 * the clients that exited), so the totals here equal the totals of
 * `fluidmem status --json` taken at the same moment. Counters are
 * given for the whole daemon (live clients plus every client that exited)
 * and per tag (the processes of one `fluidmem run`, or one VM); gauges give
 * the budget and what is resident and stored now. Fault latency is a
 * Prometheus histogram made from the monitor's log-linear buckets.
 *
 * What it does not do: authenticate. Every tag is visible to whoever can
 * reach the address, so listen on loopback (the default in the examples) or
 * on an interface only the monitoring system reaches. The HTTP server is
 * libmicrohttpd's, with its own thread; nothing here parses HTTP. */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fluidmemd.h"
#include "metrics.h"

static struct MHD_Daemon *mhd;

/* ---- rendering ---- */

/* Histogram boundaries: powers of two of nanoseconds, 256 ns to ~4.3 s.
 * Each is the lower bound of one of the log-linear buckets, so the counts
 * below a boundary are exact. */
#define LE_FIRST 8
#define LE_LAST 32

/* Lowest latency (ns) bucket b holds: the inverse of fm_lat_bucket(). */
static uint64_t bucket_low(unsigned b)
{
	if (b < 8)
		return b;
	unsigned log = b / 8 + 2, sub = b % 8;
	return (uint64_t)(8 + sub) << (log - 3);
}

/* A label value: \, " and newline escaped; other control bytes and
 * non-ASCII (tags come from clients) as '_'. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\' || c == '"')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else
			fputc(c < 0x20 || c >= 0x7f ? '_' : c, f);
	}
}

/* `name{tag="T",extra} value` or `name{extra} value` or `name value`. */
static void sample(FILE *f, const char *name, const char *tag, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void sample(FILE *f, const char *name, const char *tag, const char *extra, const char *fmt, ...)
{
	fputs(name, f);
	if (tag || extra) {
		fputc('{', f);
		if (tag) {
			fputs("tag=\"", f);
			put_label(f, tag);
			fputc('"', f);
		}
		if (extra)
			fprintf(f, "%s%s", tag ? "," : "", extra);
		fputc('}', f);
	}
	fputc(' ', f);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A tag (or NULL: the daemon) and the counters summed for it. */
struct agg {
	struct fm_tag *tag;
	struct fm_stats s;
	uint64_t stored, regions, clients;
};

static const struct {
	const char *kind;
	size_t off;
} fault_kinds[] = {
	{ "zero", offsetof(struct fm_stats, faults_zero) },
	{ "store", offsetof(struct fm_stats, faults_store) },
	{ "wp", offsetof(struct fm_stats, faults_wp) },
	{ "spurious", offsetof(struct fm_stats, faults_spurious) },
	{ "poisoned", offsetof(struct fm_stats, faults_poisoned) },
};

/* The plain counters: metric suffix, fm_stats field, help text. */
static const struct {
	const char *name;
	size_t off;
	const char *help;
} counters[] = {
	{ "evictions_total", offsetof(struct fm_stats, evictions), "Pages evicted from local memory." },
	{ "pages_written_total", offsetof(struct fm_stats, pages_written), "Evicted pages written to the store." },
	{ "pages_zero_skipped_total", offsetof(struct fm_stats, pages_zero_skipped),
	  "Evicted all-zero pages not written to the store (writes avoided)." },
	{ "store_read_bytes_total", offsetof(struct fm_stats, bytes_in), "Bytes fetched from the store (bytes_in)." },
	{ "store_written_bytes_total", offsetof(struct fm_stats, bytes_out), "Bytes written to the store (bytes_out)." },
	{ "store_errors_total", offsetof(struct fm_stats, store_errors), "Store operations that failed." },
};

static uint64_t field(const struct fm_stats *s, size_t off)
{
	return *(const uint64_t *)((const char *)s + off);
}

/* One family over the daemon (agg[0], no tag label) or over the tags. */
static void family_counters(FILE *f, const struct agg *a, size_t n, bool tags)
{
	const char *p = tags ? "fluidmem_tag_" : "fluidmem_";
	char name[96];
	snprintf(name, sizeof(name), "%sfaults_total", p);
	help(f, name, "counter", "Page faults served, by kind (zero page, from the store, write-protect, spurious, SIGBUS).");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(fault_kinds) / sizeof(fault_kinds[0]); k++) {
			char extra[32];
			snprintf(extra, sizeof(extra), "kind=\"%s\"", fault_kinds[k].kind);
			sample(f, name, tags ? a[i].tag->name : NULL, extra, "%llu",
			       (unsigned long long)field(&a[i].s, fault_kinds[k].off));
		}
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		snprintf(name, sizeof(name), "%s%s", p, counters[c].name);
		help(f, name, "counter", counters[c].help);
		for (size_t i = 0; i < n; i++)
			sample(f, name, tags ? a[i].tag->name : NULL, NULL, "%llu",
			       (unsigned long long)field(&a[i].s, counters[c].off));
	}
	snprintf(name, sizeof(name), "%sfault_latency_seconds", p);
	help(f, name, "histogram",
	     "Time from reading a fault to resolving it. _sum is approximate (bucket midpoints); "
	     "le is exclusive by 1 ns.");
	for (size_t i = 0; i < n; i++) {
		const uint64_t *lat = a[i].s.lat;
		const char *tag = tags ? a[i].tag->name : NULL;
		uint64_t cum = 0, count = 0;
		double sum = 0;
		unsigned b = 0;
		char bucket[128], extra[48];
		snprintf(bucket, sizeof(bucket), "%s_bucket", name);
		for (unsigned e = LE_FIRST; e <= LE_LAST; e++) {
			uint64_t le = 1ull << e;
			for (; b < FM_LAT_BUCKETS && bucket_low(b) < le; b++)
				cum += lat[b];
			snprintf(extra, sizeof(extra), "le=\"%.10g\"", (double)le / 1e9);
			sample(f, bucket, tag, extra, "%llu", (unsigned long long)cum);
		}
		for (unsigned k = 0; k < FM_LAT_BUCKETS; k++) {
			count += lat[k];
			sum += (double)lat[k] * (double)fm_lat_bucket_value(k) / 1e9;
		}
		sample(f, bucket, tag, "le=\"+Inf\"", "%llu", (unsigned long long)count);
		snprintf(bucket, sizeof(bucket), "%s_sum", name);
		sample(f, bucket, tag, NULL, "%.9f", sum);
		snprintf(bucket, sizeof(bucket), "%s_count", name);
		sample(f, bucket, tag, NULL, "%llu", (unsigned long long)count);
	}
}

static int cmp_tag(const void *x, const void *y)
{
	const struct fm_tag *a = ((const struct agg *)x)->tag, *b = ((const struct agg *)y)->tag;
	return a < b ? -1 : a > b;
}

int metrics_render(char **out, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;

	/* Each client's counters under its lock (within a moment, else the
	 * last seen), without D.lock: see status_render. */
	size_t nc;
	struct fm_client **v = clients_get(&nc);
	struct cview { struct fm_stats s; uint64_t stored, regions; } *cv = calloc(nc ? nc : 1, sizeof(*cv));
	if (!cv) {
		clients_put(v, nc);
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	for (size_t k = 0; k < nc; k++) {
		uint64_t bytes;
		if (client_view(v[k], &cv[k].s, &bytes))
			pthread_mutex_unlock(&v[k]->lock);
		cv[k].stored = cv[k].s.stored_pages;
		cv[k].regions = cv[k].s.regions;
	}
	pthread_mutex_lock(&D.lock);
	size_t ntags = 0;
	for (struct fm_tag *t = D.tags; t; t = t->next)
		ntags++;
	/* tags sorted by address, to find a client's with bsearch */
	struct agg *tg = calloc(ntags + 1, sizeof(*tg)), all = { 0 };
	if (!tg) {
		pthread_mutex_unlock(&D.lock);
		free(cv);
		clients_put(v, nc);
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	size_t i = 0;
	for (struct fm_tag *t = D.tags; t; t = t->next, i++) {
		tg[i].tag = t;
		tg[i].s = t->done;
	}
	qsort(tg, ntags, sizeof(*tg), cmp_tag);
	all.s = D.done;
	for (size_t k = 0; k < nc; k++) {
		struct fm_client *c = v[k];
		if (!c->linked) /* exited meanwhile: in D.done */
			continue;
		struct fm_stats s = cv[k].s;
		uint64_t stored = cv[k].stored, regions = cv[k].regions;
		fm_stats_add(&all.s, &s);
		all.stored += stored;
		all.regions += regions;
		all.clients++;
		struct agg key = { .tag = c->tag }, *a = c->tag ? bsearch(&key, tg, ntags, sizeof(*tg), cmp_tag) : NULL;
		if (a) {
			fm_stats_add(&a->s, &s);
			a->stored += stored;
			a->regions += regions;
			a->clients++;
		}
	}

	uint64_t budget = atomic_load(&D.budget_pages), resident = atomic_load(&D.resident);
	help(f, "fluidmem_up", "gauge", "1: fluidmemd answers.");
	sample(f, "fluidmem_up", NULL, NULL, "1");
	help(f, "fluidmem_uptime_seconds", "gauge", "Seconds since fluidmemd started.");
	sample(f, "fluidmem_uptime_seconds", NULL, NULL, "%.3f", (double)(fm_now_ns() - D.start_ns) / 1e9);
	help(f, "fluidmem_budget_bytes", "gauge", "Global budget of resident pages (--local-memory).");
	sample(f, "fluidmem_budget_bytes", NULL, NULL, "%llu", (unsigned long long)(budget * PAGE));
	help(f, "fluidmem_resident_bytes", "gauge", "Pages resident in local memory now.");
	sample(f, "fluidmem_resident_bytes", NULL, NULL, "%llu", (unsigned long long)(resident * PAGE));
	help(f, "fluidmem_peak_resident_bytes", "gauge", "Most pages ever resident at once.");
	sample(f, "fluidmem_peak_resident_bytes", NULL, NULL, "%llu",
	       (unsigned long long)(atomic_load(&D.peak_resident) * PAGE));
	help(f, "fluidmem_stored_bytes", "gauge", "Pages of live clients held in the store now.");
	sample(f, "fluidmem_stored_bytes", NULL, NULL, "%llu", (unsigned long long)(all.stored * PAGE));
	struct fm_share_counters sh;
	share_counters(&sh);
	help(f, "fluidmem_store_shared_bytes", "gauge",
	     "Store copies shared since a fork (copy-on-write): held once, counted by every region referring to them.");
	sample(f, "fluidmem_store_shared_bytes", NULL, NULL, "%llu", (unsigned long long)(sh.shared_now * PAGE));
	help(f, "fluidmem_fork_shared_pages_total", "counter", "Stored pages fork snapshots shared instead of copying.");
	sample(f, "fluidmem_fork_shared_pages_total", NULL, NULL, "%llu", (unsigned long long)sh.fork_shared);
	help(f, "fluidmem_fork_copied_pages_total", "counter", "Resident pages fork snapshots copied memfd to memfd.");
	sample(f, "fluidmem_fork_copied_pages_total", NULL, NULL, "%llu", (unsigned long long)sh.fork_copied);
	help(f, "fluidmem_clients", "gauge", "Client processes connected now.");
	sample(f, "fluidmem_clients", NULL, NULL, "%llu", (unsigned long long)all.clients);
	help(f, "fluidmem_regions", "gauge", "Regions of connected clients.");
	sample(f, "fluidmem_regions", NULL, NULL, "%llu", (unsigned long long)all.regions);
	family_counters(f, &all, 1, false);

	help(f, "fluidmem_tag_limit_bytes", "gauge", "A tag's resident limit (0: only the global budget).");
	for (i = 0; i < ntags; i++)
		sample(f, "fluidmem_tag_limit_bytes", tg[i].tag->name, NULL, "%llu",
		       (unsigned long long)(tg[i].tag->limit_pages * PAGE));
	help(f, "fluidmem_tag_resident_bytes", "gauge", "A tag's pages resident now.");
	for (i = 0; i < ntags; i++)
		sample(f, "fluidmem_tag_resident_bytes", tg[i].tag->name, NULL, "%llu",
		       (unsigned long long)(atomic_load(&tg[i].tag->resident) * PAGE));
	help(f, "fluidmem_tag_stored_bytes", "gauge", "A tag's pages held in the store now.");
	for (i = 0; i < ntags; i++)
		sample(f, "fluidmem_tag_stored_bytes", tg[i].tag->name, NULL, "%llu",
		       (unsigned long long)(tg[i].stored * PAGE));
	help(f, "fluidmem_tag_clients", "gauge", "A tag's processes connected now.");
	for (i = 0; i < ntags; i++)
		sample(f, "fluidmem_tag_clients", tg[i].tag->name, NULL, "%llu", (unsigned long long)tg[i].clients);
	help(f, "fluidmem_tag_regions", "gauge", "Regions of a tag's connected processes.");
	for (i = 0; i < ntags; i++)
		sample(f, "fluidmem_tag_regions", tg[i].tag->name, NULL, "%llu", (unsigned long long)tg[i].regions);
	family_counters(f, tg, ntags, true);
	pthread_mutex_unlock(&D.lock);
	free(tg);
	free(cv);
	clients_put(v, nc);

	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = size;
	return 0;
}

/* ---- HTTP ---- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct MHD_Response *resp;
	unsigned code = MHD_HTTP_OK;
	bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
		static const char msg[] = "only GET and HEAD\n";
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	} else if (strcmp(url, "/metrics") == 0) {
		char *text;
		size_t len;
		if (metrics_render(&text, &len) < 0)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text);
		else
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"text/plain; version=0.0.4; charset=utf-8");
	} else if (strcmp(url, "/") == 0) {
		static const char msg[] = "fluidmemd: metrics at /metrics\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
	} else {
		static const char msg[] = "not found: metrics are at /metrics\n";
		code = MHD_HTTP_NOT_FOUND;
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	enum MHD_Result rc = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	fm_log("metrics: %s", line);
}

/* "HOST:PORT", "[V6]:PORT", "*:PORT", ":PORT" into an address to bind. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *why, size_t cap)
{
	char host[256];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl = colon ? (size_t)(colon - s) : 0;
	if (!colon || !colon[1]) {
		snprintf(why, cap, "'%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9464)", s);
		return -EINVAL;
	}
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h = s + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(why, cap, "address too long");
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	bool any = !hl || strcmp(host, "*") == 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (any ? AI_PASSIVE : 0) }, *res;
	int rc = getaddrinfo(any ? NULL : host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(why, cap, "'%s': %s", s, gai_strerror(rc));
		return -EINVAL;
	}
	/* for a wildcard prefer IPv6 (dual stack), else the first answer */
	struct addrinfo *pick = res;
	for (struct addrinfo *a = res; any && a; a = a->ai_next)
		if (a->ai_family == AF_INET6)
			pick = a;
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*sslen = pick->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int metrics_start(const char *listen, char *why, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	int rc = parse_listen(listen, &ss, &sslen, why, cap);
	if (rc < 0)
		return rc;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_DUAL_STACK;
	uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	errno = 0;
	mhd = MHD_start_daemon(flags, port, NULL, NULL, answer, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 32u,
			       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!mhd) {
		int e = errno ? errno : EADDRINUSE;
		snprintf(why, cap, "cannot listen on %s: %s", listen, strerror(e));
		return -e;
	}
	return 0;
}

void metrics_stop(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
	mhd = NULL;
}
