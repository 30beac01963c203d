/* mapops.c - munmap, mremap (move, grow, shrink) and madvise(DONTNEED) on
 * large anonymous mappings, printing what a program observes. Run with and
 * without fluidmem: the transcripts must be identical. Mappings are 8 MiB,
 * above the preload's threshold, so under fluidmem they are regions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096
#define MB (1ul << 20)

static uint64_t sum(const char *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += 8)
		s = s * 1099511628211ull + *(const uint64_t *)(p + i);
	return s;
}

static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(p + i) = seed + i * 2654435761u;
}

static char *anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(void)
{
	/* 1. madvise(DONTNEED) zeroes the range, the rest stays. */
	char *a = anon(8 * MB);
	fill(a, 8 * MB, 1);
	printf("filled: %016llx\n", (unsigned long long)sum(a, 8 * MB));
	madvise(a + 2 * MB, 1 * MB, MADV_DONTNEED);
	printf("after DONTNEED: head %016llx hole %016llx tail %016llx\n", (unsigned long long)sum(a, 2 * MB),
	       (unsigned long long)sum(a + 2 * MB, MB), (unsigned long long)sum(a + 3 * MB, 5 * MB));
	fill(a + 2 * MB, MB, 7);
	printf("refilled hole: %016llx\n", (unsigned long long)sum(a, 8 * MB));

	/* 2. munmap of the middle: both ends keep their data. */
	munmap(a + 4 * MB, 2 * MB);
	printf("after munmap middle: %016llx %016llx\n", (unsigned long long)sum(a, 4 * MB),
	       (unsigned long long)sum(a + 6 * MB, 2 * MB));
	munmap(a, 4 * MB);
	munmap(a + 6 * MB, 2 * MB);

	/* 3. mremap: grow in place or moving, data kept, new part zero. */
	char *b = anon(8 * MB);
	fill(b, 8 * MB, 3);
	char *hole = anon(1 * MB); /* something after b, so growing must move */
	char *c = mremap(b, 8 * MB, 16 * MB, MREMAP_MAYMOVE);
	if (c == MAP_FAILED) {
		perror("mremap grow");
		return 1;
	}
	printf("grown: old part %016llx new part %016llx\n", (unsigned long long)sum(c, 8 * MB),
	       (unsigned long long)sum(c + 8 * MB, 8 * MB));
	fill(c + 8 * MB, 8 * MB, 5);
	printf("grown filled: %016llx\n", (unsigned long long)sum(c, 16 * MB));

	/* 4. mremap move to a fixed place. */
	char *dst = anon(16 * MB);
	char *d = mremap(c, 16 * MB, 16 * MB, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (d != dst) {
		perror("mremap fixed");
		return 1;
	}
	printf("moved: %016llx\n", (unsigned long long)sum(d, 16 * MB));

	/* 5. shrink. */
	char *e = mremap(d, 16 * MB, 4 * MB, 0);
	printf("shrunk: %016llx\n", (unsigned long long)sum(e, 4 * MB));

	/* 6. MAP_FIXED fresh memory over part of a mapping reads as zeros. */
	char *f = mmap(e + MB, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	printf("map fixed: %s %016llx %016llx\n", f == e + MB ? "same place" : "moved",
	       (unsigned long long)sum(e + MB, MB), (unsigned long long)sum(e, MB));

	/* 7. PROT_NONE reservation, then MAP_FIXED read-write inside (QEMU, JVMs). */
	char *res = mmap(NULL, 32 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *g = mmap(res + 8 * MB, 8 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	fill(g, 8 * MB, 9);
	printf("reserve+fixed: %s %016llx\n", g == res + 8 * MB ? "same place" : "moved",
	       (unsigned long long)sum(g, 8 * MB));
	munmap(res, 32 * MB);
	munmap(e, 4 * MB);
	munmap(hole, MB);
	printf("done\n");
	return 0;
}
