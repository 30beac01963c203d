/* proto.c - framing of fluidmem messages over a Unix socket, with fds.
 * Validates headers; payload meaning is the receiver's business. Makes no
 * heap allocations: the preload library calls it from inside malloc. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

unsigned fm_lat_bucket(uint64_t ns)
{
	if (ns < 8)
		return (unsigned)ns;
	unsigned log = 63 - (unsigned)__builtin_clzll(ns); /* >= 3 */
	unsigned sub = (unsigned)(ns >> (log - 3)) & 7;
	unsigned b = (log - 2) * 8 + sub;
	return b < FM_LAT_BUCKETS ? b : FM_LAT_BUCKETS - 1;
}

uint64_t fm_lat_bucket_value(unsigned b)
{
	if (b < 8)
		return b;
	unsigned log = b / 8 + 2, sub = b % 8;
	return ((uint64_t)(8 + sub) << (log - 3)) + ((1ull << (log - 3)) >> 1);
}

uint64_t fm_lat_percentile(const uint64_t *lat, double p)
{
	uint64_t total = 0;
	for (unsigned b = 0; b < FM_LAT_BUCKETS; b++)
		total += lat[b];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(p * (double)total);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < FM_LAT_BUCKETS; b++) {
		seen += lat[b];
		if (seen > want)
			return fm_lat_bucket_value(b);
	}
	return 0;
}

void fm_stats_add(struct fm_stats *d, const struct fm_stats *s)
{
	uint64_t *dv = (uint64_t *)d;
	const uint64_t *sv = (const uint64_t *)s;
	for (size_t i = 0; i < sizeof(*d) / sizeof(uint64_t); i++)
		dv[i] += sv[i];
}

/* Puts nfds descriptors on m as one SCM_RIGHTS message in cbuf, which holds
 * at least CMSG_SPACE(nfds ints), aligned for a struct cmsghdr. Only memset
 * and memcpy: the library's watcher thread, which has no libc errno, uses it. */
void fm_msg_attach_fds(struct msghdr *m, void *cbuf, const int *fds, int nfds)
{
	size_t bytes = sizeof(int) * (size_t)nfds;
	memset(cbuf, 0, CMSG_SPACE(bytes));
	m->msg_control = cbuf;
	m->msg_controllen = CMSG_SPACE(bytes);
	struct cmsghdr *c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(bytes);
	memcpy(CMSG_DATA(c), fds, bytes);
}

int fm_send(int sock, uint16_t type, int32_t status, const void *payload, uint32_t len,
	    const int *fds, int nfds)
{
	struct fm_msg_hdr h = {
		.magic = FM_PROTO_MAGIC, .version = FM_PROTO_VERSION,
		.type = type, .len = len, .status = status,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * FM_PROTO_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	if (nfds > FM_PROTO_MAX_FDS)
		return -EINVAL;
	if (nfds > 0)
		fm_msg_attach_fds(&m, u.buf, fds, nfds);
	size_t total = sizeof(h) + len;
	while (total > 0) {
		ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		total -= (size_t)n;
		m.msg_control = NULL; /* fds go with the first byte only */
		m.msg_controllen = 0;
		while (n > 0 && m.msg_iovlen > 0) {
			if ((size_t)n >= m.msg_iov->iov_len) {
				n -= (ssize_t)m.msg_iov->iov_len;
				m.msg_iov++;
				m.msg_iovlen--;
			} else {
				m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + n;
				m.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

static int read_full(int sock, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = recv(sock, p, len, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fm_recv(int sock, struct fm_msg_hdr *h, void *buf, uint32_t cap, int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FM_PROTO_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = h, .iov_len = sizeof(*h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int want = nfds ? *nfds : 0, got = 0;
	if (nfds)
		*nfds = 0;
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (got < want)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (nfds)
		*nfds = got;
	int err = 0;
	if ((size_t)n < sizeof(*h))
		err = read_full(sock, (char *)h + n, sizeof(*h) - (size_t)n);
	if (!err && (h->magic != FM_PROTO_MAGIC || h->version != FM_PROTO_VERSION ||
		     h->len > FM_PROTO_MAX_PAYLOAD))
		err = -EPROTO;
	if (!err && h->len > cap) {
		char sink[4096];
		for (uint32_t left = h->len; left > 0 && !err;) {
			uint32_t chunk = left < sizeof(sink) ? left : (uint32_t)sizeof(sink);
			err = read_full(sock, sink, chunk);
			left -= chunk;
		}
		if (!err)
			err = -EMSGSIZE;
	}
	if (!err && h->len)
		err = read_full(sock, buf, h->len);
	if (err && nfds) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		*nfds = 0;
	}
	return err;
}

int fm_connect_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	return s;
}

const char *fm_default_socket(void)
{
	const char *p = getenv("FLUIDMEM_SOCKET");
	return p && *p ? p : "/run/fluidmem/fluidmemd.sock";
}
