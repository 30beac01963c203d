/* badinput.c - sends the monitor what a broken or hostile client would:
 * garbage, wrong descriptor types, a zero, absurd and overlapping region,
 * messages of the wrong size. Each must get a clear error; afterwards a
 * normal client must still work. usage: badinput SOCKET */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fluidmem/fluidmem.h"
#include "proto.h"
#include "uffd_compat.h"

static int fails;

static void expect_error(const char *what, int sock, int want_errno)
{
	struct fm_msg_hdr h;
	char buf[512] = "";
	int rc = fm_recv(sock, &h, buf, sizeof(buf) - 1, NULL, NULL);
	if (rc < 0) {
		if (want_errno == -1) /* the connection may just close */
			return;
		printf("FAIL %s: no reply (%s)\n", what, strerror(-rc));
		fails++;
		return;
	}
	if (h.status >= 0 || (want_errno > 0 && h.status != -want_errno)) {
		printf("FAIL %s: status %d, want -%d\n", what, h.status, want_errno);
		fails++;
		return;
	}
	printf("ok   %s: %s\n", what, h.len ? buf : strerror(-h.status));
}

static int hello(const char *path, int fd0, int fd1)
{
	int s = fm_connect_unix(path);
	struct fm_hello he = { 0 };
	int fds[2] = { fd0, fd1 };
	fm_send(s, FM_MSG_HELLO, 0, &he, sizeof(he), fds, 2);
	return s;
}

int main(int argc, char **argv)
{
	const char *path = argv[1];
	setenv("FLUIDMEM_SOCKET", path, 1);
	int pipefd[2];
	pipe(pipefd);

	/* 1. garbage bytes */
	int s = fm_connect_unix(path);
	write(s, "GET / HTTP/1.0\r\n\r\n", 18);
	expect_error("garbage", s, EPROTO);
	close(s);

	/* 2. a HELLO whose descriptors are a pipe, not a userfaultfd and pidfd */
	s = hello(path, pipefd[0], pipefd[1]);
	expect_error("hello with pipes", s, EINVAL);
	close(s);

	/* 3. a proper client that then registers nonsense */
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
	ioctl(uffd, UFFDIO_API, &api);
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	s = hello(path, uffd, pidfd);
	struct fm_msg_hdr h;
	char buf[256];
	if (fm_recv(s, &h, buf, sizeof(buf), NULL, NULL) < 0 || h.status != 0) {
		printf("FAIL proper hello refused\n");
		return 1;
	}
	int memfd = memfd_create("t", 0);
	ftruncate(memfd, 1 << 20);
	struct fm_register rq = { .addr = 0x100000000, .len = 0 };
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &memfd, 1);
	expect_error("region of size 0", s, EINVAL);
	rq.len = 1ull << 50;
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &memfd, 1);
	expect_error("absurd region size", s, EFBIG);
	rq.len = 1 << 20;
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &pipefd[0], 1);
	expect_error("pipe instead of a memfd", s, EBADF);
	rq.len = 2 << 20;
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &memfd, 1);
	expect_error("range beyond the memfd", s, EINVAL);
	rq.len = 1 << 20;
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), NULL, 0);
	expect_error("register without a descriptor", s, EINVAL);
	fm_send(s, FM_MSG_REGISTER, 0, &rq, 8, &memfd, 1);
	expect_error("short register message", s, EINVAL);
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &memfd, 1);
	if (fm_recv(s, &h, buf, sizeof(buf), NULL, NULL) < 0 || h.status != 0) {
		printf("FAIL a valid registration was refused (%d)\n", h.status);
		fails++;
	}
	fm_send(s, FM_MSG_REGISTER, 0, &rq, sizeof(rq), &memfd, 1);
	expect_error("overlapping registration", s, EEXIST);
	fm_send(s, 999, 0, NULL, 0, NULL, 0);
	expect_error("unknown message type", s, EINVAL);
	close(s);

	/* 4. an unknown control request, and a truncated header */
	s = fm_connect_unix(path);
	fm_send(s, 77, 0, NULL, 0, NULL, 0);
	expect_error("unknown control request", s, EINVAL);
	close(s);
	s = fm_connect_unix(path);
	write(s, "FMEM", 4);
	close(s);

	/* 5. the daemon still serves a normal client */
	char *m = fm_alloc(8 << 20);
	if (!m) {
		printf("FAIL a normal client after all that: %s\n", strerror(errno));
		return 1;
	}
	memset(m, 0x42, 8 << 20);
	for (size_t i = 0; i < 8 << 20; i += 4096)
		if (m[i] != 0x42) {
			printf("FAIL wrong byte after bad input\n");
			return 1;
		}
	printf("ok   a normal client still works\n");
	return fails ? 1 : 0;
}
