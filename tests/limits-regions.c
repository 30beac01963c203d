/* limits-regions.c - more large anonymous mappings than the client library
 * has region slots (1024 per process, src/client/client.c MAX_REGIONS). Run
 * under `fluidmem run`: every mmap must succeed, the ones beyond the limit
 * as plain memory, and every page keep its data. Which mappings are regions
 * is read from /proc/self/maps: a region is a mapping of "/memfd:fluidmem".
 * Then half of the region-backed mappings are unmapped and as many new ones
 * made: the freed slots must be used again (the new ones are regions).
 *
 * With "fork": a child forked after the mappings checks them all and the
 * program prints its exit ("limits-regions fork: child exit N"); 0 and 70
 * (the library's "cannot get its memory" stop) are defined, the rest fail.
 *
 * usage: limits-regions COUNT [MIB_EACH [fork]]
 * Prints "limits-regions ok mappings=N regions=R plain=P remapped_regions=Q"
 * and exits 0; a wrong page or a failed mmap: a line naming it, exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static size_t each;
static char **maps;
static unsigned *gen;

static uint64_t pattern(size_t i, size_t pg, unsigned g)
{
	return ((uint64_t)i << 40) ^ ((uint64_t)pg << 8) ^ g ^ 0x5555000000000000ull;
}

/* First, middle and last page of each mapping carry its pattern. */
static void fill(size_t i)
{
	size_t pages = each / PAGE;
	size_t pgs[3] = { 0, pages / 2, pages - 1 };
	for (int k = 0; k < 3; k++) {
		uint64_t *w = (uint64_t *)(maps[i] + pgs[k] * PAGE);
		for (int j = 0; j < PAGE / 8; j += 64)
			w[j] = pattern(i, pgs[k], gen[i]) + (uint64_t)j;
	}
}

static int check(size_t i, const char *when)
{
	size_t pages = each / PAGE;
	size_t pgs[3] = { 0, pages / 2, pages - 1 };
	for (int k = 0; k < 3; k++) {
		const uint64_t *w = (const uint64_t *)(maps[i] + pgs[k] * PAGE);
		for (int j = 0; j < PAGE / 8; j++) {
			uint64_t want = j % 64 ? 0 : pattern(i, pgs[k], gen[i]) + (uint64_t)j;
			if (w[j] != want) {
				fprintf(stderr, "limits-regions: mapping %zu page %zu word %d is %016llx, want %016llx (%s)\n",
					i, pgs[k], j, (unsigned long long)w[j], (unsigned long long)want, when);
				return 1;
			}
		}
	}
	return 0;
}

/* Is the mapping at p a fluidmem region? (/proc/self/maps) */
static int is_region(const char *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int r = -1;
	uintptr_t a = (uintptr_t)p;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || a < lo || a >= hi)
			continue;
		r = strstr(line, "/memfd:fluidmem") != NULL;
		break;
	}
	if (f)
		fclose(f);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: limits-regions COUNT [MIB_EACH]\n");
		return 2;
	}
	size_t n = strtoul(argv[1], NULL, 10);
	each = (argc > 2 ? strtoul(argv[2], NULL, 10) : 1) << 20;
	maps = calloc(n, sizeof(*maps));
	gen = calloc(n, sizeof(*gen));
	char *kind = calloc(n, 1);
	if (!maps || !gen || !kind)
		return 2;
	for (size_t i = 0; i < n; i++) {
		maps[i] = mmap(NULL, each, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED) {
			fprintf(stderr, "limits-regions: mmap %zu of %zu failed: %m\n", i, n);
			return 1;
		}
		gen[i] = 1;
		fill(i);
	}
	size_t regions = 0, plain = 0;
	for (size_t i = 0; i < n; i++) {
		int r = is_region(maps[i]);
		if (r < 0) {
			fprintf(stderr, "limits-regions: mapping %zu not in /proc/self/maps\n", i);
			return 1;
		}
		kind[i] = (char)r;
		r ? regions++ : plain++;
	}
	for (size_t i = 0; i < n; i++)
		if (check(i, "after mapping all"))
			return 1;
	if (argc > 3 && strcmp(argv[3], "fork") == 0) {
		/* A child must see every mapping, or stop with a message: never
		 * wrong data. */
		fflush(NULL);
		pid_t c = fork();
		if (c < 0) {
			fprintf(stderr, "limits-regions: fork failed: %m\n");
			return 1;
		}
		if (c == 0) {
			for (size_t i = 0; i < n; i++)
				if (check(i, "in the forked child"))
					_exit(1);
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		printf("limits-regions fork: child %s %d\n", WIFEXITED(st) ? "exit" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 70) ? 0 : 1;
	}
	/* Free half of the region slots, map as many again, write them. */
	size_t freed = 0, again = 0;
	for (size_t i = 0; i < n && freed < regions / 2; i++) {
		if (!kind[i])
			continue;
		munmap(maps[i], each);
		maps[i] = mmap(NULL, each, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED) {
			fprintf(stderr, "limits-regions: mmap again %zu failed: %m\n", i);
			return 1;
		}
		for (size_t off = 0; off < each; off += PAGE)
			if (*(uint64_t *)(maps[i] + off)) {
				fprintf(stderr, "limits-regions: fresh mapping %zu not zero at +%zu\n", i, off);
				return 1;
			}
		gen[i]++;
		fill(i);
		freed++;
		again += is_region(maps[i]) == 1;
	}
	for (size_t i = 0; i < n; i++)
		if (check(i, "at the end"))
			return 1;
	printf("limits-regions ok mappings=%zu regions=%zu plain=%zu remapped=%zu remapped_regions=%zu\n", n, regions,
	       plain, freed, again);
	return 0;
}
