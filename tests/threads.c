/* threads.c - 8 threads increment counters spread over a region much larger
 * than the budget, so eviction runs under their writes. Every increment must
 * survive: the final sum of each page's counter equals the number of
 * increments made on it. usage: threads [--api|--malloc] MIB ITERATIONS */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluidmem/fluidmem.h"

#define PAGE 4096
#define THREADS 8

static char *mem;
static size_t pages;
static unsigned long iters;

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t x = id * 7919 + 1;
	for (unsigned long i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* each thread owns word `id` of every page: no data race between
		 * threads, only between a thread and the evictor */
		uint64_t *w = (uint64_t *)(mem + (x % pages) * PAGE);
		w[id]++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: threads --api|--malloc MIB ITERATIONS\n");
		return 2;
	}
	size_t len = strtoul(argv[2], NULL, 10) << 20;
	iters = strtoul(argv[3], NULL, 10);
	pages = len / PAGE;
	mem = strcmp(argv[1], "--api") == 0 ? fm_alloc(len) : calloc(1, len);
	if (!mem) {
		perror("threads: allocation");
		return 1;
	}
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (uintptr_t id = 0; id < THREADS; id++) {
		uint64_t sum = 0;
		for (size_t p = 0; p < pages; p++)
			sum += ((uint64_t *)(mem + p * PAGE))[id];
		if (sum != iters) {
			fprintf(stderr, "threads: thread %lu lost %lld increments (%llu of %lu)\n", (unsigned long)id,
				(long long)iters - (long long)sum, (unsigned long long)sum, iters);
			return 1;
		}
	}
	printf("threads ok: %d x %lu increments, none lost\n", THREADS, iters);
	return 0;
}
