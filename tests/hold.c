/* hold.c - fills memory with page-indexed data, then holds it untouched until
 * told, then verifies every page: for tests of eviction from outside (evict
 * now, a smaller limit) where the program must not fault its pages back in
 * by itself meanwhile.
 *
 * usage: hold MIB
 * Prints "ready" after filling, waits for a line (or EOF) on stdin, verifies,
 * prints "hold ok pages=N", waits for another line (or EOF) and exits 0; or
 * names the wrong page, exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096

static uint64_t expect(uint64_t page)
{
	return page * 0x9E3779B97F4A7C15ull + 7;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hold MIB\n");
		return 2;
	}
	size_t pages = (strtoul(argv[1], NULL, 10) << 20) / PAGE;
	char *m = malloc(pages * PAGE);
	if (!m) {
		perror("hold: malloc");
		return 1;
	}
	for (size_t p = 0; p < pages; p++) {
		uint64_t v = expect(p);
		memcpy(m + p * PAGE, &v, sizeof(v));
		memcpy(m + p * PAGE + PAGE - sizeof(v), &p, sizeof(p));
	}
	printf("ready\n");
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
	for (size_t p = 0; p < pages; p++) {
		uint64_t v, idx;
		memcpy(&v, m + p * PAGE, sizeof(v));
		memcpy(&idx, m + p * PAGE + PAGE - sizeof(idx), sizeof(idx));
		if (v != expect(p) || idx != p) {
			printf("hold: page %zu wrong: %016llx index %llu\n", p, (unsigned long long)v,
			       (unsigned long long)idx);
			return 1;
		}
	}
	printf("hold ok pages=%zu\n", pages);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;
	free(m);
	return 0;
}
