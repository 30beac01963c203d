/* forksnap.c - fork under fluidmem: each child sees its parent's memory as it
 * was at fork, the parent's later writes stay invisible to it and the
 * child's writes to the parent; system() and popen() work.
 * usage: forksnap MIB CHILDREN */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static int check(const char *who, uint64_t *m, size_t words, uint64_t gen)
{
	for (size_t i = 0; i < words; i += PAGE / 8)
		if (m[i] != i * 31 + gen) {
			fprintf(stderr, "%s: word %zu is %llu, want %llu (generation %llu)\n", who, i,
				(unsigned long long)m[i], (unsigned long long)(i * 31 + gen), (unsigned long long)gen);
			return 1;
		}
	return 0;
}

static void fill(uint64_t *m, size_t words, uint64_t gen)
{
	for (size_t i = 0; i < words; i += PAGE / 8)
		m[i] = i * 31 + gen;
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) << 20;
	int children = argc > 2 ? atoi(argv[2]) : 3;
	size_t words = len / 8;
	uint64_t *m = malloc(len);
	if (!m)
		return 1;
	fill(m, words, 1);
	pid_t pids[64];
	for (int c = 0; c < children && c < 64; c++) {
		pids[c] = fork();
		if (pids[c] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[c] == 0) {
			/* The snapshot is generation c+1, whatever the parent does now. */
			usleep(20000);
			if (check("child", m, words, (uint64_t)c + 1))
				_exit(1);
			fill(m, words, 1000 + (uint64_t)c);
			if (check("child after write", m, words, 1000 + (uint64_t)c))
				_exit(1);
			char *extra = malloc(8 << 20); /* the child's heap keeps working */
			memset(extra, 0x5a, 8 << 20);
			_exit(extra[12345] == 0x5a ? 0 : 1);
		}
		fill(m, words, (uint64_t)c + 2); /* the parent moves on */
	}
	int bad = 0;
	for (int c = 0; c < children && c < 64; c++) {
		int st;
		waitpid(pids[c], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "forksnap: child %d failed (status %#x)\n", c, st);
			bad = 1;
		}
	}
	if (check("parent", m, words, (uint64_t)children + 1))
		return 1;
	if (system("exit 3") != 3 << 8) {
		fprintf(stderr, "forksnap: system() failed\n");
		return 1;
	}
	FILE *p = popen("echo hello from a shell", "r");
	char line[64] = "";
	if (!p || !fgets(line, sizeof(line), p) || pclose(p) != 0 || strcmp(line, "hello from a shell\n")) {
		fprintf(stderr, "forksnap: popen failed\n");
		return 1;
	}
	if (bad)
		return 1;
	printf("forksnap ok: %d children saw their snapshots\n", children);
	return 0;
}
