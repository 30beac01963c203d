/* rmw.c - sequential and random read-modify-write over a region, every page
 * verified at the end. Page contents derive from the page index and the pass
 * number, so a lost, stale or zeroed page shows as a named wrong page.
 *
 * usage: rmw [--api|--malloc|--mmap] MIB [PASSES] [SEED]
 *   --api    the region comes from fm_alloc() (libfluidmem)
 *   --malloc from malloc() (under `fluidmem run`, the preload's heap)
 *   --mmap   from an anonymous mmap (under `fluidmem run`, a region)
 * Prints "rmw ok pages=N checksum=X" and exits 0, or names the bad page, exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fluidmem/fluidmem.h"

#define PAGE 4096

static uint64_t expect(uint64_t page, unsigned passes)
{
	return page * 0x9E3779B97F4A7C15ull + passes;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rmw --api|--malloc|--mmap MIB [PASSES] [SEED]\n");
		return 2;
	}
	size_t mib = strtoul(argv[2], NULL, 10);
	unsigned passes = argc > 3 ? (unsigned)atoi(argv[3]) : 2;
	uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
	size_t len = mib << 20, pages = len / PAGE;
	char *m;
	if (strcmp(argv[1], "--api") == 0)
		m = fm_alloc(len);
	else if (strcmp(argv[1], "--malloc") == 0)
		m = malloc(len);
	else
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!m || m == MAP_FAILED) {
		perror("rmw: allocation");
		return 1;
	}
	/* Pass 0: sequential initialisation. Word 0 is the counter, word 511 a
	 * copy of the page index, the rest a pattern of the index. */
	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = (uint64_t *)(m + p * PAGE);
		w[0] = expect(p, 0);
		w[1] = p;
		w[511] = ~p;
	}
	/* Sequential read-modify-write passes, then random ones. */
	uint64_t *count = calloc(pages, sizeof(uint64_t));
	for (unsigned pass = 0; pass < passes; pass++)
		for (size_t p = 0; p < pages; p++) {
			uint64_t *w = (uint64_t *)(m + p * PAGE);
			w[0] += 1;
			count[p]++;
		}
	uint64_t x = seed | 1;
	for (size_t i = 0; i < pages * passes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t p = x % pages;
		uint64_t *w = (uint64_t *)(m + p * PAGE);
		w[0] += 1;
		count[p]++;
	}
	uint64_t sum = 0;
	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = (uint64_t *)(m + p * PAGE);
		if (w[0] != expect(p, 0) + count[p] || w[1] != p || w[511] != ~p) {
			fprintf(stderr, "rmw: page %zu wrong: counter %llu (want %llu) index %llu tail %llx\n", p,
				(unsigned long long)w[0], (unsigned long long)(expect(p, 0) + count[p]),
				(unsigned long long)w[1], (unsigned long long)w[511]);
			return 1;
		}
		for (int i = 2; i < 511; i++)
			if (w[i]) {
				fprintf(stderr, "rmw: page %zu word %d is %llx, want 0\n", p, i, (unsigned long long)w[i]);
				return 1;
			}
		sum = sum * 31 + w[0];
	}
	printf("rmw ok pages=%zu checksum=%016llx\n", pages, (unsigned long long)sum);
	return 0;
}
