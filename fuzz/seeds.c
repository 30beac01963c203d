/* seeds.c - writes the binary seed inputs of fuzz/corpus (sealed pages,
 * protocol messages, validation requests). The text seeds (URLs, sizes) are
 * plain files. `make -f fuzz/fuzz.mk seeds` builds and runs it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "proto.h"
#include "seal.h"

static void put(const char *dir, const char *name, const void *a, size_t alen, const void *b, size_t blen)
{
	char path[256];
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return;
	}
	fwrite(a, 1, alen, f);
	if (blen)
		fwrite(b, 1, blen, f);
	fclose(f);
}

/* fuzz-proto: byte 0 picks cap and fds; then chunks [ctl, len16, data] */
static size_t chunk(uint8_t *o, uint8_t nfds, const void *d, size_t len)
{
	o[0] = nfds ? 0x80 | nfds : 0;
	o[1] = (uint8_t)len;
	o[2] = (uint8_t)(len >> 8);
	memcpy(o + 3, d, len);
	return len + 3;
}

static size_t msg(uint8_t *o, uint16_t type, const void *payload, uint32_t len)
{
	struct fm_msg_hdr h = { FM_PROTO_MAGIC, FM_PROTO_VERSION, type, len, 0 };
	memcpy(o, &h, sizeof(h));
	if (len)
		memcpy(o + sizeof(h), payload, len);
	return sizeof(h) + len;
}

static void proto_seeds(void)
{
	const char *d = "fuzz/corpus/proto";
	uint8_t in[8192], m[4096];
	size_t n, ml;
	struct fm_hello hello = { 1 << 30, "seed", 0, 0 };
	struct fm_register reg = { 0x7f0000000000ull, 1 << 20, 0, 0, 0 };
	struct fm_grow grow = { { 1, 2 }, 2 << 20 };
	struct fm_status_req st = { FM_STATUS_JSON, 0 };

	/* HELLO with uffd + pidfd, as the client library sends it, cap 512 */
	in[0] = 6 | 6 << 3;
	ml = msg(m, FM_MSG_HELLO, &hello, sizeof(hello));
	n = 1 + chunk(in + 1, 2, m, ml);
	put(d, "hello", in, n, NULL, 0);

	/* REGISTER with a memfd, then GROW, then SNAPSHOT, cap 256 */
	in[0] = 5 | 6 << 3;
	n = 1;
	ml = msg(m, FM_MSG_REGISTER, &reg, sizeof(reg));
	n += chunk(in + n, 1, m, ml);
	ml = msg(m, FM_MSG_GROW, &grow, sizeof(grow));
	n += chunk(in + n, 0, m, ml);
	ml = msg(m, FM_MSG_SNAPSHOT, NULL, 0);
	n += chunk(in + n, 0, m, ml);
	put(d, "register-grow-snapshot", in, n, NULL, 0);

	/* a client re-attaching: HELLO, ATTACH with a memfd, ATTACH_DONE, cap 256 */
	struct fm_attach att = { .region = { 1, 2 }, .base_off = 0, .npages = 256,
				 .addr = 0x7f0000000000ull, .len = 1 << 20 };
	in[0] = 5 | 6 << 3;
	n = 1;
	hello.flags = FM_HELLO_REATTACH;
	ml = msg(m, FM_MSG_HELLO, &hello, sizeof(hello));
	n += chunk(in + n, 2, m, ml);
	ml = msg(m, FM_MSG_ATTACH, &att, sizeof(att));
	n += chunk(in + n, 1, m, ml);
	ml = msg(m, FM_MSG_ATTACH_DONE, NULL, 0);
	n += chunk(in + n, 0, m, ml);
	put(d, "reattach", in, n, NULL, 0);
	hello.flags = 0;

	/* a message cut in two writes, the header split in the middle */
	in[0] = 5 | 1 << 3;
	ml = msg(m, FM_MSG_STATUS, &st, sizeof(st));
	n = 1 + chunk(in + 1, 0, m, 7);
	n += chunk(in + n, 1, m + 7, ml - 7);
	put(d, "split-header", in, n, NULL, 0);

	/* a payload over cap (EMSGSIZE), then a good message: still in step */
	in[0] = 1 | 2 << 3;
	memset(m, 'x', sizeof(m));
	ml = msg(m, FM_MSG_STATUS, m + 64, 100);
	n = 1 + chunk(in + 1, 3, m, ml);
	ml = msg(m, FM_MSG_SHUTDOWN, NULL, 0);
	n += chunk(in + n, 0, m, ml);
	put(d, "oversize-then-good", in, n, NULL, 0);

	/* more descriptors than FM_PROTO_MAX_FDS, fds wanted 64 */
	in[0] = 5 | 7 << 3;
	ml = msg(m, FM_MSG_HELLO, &hello, sizeof(hello));
	n = 1 + chunk(in + 1, 100, m, ml);
	put(d, "too-many-fds", in, n, NULL, 0);

	/* bad magic; bad version; length over the maximum; cut-off payload */
	struct fm_msg_hdr h = { 0x12345678, FM_PROTO_VERSION, FM_MSG_STATUS, 0, 0 };
	in[0] = 5;
	n = 1 + chunk(in + 1, 1, &h, sizeof(h));
	put(d, "bad-magic", in, n, NULL, 0);
	h.magic = FM_PROTO_MAGIC;
	h.version = 2;
	n = 1 + chunk(in + 1, 0, &h, sizeof(h));
	put(d, "bad-version", in, n, NULL, 0);
	h.version = FM_PROTO_VERSION;
	h.len = FM_PROTO_MAX_PAYLOAD + 1;
	n = 1 + chunk(in + 1, 0, &h, sizeof(h));
	put(d, "too-long", in, n, NULL, 0);
	h.len = 40;
	memcpy(m, &h, sizeof(h));
	n = 1 + chunk(in + 1, 0, m, sizeof(h) + 10);
	put(d, "cut-payload", in, n, NULL, 0);
	/* fds with NULL fds/nfds: they must be closed */
	in[0] = 5 | 0x40;
	ml = msg(m, FM_MSG_REGISTER, &reg, sizeof(reg));
	n = 1 + chunk(in + 1, 1, m, ml);
	put(d, "fds-not-wanted", in, n, NULL, 0);
}

static void unseal_seeds(void)
{
	const char *d = "fuzz/corpus/unseal";
	static uint8_t page[FM_PAGE_SIZE], sealed[FM_SEALED_SIZE], in[2 * FM_SEALED_SIZE];
	/* raw mode: a valid sealed value whose first 32 bytes name its key */
	struct fm_page_key key = { { 0x1122334455667788ull, 0x99aabbccddeeff00ull }, 42 };
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i * 7);
	memcpy(page, &key, sizeof(key));
	memset(page + 24, 0, 8); /* expected version 0: any */
	fm_seal(&key, 5, page, sealed);
	in[0] = 0;
	put(d, "raw-valid", in, 1, sealed, sizeof(sealed));
	sealed[100] ^= 1;
	put(d, "raw-flipped", in, 1, sealed, sizeof(sealed));
	put(d, "raw-short", in, 1, sealed, 4096);
	memset(in + 1, 0, FM_SEALED_SIZE);
	put(d, "raw-zeros", in, 1 + FM_SEALED_SIZE, NULL, 0);
	/* the same with the AEAD layout, under fuzz-unseal's fixed raw secret
	 * and key (the key above) */
	static uint8_t aead[FM_SEALED_MAX];
	uint8_t secret[FM_SECRET_SIZE];
	memset(secret, 0x42, sizeof(secret));
	if (fm_seal_init() == 0 && fm_seal_with(secret, &key, 5, page, aead) == FM_SEALED_AEAD_SIZE) {
		in[0] = 2;
		put(d, "raw-aead-valid", in, 1, aead, FM_SEALED_AEAD_SIZE);
		aead[FM_PAGE_SIZE + 20] ^= 4; /* the nonce */
		put(d, "raw-aead-nonce-flipped", in, 1, aead, FM_SEALED_AEAD_SIZE);
	}
	/* mutation mode: key, version, page bytes, mutations */
	uint8_t mu[1 + 32 + 64 + 24];
	memset(mu, 0, sizeof(mu));
	mu[0] = 1;
	memcpy(mu + 1, &key, sizeof(key));
	mu[25] = 9; /* version 9 */
	for (int i = 0; i < 64; i++)
		mu[33 + i] = (uint8_t)(i * 13 + 1);
	put(d, "mut-none", mu, 33 + 64, NULL, 0);
	uint8_t *op = mu + 97;
	op[0] = 0; op[1] = 0x10; op[2] = 0x10; op[3] = 0x01;   /* flip a trailer byte */
	op[4] = 2; op[5] = 0x20; op[6] = 0x10; op[7] = 0;      /* cut to 4128 - 32 */
	op[8] = 4; op[9] = 1; op[10] = 0; op[11] = 0;           /* another page index */
	op[12] = 5; op[13] = 0; op[14] = 0; op[15] = 0;         /* any version */
	op[16] = 3; op[17] = 1; op[18] = 1; op[19] = 0;         /* another region */
	op[20] = 1; op[21] = 0x05; op[22] = 0; op[23] = 0x41;   /* set a data byte */
	put(d, "mut-flip", mu, 97 + 4, NULL, 0);
	put(d, "mut-len", mu, 97 + 8, NULL, 0);
	memcpy(op, op + 8, 8);
	put(d, "mut-key-anyversion", mu, 97 + 8, NULL, 0);
	memcpy(op, op + 16, 8);
	put(d, "mut-region-data", mu, 97 + 8, NULL, 0);
	mu[0] = 3; /* AEAD */
	put(d, "mut-aead-none", mu, 97, NULL, 0);
	put(d, "mut-aead-region-data", mu, 97 + 8, NULL, 0);
	op[0] = 6; op[1] = 3; op[2] = 1; op[3] = 0;            /* another secret */
	put(d, "mut-aead-secret", mu, 97 + 4, NULL, 0);
}

static void validate_seeds(void)
{
	const char *d = "fuzz/corpus/validate";
	uint8_t in[1 + 8 * 8];
	uint64_t v[8];
	/* take64 keeps values whose top 3 bits are 011 or more as they are */
	const uint64_t raw = 0x6000000000000000ull;
	in[0] = 0; /* register addr, len, offset, flags, memfd size */
	v[0] = raw | 0x7f0000000000ull; v[1] = raw | (1 << 20); v[2] = raw; v[3] = 0; v[4] = raw | (1 << 20);
	memcpy(in + 1, v, 40);
	put(d, "register-ok", in, 41, NULL, 0);
	v[4] = raw | (1 << 19);
	memcpy(in + 1, v, 40);
	put(d, "register-small-memfd", in, 41, NULL, 0);
	in[0] = 1; /* grow region[2], new_len, base, memfd size */
	v[0] = 1; v[1] = 2; v[2] = raw | (2 << 20); v[3] = raw; v[4] = raw | (2 << 20);
	memcpy(in + 1, v, 40);
	put(d, "grow-ok", in, 41, NULL, 0);
	in[0] = 2; /* adopt clone[2], addr, len, offset, npages << 12 */
	v[0] = 1; v[1] = 2; v[2] = raw | 0x7f0000000000ull; v[3] = raw | (1 << 20); v[4] = raw;
	v[5] = raw | (256ull << 12);
	memcpy(in + 1, v, 48);
	put(d, "adopt-ok", in, 49, NULL, 0);
	in[0] = 3; /* attach region[2], addr, len, map_page << 12, base_off, npages << 12, memfd size */
	v[0] = 1; v[1] = 2; v[2] = raw | 0x7f0000000000ull; v[3] = raw | (1 << 20); v[4] = raw | (16ull << 12);
	v[5] = raw | (1 << 20); v[6] = raw | (512ull << 12); v[7] = raw | (3 << 20);
	memcpy(in + 1, v, 64);
	put(d, "attach-ok", in, 65, NULL, 0);
	in[0] = 4; /* mremap old_addr, old_len, new_len, new_addr, flags */
	v[0] = raw | 0x7f0000000000ull; v[1] = raw | (1 << 20); v[2] = raw | (2 << 20); v[3] = 0; v[4] = 1;
	memcpy(in + 1, v, 40);
	put(d, "mremap-ok", in, 41, NULL, 0);
}

int main(void)
{
	mkdir("fuzz/corpus", 0755);
	proto_seeds();
	unseal_seeds();
	validate_seeds();
	return 0;
}
