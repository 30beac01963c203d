/* uffd-floor.c - the floor under every fluidmem fault: a bare userfaultfd round
 * trip between two processes, with no store and no monitor logic.
 *
 * Process A (the "client") creates a memfd region, maps it MAP_SHARED, registers
 * it with a userfaultfd in MISSING mode and passes the uffd and the memfd to
 * process B (the "server") over a Unix socket with SCM_RIGHTS, as libfluidmem
 * does with fluidmemd. B answers every fault with UFFDIO_COPY from one static
 * page (or UFFDIO_ZEROPAGE). A touches every page once, sequentially or in a
 * random permutation, and times each first touch with clock_gettime. The
 * "prefill" case is the floor of a prefetched page: B writes every page into the
 * memfd through its own mapping before A starts, so A's touches are minor faults
 * with no userfault at all; the kernel maps up to 16 neighbours per fault
 * (fault-around) when only MISSING is registered. "prefill-wp" registers
 * MISSING | WP as fluidmemd's regions are, which turns fault-around off: one minor
 * fault per page.
 *
 * Each case runs with a fresh region and a fresh B, with A and B pinned to the
 * same CPU, to different CPUs, or left to the scheduler. One line per case:
 *   bench=uffd-floor resolve=copy pin=same cpu_a=0 cpu_b=0 pattern=seq pages=N
 *   avg_us=.. median_us=.. p99_us=.. min_us=.. max_us=..
 * It does not measure anything of fluidmem itself; bench/touch does that.
 *
 * Usage: uffd-floor [--pages N] [--resolve copy|zero|prefill|prefill-wp|all] [--pin same|cross|none|poll|all]
 *                   [--pattern seq|rand|all] [--samples DIR] [--seed N] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uffd_compat.h"

#define PAGE 4096UL

enum resolve { RES_COPY, RES_ZERO, RES_PREFILL, RES_PREFILL_WP };
enum pin { PIN_SAME, PIN_CROSS, PIN_NONE, PIN_POLL };
enum pattern { PAT_SEQ, PAT_RAND };

static const char *resolve_name[] = { "copy", "zero", "prefill", "prefill-wp" };
static const char *pin_name[] = { "same", "cross", "none", "poll" };
static const char *pattern_name[] = { "seq", "rand" };

static void die(const char *what)
{
	fprintf(stderr, "uffd-floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int pin_self(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* Non-blocking: poll() on a blocking userfaultfd always reports POLLERR. */
static int open_uffd(void)
{
	int fd = -1;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
	}
	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd;
}

static int send_fds(int sock, int fd1, int fd2)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(2 * sizeof(int));
	int fds[2] = { fd1, fd2 };
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fds(int sock, int *fd1, int *fd2)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		return -1;
	int fds[2];
	memcpy(fds, CMSG_DATA(c), sizeof(fds));
	*fd1 = fds[0];
	*fd2 = fds[1];
	return 0;
}

/* Process B: serve faults until A closes the socket. Exit status 0 on success.
 * With spin, B never sleeps: it reads the non-blocking uffd in a loop (as
 * fluidmemd does for --poll-us after a fault), so no wake-up of B is measured. */
static int server(int sock, int cpu, enum resolve res, int spin)
{
	if (pin_self(cpu) < 0)
		die("sched_setaffinity (server)");
	int uffd, memfd;
	if (recv_fds(sock, &uffd, &memfd) < 0)
		die("recvmsg SCM_RIGHTS");
	static char page[PAGE] __attribute__((aligned(4096)));
	memset(page, 0x5a, sizeof(page));
	if (res == RES_PREFILL || res == RES_PREFILL_WP) {
		struct stat st;
		if (fstat(memfd, &st) < 0)
			die("fstat memfd");
		char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (m == MAP_FAILED)
			die("mmap memfd (server)");
		for (off_t off = 0; off < st.st_size; off += (off_t)PAGE)
			memcpy(m + off, page, PAGE);
		munmap(m, (size_t)st.st_size);
	}
	char ready = 'R';
	if (write(sock, &ready, 1) != 1)
		die("write ready");
	struct pollfd p[2] = { { .fd = uffd, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
	for (unsigned spins = 0;; spins++) {
		if (spin && (spins & 1023) != 0) {
			p[0].revents = POLLIN;
			p[1].revents = 0;
		} else if (poll(p, 2, spin ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[1].revents)
			break; /* A is done (EOF) */
		if (!(p[0].revents & POLLIN))
			continue;
		struct uffd_msg m;
		ssize_t n = read(uffd, &m, sizeof(m));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != sizeof(m))
			die("read uffd");
		if (m.event != UFFD_EVENT_PAGEFAULT) {
			fprintf(stderr, "uffd-floor: unexpected uffd event %u\n", m.event);
			return 1;
		}
		unsigned long addr = m.arg.pagefault.address & ~(PAGE - 1);
		int rc;
		if (res == RES_PREFILL || res == RES_PREFILL_WP) {
			fprintf(stderr, "uffd-floor: userfault on a prefilled page at %#lx\n", addr);
			return 1;
		} else if (res == RES_COPY) {
			struct uffdio_copy c = { .dst = addr, .src = (unsigned long)page, .len = PAGE };
			rc = ioctl(uffd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = { .range = { .start = addr, .len = PAGE } };
			rc = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (rc < 0 && errno != EEXIST)
			die(res == RES_COPY ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE");
	}
	close(uffd);
	close(memfd);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct opts {
	size_t pages;
	uint64_t seed;
	const char *samples_dir;
};

/* One case: a fresh region, a fresh server, N timed first touches. */
static int run_case(const struct opts *o, enum resolve res, enum pin pin, enum pattern pat)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if ((pin == PIN_CROSS || pin == PIN_POLL) && ncpu < 2) {
		printf("bench=uffd-floor resolve=%s pin=%s pattern=%s skipped=one-cpu\n",
		       resolve_name[res], pin_name[pin], pattern_name[pat]);
		return 0;
	}
	int cpu_a = pin == PIN_NONE ? -1 : 0;
	int cpu_b = pin == PIN_NONE ? -1 : pin == PIN_SAME ? 0 : 1;
	size_t len = o->pages * PAGE;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		_exit(server(sv[1], cpu_b, res, pin == PIN_POLL));
	}
	close(sv[1]);
	if (pin_self(cpu_a) < 0)
		die("sched_setaffinity (client)");

	int memfd = memfd_create("uffd-floor", MFD_CLOEXEC);
	if (memfd < 0)
		die("memfd_create");
	if (ftruncate(memfd, (off_t)len) < 0)
		die("ftruncate");
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		die("mmap");
	int uffd = open_uffd();
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API,
				  .features = res == RES_PREFILL_WP ? UFFD_FEATURE_WP_HUGETLBFS_SHMEM : 0 };
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		if (res != RES_PREFILL_WP)
			die("UFFDIO_API");
		printf("bench=uffd-floor resolve=%s pin=%s pattern=%s skipped=no-UFFD_FEATURE_WP_HUGETLBFS_SHMEM\n",
		       resolve_name[res], pin_name[pin], pattern_name[pat]);
		close(sv[0]);
		waitpid(pid, NULL, 0);
		munmap(base, len);
		close(uffd);
		close(memfd);
		return 0;
	}
	struct uffdio_register reg = { .range = { .start = (unsigned long)base, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (res == RES_PREFILL_WP)
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		die("UFFDIO_REGISTER");
	if (send_fds(sv[0], uffd, memfd) < 0)
		die("sendmsg SCM_RIGHTS");
	char ready;
	if (read(sv[0], &ready, 1) != 1)
		die("server did not start");

	/* Order of touches, and the samples, prepared (and faulted in) before timing. */
	uint32_t *order = malloc(o->pages * sizeof(*order));
	uint64_t *lat = malloc(o->pages * sizeof(*lat));
	if (!order || !lat)
		die("malloc");
	for (size_t i = 0; i < o->pages; i++)
		order[i] = (uint32_t)i;
	if (pat == PAT_RAND) {
		uint64_t s = o->seed ? o->seed : 88172645463325252ull;
		for (size_t i = o->pages - 1; i > 0; i--) {
			size_t j = xorshift(&s) % (i + 1);
			uint32_t t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
	}
	memset(lat, 0, o->pages * sizeof(*lat));

	unsigned expect = res == RES_ZERO ? 0 : 0x5a;
	for (size_t i = 0; i < o->pages; i++) {
		volatile unsigned char *p = (volatile unsigned char *)base + (size_t)order[i] * PAGE;
		uint64_t t0 = now_ns();
		unsigned char v = *p;
		*p = (unsigned char)(v + 1);
		uint64_t t1 = now_ns();
		lat[i] = t1 - t0;
		if (v != expect) {
			fprintf(stderr, "uffd-floor: page %u read %#x, expected %#x\n", order[i], v, expect);
			exit(1);
		}
	}

	close(sv[0]); /* tells B to stop */
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	munmap(base, len);
	close(uffd);
	close(memfd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "uffd-floor: server failed (status %#x)\n", status);
		exit(1);
	}

	if (o->samples_dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/floor-%s-%s-%s.txt", o->samples_dir,
			 resolve_name[res], pin_name[pin], pattern_name[pat]);
		FILE *f = fopen(path, "w");
		if (!f)
			die(path);
		for (size_t i = 0; i < o->pages; i++)
			fprintf(f, "%llu\n", (unsigned long long)lat[i]);
		fclose(f);
	}

	double sum = 0;
	for (size_t i = 0; i < o->pages; i++)
		sum += (double)lat[i];
	qsort(lat, o->pages, sizeof(*lat), cmp_u64);
	size_t n = o->pages;
	size_t i99 = n * 99 / 100 < n ? n * 99 / 100 : n - 1;
	printf("bench=uffd-floor resolve=%s pin=%s cpu_a=%d cpu_b=%d pattern=%s pages=%zu "
	       "avg_us=%.2f median_us=%.2f p99_us=%.2f min_us=%.2f max_us=%.2f\n",
	       resolve_name[res], pin_name[pin], cpu_a, cpu_b, pattern_name[pat], n,
	       sum / (double)n / 1e3, (double)lat[n / 2] / 1e3, (double)lat[i99] / 1e3,
	       (double)lat[0] / 1e3, (double)lat[n - 1] / 1e3);
	fflush(stdout);
	free(order);
	free(lat);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: uffd-floor [--pages N] [--resolve copy|zero|prefill|prefill-wp|all] "
		"[--pin same|cross|none|poll|all] [--pattern seq|rand|all] [--samples DIR] [--seed N]\n");
	exit(2);
}

/* Parse "a|b|all" against names; returns a bitmask. */
static unsigned pick(const char *arg, const char **names, unsigned n)
{
	if (strcmp(arg, "all") == 0)
		return (1u << n) - 1;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(arg, names[i]) == 0)
			return 1u << i;
	usage();
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .pages = 4096, .seed = 0, .samples_dir = NULL };
	unsigned res_mask = 15, pin_mask = 15, pat_mask = 3;
	static const struct option lo[] = {
		{ "pages", required_argument, 0, 'n' },
		{ "resolve", required_argument, 0, 'r' },
		{ "pin", required_argument, 0, 'p' },
		{ "pattern", required_argument, 0, 't' },
		{ "samples", required_argument, 0, 's' },
		{ "seed", required_argument, 0, 'S' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:r:p:t:s:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o.pages = strtoul(optarg, NULL, 0); break;
		case 'r': res_mask = pick(optarg, resolve_name, 4); break;
		case 'p': pin_mask = pick(optarg, pin_name, 4); break;
		case 't': pat_mask = pick(optarg, pattern_name, 2); break;
		case 's': o.samples_dir = optarg; break;
		case 'S': o.seed = strtoull(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (o.pages < 2 || optind != argc)
		usage();
	/* A's own CPU mask is changed per case; remember the original to restore it. */
	cpu_set_t orig;
	if (sched_getaffinity(0, sizeof(orig), &orig) < 0)
		die("sched_getaffinity");
	for (int r = 0; r < 4; r++)
		for (int p = 0; p < 4; p++)
			for (int t = 0; t < 2; t++) {
				if (!(res_mask & 1u << r) || !(pin_mask & 1u << p) || !(pat_mask & 1u << t))
					continue;
				/* B plays no part in a prefilled page's fault: one pinning will do. */
				if (r >= RES_PREFILL && p != PIN_SAME && pin_mask == 15)
					continue;
				if (sched_setaffinity(0, sizeof(orig), &orig) < 0)
					die("sched_setaffinity (restore)");
				run_case(&o, (enum resolve)r, (enum pin)p, (enum pattern)t);
			}
	return 0;
}
