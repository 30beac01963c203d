/* store-encrypt.c - pages sealed with a region's secret: the unit checks of
 * the AEAD layout (no server), and a tool for t-store-encrypt.sh, which reads
 * and tampers with the raw values on real servers.
 *
 *   store-encrypt unit
 *     Roundtrip; a fresh nonce per seal; every trailer bit and sampled
 *     ciphertext bits flipped, another page's or region's key, a stale
 *     version, a wrong secret, a checksum-sealed value read with the secret
 *     and an encrypted one read without it: all FM_STORE_CORRUPT, and a
 *     failed unseal leaves the output untouched. Exit 0 pass, 1 fail.
 *
 *   store-encrypt [-n PAGES] [-r REGION] [-s SEED] [-g GEN] [-V VERSION]
 *                 [-c CORRUPT_FILE] URL write|verify  |  store-encrypt [-n PAGES] [-r REGION] keys
 *     write   pages 0..PAGES-1 of REGION, each a known plaintext: the text
 *             "fluidmem plaintext page NNNNNN gen G\n" repeated over the
 *             first half, zeros in the second
 *     verify  read them back expecting VERSION (0: any): pages listed in
 *             CORRUPT_FILE (one index a line) must be FM_STORE_CORRUPT, all
 *             others OK with the bytes of GEN
 *     keys    print "index key" per page
 *   SEED names the secret (32 bytes derived from it); 0 means no secret
 *   (checksum only). Defaults: 256 pages, region 1, seed 1, gen 1, version 1.
 *   Exit 0 pass, 1 fail, 2 usage or open error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluidmem/store.h"
#include "../src/store/seal.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); \
	printf(__VA_ARGS__); printf("\n"); if (++failures > 10) exit(1); } } while (0)

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void secret_of(uint64_t seed, unsigned char secret[FM_SECRET_SIZE])
{
	for (size_t i = 0; i < FM_SECRET_SIZE; i += 8) {
		uint64_t w = mix(seed * 977 + i);
		memcpy(secret + i, &w, 8);
	}
}

static struct fm_page_key key_of(uint64_t region, uint64_t page)
{
	struct fm_page_key k = { { mix(region), mix(region + 100) }, page };
	return k;
}

static void fill(uint64_t page, unsigned gen, unsigned char *buf)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "fluidmem plaintext page %06llu gen %u\n", (unsigned long long)page, gen);
	memset(buf, 0, FM_PAGE_SIZE);
	for (size_t at = 0; at + (size_t)n <= FM_PAGE_SIZE / 2; at += (size_t)n)
		memcpy(buf + at, line, (size_t)n);
}

/* ---- unit ---- */

static int unit(void)
{
	static unsigned char page[FM_PAGE_SIZE], out[FM_PAGE_SIZE], v[FM_SEALED_MAX + 1], w[FM_SEALED_MAX];
	unsigned char secret[FM_SECRET_SIZE], other_secret[FM_SECRET_SIZE];
	secret_of(1, secret);
	secret_of(2, other_secret);
	struct fm_page_key k = key_of(7, 42);
	fill(42, 1, page);
	CHECK(fm_seal_init() == 0, "libsodium initialises");

	size_t len = fm_seal_with(secret, &k, 9, page, v);
	CHECK(len == FM_SEALED_AEAD_SIZE && len == fm_sealed_size(secret), "AEAD value length %zu", len);
	CHECK(memmem(v, len, "plaintext", 9) == NULL, "plaintext visible in the sealed value");
	CHECK(memcmp(v + FM_PAGE_SIZE, "FMPG\1\2\0\0", 8) == 0, "trailer header: magic, format 1, algorithm 2");
	uint64_t ver = 0;
	CHECK(fm_unseal_with(secret, &k, 0, v, len, out, &ver) == FM_STORE_OK, "roundtrip, any version");
	CHECK(ver == 9 && memcmp(out, page, FM_PAGE_SIZE) == 0, "roundtrip bytes and version");
	CHECK(fm_unseal_with(secret, &k, 9, v, len, out, NULL) == FM_STORE_OK, "roundtrip, version 9");
	CHECK(fm_seal_with(secret, &k, 9, page, w) == len && memcmp(v, w, len) != 0,
	      "two seals of the same page are identical (nonce reused)");
	CHECK(memcmp(v + FM_PAGE_SIZE + 16, w + FM_PAGE_SIZE + 16, 24) != 0, "nonce repeated");

	memset(out, 0xEE, sizeof(out));
	struct fm_page_key other = k;
	other.page = 43;
	CHECK(fm_unseal_with(secret, &other, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "other page's key");
	other = k;
	other.region[0] ^= 1ull << 63;
	CHECK(fm_unseal_with(secret, &other, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "other region's key");
	CHECK(fm_unseal_with(secret, &k, 8, v, len, out, NULL) == FM_STORE_CORRUPT, "stale version");
	CHECK(fm_unseal_with(other_secret, &k, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "wrong secret");
	CHECK(fm_unseal_with(NULL, &k, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "encrypted value read without secret");
	CHECK(fm_unseal(&k, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "encrypted value read by fm_unseal");
	CHECK(fm_unseal_with(secret, &k, 0, v, len - 1, out, NULL) == FM_STORE_CORRUPT, "short value");
	CHECK(fm_unseal_with(secret, &k, 0, v, len + 1, out, NULL) == FM_STORE_CORRUPT, "long value");
	/* A version changed in the header, and the expected version with it: only the tag can tell. */
	v[FM_PAGE_SIZE + 8] ^= 1;
	CHECK(fm_unseal_with(secret, &k, 0, v, len, out, NULL) == FM_STORE_CORRUPT, "version rewritten");
	v[FM_PAGE_SIZE + 8] ^= 1;

	static unsigned char plain[FM_SEALED_MAX];
	size_t plen = fm_seal_with(NULL, &k, 9, page, plain);
	CHECK(plen == FM_SEALED_SIZE, "checksum value length %zu", plen);
	CHECK(fm_unseal_with(secret, &k, 0, plain, plen, out, NULL) == FM_STORE_CORRUPT,
	      "checksum value read with a secret");
	/* The same value padded to the AEAD length, algorithm byte rewritten. */
	memcpy(w, plain, plen);
	memset(w + plen, 0, sizeof(w) - plen);
	w[FM_PAGE_SIZE + 5] = 2;
	CHECK(fm_unseal_with(secret, &k, 0, w, FM_SEALED_AEAD_SIZE, out, NULL) == FM_STORE_CORRUPT,
	      "checksum value relabelled as AEAD");

	size_t flips = 0, caught = 0;
	for (size_t byte = 0; byte < len; byte += (byte < FM_PAGE_SIZE ? 61 : 1)) {
		for (int bit = 0; bit < 8; bit++) {
			v[byte] ^= (unsigned char)(1u << bit);
			flips++;
			caught += fm_unseal_with(secret, &k, 0, v, len, out, NULL) == FM_STORE_CORRUPT;
			v[byte] ^= (unsigned char)(1u << bit);
		}
	}
	CHECK(caught == flips, "bit flips caught: %zu of %zu", caught, flips);
	for (size_t i = 0; i < sizeof(out); i++)
		if (out[i] != 0xEE) {
			CHECK(0, "a failed unseal wrote into the output at byte %zu", i);
			break;
		}
	/* In place, as a backend may do. */
	memcpy(w, v, len);
	CHECK(fm_unseal_with(secret, &k, 9, w, len, w, NULL) == FM_STORE_OK && memcmp(w, page, FM_PAGE_SIZE) == 0,
	      "unseal in place");
	if (failures)
		return 1;
	printf("encrypt unit passed: %zu single-bit flips caught\n", flips);
	return 0;
}

/* ---- against a store ---- */

static unsigned char *corrupt_set(const char *path, size_t n)
{
	unsigned char *set = calloc(n, 1);
	if (!path)
		return set;
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	unsigned long long i;
	while (fscanf(f, "%llu", &i) == 1)
		if (i < n)
			set[i] = 1;
	fclose(f);
	return set;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "unit") == 0)
		return unit();
	size_t n = 256;
	uint64_t region = 1, seed = 1, version = 1;
	unsigned gen = 1;
	const char *corrupt = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:r:s:g:V:c:")) != -1) {
		switch (opt) {
		case 'n': n = strtoull(optarg, NULL, 0); break;
		case 'r': region = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'g': gen = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'V': version = strtoull(optarg, NULL, 0); break;
		case 'c': corrupt = optarg; break;
		default: goto usage;
		}
	}
	/* keys needs no URL */
	if (argc - optind == 1 && strcmp(argv[optind], "keys") == 0)
		optind--;
	else if (argc - optind != 2)
		goto usage;
	const char *url = argv[optind], *cmd = argv[optind + 1];
	unsigned char secret[FM_SECRET_SIZE];
	secret_of(seed, secret);
	const unsigned char *sec = seed ? secret : NULL;

	if (strcmp(cmd, "keys") == 0) {
		char k[FM_KEY_MAX];
		for (size_t p = 0; p < n; p++) {
			struct fm_page_key key = key_of(region, p);
			fm_store_key_format(&key, k);
			printf("%zu %s\n", p, k);
		}
		return 0;
	}
	struct fm_store *s;
	char err[512];
	if (fm_store_open(url, &s, err, sizeof(err))) {
		printf("%s\n", err);
		return 2;
	}
	struct fm_store_io *ios = calloc(n, sizeof(*ios));
	unsigned char *buf = malloc(n * FM_PAGE_SIZE), want[FM_PAGE_SIZE];
	for (size_t p = 0; p < n; p++)
		ios[p] = (struct fm_store_io){ .key = key_of(region, p), .page = buf + p * FM_PAGE_SIZE,
					       .version = version, .secret = sec, .status = -1 };
	int rc = 0;
	if (strcmp(cmd, "write") == 0) {
		for (size_t p = 0; p < n; p++)
			fill(p, gen, ios[p].page);
		CHECK(fm_store_write(s, ios, n) == 0, "write call");
		for (size_t p = 0; p < n; p++)
			CHECK(ios[p].status == FM_STORE_OK, "write page %zu: %s", p, fm_store_strstatus(ios[p].status));
	} else if (strcmp(cmd, "verify") == 0) {
		unsigned char *bad = corrupt_set(corrupt, n);
		memset(buf, 0x5A, n * FM_PAGE_SIZE);
		CHECK(fm_store_read(s, ios, n) == 0, "read call");
		size_t ok = 0, cor = 0;
		for (size_t p = 0; p < n; p++) {
			int want_st = bad[p] ? FM_STORE_CORRUPT : FM_STORE_OK;
			CHECK(ios[p].status == want_st, "page %zu: %s, expected %s", p, fm_store_strstatus(ios[p].status),
			      fm_store_strstatus(want_st));
			if (ios[p].status == FM_STORE_OK) {
				fill(p, gen, want);
				CHECK(memcmp(ios[p].page, want, FM_PAGE_SIZE) == 0, "page %zu: wrong bytes", p);
				ok++;
			} else if (ios[p].status == FM_STORE_CORRUPT) {
				cor++;
			}
		}
		printf("verify: %zu ok, %zu corrupt of %zu\n", ok, cor, n);
		free(bad);
	} else {
		fm_store_close(s);
		goto usage;
	}
	fm_store_close(s);
	free(ios);
	free(buf);
	if (failures)
		rc = 1;
	return rc;
usage:
	fprintf(stderr, "usage: store-encrypt unit | store-encrypt [-n PAGES] [-r REGION] [-s SEED] [-g GEN] "
		"[-V VERSION] [-c CORRUPT_FILE] URL write|verify | store-encrypt [-n PAGES] [-r REGION] keys\n");
	return 2;
}
