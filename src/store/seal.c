/* seal.c - integrity framing of remote pages: XXH3-128 over the data, seeded
 * by XXH3-64 over key and trailer header (see seal.h for the layout). Pure computation: no I/O, no allocation,
 * no global state. */
#include <string.h>
#include <xxhash.h>

#include "seal.h"

#define SEAL_MAGIC "FMPG"
#define SEAL_FORMAT 1
#define SEAL_ALG_XXH3_128 1

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

/* The checksum over the key, the first 16 trailer bytes and the data. */
static void seal_sum(const struct fm_page_key *key, const unsigned char *head16, const void *page,
		     unsigned char sum[16])
{
	unsigned char meta[24 + 16];
	put_le64(meta, key->region[0]);
	put_le64(meta + 8, key->region[1]);
	put_le64(meta + 16, key->page);
	memcpy(meta + 24, head16, 16);

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
	memcpy(t, SEAL_MAGIC, 4);
	t[4] = SEAL_FORMAT;
	t[5] = SEAL_ALG_XXH3_128;
	t[6] = t[7] = 0;
	put_le64(t + 8, version);
	seal_sum(key, t, o, t + 16);
}

int fm_unseal(const struct fm_page_key *key, uint64_t expect_version, const void *in, size_t len,
	      void *page, uint64_t *version)
{
	const unsigned char *i = in;
	const unsigned char *t = i + FM_PAGE_SIZE;
	if (len != FM_SEALED_SIZE || memcmp(t, SEAL_MAGIC, 4) != 0 || t[4] != SEAL_FORMAT ||
	    t[5] != SEAL_ALG_XXH3_128 || t[6] || t[7])
		return FM_STORE_CORRUPT;
	uint64_t v = get_le64(t + 8);
	if (expect_version && v != expect_version)
		return FM_STORE_CORRUPT;
	unsigned char sum[16];
	seal_sum(key, t, i, sum);
	if (memcmp(sum, t + 16, 16) != 0)
		return FM_STORE_CORRUPT;
	if (page != in)
		memcpy(page, i, FM_PAGE_SIZE);
	if (version)
		*version = v;
	return FM_STORE_OK;
}
