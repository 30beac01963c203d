/* cleanprobe.c - a write to a clean page after the program closed its
 * fluidmem socket must not be lost.
 *
 * When a client's socket closes, the monitor probes its address space with a
 * write-protect ioctl on the first page of its first map. That page is made
 * clean here (fetched from the store, write-protected, not written since),
 * then the socket is closed, the page written, and evicted by a pass over the
 * rest of the region. A probe that lifted the protection would hide the write:
 * the page would stay marked clean, be evicted without a write-back and come
 * back with its old contents.
 *
 * usage: cleanprobe MIB  (MIB well over the monitor's budget)
 * Prints "cleanprobe ok" and exits 0, or names the wrong page, exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fluidmem/fluidmem.h"

#define PAGE 4096

static uint64_t word(size_t page, uint64_t gen)
{
	return page * 0x9E3779B97F4A7C15ull + gen;
}

/* Reads every page from first on; returns the first wrong one or -1. */
static long check(volatile uint64_t *m, size_t first, size_t pages, uint64_t gen)
{
	for (size_t p = first; p < pages; p++)
		if (m[p * PAGE / 8] != word(p, gen))
			return (long)p;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: cleanprobe MIB\n");
		return 2;
	}
	size_t pages = (strtoul(argv[1], NULL, 10) << 20) / PAGE;
	volatile uint64_t *m = fm_alloc(pages * PAGE); /* the client's only map */
	if (!m) {
		fprintf(stderr, "cleanprobe: fm_alloc: %s\n", fm_last_error());
		return 1;
	}
	for (size_t p = 0; p < pages; p++)
		m[p * PAGE / 8] = word(p, 1);
	long bad = check(m, 0, pages, 1); /* pages come back clean */
	if (bad < 0)
		bad = check(m, 0, 1, 1); /* page 0, evicted by the pass, comes back clean */
	if (bad >= 0) {
		fprintf(stderr, "cleanprobe: page %ld wrong before the socket closed\n", bad);
		return 1;
	}
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	/* The socket goes when libfluidmem's watcher, in a poll of up to 1 s on
	 * it, lets go; then the monitor sees it close and probes. */
	usleep(1500 * 1000);
	m[0] = word(0, 2);
	bad = check(m, 1, pages, 1); /* evicts page 0 */
	if (bad < 0 && m[0] != word(0, 2)) {
		fprintf(stderr, "cleanprobe: page 0 lost its write after the socket closed (found generation %s)\n",
			m[0] == word(0, 1) ? "1" : "unknown");
		return 1;
	}
	if (bad >= 0) {
		fprintf(stderr, "cleanprobe: page %ld wrong after the socket closed\n", bad);
		return 1;
	}
	printf("cleanprobe ok pages=%zu\n", pages);
	return 0;
}
