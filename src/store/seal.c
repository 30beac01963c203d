/* seal.c - sealing of remote pages (see seal.h for both layouts): an XXH3-128
 * checksum over the data, seeded by XXH3-64 over key and trailer header; or,
 * with the region's secret, XChaCha20-Poly1305-IETF (libsodium) with the key
 * and trailer header as additional data and a random nonce per seal.
 * Pure computation: no I/O, no allocation; the only global state is
 * libsodium's one-time initialisation. */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <xxhash.h>

#include "seal.h"

#define SEAL_MAGIC "FMPG"
#define SEAL_FORMAT 1
#define SEAL_ALG_XXH3_128 1
#define SEAL_ALG_XCHACHA20POLY1305 2

#define HEAD 16  /* magic, format, algorithm, reserved, version */
#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(NONCE == 24 && TAG == 16, "libsodium's XChaCha20-Poly1305 sizes");
_Static_assert(FM_SEAL_AEAD_TRAILER == HEAD + NONCE + TAG, "AEAD trailer layout");
_Static_assert(FM_SECRET_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "secret size");
_Static_assert(FM_SEALED_MAX >= FM_SEALED_SIZE, "FM_SEALED_MAX holds either layout");

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- libsodium ---- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc; /* sodium_init()'s result: 0 first time, 1 if already done, -1 failed */

static void sodium_start(void)
{
	sodium_rc = sodium_init();
}

int fm_seal_init(void)
{
	pthread_once(&sodium_once, sodium_start);
	return sodium_rc < 0 ? -EIO : 0;
}

/* ---- common ---- */

static void head_put(unsigned char *t, int alg, uint64_t version)
{
	memcpy(t, SEAL_MAGIC, 4);
	t[4] = SEAL_FORMAT;
	t[5] = (unsigned char)alg;
	t[6] = t[7] = 0;
	put_le64(t + 8, version);
}

static int head_ok(const unsigned char *t, int alg)
{
	return memcmp(t, SEAL_MAGIC, 4) == 0 && t[4] == SEAL_FORMAT && t[5] == alg && !t[6] && !t[7];
}

/* Region id, page index and the trailer header: what binds a value to its key
 * and version. */
static void meta_put(unsigned char meta[24 + HEAD], const struct fm_page_key *key, const unsigned char *head)
{
	put_le64(meta, key->region[0]);
	put_le64(meta + 8, key->region[1]);
	put_le64(meta + 16, key->page);
	memcpy(meta + 24, head, HEAD);
}

/* ---- algorithm 1: checksum ---- */

/* The checksum over the key, the trailer header and the data. */
static void seal_sum(const struct fm_page_key *key, const unsigned char *head, const void *page,
		     unsigned char sum[16])
{
	unsigned char meta[24 + HEAD];
	meta_put(meta, key, head);
	/* The metadata hash seeds the data hash: one pass over the page, and a
	 * change in either part changes the sum. */
	XXH128_hash_t h = XXH3_128bits_withSeed(page, FM_PAGE_SIZE, XXH3_64bits(meta, sizeof(meta)));
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(sum, c.digest, 16);
}

void fm_seal(const struct fm_page_key *key, uint64_t version, const void *page, void *out)
{
	unsigned char *o = out;
	unsigned char *t = o + FM_PAGE_SIZE;
	memcpy(o, page, FM_PAGE_SIZE);
	head_put(t, SEAL_ALG_XXH3_128, version);
	seal_sum(key, t, o, t + HEAD);
}

int fm_unseal(const struct fm_page_key *key, uint64_t expect_version, const void *in, size_t len,
	      void *page, uint64_t *version)
{
	const unsigned char *i = in;
	const unsigned char *t = i + FM_PAGE_SIZE;
	if (len != FM_SEALED_SIZE || !head_ok(t, SEAL_ALG_XXH3_128))
		return FM_STORE_CORRUPT;
	uint64_t v = get_le64(t + 8);
	if (expect_version && v != expect_version)
		return FM_STORE_CORRUPT;
	unsigned char sum[16];
	seal_sum(key, t, i, sum);
	if (memcmp(sum, t + HEAD, 16) != 0)
		return FM_STORE_CORRUPT;
	if (page != in)
		memcpy(page, i, FM_PAGE_SIZE);
	if (version)
		*version = v;
	return FM_STORE_OK;
}

/* ---- algorithm 2: XChaCha20-Poly1305-IETF ---- */

static size_t seal_aead(const unsigned char *secret, const struct fm_page_key *key, uint64_t version,
			const void *page, void *out)
{
	if (fm_seal_init() != 0)
		return 0;
	unsigned char *o = out;
	unsigned char *t = o + FM_PAGE_SIZE;
	unsigned char *nonce = t + HEAD, *tag = nonce + NONCE;
	head_put(t, SEAL_ALG_XCHACHA20POLY1305, version);
	/* 192 random bits: no two seals under one secret share a nonce, without
	 * a counter to keep. */
	randombytes_buf(nonce, NONCE);
	unsigned char ad[24 + HEAD];
	meta_put(ad, key, t);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(o, tag, NULL, page, FM_PAGE_SIZE, ad, sizeof(ad),
							     NULL, nonce, secret);
	return FM_SEALED_AEAD_SIZE;
}

static int unseal_aead(const unsigned char *secret, const struct fm_page_key *key, uint64_t expect_version,
		       const void *in, size_t len, void *page, uint64_t *version)
{
	const unsigned char *i = in;
	const unsigned char *t = i + FM_PAGE_SIZE;
	if (len != FM_SEALED_AEAD_SIZE || !head_ok(t, SEAL_ALG_XCHACHA20POLY1305))
		return FM_STORE_CORRUPT;
	uint64_t v = get_le64(t + 8);
	if (expect_version && v != expect_version)
		return FM_STORE_CORRUPT;
	if (fm_seal_init() != 0)
		return FM_STORE_CORRUPT;
	unsigned char ad[24 + HEAD];
	meta_put(ad, key, t);
	/* Into a buffer of our own: libsodium zeroes its output when the tag
	 * does not match, and page must stay untouched then. */
	unsigned char plain[FM_PAGE_SIZE];
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, NULL, i, FM_PAGE_SIZE, t + HEAD + NONCE,
								ad, sizeof(ad), t + HEAD, secret) != 0)
		return FM_STORE_CORRUPT;
	memcpy(page, plain, FM_PAGE_SIZE);
	if (version)
		*version = v;
	return FM_STORE_OK;
}

/* ---- either ---- */

size_t fm_seal_with(const unsigned char *secret, const struct fm_page_key *key, uint64_t version,
		    const void *page, void *out)
{
	if (secret)
		return seal_aead(secret, key, version, page, out);
	fm_seal(key, version, page, out);
	return FM_SEALED_SIZE;
}

int fm_unseal_with(const unsigned char *secret, const struct fm_page_key *key, uint64_t expect_version,
		   const void *in, size_t len, void *page, uint64_t *version)
{
	if (secret)
		return unseal_aead(secret, key, expect_version, in, len, page, version);
	return fm_unseal(key, expect_version, in, len, page, version);
}
