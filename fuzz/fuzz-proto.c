/* fuzz-proto.c - fm_recv (src/common/proto.c), the framing every message to
 * fluidmemd goes through: header checks, payload size, SCM_RIGHTS.
 *
 * The input is written into a real Unix socketpair in chunks, some carrying
 * descriptors, then the writer shuts down; fm_recv reads messages until it
 * reports an error. Input layout:
 *   byte 0: cap (payload buffer size) in bits 0-2, descriptors wanted in
 *           bits 3-5, bit 6 set: fds/nfds are NULL
 *   then chunks: 1 control byte (bit 7 set: attach (byte & 0x7f) copies of
 *           a pipe fd as SCM_RIGHTS), 2 bytes length (little endian), data.
 * Invariants beyond "no crash":
 * - every result matches a reference framer run over the bytes the kernel
 *   took: the same header and payload on success, -EMSGSIZE for a payload
 *   over cap (and the next message still in step), -EPROTO for a bad magic,
 *   version or length, -ECONNRESET at the end or in a cut-off message;
 * - no more descriptors than asked for, each valid and close-on-exec; none
 *   left over on an error; and no descriptor leaks at all.
 * sources: src/common/proto.c */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "proto.h"

#define MAX_STREAM (64 * 1024)
#define MAX_CHUNKS 64
#define FD_WINDOW 512

static const uint32_t caps[8] = { 0, 8, 16, 24, 40, 256, 512, 4096 };
static const int wants[8] = { 0, 1, 2, 3, 8, 63, 64, 64 };

static int pipefd[2] = { -1, -1 };

static void open_fds(uint8_t *set)
{
	for (int fd = 0; fd < FD_WINDOW; fd++)
		set[fd] = fcntl(fd, F_GETFD) >= 0;
}

/* Send one chunk without blocking; returns the bytes the kernel took. */
static size_t send_chunk(int s, const uint8_t *p, size_t len, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 127)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		for (int i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &pipefd[0], sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(s, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n > 0 ? (size_t)n : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t stream[MAX_STREAM];
	static uint8_t before[FD_WINDOW], after[FD_WINDOW];
	if (size < 1 || size > MAX_STREAM)
		return 0;
	if (pipefd[0] < 0)
		CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe");
	uint32_t cap = caps[data[0] & 7];
	int want = wants[data[0] >> 3 & 7];
	bool null_fds = data[0] & 0x40;
	data++;
	size--;

	open_fds(before);
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "socketpair");
	int big = 1 << 20;
	setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));

	/* Write the chunks; stream gets exactly the bytes the kernel took. */
	size_t total = 0;
	for (int chunks = 0; size >= 3 && chunks < MAX_CHUNKS; chunks++) {
		uint8_t ctl = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		int nfds = ctl & 0x80 ? ctl & 0x7f : 0;
		size_t took = send_chunk(sp[1], data, len, nfds);
		memcpy(stream + total, data, took);
		total += took;
		data += len;
		size -= len;
		if (took < len)
			break; /* the socket is full */
	}
	shutdown(sp[1], SHUT_WR);

	/* Read it back, message by message, next to the reference framer. */
	size_t pos = 0;
	for (int msgs = 0;; msgs++) {
		CHECK(msgs <= MAX_STREAM / 16 + 1, "more messages than the stream can hold");
		struct fm_msg_hdr h, ref;
		memset(&h, 0xee, sizeof(h));
		uint8_t *buf = malloc(cap); /* exact size: ASan catches a write past cap */
		int *fds = malloc(sizeof(int) * (size_t)(want ? want : 1));
		int nfds = want;
		int rc = fm_recv(sp[0], &h, buf, cap, null_fds ? NULL : fds, null_fds ? NULL : &nfds);

		size_t left = total - pos;
		int expect;
		if (left < sizeof(ref)) {
			expect = -ECONNRESET;
		} else {
			memcpy(&ref, stream + pos, sizeof(ref));
			left -= sizeof(ref);
			if (ref.magic != FM_PROTO_MAGIC || ref.version != FM_PROTO_VERSION ||
			    ref.len > FM_PROTO_MAX_PAYLOAD)
				expect = -EPROTO;
			else if (left < ref.len)
				expect = -ECONNRESET;
			else
				expect = ref.len > cap ? -EMSGSIZE : 0;
		}
		CHECK(rc == expect, "message %d at byte %zu of %zu: fm_recv %d, expected %d", msgs, pos,
		      total, rc, expect);
		if (!null_fds) {
			CHECK(nfds >= 0 && nfds <= want, "%d descriptors, %d wanted", nfds, want);
			CHECK(rc == 0 || nfds == 0, "error %d with %d descriptors", rc, nfds);
			for (int i = 0; i < nfds; i++) {
				int fl = fcntl(fds[i], F_GETFD);
				CHECK(fl >= 0 && (fl & FD_CLOEXEC), "descriptor %d: flags %d", fds[i], fl);
				close(fds[i]);
			}
		}
		if (rc == 0) {
			CHECK(memcmp(&h, &ref, sizeof(h)) == 0, "header differs from the stream");
			CHECK(!ref.len || memcmp(buf, stream + pos + sizeof(ref), ref.len) == 0,
			      "payload differs from the stream");
		}
		free(buf);
		free(fds);
		if (rc == 0 || rc == -EMSGSIZE) {
			pos += sizeof(ref) + ref.len;
			continue;
		}
		break;
	}
	close(sp[0]);
	close(sp[1]);
	open_fds(after);
	for (int fd = 0; fd < FD_WINDOW; fd++)
		CHECK(before[fd] == after[fd], "descriptor %d %s", fd, after[fd] ? "leaked" : "closed");
	return 0;
}
