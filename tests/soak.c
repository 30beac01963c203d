/* soak.c - a long-running client for the soak tests: THREADS threads do
 * random reads and writes, every read verified, on memory they own alone (a
 * slice of one large malloc'd block, and SLOTS large anonymous mappings per
 * thread which they munmap and map again, grow and shrink with mremap, move
 * with mremap(MREMAP_FIXED) and punch with madvise(DONTNEED)). Run under
 * `fluidmem run` with a budget well below MIB, so every kind of page travels
 * through the store while the mappings change under the monitor.
 *
 * Every page holds a pattern derived from (its identity, its generation):
 * word 0 the identity key, word 1 the generation, the rest a hash of both;
 * generation 0 means "must read as zeros" (fresh or DONTNEED'd memory). A
 * verify names the bad page and says what it found instead (zeros, an older
 * generation, another page's data). The bookkeeping lives in memory mapped
 * with raw syscalls, outside fluidmem.
 *
 * usage: soak MIB THREADS SECONDS SEED
 *        soak neighbour   (one deterministic mremap case, see neighbour())
 *        soak move-race   (mremap moves racing mmaps, see move_race())
 *        soak move-onto   (shrink/grow/madvise after a move onto a mapping)
 *        soak grow-race   (mremap grow racing a neighbour that moves away)
 * Environment: SOAK_TRACE=1 logs every mapping operation; SOAK_NO_GROW=1
 * leaves out mremap grow; SOAK_MAPOPS=0 every mapping operation (the
 * mappings are still made once at the start).
 * Prints "soak ok ..." and exits 0; a wrong page: a line "soak: WRONG ..."
 * per bad page (up to 20) and exit 1; SIGBUS: one line naming the address,
 * exit 3. Nothing here is unbounded: the threads stop after SECONDS, then
 * each verifies all its pages once more. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define SLOTS 2
#define MIN_MAP_PAGES 256 /* 1 MiB, the preload's mmap threshold */

struct slot {
	char *p;            /* NULL when unmapped */
	size_t pages;       /* mapped now */
	size_t max_pages;   /* capacity of gen[] */
	uint32_t *gen;      /* per page; 0 = zeros */
	uint32_t inc;       /* incarnation: bumped at every fresh mapping */
	int heap;           /* the malloc'd slice: never remapped */
};

struct worker {
	pthread_t t;
	unsigned id;
	uint64_t rnd;
	struct slot s[SLOTS + 1]; /* s[0] is the heap slice */
	const char *op; /* the operation in progress, for the SIGBUS report */
	unsigned long writes, verifies, maps, grows, shrinks, moves, punches, wrong;
};

static uint64_t seed;
static double stop_at;
static struct worker *W;
static unsigned nthreads;
static atomic_ulong total_wrong;
static int no_grow; /* SOAK_NO_GROW=1: skip mremap grow (to tell a bug in it from others) */
static int no_mapops; /* SOAK_MAPOPS=0: no munmap/mremap/madvise, reads and writes only */
static int trace; /* SOAK_TRACE=1: one line per mapping operation on stderr */

#define TRACE(...) \
	do { \
		if (trace) \
			fprintf(stderr, __VA_ARGS__); \
	} while (0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bookkeeping outside fluidmem: the preload does not see raw syscalls. */
static void *local_alloc(size_t len)
{
	void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("soak: local mmap");
		exit(2);
	}
	return p;
}

static uint64_t rnd(struct worker *w)
{
	uint64_t x = w->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return w->rnd = x;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* The identity of page `pg` of slot `si` of thread `t`, this incarnation. */
static uint64_t key_of(unsigned t, unsigned si, uint32_t inc, size_t pg)
{
	return mix(seed ^ ((uint64_t)t << 48) ^ ((uint64_t)si << 44) ^ ((uint64_t)inc << 24) ^ pg) | 1;
}

static void fill(uint64_t *w, uint64_t key, uint32_t gen)
{
	w[0] = key;
	w[1] = gen;
	for (unsigned i = 2; i < PAGE / 8; i++)
		w[i] = mix(key + gen * 0x9E3779B97F4A7C15ull + i);
}

static void write_page(struct worker *w, unsigned si, size_t pg)
{
	struct slot *s = &w->s[si];
	uint32_t g = s->gen[pg] + 1;
	if (g == 0)
		g = 1;
	fill((uint64_t *)(s->p + pg * PAGE), key_of(w->id, si, s->inc, pg), g);
	s->gen[pg] = g;
	w->writes++;
}

static void verify_page(struct worker *w, unsigned si, size_t pg, const char *when)
{
	struct slot *s = &w->s[si];
	const uint64_t *p = (const uint64_t *)(s->p + pg * PAGE);
	uint32_t g = s->gen[pg];
	uint64_t key = key_of(w->id, si, s->inc, pg);
	w->verifies++;
	unsigned bad = PAGE / 8;
	if (g == 0) {
		for (unsigned i = 0; i < PAGE / 8; i++)
			if (p[i]) {
				bad = i;
				break;
			}
	} else if (p[0] == key && p[1] == g) {
		for (unsigned i = 2; i < PAGE / 8; i++)
			if (p[i] != mix(key + g * 0x9E3779B97F4A7C15ull + i)) {
				bad = i;
				break;
			}
	} else {
		bad = p[0] != key ? 0 : 1;
	}
	if (bad == PAGE / 8)
		return;
	w->wrong++;
	if (atomic_fetch_add(&total_wrong, 1) >= 20)
		return;
	const char *what;
	if (p[0] == 0 && p[1] == 0)
		what = g ? "zeros" : "nonzero tail";
	else if (g == 0)
		what = "data where zeros belong";
	else if (p[0] == key)
		what = p[1] < g ? "an older generation" : "a wrong generation";
	else
		what = "another page's data";
	fprintf(stderr,
		"soak: WRONG page %zu of thread %u slot %u (%s, incarnation %u) at %p during %s: word %u; "
		"want generation %u, found %s (word0 %016llx word1 %llu)\n",
		pg, w->id, si, s->heap ? "heap slice" : "mapping", s->inc, (void *)(s->p + pg * PAGE), when, bad, g,
		what, (unsigned long long)p[0], (unsigned long long)p[1]);
}

static void verify_all(struct worker *w, unsigned si, size_t pages, const char *when)
{
	for (size_t pg = 0; pg < pages; pg++)
		verify_page(w, si, pg, when);
}

static char *anon(void *want, size_t len, int fixed)
{
	char *p = mmap(want, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED : 0), -1, 0);
	if (p == MAP_FAILED) {
		perror("soak: mmap");
		exit(2);
	}
	return p;
}

static size_t rand_pages(struct worker *w, size_t max)
{
	return MIN_MAP_PAGES + rnd(w) % (max - MIN_MAP_PAGES + 1);
}

/* A fresh mapping in slot si: all pages written (generation 1) but a few
 * left as zeros. */
static void map_fresh(struct worker *w, unsigned si)
{
	w->op = "munmap+mmap";
	struct slot *s = &w->s[si];
	if (s->p && munmap(s->p, s->pages * PAGE) < 0) {
		perror("soak: munmap");
		exit(2);
	}
	s->pages = rand_pages(w, s->max_pages);
	char *was = s->p;
	s->p = anon(NULL, s->pages * PAGE, 0);
	TRACE("t%u s%u munmap %p, mmap %zu pages -> %p\n", w->id, si, (void *)was, s->pages, (void *)s->p);
	s->inc++;
	memset(s->gen, 0, s->max_pages * sizeof(*s->gen));
	for (size_t pg = 0; pg < s->pages; pg++)
		if (rnd(w) % 16)
			write_page(w, si, pg);
	w->maps++;
}

static void grow(struct worker *w, unsigned si)
{
	w->op = "mremap grow";
	struct slot *s = &w->s[si];
	if (s->pages == s->max_pages || no_grow)
		return;
	size_t n = s->pages + 1 + rnd(w) % (s->max_pages - s->pages);
	char *p = mremap(s->p, s->pages * PAGE, n * PAGE, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		perror("soak: mremap grow");
		exit(2);
	}
	size_t old = s->pages;
	TRACE("t%u s%u mremap grow %p %zu -> %p %zu pages\n", w->id, si, (void *)s->p, old, (void *)p, n);
	s->p = p;
	s->pages = n;
	verify_all(w, si, old, "mremap grow (old part)");
	for (size_t pg = old; pg < n; pg++) {
		s->gen[pg] = 0;
		verify_page(w, si, pg, "mremap grow (new part, zeros)");
		write_page(w, si, pg);
	}
	w->grows++;
}

static void shrink(struct worker *w, unsigned si)
{
	w->op = "mremap shrink";
	struct slot *s = &w->s[si];
	if (s->pages == MIN_MAP_PAGES)
		return;
	size_t n = MIN_MAP_PAGES + rnd(w) % (s->pages - MIN_MAP_PAGES);
	char *p = mremap(s->p, s->pages * PAGE, n * PAGE, 0);
	if (p != s->p) {
		perror("soak: mremap shrink");
		exit(2);
	}
	TRACE("t%u s%u mremap shrink %p %zu -> %zu pages\n", w->id, si, (void *)s->p, s->pages, n);
	for (size_t pg = n; pg < s->pages; pg++)
		s->gen[pg] = 0;
	s->pages = n;
	w->shrinks++;
}

/* Move the mapping onto a fresh mapping of the same size (MREMAP_FIXED). */
static void move(struct worker *w, unsigned si)
{
	w->op = "mremap move";
	struct slot *s = &w->s[si];
	size_t len = s->pages * PAGE;
	char *dst = anon(NULL, len, 0);
	char *p = mremap(s->p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p != dst) {
		perror("soak: mremap move");
		exit(2);
	}
	TRACE("t%u s%u mremap move %p -> %p %zu pages\n", w->id, si, (void *)s->p, (void *)p, s->pages);
	s->p = p;
	verify_all(w, si, s->pages, "mremap move");
	w->moves++;
}

static void punch(struct worker *w, unsigned si)
{
	w->op = "madvise DONTNEED";
	struct slot *s = &w->s[si];
	size_t first = rnd(w) % s->pages;
	size_t n = 1 + rnd(w) % 64;
	if (first + n > s->pages)
		n = s->pages - first;
	if (madvise(s->p + first * PAGE, n * PAGE, MADV_DONTNEED) < 0) {
		perror("soak: madvise");
		exit(2);
	}
	TRACE("t%u s%u madvise DONTNEED %p pages %zu+%zu\n", w->id, si, (void *)s->p, first, n);
	for (size_t pg = first; pg < first + n; pg++) {
		s->gen[pg] = 0;
		verify_page(w, si, pg, "madvise DONTNEED");
	}
	w->punches++;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	for (unsigned long i = 0;; i++) {
		if ((i & 63) == 0 && now() >= stop_at)
			break;
		unsigned r = (unsigned)(rnd(w) % 1000);
		unsigned si = (unsigned)(rnd(w) % (SLOTS + 1));
		struct slot *s = &w->s[si];
		w->op = r < 600 ? "write" : "read";
		if (r < 600) {
			write_page(w, si, rnd(w) % s->pages);
		} else if (r < 990 || s->heap || no_mapops) {
			verify_page(w, si, rnd(w) % s->pages, "random read");
		} else if (r < 992) {
			map_fresh(w, si);
		} else if (r < 994) {
			grow(w, si);
		} else if (r < 996) {
			shrink(w, si);
		} else if (r < 998) {
			move(w, si);
		} else {
			punch(w, si);
		}
	}
	w->op = "final verify";
	for (unsigned si = 0; si <= SLOTS; si++)
		verify_all(w, si, w->s[si].pages, "final verify");
	return NULL;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char msg[320];
	int n = snprintf(msg, sizeof(msg), "soak: SIGBUS at %p (a page the system could not restore)\n", si->si_addr);
	if (write(2, msg, (size_t)n) < 0) {
	}
	/* Name the page: the bookkeeping is read racily, good enough here. */
	uintptr_t a = (uintptr_t)si->si_addr;
	for (unsigned t = 0; W && t < nthreads; t++)
		for (unsigned k = 0; k <= SLOTS; k++) {
			struct slot *s = &W[t].s[k];
			if (s->p && a >= (uintptr_t)s->p && a < (uintptr_t)s->p + s->pages * PAGE) {
				n = snprintf(msg, sizeof(msg),
					     "soak: that is page %zu of thread %u slot %u (%s, incarnation %u, %zu pages, "
					     "generation %u); the thread's last operation: %s\n",
					     (a - (uintptr_t)s->p) / PAGE, t, k, s->heap ? "heap slice" : "mapping", s->inc,
					     s->pages, s->gen[(a - (uintptr_t)s->p) / PAGE], W[t].op ? W[t].op : "?");
				if (write(2, msg, (size_t)n) < 0) {
				}
			}
		}
	_exit(3);
}

/* `soak neighbour`: the deterministic case the soak found first. Mapping A
 * lies below mapping B with a gap (A was shrunk); growing A past B makes the
 * kernel move it. B must keep its data. Exit 0 when B reads back intact. */
static int neighbour(void)
{
	const size_t MB = 1ul << 20;
	char *b = anon(NULL, 4 * MB, 0);
	memset(b, 0xb, 4 * MB);
	char *a = mmap(b - 4 * MB, 4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (a != b - 4 * MB) {
		fprintf(stderr, "soak neighbour: no room below B, cannot set up (skip)\n");
		return 77;
	}
	memset(a, 0xa, 4 * MB);
	if (mremap(a, 4 * MB, 1 * MB, 0) != a) {
		perror("soak neighbour: shrink");
		return 2;
	}
	/* no output between the shrink and the grow: it gives the monitor time
	 * and hides the bug in most runs */
	char *g = mremap(a, 1 * MB, 8 * MB, MREMAP_MAYMOVE);
	if (g == MAP_FAILED) {
		perror("soak neighbour: grow");
		return 2;
	}
	fprintf(stderr, "soak neighbour: A %p shrunk to 1 MiB, B %p (4 MiB) 3 MiB above it; A grown to 8 MiB, moved to %p; reading B\n",
		(void *)a, (void *)b, (void *)g);
	usleep(200000); /* the monitor handles the move's event meanwhile */
	for (size_t i = 0; i < 4 * MB; i += PAGE)
		if (b[i] != 0xb) {
			fprintf(stderr, "soak neighbour: B wrong at +%zu\n", i);
			return 1;
		}
	for (size_t i = 0; i < 8 * MB; i += PAGE)
		if (g[i] != (i < MB ? 0xa : 0)) {
			fprintf(stderr, "soak neighbour: grown A wrong at +%zu\n", i);
			return 1;
		}
	printf("soak neighbour ok\n");
	return 0;
}

/* `soak move-race`: one thread moves a mapping again and again with
 * mremap(MREMAP_FIXED) onto fresh mappings, freeing its old place; another
 * maps and unmaps mappings meanwhile, which the kernel often puts in the
 * place just freed. Both verify what they read. 3000 rounds each. */
static void *mover(void *arg)
{
	(void)arg;
	const size_t len = 2ul << 20;
	char *a = anon(NULL, len, 0);
	memset(a, 7, len);
	for (int i = 0; i < 3000; i++) {
		char *d = anon(NULL, len, 0);
		char *p = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, d);
		if (p != d) {
			perror("soak move-race: mremap");
			exit(2);
		}
		a = p;
		for (size_t off = 0; off < len; off += PAGE)
			if (a[off] != 7) {
				fprintf(stderr, "soak move-race: moved mapping reads %d at +%zu after %d moves, want 7%s\n",
					a[off], off, i, a[off] ? " (another mapping's data)" : " (a zero page)");
				exit(1);
			}
	}
	return NULL;
}

static void *mapper(void *arg)
{
	(void)arg;
	const size_t len = 2ul << 20;
	for (int i = 0; i < 3000; i++) {
		char *p = anon(NULL, len, 0);
		p[0] = 1;
		p[len / 2] = 2;
		if (p[0] != 1 || p[len / 2] != 2) {
			fprintf(stderr, "soak move-race: fresh mapping wrong\n");
			exit(1);
		}
		munmap(p, len);
	}
	return NULL;
}

static int move_race(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, mover, NULL);
	pthread_create(&b, NULL, mapper, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("soak move-race ok\n");
	return 0;
}

/* `soak move-onto`: mremap(MREMAP_FIXED) of mapping R onto mapping D (the
 * soak's move), then a shrink and a grow of R where it is now; and, the same
 * way, madvise(DONTNEED) of small plain memory made in the tail the shrink
 * freed. Both must behave as without fluidmem. */
static int move_onto(void)
{
	const size_t MB = 1ul << 20;
	char *d = anon(NULL, 4 * MB, 0), *r = anon(NULL, 4 * MB, 0);
	memset(r, 5, 4 * MB);
	char *p = mremap(r, 4 * MB, 4 * MB, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	if (p != d || mremap(p, 4 * MB, 1 * MB, 0) != p) {
		perror("soak move-onto: move or shrink");
		return 2;
	}
	int bad = 0;
	char *g = mremap(p, 1 * MB, 8 * MB, MREMAP_MAYMOVE);
	if (g == MAP_FAILED) {
		fprintf(stderr, "soak move-onto: grow after a move onto a mapping and a shrink failed: %m\n");
		bad = 1;
	}
	for (size_t i = 0; !bad && i < 8 * MB; i += PAGE)
		if (g[i] != (i < MB ? 5 : 0)) {
			fprintf(stderr, "soak move-onto: grown mapping wrong at +%zu\n", i);
			bad = 1;
		}
	/* the same, then plain memory (under the 1 MiB threshold) in the tail */
	d = anon(NULL, 4 * MB, 0);
	r = anon(NULL, 4 * MB, 0);
	p = mremap(r, 4 * MB, 4 * MB, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	if (p != d || mremap(p, 4 * MB, 1 * MB, 0) != p) {
		perror("soak move-onto: move or shrink");
		return 2;
	}
	char *q = mmap(p + 2 * MB, MB / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (q != p + 2 * MB) {
		fprintf(stderr, "soak move-onto: cannot map at the freed tail (skip the madvise part)\n");
	} else {
		memset(q, 9, MB / 2);
		if (madvise(q, MB / 2, MADV_DONTNEED) < 0) {
			fprintf(stderr, "soak move-onto: madvise(DONTNEED) of plain memory in a freed tail failed: %m\n");
			bad = 1;
		} else if (q[0] != 0) {
			fprintf(stderr, "soak move-onto: DONTNEED did not zero plain memory\n");
			bad = 1;
		}
	}
	if (bad)
		return 1;
	printf("soak move-onto ok\n");
	return 0;
}

/* `soak grow-race`: one thread grows mapping A (1 -> 2 MiB, in place when
 * the space after it is free, else moving) and shrinks it back, touching
 * every grown page; another keeps putting mapping B right after A and moving
 * it away with mremap(MREMAP_FIXED). 3000 rounds. */
static char *volatile race_a;

static void *grower(void *arg)
{
	(void)arg;
	const size_t MB = 1ul << 20;
	char *a = race_a;
	for (int i = 0; i < 3000; i++) {
		char *g = mremap(a, MB, 2 * MB, MREMAP_MAYMOVE);
		if (g == MAP_FAILED) {
			fprintf(stderr, "soak grow-race: grow failed in round %d: %m\n", i);
			exit(1);
		}
		for (size_t off = MB; off < 2 * MB; off += PAGE)
			if (g[off] != 0) {
				fprintf(stderr, "soak grow-race: grown part not zero in round %d\n", i);
				exit(1);
			}
		memset(g + MB, 3, MB);
		if (g[0] != 1) {
			fprintf(stderr, "soak grow-race: A lost its data in round %d\n", i);
			exit(1);
		}
		if (mremap(g, 2 * MB, MB, 0) != g) {
			perror("soak grow-race: shrink");
			exit(2);
		}
		race_a = a = g;
	}
	race_a = NULL;
	return NULL;
}

static void *blocker(void *arg)
{
	(void)arg;
	const size_t MB = 1ul << 20;
	for (int i = 0; i < 100000; i++) {
		char *a = race_a;
		if (!a)
			break;
		char *b = mmap(a + MB, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (b == MAP_FAILED)
			continue;
		if (b != a + MB) { /* old kernels: a hint only */
			munmap(b, MB);
			continue;
		}
		b[0] = 4;
		char *d = anon(NULL, MB, 0);
		char *m = mremap(b, MB, MB, MREMAP_MAYMOVE | MREMAP_FIXED, d);
		if (m != d || m[0] != 4) {
			fprintf(stderr, "soak grow-race: moved B wrong\n");
			exit(1);
		}
		munmap(m, MB);
	}
	return NULL;
}

static int grow_race(void)
{
	char *a = anon(NULL, 1ul << 20, 0);
	memset(a, 1, 1ul << 20);
	race_a = a;
	pthread_t x, y;
	pthread_create(&x, NULL, grower, NULL);
	pthread_create(&y, NULL, blocker, NULL);
	pthread_join(x, NULL);
	pthread_join(y, NULL);
	printf("soak grow-race ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "grow-race") == 0) {
		struct sigaction sb = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
		sigaction(SIGBUS, &sb, NULL);
		return grow_race();
	}
	if (argc == 2 && strcmp(argv[1], "move-onto") == 0)
		return move_onto();
	if (argc == 2 && strcmp(argv[1], "move-race") == 0) {
		struct sigaction sb = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
		sigaction(SIGBUS, &sb, NULL);
		return move_race();
	}
	if (argc == 2 && strcmp(argv[1], "neighbour") == 0) {
		struct sigaction sb = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
		sigaction(SIGBUS, &sb, NULL);
		return neighbour();
	}
	if (argc < 5) {
		fprintf(stderr, "usage: soak MIB THREADS SECONDS SEED\n");
		return 2;
	}
	size_t mib = strtoul(argv[1], NULL, 10);
	nthreads = (unsigned)atoi(argv[2]);
	double secs = atof(argv[3]);
	seed = strtoull(argv[4], NULL, 10);
	if (nthreads < 1 || nthreads > 64 || mib < 4 * nthreads) {
		fprintf(stderr, "soak: need 1..64 threads and at least 4 MiB per thread\n");
		return 2;
	}
	trace = getenv("SOAK_TRACE") && *getenv("SOAK_TRACE") == '1';
	no_grow = getenv("SOAK_NO_GROW") && *getenv("SOAK_NO_GROW") == '1';
	no_mapops = getenv("SOAK_MAPOPS") && *getenv("SOAK_MAPOPS") == '0';
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	sigaction(SIGBUS, &sa, NULL);

	/* Half the memory is the heap block, the other half the mappings:
	 * SLOTS per thread, each up to twice its even share (at least 1 MiB). */
	size_t total_pages = (mib << 20) / PAGE;
	size_t heap_per = total_pages / 2 / nthreads;
	size_t map_max = total_pages / 2 / nthreads / SLOTS * 2;
	if (map_max < MIN_MAP_PAGES * 2)
		map_max = MIN_MAP_PAGES * 2;
	char *heap = malloc(heap_per * nthreads * PAGE);
	if (!heap) {
		perror("soak: malloc");
		return 2;
	}
	W = local_alloc(sizeof(*W) * nthreads);
	for (unsigned t = 0; t < nthreads; t++) {
		struct worker *w = &W[t];
		w->id = t;
		w->rnd = mix(seed * 131 + t) | 1;
		w->s[0] = (struct slot){ .p = heap + t * heap_per * PAGE, .pages = heap_per, .max_pages = heap_per,
					 .heap = 1, .gen = local_alloc(heap_per * sizeof(uint32_t)) };
		/* malloc'd memory has no defined contents: write every page */
		for (size_t pg = 0; pg < heap_per; pg++)
			write_page(w, 0, pg);
		for (unsigned si = 1; si <= SLOTS; si++) {
			w->s[si].max_pages = map_max;
			w->s[si].gen = local_alloc(map_max * sizeof(uint32_t));
			map_fresh(w, si);
		}
	}
	stop_at = now() + secs;
	for (unsigned t = 0; t < nthreads; t++)
		if (pthread_create(&W[t].t, NULL, run, &W[t])) {
			fprintf(stderr, "soak: pthread_create failed\n");
			return 2;
		}
	unsigned long sum[8] = { 0 };
	size_t pages = 0;
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(W[t].t, NULL);
		struct worker *w = &W[t];
		unsigned long v[8] = { w->writes, w->verifies, w->maps, w->grows, w->shrinks, w->moves, w->punches,
				       w->wrong };
		for (int i = 0; i < 8; i++)
			sum[i] += v[i];
		for (unsigned si = 0; si <= SLOTS; si++)
			pages += w->s[si].pages;
	}
	printf("soak %s pages=%zu writes=%lu verifies=%lu maps=%lu grows=%lu shrinks=%lu moves=%lu punches=%lu wrong=%lu\n",
	       sum[7] ? "FAILED" : "ok", pages, sum[0], sum[1], sum[2], sum[3], sum[4], sum[5], sum[6], sum[7]);
	return sum[7] ? 1 : 0;
}
