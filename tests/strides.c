/* strides.c - walks a region backwards and in strides of 7 pages, with
 * read-modify-write, then verifies every page: the access patterns the
 * monitor's stride prefetcher serves. usage: strides MIB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PAGE 4096

int main(int argc, char **argv)
{
	size_t pages = (strtoul(argv[1], NULL, 10) << 20) / PAGE;
	uint64_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	const size_t W = PAGE / 8;
	for (size_t p = 0; p < pages; p++) {
		m[p * W] = p * 3 + 1;
		m[p * W + W - 1] = ~p;
	}
	for (size_t p = pages; p-- > 0;) /* backwards */
		m[p * W] += 10;
	for (size_t start = 0; start < 7; start++) /* stride 7 */
		for (size_t p = start; p < pages; p += 7)
			m[p * W] += 100;
	for (size_t p = 0; p < pages; p++)
		if (m[p * W] != p * 3 + 111 || m[p * W + W - 1] != ~p) {
			fprintf(stderr, "strides: page %zu wrong (%llu)\n", p, (unsigned long long)m[p * W]);
			return 1;
		}
	printf("strides ok pages=%zu\n", pages);
	return 0;
}
