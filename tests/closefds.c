/* closefds.c - a program that closes every descriptor it did not open, as
 * some daemons do, then keeps using memory beyond the budget. Under fluidmem
 * its pages must stay served. usage: closefds MIB [MS]: it waits MS
 * milliseconds (1500) between closing and reading its pages back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t len = strtoul(argv[1], NULL, 10) << 20;
	uint64_t *m = malloc(len);
	for (size_t i = 0; i < len / 8; i += 512)
		m[i] = i ^ 0x5555;
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	/* The socket goes when libfluidmem's watcher, in a poll of up to 1 s on
	 * it, lets go; only then does the monitor see it close. */
	usleep((argc > 2 ? strtoul(argv[2], NULL, 10) : 1500) * 1000);
	for (size_t i = 0; i < len / 8; i += 512)
		if (m[i] != (i ^ 0x5555)) {
			fprintf(stderr, "closefds: word %zu wrong\n", i);
			return 1;
		}
	printf("closefds ok\n");
	return 0;
}
