/* store-e2e-prog.c - an ordinary program for the end-to-end store tests, run
 * under `fluidmem run --store URL`: it maps MIB MiB, fills every page with
 * bytes derived from its index, optionally waits for the test script (which
 * kills a store server meanwhile), then reads every page back. A page that
 * raises SIGBUS is counted and skipped, never read as data; a page with wrong
 * bytes (zeros, stale or another page's) is counted as wrong.
 *
 *   store-e2e-prog MIB [READY_FILE GO_FILE]
 * Prints "pages=N ok=N sigbus=N wrong=N first_sigbus=IDX" and writes the
 * index of each SIGBUS page to the file $FM_E2E_SIGBUS_LIST if set.
 * Exit 0 when wrong == 0 (SIGBUS pages are judged by the script), 1 else. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf jump;
static volatile sig_atomic_t in_check;
/* static: live across siglongjmp */
static size_t ok, bus, wrong, first_bus = (size_t)-1;
static FILE *list;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	if (in_check)
		siglongjmp(jump, 1);
	_exit(3);
}

static uint64_t word(size_t page, size_t j)
{
	uint64_t x = (uint64_t)page * 0x9E3779B97F4A7C15ull + j + 1;
	x ^= x >> 31;
	return x * 0xBF58476D1CE4E5B9ull;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: store-e2e-prog MIB [READY_FILE GO_FILE]\n");
		return 2;
	}
	size_t pages = strtoul(argv[1], NULL, 0) * 256;
	uint64_t *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t p = 0; p < pages; p++)
		for (size_t j = 0; j < 512; j++)
			mem[p * 512 + j] = word(p, j);

	if (argc == 4) {
		FILE *f = fopen(argv[2], "w");
		if (f)
			fclose(f);
		for (int i = 0; i < 600 && access(argv[3], F_OK) != 0; i++)
			usleep(100000);
	}

	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
	const char *listp = getenv("FM_E2E_SIGBUS_LIST");
	list = listp ? fopen(listp, "w") : NULL;
	for (volatile size_t p = 0; p < pages; p++) {
		if (sigsetjmp(jump, 1)) {
			in_check = 0;
			bus++;
			if (first_bus == (size_t)-1)
				first_bus = p;
			if (list)
				fprintf(list, "%zu\n", (size_t)p);
			continue;
		}
		in_check = 1;
		size_t bad = 0;
		for (size_t j = 0; j < 512; j++)
			bad += mem[p * 512 + j] != word(p, j);
		in_check = 0;
		if (bad) {
			if (wrong < 5)
				fprintf(stderr, "page %zu: %zu wrong words\n", (size_t)p, bad);
			wrong++;
		} else {
			ok++;
		}
	}
	if (list)
		fclose(list);
	printf("pages=%zu ok=%zu sigbus=%zu wrong=%zu first_sigbus=%zd\n", pages, ok, bus, wrong,
	       (ssize_t)first_bus);
	return wrong ? 1 : 0;
}
