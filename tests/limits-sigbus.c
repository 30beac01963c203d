/* limits-sigbus.c - write every page of a region much larger than the store
 * can hold, then read every page back, catching SIGBUS: a page the store lost
 * (memcached evicted it) must come back as SIGBUS, never as zeros or stale
 * data. Each page holds a pattern of (page, pass); PASSES write passes.
 *
 * usage: limits-sigbus --api|--malloc MIB [PASSES]
 * Prints "limits-sigbus ok pages=N sigbus=S" when no page read wrong (exit
 * 0), else names up to 10 wrong pages and prints "limits-sigbus WRONG ..."
 * (exit 1). A page that raised SIGBUS is counted and skipped; sigbus= counts
 * the final read pass, which includes the pages already lost on write. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluidmem/fluidmem.h"

#define PAGE 4096

static sigjmp_buf jb;
static volatile sig_atomic_t in_read;
/* static, not automatic: they live across siglongjmp */
static size_t cur, sigbus, wsigbus, wrong, zeros;

static void on_sigbus(int sig)
{
	(void)sig;
	if (in_read)
		siglongjmp(jb, 1);
	_exit(3); /* SIGBUS outside a page access: not ours */
}

static uint64_t pat(size_t pg, unsigned pass, unsigned j)
{
	return (pg * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)pass << 56) ^ j;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: limits-sigbus --api|--malloc MIB [PASSES]\n");
		return 2;
	}
	size_t len = strtoul(argv[2], NULL, 10) << 20, pages = len / PAGE;
	unsigned passes = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
	char *m = strcmp(argv[1], "--api") == 0 ? fm_alloc(len) : malloc(len);
	if (!m) {
		perror("limits-sigbus: allocation");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	/* A write to a page that is in the store faults it in first: if the
	 * store lost it, the write gets the SIGBUS. Such a page is lost for good
	 * (poisoned): later reads must raise SIGBUS too. */
	char *lost = calloc(pages, 1);
	for (unsigned pass = 1; pass <= passes; pass++)
		for (cur = 0; cur < pages; cur++) {
			volatile uint64_t *w = (volatile uint64_t *)(m + cur * PAGE);
			if (lost[cur])
				continue;
			if (sigsetjmp(jb, 1)) {
				in_read = 0;
				lost[cur] = 1;
				wsigbus++;
				continue;
			}
			in_read = 1;
			for (unsigned j = 0; j < PAGE / 8; j += 8)
				w[j] = pat(cur, pass, j);
			in_read = 0;
		}
	for (cur = 0; cur < pages; cur++) {
		const volatile uint64_t *w = (const volatile uint64_t *)(m + cur * PAGE);
		if (sigsetjmp(jb, 1)) {
			in_read = 0;
			sigbus++;
			continue;
		}
		if (lost[cur]) {
			/* lost while writing: a read that does not raise SIGBUS is wrong */
			in_read = 1;
			uint64_t v = *(volatile uint64_t *)(m + cur * PAGE);
			in_read = 0;
			if (wrong < 10)
				fprintf(stderr, "limits-sigbus: page %zu raised SIGBUS on write, now reads %016llx\n", cur,
					(unsigned long long)v);
			wrong++;
			continue;
		}
		in_read = 1; /* the whole page: it may be evicted and lost again meanwhile */
		uint64_t first = w[0];
		for (unsigned j = 0; j < PAGE / 8; j++) {
			uint64_t want = j % 8 ? 0 : pat(cur, passes, j);
			uint64_t got = w[j];
			if (got != want) {
				if (wrong < 10)
					fprintf(stderr, "limits-sigbus: page %zu word %u is %016llx, want %016llx%s\n", cur, j,
						(unsigned long long)got, (unsigned long long)want,
						first == 0 ? " (the page reads as zeros)" : "");
				wrong++;
				zeros += first == 0;
				break;
			}
		}
		in_read = 0;
	}
	if (wrong) {
		printf("limits-sigbus WRONG pages=%zu wrong=%zu (zeros %zu) sigbus=%zu (on write %zu)\n", pages, wrong,
		       zeros, sigbus, wsigbus);
		return 1;
	}
	printf("limits-sigbus ok pages=%zu sigbus=%zu (on write %zu)\n", pages, sigbus, wsigbus);
	return 0;
}
