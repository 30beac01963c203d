/* epoch.c - versions after a monitor restart (t-rel-restart-fork): a page
 * whose store copy was removed must not be written again under a version
 * an older copy may still have.
 *
 *   epoch PAGES ROUNDS
 *
 * An fm_alloc() region of PAGES pages is written ROUNDS times over (each
 * page evicted and fetched again, so its version climbs), then page 0 is
 * MADV_REMOVEd (its store copy goes) and "dropped" printed; after a line on
 * stdin page 0 is written again and every other page read, which evicts it,
 * and "evicted" is printed; after another line every page is verified.
 * Exits 0 when all hold what was written last. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "fluidmem/fluidmem.h"

#define PAGE 4096u
#define WORDS (PAGE / 8)

static uint64_t val(uint64_t p, uint64_t w, uint64_t round)
{
	uint64_t x = (p << 24) ^ (w << 8) ^ round ^ 0x5bd1e995u;
	x *= 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 31) ^ 1;
}

static void fill(uint64_t *m, uint64_t p, uint64_t round)
{
	for (uint64_t w = 0; w < WORDS; w++)
		m[p * WORDS + w] = val(p, w, round);
}

static int check(const uint64_t *m, uint64_t p, uint64_t round)
{
	for (uint64_t w = 0; w < WORDS; w++)
		if (m[p * WORDS + w] != val(p, w, round)) {
			fprintf(stderr, "epoch: page %llu word %llu wrong (want round %llu)\n", (unsigned long long)p,
				(unsigned long long)w, (unsigned long long)round);
			return 1;
		}
	return 0;
}

static void wait_line(void)
{
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		exit(2);
}

int main(int argc, char **argv)
{
	uint64_t pages = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	uint64_t rounds = argc > 2 ? strtoull(argv[2], NULL, 10) : 4;
	uint64_t *m = fm_alloc(pages * PAGE);
	if (!m) {
		fprintf(stderr, "epoch: fm_alloc: %s\n", fm_last_error());
		return 2;
	}
	for (uint64_t r = 1; r <= rounds; r++)
		for (uint64_t p = 0; p < pages; p++) {
			if (r > 1 && check(m, p, r - 1))
				return 1;
			fill(m, p, r);
		}
	if (madvise(m, PAGE, MADV_REMOVE) < 0) {
		perror("madvise");
		return 2;
	}
	printf("dropped\n");
	fflush(stdout);
	wait_line();
	fill(m, 0, 1000);
	uint64_t sum = 0;
	for (uint64_t p = 1; p < pages; p++)
		sum += m[p * WORDS];
	printf("evicted %llx\n", (unsigned long long)sum);
	fflush(stdout);
	wait_line();
	if (check(m, 0, 1000))
		return 1;
	for (uint64_t p = 1; p < pages; p++)
		if (check(m, p, rounds))
			return 1;
	printf("epoch ok\n");
	return 0;
}
