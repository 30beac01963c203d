/* store-contract.c - the correctness suite every store backend must pass,
 * in one process and on one handle: empty batches, thousands of pages whose
 * bytes derive from their key written and read back in mixed batch sizes,
 * removes (twice: removing a missing key is no error), reads mixing present
 * and removed keys, regions that share page numbers, overwrites, and for
 * sealing backends the version check.
 *
 *   store-contract URL [pages]
 * Exit 0 when everything matched, 1 naming the first failure. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluidmem/store.h"

static struct fm_store *S;
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); \
	printf(__VA_ARGS__); printf("\n"); if (++failures > 10) exit(1); } } while (0)

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static struct fm_page_key key_of(uint64_t region, uint64_t page)
{
	struct fm_page_key k = { { mix(region), mix(region + 100) }, page };
	return k;
}

static void fill(const struct fm_page_key *k, uint64_t gen, void *page)
{
	uint64_t *w = page;
	uint64_t base = mix(k->region[0] ^ mix(k->region[1] ^ mix(k->page ^ (gen << 48))));
	for (size_t j = 0; j < FM_PAGE_SIZE / 8; j++)
		w[j] = mix(base + j);
}

/* Write pages [first, first+n) of region in batches of `batch`. */
static void put(uint64_t region, size_t first, size_t n, size_t batch, uint64_t gen, uint64_t version)
{
	struct fm_store_io *ios = calloc(batch, sizeof(*ios));
	unsigned char *buf = malloc(batch * FM_PAGE_SIZE);
	for (size_t at = first; at < first + n; at += batch) {
		size_t m = first + n - at < batch ? first + n - at : batch;
		for (size_t i = 0; i < m; i++) {
			ios[i] = (struct fm_store_io){ .key = key_of(region, at + i),
						       .page = buf + i * FM_PAGE_SIZE, .version = version,
						       .status = -1 };
			fill(&ios[i].key, gen, ios[i].page);
		}
		CHECK(fm_store_write(S, ios, m) == 0, "write call of %zu pages failed", m);
		for (size_t i = 0; i < m; i++)
			CHECK(ios[i].status == FM_STORE_OK, "write page %zu: %s", at + i,
			      fm_store_strstatus(ios[i].status));
	}
	free(ios);
	free(buf);
}

/* ios[0, m): pages at..at+m of region into buf, poisoned first, so that a
 * read that leaves a page alone is seen. */
static void read_ios(struct fm_store_io *ios, unsigned char *buf, uint64_t region, size_t at, size_t m,
		     uint64_t version)
{
	for (size_t i = 0; i < m; i++) {
		ios[i] = (struct fm_store_io){ .key = key_of(region, at + i), .page = buf + i * FM_PAGE_SIZE,
					       .version = version, .status = -1 };
		memset(ios[i].page, 0x5A, FM_PAGE_SIZE);
	}
}

/* The results of a read of pages at..at+m: expect(page) gives the wanted
 * status (NULL: OK), gen the content. */
static void check_read(const struct fm_store_io *ios, uint64_t region, size_t at, size_t m, uint64_t gen,
		       int (*expect)(size_t page))
{
	unsigned char want[FM_PAGE_SIZE];
	for (size_t i = 0; i < m; i++) {
		int want_st = expect ? expect(at + i) : FM_STORE_OK;
		CHECK(ios[i].status == want_st, "read region %llu page %zu: got %s, expected %s",
		      (unsigned long long)region, at + i, fm_store_strstatus(ios[i].status),
		      fm_store_strstatus(want_st));
		if (ios[i].status != FM_STORE_OK)
			continue;
		fill(&ios[i].key, gen, want);
		CHECK(memcmp(want, ios[i].page, FM_PAGE_SIZE) == 0, "read page %zu: wrong bytes", at + i);
	}
}

/* Read pages back; expect(page) gives the wanted status, gen the content. */
static void get(uint64_t region, size_t first, size_t n, size_t batch, uint64_t gen, uint64_t version,
		int (*expect)(size_t page))
{
	struct fm_store_io *ios = calloc(batch, sizeof(*ios));
	unsigned char *buf = malloc(batch * FM_PAGE_SIZE);
	for (size_t at = first; at < first + n; at += batch) {
		size_t m = first + n - at < batch ? first + n - at : batch;
		read_ios(ios, buf, region, at, m, version);
		CHECK(fm_store_read(S, ios, m) == 0, "read call of %zu pages failed", m);
		check_read(ios, region, at, m, gen, expect);
	}
	free(ios);
	free(buf);
}

/* Start a pipelined read of the next batch (at most `batch` pages from
 * *next, before end) into ios/buf; its first page and size into *at, *m. */
static void start_batch(struct fm_store_io *ios, unsigned char *buf, uint64_t region, size_t *next, size_t end,
			size_t batch, size_t *at, size_t *m)
{
	*at = *next;
	*m = end - *next < batch ? end - *next : batch;
	read_ios(ios, buf, region, *at, *m, 0);
	CHECK(fm_store_read_start(S, ios, *m) == 0, "read_start of %zu pages failed", *m);
	*next += *m;
}

/* Pipelined reads (fm_store_read_start/finish, as prefetch uses them): each
 * batch is started before the previous one is checked. Every other batch,
 * with interrupt, a remove of an unrelated key comes between a start and its
 * finish: the start is finished first, and the finish still delivers. */
static void get_pipelined(uint64_t region, size_t first, size_t n, size_t batch, uint64_t gen, int interrupt)
{
	struct fm_store_io *ios[2] = { calloc(batch, sizeof(struct fm_store_io)), calloc(batch, sizeof(struct fm_store_io)) };
	unsigned char *buf[2] = { malloc(batch * FM_PAGE_SIZE), malloc(batch * FM_PAGE_SIZE) };
	size_t m[2], at[2], next = first, end = first + n;
	int cur = 0, k = 0;
	start_batch(ios[cur], buf[cur], region, &next, end, batch, &at[cur], &m[cur]);
	for (;;) {
		if (interrupt && k++ % 2) {
			struct fm_page_key other = key_of(region + 100, 0);
			CHECK(fm_store_remove(S, &other, 1) == 0, "remove between start and finish failed");
		}
		CHECK(fm_store_read_finish(S, ios[cur], m[cur]) == 0, "read_finish of %zu pages failed", m[cur]);
		bool more = next < end;
		if (more) /* answered while this batch is checked */
			start_batch(ios[cur ^ 1], buf[cur ^ 1], region, &next, end, batch, &at[cur ^ 1], &m[cur ^ 1]);
		check_read(ios[cur], region, at[cur], m[cur], gen, NULL);
		if (!more)
			break;
		cur ^= 1;
	}
	for (int b = 0; b < 2; b++) {
		free(ios[b]);
		free(buf[b]);
	}
}

static void del(uint64_t region, size_t first, size_t n, size_t batch)
{
	struct fm_page_key *keys = calloc(batch, sizeof(*keys));
	for (size_t at = first; at < first + n; at += batch) {
		size_t m = first + n - at < batch ? first + n - at : batch;
		for (size_t i = 0; i < m; i++)
			keys[i] = key_of(region, at + i);
		CHECK(fm_store_remove(S, keys, m) == 0, "remove of %zu keys failed", m);
	}
	free(keys);
}

static size_t removed_below;
static int expect_removed(size_t page) { return page < removed_below ? FM_STORE_MISSING : FM_STORE_OK; }
static int expect_corrupt(size_t page) { (void)page; return FM_STORE_CORRUPT; }

/* KiB of this process's memory given back with MADV_FREE and not reclaimed yet. */
static long lazyfree_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "LazyFree: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: store-contract URL [pages]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 0) : 3000;
	char err[512];
	int rc = fm_store_open(argv[1], &S, err, sizeof(err));
	if (rc) {
		printf("open failed: %s\n", err);
		return 1;
	}
	int seals = strncmp(argv[1], "local:", 6) != 0;
	uint64_t r1 = (uint64_t)getpid() << 8, r2 = r1 + 1;

	CHECK(fm_store_read(S, NULL, 0) == 0 && fm_store_write(S, NULL, 0) == 0 &&
	      fm_store_remove(S, NULL, 0) == 0, "empty batches must succeed");

	put(r1, 0, n, 64, 1, 0);
	get(r1, 0, n, 64, 1, 0, NULL);
	get(r1, 0, n, 1000, 1, 0, NULL);
	get(r1, 5, 300, 7, 1, 0, NULL);
	printf("wrote and verified %zu pages\n", n);
	get_pipelined(r1, 0, n, 32, 1, 0);
	get_pipelined(r1, 3, n > 503 ? 500 : n - 3, 48, 1, 1);
	get_pipelined(r1, 0, n, 100, 1, 0); /* more than one multi-get per batch */
	printf("pipelined reads verified\n");

	/* Same page numbers in another region: no collision. */
	put(r2, 0, 100, 13, 2, 0);
	get(r2, 0, 100, 100, 2, 0, NULL);
	get(r1, 0, 100, 100, 1, 0, NULL);

	/* Remove the first third, twice; the rest stays. */
	removed_below = n / 3;
	del(r1, 0, removed_below, 50);
	del(r1, 0, removed_below, 256);
	get(r1, 0, n, 64, 1, 0, expect_removed);
	get(r1, removed_below - 10, 40, 40, 1, 0, expect_removed); /* one batch, mixed */
	printf("removed %zu pages, the others verified\n", removed_below);

	/* Overwrite with new content and a version. */
	put(r1, removed_below, 200, 200, 3, 7);
	get(r1, removed_below, 200, 33, 3, 7, NULL);
	get(r1, removed_below, 200, 33, 3, 0, NULL);
	if (seals) {
		get(r1, removed_below, 50, 50, 3, 8, expect_corrupt);
		printf("a stale version is CORRUPT\n");
	}
	/* Single-page calls, the fault path's shape. */
	put(r2, 1000, 20, 1, 4, 0);
	get(r2, 1000, 20, 1, 4, 0, NULL);

	del(r1, 0, n, 128);
	del(r2, 0, 2000, 128);
	removed_below = n;
	get(r1, 0, n, 128, 1, 0, expect_removed);

	if (!seals) { /* local: freed pages beyond the 16 MiB kept go back to the kernel */
		uint64_t r3 = r1 + 2;
		put(r3, 0, 16384, 64, 5, 0); /* 64 MiB: past the first 64 MiB slab's end */
		put(r2, 0, 100, 100, 6, 0);
		del(r3, 0, 16384, 64);
		get(r2, 0, 100, 100, 6, 0, NULL);
		long lazy = lazyfree_kib();
		CHECK(lazy >= 46 * 1024, "after freeing 64 MiB only %ld KiB given back (MADV_FREE), ~48 MiB expected", lazy);
		printf("freed pages given back: %ld KiB lazily freed\n", lazy);
	}
	char desc[512] = "";
	if (S->ops->describe)
		S->ops->describe(S, desc, sizeof(desc));
	printf("describe: %s\n", desc);
	fm_store_close(S);
	if (failures)
		return 1;
	printf("contract passed\n");
	return 0;
}
