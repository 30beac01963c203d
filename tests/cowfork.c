/* cowfork.c - fork children that verify their snapshot while the parent
 * keeps rewriting: each child checks every word of the region against the
 * generation the parent had written at its fork, then writes its own and
 * checks that; the parent checks every word of each of its passes before
 * rewriting it, so a child's write showing up in the parent (or a parent's
 * in a child) names the page. Right after each fork the parent also drops
 * the first quarter of its memory (MADV_DONTNEED: zeros for it), which the
 * children must still see.
 *
 * usage: cowfork MIB CHILDREN [--step] [--nested] [--passes N] [--pause MS]
 * --step: before and after each fork, print "before N" / "forked N MS" and
 * wait for a line on stdin (the test reads the monitor's counters there);
 * children wait until every fork is done. Prints each fork's duration.
 * --nested: each child first forks a grandchild, which verifies the same
 * snapshot while the child verifies and rewrites its own memory.
 * --passes N: each child (and grandchild) rewrites and verifies its memory
 * N times (default 1), so the tree runs long enough to kill the monitor
 * under it; "forks done" is printed once every child exists.
 * --pause MS: each child (and grandchild) sleeps MS before verifying its
 * snapshot (a monitor restart then finds its pages still shared). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS (PAGE / 8)

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* Word k of page p in generation g. */
static uint64_t word(size_t p, size_t k, uint64_t g)
{
	return mix(p * 1000003 + k * 7919 + g * 0x100000001b3ull);
}

static void fill_page(uint64_t *pg, size_t p, uint64_t g)
{
	for (size_t k = 0; k < WORDS; k++)
		pg[k] = word(p, k, g);
}

static int check_page(const char *who, const uint64_t *pg, size_t p, uint64_t g)
{
	for (size_t k = 0; k < WORDS; k++)
		if (pg[k] != word(p, k, g)) {
			fprintf(stderr, "%s (pid %d): page %zu word %zu is %016llx, want generation %llu\n", who,
				(int)getpid(), p, k, (unsigned long long)pg[k], (unsigned long long)g);
			return 1;
		}
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void wait_line(void)
{
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: cowfork MIB CHILDREN [--step] [--nested] [--passes N] [--pause MS]\n");
		return 2;
	}
	size_t pages = (strtoul(argv[1], NULL, 10) << 20) / PAGE;
	int children = atoi(argv[2]);
	int step = 0, nested = 0, cpasses = 1, pause_ms = 0;
	for (int i = 3; i < argc; i++) {
		step |= strcmp(argv[i], "--step") == 0;
		nested |= strcmp(argv[i], "--nested") == 0;
		if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
			cpasses = atoi(argv[++i]);
		if (strcmp(argv[i], "--pause") == 0 && i + 1 < argc)
			pause_ms = atoi(argv[++i]);
	}
	if (children < 1 || children > 16)
		return 2;
	uint64_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	uint64_t gen = 1;
	for (size_t p = 0; p < pages; p++)
		fill_page(m + p * WORDS, p, gen);
	int release[2];
	if (pipe(release) < 0)
		return 1;
	pid_t pids[16];
	double worst = 0, total = 0;
	for (int c = 0; c < children; c++) {
		if (step) {
			printf("before %d\n", c);
			fflush(stdout);
			wait_line();
		}
		double t0 = now_ms();
		pids[c] = fork();
		if (pids[c] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[c] == 0) {
			char b;
			close(release[1]);
			if (read(release[0], &b, 1) != 0) /* EOF once the parent let go */
				_exit(3);
			/* A grandchild shares the store copies its parent shares. */
			pid_t gc = nested ? fork() : 0;
			if (gc < 0)
				_exit(4);
			const char *who = nested && gc == 0 ? "grandchild" : "child";
			if (pause_ms)
				usleep((useconds_t)pause_ms * 1000);
			for (size_t p = 0; p < pages; p++)
				if (check_page(who, m + p * WORDS, p, gen))
					_exit(1);
			for (int k = 0; k < cpasses; k++) {
				uint64_t mine = (nested && gc == 0 ? 2000 : 1000) + (uint64_t)c + 100 * (uint64_t)k;
				for (size_t p = 0; p < pages; p++)
					fill_page(m + p * WORDS, p, mine);
				for (size_t p = 0; p < pages; p++)
					if (check_page(who, m + p * WORDS, p, mine))
						_exit(1);
			}
			if (nested && gc > 0) {
				int st;
				if (waitpid(gc, &st, 0) != gc || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					fprintf(stderr, "cowfork: grandchild %d failed (status %#x)\n", (int)gc, st);
					_exit(1);
				}
			}
			_exit(0);
		}
		double ms = now_ms() - t0;
		total += ms;
		if (ms > worst)
			worst = ms;
		if (step) {
			printf("forked %d %.1f\n", c, ms);
			fflush(stdout);
			wait_line();
		}
		/* The parent moves on: drops a quarter, rewrites the rest; the next
		 * child's snapshot is another generation. */
		madvise(m, pages / 4 * PAGE, MADV_DONTNEED);
		for (size_t p = 0; p < pages; p++) {
			if (p < pages / 4) {
				for (size_t k = 0; k < WORDS; k++)
					if (m[p * WORDS + k]) {
						fprintf(stderr, "parent: page %zu not zero after MADV_DONTNEED\n", p);
						return 1;
					}
			} else if (check_page("parent", m + p * WORDS, p, gen)) {
				return 1;
			}
			fill_page(m + p * WORDS, p, gen + 1);
		}
		gen++;
	}
	close(release[1]);
	printf("forks done\n");
	fflush(stdout);
	/* Keep rewriting while the children verify. */
	int alive = children, bad = 0, passes = 0;
	while (alive) {
		for (size_t p = 0; p < pages; p++) {
			if (check_page("parent", m + p * WORDS, p, gen))
				return 1;
			fill_page(m + p * WORDS, p, gen + 1);
		}
		gen++;
		passes++;
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			alive--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "cowfork: child %d failed (status %#x)\n", (int)w, st);
				bad = 1;
			}
		}
	}
	for (size_t p = 0; p < pages; p++)
		if (check_page("parent at the end", m + p * WORDS, p, gen))
			return 1;
	if (bad)
		return 1;
	printf("cowfork ok: %d children verified %zu pages each; parent rewrote %d times meanwhile; fork ms: max %.1f, mean %.1f\n",
	       children, pages, passes, worst, total / children);
	return 0;
}
