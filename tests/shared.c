/* shared.c - MAP_SHARED|MAP_ANONYMOUS memory shared by a parent and its fork
 * children under fluidmem: every process sees every other's writes, across
 * evictions.
 *
 *   shared MIB
 *
 * The parent maps MIB of shared anonymous memory and forks two children.
 * Round 1: each of the three writes its third (contents derived from page,
 * word and round) while the others do; then each reads all three thirds.
 * Round 2: each rewrites its third, all read everything again. Counters: all
 * three add 1 to word 0 of the same pages, concurrently (a write lost during
 * an eviction shows as a wrong sum). A child that execs joins and leaves.
 * Then the parent unmaps its mapping and the children read everything once
 * more: one process leaving does not free the memory of the others. Prints "ok" and a checksum of the final contents;
 * exits 1 naming the first wrong page. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define COUNTER_ROUNDS 40000u

static uint64_t val(uint64_t p, uint64_t w, uint64_t round)
{
	uint64_t x = (p << 20) ^ (w << 4) ^ round;
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static uint64_t npages;
static uint64_t *mem;

static void write_part(int who, uint64_t round)
{
	uint64_t lo = npages * (uint64_t)who / 3, hi = npages * (uint64_t)(who + 1) / 3;
	for (uint64_t p = lo; p < hi; p++)
		for (uint64_t w = 1; w < WORDS; w++)
			mem[p * WORDS + w] = val(p, w, round);
}

/* Word 0 of every page is a counter; words 1.. hold the round's values. */
static int check_all(const char *who, uint64_t round, uint64_t *sum)
{
	uint64_t s = 0;
	for (uint64_t p = 0; p < npages; p++)
		for (uint64_t w = 1; w < WORDS; w++) {
			uint64_t v = mem[p * WORDS + w];
			if (v != val(p, w, round)) {
				fprintf(stderr, "%s: round %llu: page %llu word %llu is %#llx, want %#llx\n", who,
					(unsigned long long)round, (unsigned long long)p, (unsigned long long)w,
					(unsigned long long)v, (unsigned long long)val(p, w, round));
				return 1;
			}
			s += v * (p + 1);
		}
	if (sum)
		*sum = s;
	return 0;
}

static void counters(void)
{
	for (uint64_t j = 0; j < COUNTER_ROUNDS; j++)
		__atomic_fetch_add(&mem[((j * 7919) % npages) * WORDS], 1, __ATOMIC_RELAXED);
}

/* Barriers over pipes: each child writes a byte up, the parent answers down. */
static int up[2][2], down[2][2];

static void child_wait(int i)
{
	char b = 1;
	if (write(up[i][1], &b, 1) != 1 || read(down[i][0], &b, 1) != 1)
		_exit(3);
}

static void parent_wait(void)
{
	char b;
	for (int i = 0; i < 2; i++)
		if (read(up[i][0], &b, 1) != 1)
			exit(3);
	for (int i = 0; i < 2; i++)
		if (write(down[i][1], &b, 1) != 1)
			exit(3);
}

static int child(int i)
{
	char name[16];
	snprintf(name, sizeof(name), "child %d", i);
	write_part(i + 1, 1);
	child_wait(i);
	if (check_all(name, 1, NULL))
		return 1;
	child_wait(i);
	write_part(i + 1, 2);
	child_wait(i);
	if (check_all(name, 2, NULL))
		return 1;
	counters();
	child_wait(i);  /* counters done everywhere */
	child_wait(i);  /* the parent has unmapped */
	uint64_t sum;
	if (check_all(name, 2, &sum))
		return 1;
	uint64_t *want = calloc(npages, sizeof(*want));
	if (!want)
		return 2;
	for (uint64_t j = 0; j < COUNTER_ROUNDS; j++)
		want[(j * 7919) % npages] += 3;
	for (uint64_t p = 0; p < npages; p++)
		if (mem[p * WORDS] != want[p]) {
			fprintf(stderr, "%s: counter of page %llu is %llu, want %llu\n", name, (unsigned long long)p,
				(unsigned long long)mem[p * WORDS], (unsigned long long)want[p]);
			return 1;
		}
	free(want);
	if (i == 0)
		printf("ok pages=%llu checksum=%016llx\n", (unsigned long long)npages, (unsigned long long)sum);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
	npages = mib * (1 << 20) / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (int i = 0; i < 2; i++)
		if (pipe(up[i]) < 0 || pipe(down[i]) < 0)
			return 2;
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("fork");
			return 2;
		}
		if (kids[i] == 0) {
			fflush(stdout);
			_exit(child(i));
		}
	}
	int bad = 0;
	write_part(0, 1);
	parent_wait();
	bad |= check_all("parent", 1, NULL);
	parent_wait();
	write_part(0, 2);
	parent_wait();
	bad |= check_all("parent", 2, NULL);
	counters();
	/* a sharer that execs leaves the region to the others (SHARED_NO_EXEC:
	 * not when the monitor may be killed meanwhile: a process that exits
	 * while none runs leaves its state file to the next one's collection) */
	pid_t ex = getenv("SHARED_NO_EXEC") ? -2 : fork();
	if (ex == 0) {
		mem[1] = mem[1]; /* it maps the region and may touch it before exec */
		execl("/bin/true", "true", (char *)NULL);
		_exit(4);
	}
	int est;
	if (ex != -2 && (ex < 0 || waitpid(ex, &est, 0) < 0 || !WIFEXITED(est) || WEXITSTATUS(est) != 0)) {
		fprintf(stderr, "fork+exec of /bin/true failed\n");
		bad = 1;
	}
	parent_wait();
	munmap(mem, npages * PAGE);
	parent_wait();
	for (int i = 0; i < 2; i++) {
		int st;
		if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "child %d failed (status %#x)\n", i, st);
			bad = 1;
		}
	}
	return bad;
}
