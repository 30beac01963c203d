/*
 * guest-readbench.c - runs inside the test guest for bench/vm-pagecache.sh:
 * reads a file or block device from start to end PASSES times through the
 * page cache (plain read(), 1 MiB at a time) and prints one line per pass:
 *
 *     FMBENCH pass=<n> bytes=<total> ms=<elapsed> mibps=<throughput>
 *
 * then "FMBENCH done". Pass 1 comes from the disk; later passes come from the
 * guest's page cache when the guest has the memory to keep the file there.
 * The file stays open between passes: Linux drops a block device's page
 * cache when its last opener closes it.
 * Usage: guest-readbench PATH [PASSES]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	if (argc < 2) {
		fprintf(stderr, "usage: guest-readbench PATH [PASSES]\n");
		return 2;
	}
	int passes = argc > 2 ? atoi(argv[2]) : 4;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		printf("FMBENCH FAIL open %s: %m\n", argv[1]);
		return 1;
	}
	for (int p = 1; p <= passes; p++) {
		if (lseek(fd, 0, SEEK_SET) < 0) {
			printf("FMBENCH FAIL lseek %s: %m\n", argv[1]);
			return 1;
		}
		unsigned long long total = 0;
		double t0 = now_s();
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += (unsigned long long)n;
		double dt = now_s() - t0;
		if (n < 0) {
			printf("FMBENCH FAIL read %s: %m\n", argv[1]);
			return 1;
		}
		printf("FMBENCH pass=%d bytes=%llu ms=%.0f mibps=%.1f\n", p, total, dt * 1e3,
		       (double)total / (1 << 20) / (dt > 0 ? dt : 1e-9));
		fflush(stdout);
	}
	close(fd);
	printf("FMBENCH done\n");
	return 0;
}
