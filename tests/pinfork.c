/* pinfork.c - the CPU pin of placement. While this single-threaded program
 * faults at random under fluidmem, the monitor pins it to the CPU its
 * handler shares with it; a child it forks then inherits the pin and must
 * get the program's own CPUs back, and so must the program once it stops
 * faulting for a while. Every page is checked at the end.
 *
 * usage: pinfork MIB  (under `fluidmem run`, MIB well over the budget)
 * Prints "pinfork ok pinned=N child_cpus=N repinned=1 quiet_cpus=N of N", exit 0;
 * otherwise says what went wrong, exit 1. */
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int cpus(void)
{
	cpu_set_t set;
	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One random read-modify-write; count[] keeps what each page must hold. */
static void touch_one(uint64_t *m, uint32_t *count, size_t pages, uint64_t *seed)
{
	size_t p = rnd(seed) % pages;
	m[p * PAGE / 8] += pages;
	count[p]++;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: pinfork MIB\n");
		return 2;
	}
	size_t pages = (strtoul(argv[1], NULL, 10) << 20) / PAGE;
	int all = cpus();
	uint64_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *count = calloc(pages, sizeof(*count));
	if (m == MAP_FAILED || !count || all < 2) {
		fprintf(stderr, "pinfork: %s\n", all < 2 ? "needs two CPUs" : "out of memory");
		return 1;
	}
	for (size_t p = 0; p < pages; p++)
		m[p * PAGE / 8] = p;

	/* Random read-modify-writes until a pin shows, then fork and go on
	 * faulting until the child has reported its CPUs. */
	uint64_t seed = 88172645463325252ull;
	int fds[2], child_cpus = -1;
	pid_t kid = 0;
	unsigned long pinned = 0;
	if (pipe2(fds, O_NONBLOCK) < 0)
		return 1;
	double start = now();
	for (unsigned long i = 1; child_cpus < 0 && now() - start < 20; i++) {
		touch_one(m, count, pages, &seed);
		if (i % 256)
			continue;
		if (cpus() == 1)
			pinned++;
		if (!kid && (pinned || now() - start > 5)) {
			kid = fork();
			if (kid == 0) {
				usleep(300 * 1000); /* the parent faults on meanwhile */
				int n = cpus();
				if (write(fds[1], &n, sizeof(n)) != sizeof(n))
					_exit(1);
				_exit(0);
			}
		}
		if (kid && read(fds[0], &child_cpus, sizeof(child_cpus)) != sizeof(child_cpus))
			child_cpus = -1;
	}
	if (kid > 0)
		waitpid(kid, NULL, 0);
	/* Alone again: pinned again, then no fault for a while: the pin goes
	 * after 50 ms. */
	bool repinned = false;
	for (unsigned long i = 1; !repinned && now() - start < 30; i++) {
		touch_one(m, count, pages, &seed);
		repinned = i % 256 == 0 && cpus() == 1;
	}
	usleep(300 * 1000);
	int quiet = cpus();

	for (size_t p = 0; p < pages; p++)
		if (m[p * PAGE / 8] != p + (uint64_t)count[p] * pages) {
			fprintf(stderr, "pinfork: page %zu wrong\n", p);
			return 1;
		}
	bool ok = pinned && child_cpus == all && repinned && quiet == all;
	printf("pinfork %s pinned=%lu child_cpus=%d repinned=%d quiet_cpus=%d of %d\n", ok ? "ok" : "FAILED",
	       pinned, child_cpus, repinned, quiet, all);
	return ok ? 0 : 1;
}
