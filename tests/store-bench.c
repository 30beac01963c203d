/* store-bench.c - latency and throughput of one store backend, without the
 * monitor: single-page write and read latency (median, p99 over N calls, the
 * fault path's shape) and batched write / read throughput (the eviction and
 * prefetch shape). Lives in tests/ because it links the store objects, which
 * the bench/ rule of the Makefile does not.
 *
 *   store-bench URL [pages=16384] [batch=64]
 * Prints one line per measure. Exit 0, or 1 if any page came back wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fluidmem/store.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void pct(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%-34s median %7.1f us  p99 %7.1f us  (n=%zu)\n", what, v[n / 2], v[n * 99 / 100], n);
}

static struct fm_page_key key(uint64_t region, size_t p)
{
	struct fm_page_key k = { { region, ~region }, p };
	return k;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: store-bench URL [pages] [batch]\n");
		return 2;
	}
	size_t pages = argc > 2 ? strtoul(argv[2], NULL, 0) : 16384;
	size_t batch = argc > 3 ? strtoul(argv[3], NULL, 0) : 64;
	size_t single = pages < 4000 ? pages : 4000;
	struct fm_store *s;
	char err[512];
	if (fm_store_open(argv[1], &s, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	uint64_t region = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	unsigned char *buf = malloc(batch * FM_PAGE_SIZE);
	struct fm_store_io *ios = calloc(batch, sizeof(*ios));
	double *lat = calloc(single, sizeof(double));
	size_t bad = 0;
	for (size_t i = 0; i < batch * FM_PAGE_SIZE; i++)
		buf[i] = (unsigned char)(i * 131 + 7);

	printf("%s\n", argv[1]);
	/* batched writes */
	double t0 = now_us();
	for (size_t at = 0; at < pages; at += batch) {
		size_t m = pages - at < batch ? pages - at : batch;
		for (size_t i = 0; i < m; i++) {
			ios[i] = (struct fm_store_io){ .key = key(region, at + i), .page = buf + i * FM_PAGE_SIZE };
			memcpy(ios[i].page, &ios[i].key.page, sizeof(uint64_t));
		}
		fm_store_write(s, ios, m);
		for (size_t i = 0; i < m; i++)
			bad += ios[i].status != FM_STORE_OK;
	}
	double t = now_us() - t0;
	printf("batched write (batch of %3zu)     %8.0f pages/s  %6.1f MB/s  %5.1f us/page\n", batch, pages / t * 1e6,
	       pages * 4096.0 / t, t / pages);
	/* batched reads */
	t0 = now_us();
	for (size_t at = 0; at < pages; at += batch) {
		size_t m = pages - at < batch ? pages - at : batch;
		for (size_t i = 0; i < m; i++)
			ios[i] = (struct fm_store_io){ .key = key(region, at + i), .page = buf + i * FM_PAGE_SIZE };
		fm_store_read(s, ios, m);
		for (size_t i = 0; i < m; i++)
			bad += ios[i].status != FM_STORE_OK ||
			       memcmp(ios[i].page, &ios[i].key.page, sizeof(uint64_t)) != 0;
	}
	t = now_us() - t0;
	printf("%-34s %8.0f pages/s  %6.1f MB/s  %5.1f us/page\n", "batched read", pages / t * 1e6,
	       pages * 4096.0 / t, t / pages);
	/* single-page writes and reads, random order */
	for (size_t n = 0; n < single; n++) {
		size_t p = (size_t)rand() % pages;
		ios[0] = (struct fm_store_io){ .key = key(region, p), .page = buf };
		memcpy(buf, &p, sizeof(p));
		t0 = now_us();
		fm_store_write(s, ios, 1);
		lat[n] = now_us() - t0;
		bad += ios[0].status != FM_STORE_OK;
	}
	pct("single-page write", lat, single);
	for (size_t n = 0; n < single; n++) {
		size_t p = (size_t)rand() % pages;
		ios[0] = (struct fm_store_io){ .key = key(region, p), .page = buf };
		t0 = now_us();
		fm_store_read(s, ios, 1);
		lat[n] = now_us() - t0;
		bad += ios[0].status != FM_STORE_OK || memcmp(buf, &p, sizeof(p)) != 0;
	}
	pct("single-page read", lat, single);
	/* batched removes (a program's exit drops all its pages) */
	struct fm_page_key *keys = calloc(batch, sizeof(*keys));
	t0 = now_us();
	for (size_t at = 0; at < pages; at += batch) {
		size_t m = pages - at < batch ? pages - at : batch;
		for (size_t i = 0; i < m; i++)
			keys[i] = key(region, at + i);
		fm_store_remove(s, keys, m);
	}
	t = now_us() - t0;
	printf("%-34s %8.0f pages/s  %6.1f MB/s  %5.1f us/page\n", "batched remove", pages / t * 1e6,
	       pages * 4096.0 / t, t / pages);
	if (bad)
		printf("WRONG: %zu pages\n", bad);
	fm_store_close(s);
	free(keys);
	free(buf);
	free(ios);
	free(lat);
	return bad ? 1 : 0;
}
