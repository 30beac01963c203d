/* rawunmap - one thread faults pages of a region back from the store while
 * another unmaps the region with the raw system call (no library in between:
 * the monitor learns of it from the kernel's UNMAP event only). The
 * monitor's answer to a fault in flight then fails with ENOENT; the process
 * must go on being served: the faulting thread meets the unmapped address
 * (SIGSEGV, caught), and the rest of its memory is checked word by word
 * after every round.
 *
 * Usage: rawunmap ROUNDS KEEP_MB   (exit 0: every check passed) */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define REGION (8u << 20)
#define NPAGES (REGION / PAGE)

static char *region;
static __thread sigjmp_buf *segv_jump;

static uint64_t word(uint64_t round, uint64_t page)
{
	return (round + 1) * 0x9e3779b97f4a7c15ull ^ page;
}

static void on_segv(int sig)
{
	if (!segv_jump) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	siglongjmp(*segv_jump, 1);
}

/* Reads the region in a scattered order until it is unmapped under it. */
static void *reader(void *arg)
{
	unsigned round = (unsigned)(uintptr_t)arg;
	static __thread sigjmp_buf jb;
	volatile size_t i = 0;
	if (sigsetjmp(jb, 1) == 0) {
		segv_jump = &jb;
		for (; i < 4 * NPAGES; i++) {
			size_t p = (i * 2654435761u) % NPAGES;
			if (*(volatile uint64_t *)(region + p * PAGE) != word(round, p)) {
				fprintf(stderr, "rawunmap: round %u: page %zu is wrong\n", round, p);
				exit(1);
			}
		}
	}
	segv_jump = NULL;
	return (void *)(uintptr_t)i;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: rawunmap ROUNDS KEEP_MB\n");
		return 2;
	}
	unsigned rounds = (unsigned)atoi(argv[1]), cut = 0;
	size_t keep = (size_t)atoi(argv[2]) << 20, kpages = keep / PAGE;
	signal(SIGSEGV, on_segv);
	uint64_t *k = mmap(NULL, keep, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k == MAP_FAILED)
		return 2;
	for (size_t p = 0; p < kpages; p++)
		k[p * PAGE / 8] = word(0, p);
	srand(1);
	for (unsigned r = 1; r <= rounds; r++) {
		region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (region == MAP_FAILED)
			return 2;
		for (size_t p = 0; p < NPAGES; p++)
			*(uint64_t *)(region + p * PAGE) = word(r, p);
		/* the kept memory pushes the region out to the store */
		for (size_t p = 0; p < kpages; p++) {
			if (k[p * PAGE / 8] != word(r - 1, p)) {
				fprintf(stderr, "rawunmap: round %u: kept page %zu is wrong\n", r, p);
				return 1;
			}
			k[p * PAGE / 8] = word(r, p);
		}
		pthread_t t;
		if (pthread_create(&t, NULL, reader, (void *)(uintptr_t)r))
			return 2;
		struct timespec d = { 0, 200000 + (rand() % 2000) * 1000 };
		nanosleep(&d, NULL);
		syscall(SYS_munmap, region, REGION);
		void *read;
		pthread_join(t, &read);
		cut += (uintptr_t)read < 4 * NPAGES;
	}
	for (size_t p = 0; p < kpages; p++)
		if (k[p * PAGE / 8] != word(rounds, p)) {
			fprintf(stderr, "rawunmap: kept page %zu is wrong at the end\n", p);
			return 1;
		}
	printf("rawunmap: %u rounds (%u unmapped under the reader), %zu kept pages verified\n", rounds, cut, kpages);
	return 0;
}
