/* store-sealbench.c - CPU cost per page of sealing: fm_seal_with() and
 * fm_unseal_with() with the XXH3-128 checksum (no secret) and with
 * XChaCha20-Poly1305 (a region's secret), on one thread, no I/O. Each measure
 * is the best of ROUNDS rounds of 256 pages: the best, not the mean, and short
 * rounds, because other load on the machine only ever adds time and a round
 * shorter than a scheduler slice often runs undisturbed. With a store URL,
 * also batched writes and reads of PAGES pages (batches of 64, best of 3)
 * through that store, without and with a secret: the eviction and prefetch
 * shape, where sealing is paid once per page on top of the network.
 *
 *   store-sealbench [rounds=300] [URL [pages=16384]]
 * Prints one line per measure. Exit 0, or 1 if a page did not come back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/store/seal.h"

enum { BATCH = 64 };

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Best of rounds: write then read pages pages of one region through s, in
 * batches; pages/s of each. */
static int store_run(struct fm_store *s, const unsigned char *secret, size_t pages, int rounds, double *wps,
		     double *rps)
{
	static unsigned char buf[BATCH][FM_PAGE_SIZE];
	struct fm_store_io ios[BATCH];
	*wps = *rps = 0;
	for (int r = 0; r < rounds; r++) {
		double t[3];
		for (int pass = 0; pass < 2; pass++) {
			t[pass] = now_ns();
			for (size_t at = 0; at < pages; at += BATCH) {
				size_t m = pages - at < BATCH ? pages - at : BATCH;
				for (size_t i = 0; i < m; i++) {
					ios[i] = (struct fm_store_io){ .key = { { 0xbe9c4, (uint64_t)r }, at + i },
								       .page = buf[i], .version = at + i + 1,
								       .secret = secret, .status = -1 };
					if (pass == 0)
						memset(buf[i], (int)(at + i), FM_PAGE_SIZE);
				}
				int rc = pass == 0 ? fm_store_write(s, ios, m) : fm_store_read(s, ios, m);
				for (size_t i = 0; i < m; i++)
					if (rc || ios[i].status != FM_STORE_OK ||
					    buf[i][100] != (unsigned char)(at + i)) {
						fprintf(stderr, "%s of page %zu: %s\n", pass ? "read" : "write", at + i,
							rc ? "call failed" : fm_store_strstatus(ios[i].status));
						return 1;
					}
			}
		}
		t[2] = now_ns();
		double w = (double)pages / ((t[1] - t[0]) / 1e9), rd = (double)pages / ((t[2] - t[1]) / 1e9);
		if (w > *wps)
			*wps = w;
		if (rd > *rps)
			*rps = rd;
		struct fm_page_key keys[BATCH];
		for (size_t at = 0; at < pages; at += BATCH) {
			size_t m = pages - at < BATCH ? pages - at : BATCH;
			for (size_t i = 0; i < m; i++)
				keys[i] = (struct fm_page_key){ { 0xbe9c4, (uint64_t)r }, at + i };
			fm_store_remove(s, keys, m);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	const char *url = argc > 2 ? argv[2] : NULL;
	size_t pages = 256, store_pages = argc > 3 ? strtoul(argv[3], NULL, 0) : 16384;
	if (rounds < 1 || !store_pages) {
		fprintf(stderr, "usage: store-sealbench [rounds] [URL [pages]]\n");
		return 2;
	}
	if (fm_seal_init()) {
		fprintf(stderr, "libsodium failed to initialise\n");
		return 1;
	}
	/* 64 distinct pages, so the data is not one cache-hot page. */
	enum { NP = 64 };
	static unsigned char pages_in[NP][FM_PAGE_SIZE], out[FM_PAGE_SIZE], sealed[NP][FM_SEALED_MAX];
	for (size_t p = 0; p < NP; p++)
		for (size_t i = 0; i < FM_PAGE_SIZE; i++)
			pages_in[p][i] = (unsigned char)(p * 131 + i * 7 + (i >> 8));
	unsigned char secret[FM_SECRET_SIZE];
	for (size_t i = 0; i < sizeof(secret); i++)
		secret[i] = (unsigned char)(i * 29 + 5);
	const unsigned char *secrets[2] = { NULL, secret };
	const char *names[2] = { "checksum (XXH3-128)", "AEAD (XChaCha20-Poly1305)" };

	for (int a = 0; a < 2; a++) {
		double best_seal = 1e30, best_unseal = 1e30;
		for (int r = 0; r < rounds; r++) {
			double t0 = now_ns();
			for (size_t n = 0; n < pages; n++) {
				struct fm_page_key k = { { 0x1234, 0x5678 }, n };
				fm_seal_with(secrets[a], &k, n + 1, pages_in[n % NP], sealed[n % NP]);
			}
			double t1 = now_ns();
			/* unseal the last NP sealed values, round robin */
			for (size_t n = 0; n < pages; n++) {
				size_t m = pages - NP + n % NP;
				if (pages < NP)
					m = n;
				struct fm_page_key k = { { 0x1234, 0x5678 }, m };
				if (fm_unseal_with(secrets[a], &k, m + 1, sealed[m % NP], fm_sealed_size(secrets[a]), out,
						   NULL) != FM_STORE_OK) {
					fprintf(stderr, "%s: page %zu did not come back\n", names[a], m);
					return 1;
				}
			}
			double t2 = now_ns();
			size_t last = pages < NP ? pages - 1 : pages - NP + (pages - 1) % NP;
			if (memcmp(out, pages_in[last % NP], FM_PAGE_SIZE) != 0) {
				fprintf(stderr, "%s: page %zu came back wrong\n", names[a], last);
				return 1;
			}
			if ((t1 - t0) / (double)pages < best_seal)
				best_seal = (t1 - t0) / (double)pages;
			if ((t2 - t1) / (double)pages < best_unseal)
				best_unseal = (t2 - t1) / (double)pages;
		}
		printf("%-27s seal %6.0f ns/page  unseal %6.0f ns/page  both %6.0f ns/page  (%.2f GB/s)\n", names[a],
		       best_seal, best_unseal, best_seal + best_unseal,
		       2.0 * FM_PAGE_SIZE / (best_seal + best_unseal));
	}
	if (!url)
		return 0;
	struct fm_store *s;
	char err[512];
	if (fm_store_open(url, &s, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int a = 0; a < 2; a++) {
		double wps, rps;
		if (store_run(s, secrets[a], store_pages, 3, &wps, &rps)) {
			fm_store_close(s);
			return 1;
		}
		printf("%-27s batched write %5.0fk pages/s  batched read %5.0fk pages/s  (%s)\n", names[a],
		       wps / 1e3, rps / 1e3, url);
	}
	fm_store_close(s);
	return 0;
}
