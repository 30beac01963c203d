/* touch.c - the paper's micro-benchmark program: an ordinary program that
 * allocates one big region and reads-modifies-writes every page of it, in
 * passes, sequentially and in random order, timing each page access.
 *
 * It knows nothing of fluidmem: run it plain, under `fluidmem run`, or in a
 * memory cgroup with kernel swap, and compare. Fault latency is measured
 * client-side: each page access (read the page's words, check them, write the
 * counter) is timed with clock_gettime, and an access slower than the threshold
 * (default 1 us) during which the thread took a page fault (its minflt+majflt
 * moved; a userfault counts as one, a kernel swap-in too) counts as a fault.
 * Slow accesses without one (an interrupt, a TLB-shootdown IPI from the
 * monitor's evictions, preemption) are counted apart as `slow`. Memory is
 * anonymous mmap (>= 1 MiB, so the preload library makes it a fluidmem region)
 * or malloc.
 *
 * Page contents are derived from the page index: word 0 names the page, word 1
 * counts the passes that touched it, the last word is a check of both (and with
 * --fill full, every other word is a hash of index, counter and position, so the
 * page does not compress). Every pass checks each page before changing it, and a
 * verify pass reads every page at the end; a wrong page is named and the exit
 * status is 1.
 *
 * Output, one line per pass (key=value, machine-readable):
 *   bench=touch label=L pass=2 kind=rand pages=N faults=F fault_avg_us=.. fault_median_us=..
 *   fault_p99_us=.. slow=S access_avg_us=.. secs=.. pages_per_s=.. mb_per_s=.. majflt=.. minflt=..
 * and a closing `bench=touch ... kind=verify ... result=ok`.
 * With --samples FILE, the latency in ns of every faulting access is appended to
 * FILE as "LABEL KIND NS" lines (for CDF plots).
 *
 * `pairs` visits 2-page records in random order (pages 2i, 2i+1 together): short
 * runs on which a sequential prefetcher guesses wrong. `read` reads and checks
 * every page in order and writes nothing: a sequential re-read.
 * Usage: touch [--size 256M] [--alloc mmap|malloc] [--passes init,seq,rand,pairs,read]
 *              [--fill sparse|full] [--threshold-ns 1000] [--samples FILE]
 *              [--seed N] [--label L] [--threads N] [--corrupt PAGE]
 * --threads N splits each pass into N contiguous slices of its page order, one
 * thread each (sequential: N streams; random: N random walks), so that faults of
 * several threads are in flight together; pages/s is for the whole pass.
 * --corrupt PAGE flips a bit of that page after the first pass: a self-test of
 * the checks (the run must fail naming the page). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define TAG 0xf1d0f1d000000000ull
#define MAX_PASSES 64
#define MAX_THREADS 64
/* lat[] holds an access's ns (up to ~2 s) and, in the top bit, "slow but no page fault" */
#define LAT_NS 0x7fffffffu
#define NO_FAULT 0x80000000u

enum kind { K_INIT, K_SEQ, K_RAND, K_PAIRS, K_READ, K_NKINDS };
static const char *kind_name[] = { "init", "seq", "rand", "pairs", "read" };

struct opts {
	size_t size;
	int use_malloc;
	int full;
	uint64_t threshold_ns;
	const char *samples;
	uint64_t seed;
	const char *label;
	long corrupt;
	int threads;
	enum kind passes[MAX_PASSES];
	int npasses;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t check_word(uint64_t page, uint64_t counter)
{
	return mix(page * 0x100000001b3ull ^ (counter << 48) ^ 0xc0ffee);
}

static uint64_t fill_word(uint64_t page, uint64_t counter, size_t k)
{
	return mix((page << 9 | k) ^ (counter << 56));
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v < (double)PAGE) {
		fprintf(stderr, "touch: bad size '%s'\n", s);
		exit(2);
	}
	return (size_t)v / PAGE * PAGE;
}

static void parse_passes(struct opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	o->npasses = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k;
		for (k = 0; k < K_NKINDS; k++)
			if (strcmp(t, kind_name[k]) == 0)
				break;
		if (k == K_NKINDS || o->npasses == MAX_PASSES) {
			fprintf(stderr, "touch: bad pass '%s' (init, seq, rand, pairs, read; at most %d)\n", t, MAX_PASSES);
			exit(2);
		}
		o->passes[o->npasses++] = (enum kind)k;
	}
	free(copy);
	if (o->npasses == 0 || o->passes[0] != K_INIT) {
		fprintf(stderr, "touch: the first pass must be init\n");
		exit(2);
	}
}

static void wrong_page(size_t page, const char *when, const char *what, uint64_t got, uint64_t want)
{
	fprintf(stderr, "touch: wrong page %zu (%s): %s is %#llx, expected %#llx\n", page, when, what,
		(unsigned long long)got, (unsigned long long)want);
	printf("bench=touch result=wrong-page page=%zu when=%s\n", page, when);
	exit(1);
}

/* Check a page that `counter` passes have touched; exits naming it if wrong. */
static void check_page(const volatile uint64_t *w, size_t page, uint64_t counter, int full, const char *when)
{
	if (w[0] != (TAG ^ page))
		wrong_page(page, when, "word 0 (page id)", w[0], TAG ^ page);
	if (w[1] != counter)
		wrong_page(page, when, "word 1 (counter)", w[1], counter);
	if (w[WORDS - 1] != check_word(page, counter))
		wrong_page(page, when, "last word (check)", w[WORDS - 1], check_word(page, counter));
	if (full)
		for (size_t k = 2; k < WORDS - 1; k++)
			if (w[k] != fill_word(page, counter, k))
				wrong_page(page, when, "fill word", w[k], fill_word(page, counter, k));
}

static void fill_page(volatile uint64_t *w, size_t page, uint64_t counter)
{
	for (size_t k = 2; k < WORDS - 1; k++)
		w[k] = fill_word(page, counter, k);
}

/* One thread's share of a pass: order[from..to) in that order. */
struct slice {
	const struct opts *o;
	char *base;
	const uint32_t *order;
	uint32_t *lat;
	uint64_t counter;   /* word 1 of every page before this pass (0: init) */
	int write;          /* the pass increments it (all but read) */
	size_t from, to;
	char when[32];
};

/* Page faults the calling thread has taken. */
static long thread_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

static void *run_slice(void *arg)
{
	struct slice *sl = arg;
	const uint64_t p = sl->counter;
	long faults = thread_faults();
	for (size_t i = sl->from; i < sl->to; i++) {
		size_t pg = sl->order[i];
		volatile uint64_t *w = (volatile uint64_t *)(sl->base + pg * PAGE);
		uint64_t t0 = now_ns();
		if (p == 0) {
			/* init: whatever was there (zero for mmap) is overwritten. */
			w[0] = TAG ^ pg;
			w[1] = 1;
			w[WORDS - 1] = check_word(pg, 1);
		} else {
			uint64_t id = w[0], cnt = w[1], chk = w[WORDS - 1];
			if (id != (TAG ^ pg) || cnt != p || chk != check_word(pg, p))
				check_page(w, pg, p, 0, sl->when);
			if (sl->write) {
				w[1] = p + 1;
				w[WORDS - 1] = check_word(pg, p + 1);
			}
		}
		uint64_t t1 = now_ns();
		uint32_t ns = t1 - t0 > LAT_NS ? LAT_NS : (uint32_t)(t1 - t0);
		/* Asked only after a slow access, outside the timed part: a
		 * fault takes microseconds, so one counted since the last ask
		 * was taken by this access. */
		if (ns > sl->o->threshold_ns) {
			long now = thread_faults();
			if (now == faults)
				ns |= NO_FAULT;
			faults = now;
		}
		sl->lat[i] = ns;
		if (sl->o->full && sl->write)
			fill_page(w, pg, p + 1);
	}
	return NULL;
}

static void report(const struct opts *o, int pass, const char *kind, size_t n, uint32_t *lat,
		   double secs, const struct rusage *r0, const struct rusage *r1, FILE *samples)
{
	/* Keep only the faulting accesses; lat is reordered. */
	size_t f = 0, slow = 0;
	double all = 0, sum = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t ns = lat[i] & LAT_NS;
		all += ns;
		if (lat[i] & NO_FAULT)
			slow++;
		else if (ns > o->threshold_ns) {
			sum += ns;
			lat[f++] = ns;
		}
	}
	if (samples)
		for (size_t i = 0; i < f; i++)
			fprintf(samples, "%s %s %u\n", o->label, kind, lat[i]);
	qsort(lat, f, sizeof(*lat), cmp_u32);
	double avg = f ? sum / (double)f / 1e3 : 0;
	double med = f ? lat[f / 2] / 1e3 : 0;
	double p99 = f ? lat[f * 99 / 100 < f ? f * 99 / 100 : f - 1] / 1e3 : 0;
	printf("bench=touch label=%s pass=%d kind=%s pages=%zu faults=%zu fault_avg_us=%.2f "
	       "fault_median_us=%.2f fault_p99_us=%.2f slow=%zu access_avg_us=%.3f secs=%.3f pages_per_s=%.0f "
	       "mb_per_s=%.1f majflt=%ld minflt=%ld\n",
	       o->label, pass, kind, n, f, avg, med, p99, slow, all / (double)n / 1e3, secs,
	       (double)n / secs, (double)n * PAGE / secs / 1048576.0,
	       r1->ru_majflt - r0->ru_majflt, r1->ru_minflt - r0->ru_minflt);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct opts o = { .size = 256UL << 20, .threshold_ns = 1000, .seed = 1, .label = "touch",
			 .corrupt = -1, .threads = 1 };
	parse_passes(&o, "init,seq,rand");
	static const struct option lo[] = {
		{ "size", required_argument, 0, 's' },
		{ "alloc", required_argument, 0, 'a' },
		{ "passes", required_argument, 0, 'p' },
		{ "fill", required_argument, 0, 'f' },
		{ "threshold-ns", required_argument, 0, 't' },
		{ "samples", required_argument, 0, 'o' },
		{ "seed", required_argument, 0, 'S' },
		{ "label", required_argument, 0, 'l' },
		{ "corrupt", required_argument, 0, 'C' },
		{ "threads", required_argument, 0, 'T' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:a:p:f:t:o:S:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.size = parse_size(optarg); break;
		case 'a':
			if (strcmp(optarg, "mmap") && strcmp(optarg, "malloc"))
				goto usage;
			o.use_malloc = strcmp(optarg, "malloc") == 0;
			break;
		case 'p': parse_passes(&o, optarg); break;
		case 'f':
			if (strcmp(optarg, "sparse") && strcmp(optarg, "full"))
				goto usage;
			o.full = strcmp(optarg, "full") == 0;
			break;
		case 't': o.threshold_ns = strtoull(optarg, NULL, 0); break;
		case 'o': o.samples = optarg; break;
		case 'S': o.seed = strtoull(optarg, NULL, 0) ?: 1; break;
		case 'l': o.label = optarg; break;
		case 'C': o.corrupt = strtol(optarg, NULL, 0); break;
		case 'T':
			o.threads = atoi(optarg);
			if (o.threads < 1 || o.threads > MAX_THREADS)
				goto usage;
			break;
		default: goto usage;
		}
	}
	if (optind != argc)
		goto usage;

	size_t n = o.size / PAGE;
	FILE *samples = NULL;
	if (o.samples && !(samples = fopen(o.samples, "a"))) {
		fprintf(stderr, "touch: %s: %s\n", o.samples, strerror(errno));
		return 2;
	}
	/* Bookkeeping (order and latencies, 8 bytes per 4 KiB page) is allocated and
	 * touched before the region, so it is resident when timing starts. */
	uint32_t *order = malloc(n * sizeof(*order));
	uint32_t *lat = malloc(n * sizeof(*lat));
	if (!order || !lat) {
		fprintf(stderr, "touch: malloc of bookkeeping failed\n");
		return 2;
	}
	memset(lat, 0, n * sizeof(*lat));
	memset(order, 0, n * sizeof(*order));

	char *base;
	if (o.use_malloc) {
		base = malloc(o.size);
		if (!base) {
			fprintf(stderr, "touch: malloc(%zu) failed\n", o.size);
			return 2;
		}
	} else {
		base = mmap(NULL, o.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) {
			fprintf(stderr, "touch: mmap(%zu): %s\n", o.size, strerror(errno));
			return 2;
		}
		/* Per-page faults everywhere: no 2 MiB pages under the kernel either. */
		madvise(base, o.size, MADV_NOHUGEPAGE);
	}
	uint64_t t_min = UINT64_MAX;
	for (int i = 0; i < 1000; i++) {
		uint64_t a = now_ns(), b = now_ns();
		if (b - a < t_min)
			t_min = b - a;
	}
	printf("bench=touch label=%s size=%zu pages=%zu alloc=%s fill=%s threads=%d threshold_ns=%llu "
	       "timer_ns=%llu\n",
	       o.label, o.size, n, o.use_malloc ? "malloc" : "mmap", o.full ? "full" : "sparse", o.threads,
	       (unsigned long long)o.threshold_ns, (unsigned long long)t_min);
	fflush(stdout);

	uint64_t rng = o.seed * 0x9e3779b97f4a7c15ull | 1;
	uint64_t written = 0; /* passes that wrote: word 1 of every page */
	for (int p = 0; p < o.npasses; p++) {
		enum kind k = o.passes[p];
		for (size_t i = 0; i < n; i++)
			order[i] = (uint32_t)i;
		if (k == K_RAND)
			for (size_t i = n - 1; i > 0; i--) {
				size_t j = xorshift(&rng) % (i + 1);
				uint32_t t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
		if (k == K_PAIRS && n >= 4) { /* 2-page records in random order */
			size_t np = n / 2;
			for (size_t i = np - 1; i > 0; i--) {
				size_t j = xorshift(&rng) % (i + 1);
				uint32_t t = order[2 * i];
				order[2 * i] = order[2 * j];
				order[2 * j] = t;
			}
			for (size_t i = 0; i < np; i++)
				order[2 * i + 1] = order[2 * i] + 1;
		}
		struct slice sl[MAX_THREADS];
		for (int t = 0; t < o.threads; t++) {
			sl[t] = (struct slice){ .o = &o, .base = base, .order = order, .lat = lat,
						.counter = p == 0 ? 0 : written, .write = k != K_READ,
						.from = n * (size_t)t / (size_t)o.threads,
						.to = n * (size_t)(t + 1) / (size_t)o.threads };
			snprintf(sl[t].when, sizeof(sl[t].when), "pass %d %s", p, kind_name[k]);
		}
		struct rusage r0, r1;
		getrusage(RUSAGE_SELF, &r0);
		uint64_t start = now_ns();
		pthread_t tid[MAX_THREADS];
		for (int t = 1; t < o.threads; t++) {
			int err = pthread_create(&tid[t], NULL, run_slice, &sl[t]);
			if (err) {
				fprintf(stderr, "touch: pthread_create: %s\n", strerror(err));
				return 2;
			}
		}
		run_slice(&sl[0]);
		for (int t = 1; t < o.threads; t++)
			pthread_join(tid[t], NULL);
		double secs = (double)(now_ns() - start) / 1e9;
		getrusage(RUSAGE_SELF, &r1);
		report(&o, p, kind_name[k], n, lat, secs, &r0, &r1, samples);
		written = p == 0 ? 1 : written + (k != K_READ);
		if (p == 0 && o.corrupt >= 0 && (size_t)o.corrupt < n)
			((volatile uint64_t *)(base + (size_t)o.corrupt * PAGE))[WORDS - 1] ^= 1;
	}

	/* Verify: every page, sequentially, read only. */
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	uint64_t start = now_ns();
	for (size_t pg = 0; pg < n; pg++)
		check_page((volatile uint64_t *)(base + pg * PAGE), pg, written, o.full, "verify");
	double secs = (double)(now_ns() - start) / 1e9;
	getrusage(RUSAGE_SELF, &r1);
	printf("bench=touch label=%s kind=verify pages=%zu secs=%.3f pages_per_s=%.0f mb_per_s=%.1f "
	       "majflt=%ld minflt=%ld result=ok\n",
	       o.label, n, secs, (double)n / secs, (double)n * PAGE / secs / 1048576.0,
	       r1.ru_majflt - r0.ru_majflt, r1.ru_minflt - r0.ru_minflt);
	if (samples)
		fclose(samples);
	if (o.use_malloc)
		free(base);
	else
		munmap(base, o.size);
	free(order);
	free(lat);
	return 0;

usage:
	fprintf(stderr, "usage: touch [--size 256M] [--alloc mmap|malloc] [--passes init,seq,rand] "
		"[--fill sparse|full] [--threshold-ns 1000] [--samples FILE] [--seed N] [--label L] "
		"[--threads N] [--corrupt PAGE]\n");
	return 2;
}
