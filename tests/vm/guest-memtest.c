/*
 * guest-memtest.c - runs inside the test guest (static, no libc beyond the
 * basics): maps more anonymous memory than the guest's boot RAM, writes every
 * word of every page with a value derived from the page and word index, reads
 * it all back and prints one verdict line on stdout:
 *
 *     FMTEST PASS <pages> <checksum> write_ms=<n> read_ms=<n>
 *     FMTEST FAIL <what> [page <index> word <index> got <x> want <y>]
 *
 * A zero page or a page from the wrong place (a store mix-up) both show as a
 * wrong word, named by page index. It does not test anything host-side: the
 * host test reads the verdict and fluidmem's counters.
 * Usage: guest-memtest [MiB] (default 608).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096u
#define WORDS (PAGE / sizeof(uint64_t))

static uint64_t pattern(uint64_t page, uint64_t word)
{
	uint64_t x = page * 0x9E3779B97F4A7C15ull ^ (word + 1) * 0xC2B2AE3D27D4EB4Full;
	return x ^ (x >> 29);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 608;
	size_t pages = (size_t)mib * (1024 * 1024 / PAGE);
	struct timespec t0;
	uint64_t sum = 0;

	if (mib == 0) {
		printf("FMTEST FAIL bad size '%s'\n", argv[1]);
		return 1;
	}
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		printf("FMTEST FAIL mmap %lu MiB: %m\n", mib);
		return 1;
	}
	/* fewer guest page faults under TCG; the host still sees 4 KiB pages */
	madvise(mem, pages * PAGE, MADV_HUGEPAGE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t p = 0; p < pages; p++)
		for (size_t w = 0; w < WORDS; w++)
			mem[p * WORDS + w] = pattern(p, w);
	long write_ms = ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t p = 0; p < pages; p++) {
		for (size_t w = 0; w < WORDS; w++) {
			uint64_t got = mem[p * WORDS + w], want = pattern(p, w);
			if (got != want) {
				printf("FMTEST FAIL page %zu word %zu got %#llx want %#llx\n", p, w,
				       (unsigned long long)got, (unsigned long long)want);
				return 1;
			}
			sum += got;
		}
	}
	long read_ms = ms_since(&t0);
	printf("FMTEST PASS %zu %016llx write_ms=%ld read_ms=%ld\n", pages,
	       (unsigned long long)sum, write_ms, read_ms);
	return 0;
}
