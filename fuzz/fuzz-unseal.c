/* fuzz-unseal.c - fm_unseal (src/store/seal.c): every value a remote store
 * gives back is untrusted (bit rot, a stale copy, another key's value, a
 * foreign writer) and goes through it.
 *
 * The first input byte picks a mode:
 *  even: the rest is a value as read from a store (key and expected version
 *        taken from its first 32 bytes). fm_unseal may return OK only when
 *        the value is exactly fm_seal of the page it returns, under that key
 *        and version; the output page is untouched unless it returns OK.
 *  odd:  a page is sealed properly (key, version and contents from the
 *        input) and then changed as the rest of the input says: bytes
 *        flipped, the length cut or extended, the key, the expected version.
 *        The changed value must unseal only if nothing changed, and the
 *        original must unseal, also in place (page == in).
 * sources: src/store/seal.c
 * libs: -lxxhash -lsodium */
#include <string.h>

#include "fuzz.h"
#include "seal.h"

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Value as read from a store. */
static void raw_value(const uint8_t *data, size_t size)
{
	static uint8_t page[FM_PAGE_SIZE], resealed[FM_SEALED_SIZE];
	struct fm_page_key key = { { 0, 0 }, 0 };
	uint64_t expect = 0, version = 0xdeadbeef;
	if (size >= 32) {
		key.region[0] = get64(data);
		key.region[1] = get64(data + 8);
		key.page = get64(data + 16);
		expect = get64(data + 24) & 3; /* mostly 0: accept any version */
	}
	memset(page, 0xa5, sizeof(page));
	/* the value in a buffer of its exact size, so ASan sees overreads */
	uint8_t *in = malloc(size ? size : 1);
	memcpy(in, data, size);
	int rc = fm_unseal(&key, expect, in, size, page, &version);
	CHECK(rc == FM_STORE_OK || rc == FM_STORE_CORRUPT, "result %d", rc);
	if (rc != FM_STORE_OK) {
		for (size_t i = 0; i < sizeof(page); i++)
			CHECK(page[i] == 0xa5, "CORRUPT but page byte %zu written", i);
		CHECK(version == 0xdeadbeef, "CORRUPT but version written");
	} else {
		CHECK(size == FM_SEALED_SIZE, "OK for a value of %zu bytes", size);
		CHECK(!expect || version == expect, "OK with version %llu, %llu expected",
		      (unsigned long long)version, (unsigned long long)expect);
		fm_seal(&key, version, page, resealed);
		CHECK(memcmp(resealed, in, FM_SEALED_SIZE) == 0, "OK for a value that is not a sealed page");
	}
	free(in);
}

/* A proper seal, then mutations. */
static void mutated(const uint8_t *data, size_t size)
{
	static uint8_t page[FM_PAGE_SIZE], out[FM_PAGE_SIZE], sealed[FM_SEALED_SIZE + 64];
	struct fm_page_key key = { { 1, 2 }, 3 };
	uint64_t version = 7, got;
	if (size >= 32) {
		key.region[0] = get64(data);
		key.region[1] = get64(data + 8);
		key.page = get64(data + 16);
		version = get64(data + 24);
		data += 32;
		size -= 32;
	}
	/* page contents: the first up to 64 input bytes, repeated */
	size_t plen = size < 64 ? size : 64;
	for (size_t i = 0; i < FM_PAGE_SIZE; i++)
		page[i] = plen ? data[i % plen] : (uint8_t)i;
	data += plen;
	size -= plen;
	fm_seal(&key, version, page, sealed);
	memset(sealed + FM_SEALED_SIZE, 0, 64);

	int rc = fm_unseal(&key, version, sealed, FM_SEALED_SIZE, out, &got);
	CHECK(rc == FM_STORE_OK && got == version && memcmp(out, page, FM_PAGE_SIZE) == 0,
	      "a fresh seal does not unseal (rc %d)", rc);

	/* mutations, 4 bytes each: op, and a 24-bit argument */
	size_t len = FM_SEALED_SIZE;
	struct fm_page_key k2 = key;
	uint64_t expect = version;
	bool changed = false;
	for (; size >= 4; data += 4, size -= 4) {
		uint32_t arg = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
		switch (data[0] % 6) {
		case 0: /* flip bits of one byte */
			if ((uint8_t)(arg >> 16)) {
				sealed[(arg & 0xffff) % FM_SEALED_SIZE] ^= (uint8_t)(arg >> 16);
				changed = true;
			}
			break;
		case 1: /* set one byte */
			{
				size_t at = (arg & 0xffff) % FM_SEALED_SIZE;
				if (sealed[at] != (uint8_t)(arg >> 16))
					changed = true;
				sealed[at] = (uint8_t)(arg >> 16);
			}
			break;
		case 2: /* length */
			len = (size_t)arg % (FM_SEALED_SIZE + 64);
			break;
		case 3: /* key */
			k2.region[arg % 2] ^= (uint64_t)(arg >> 8) << (arg % 7 * 8);
			break;
		case 4:
			k2.page ^= arg;
			break;
		case 5: /* expected version: 0 accepts any */
			expect = arg % 3 == 0 ? 0 : version ^ (arg >> 2);
			break;
		}
	}
	bool same = !changed && len == FM_SEALED_SIZE && memcmp(&k2, &key, sizeof(key)) == 0 &&
		    (expect == 0 || expect == version);
	/* a flip may have been undone by another flip */
	if (changed && len == FM_SEALED_SIZE) {
		uint8_t again[FM_SEALED_SIZE];
		fm_seal(&key, version, page, again);
		if (memcmp(again, sealed, FM_SEALED_SIZE) == 0)
			same = memcmp(&k2, &key, sizeof(key)) == 0 && (expect == 0 || expect == version);
	}
	memset(out, 0x5a, sizeof(out));
	uint8_t *in = malloc(len ? len : 1);
	memcpy(in, sealed, len);
	rc = fm_unseal(&k2, expect, in, len, out, NULL);
	free(in);
	if (same)
		CHECK(rc == FM_STORE_OK && memcmp(out, page, FM_PAGE_SIZE) == 0, "an unchanged value fails (rc %d)", rc);
	else
		CHECK(rc == FM_STORE_CORRUPT, "a changed value (len %zu) unseals", len);

	/* in place: the page is unsealed over the value itself */
	if (same) {
		rc = fm_unseal(&k2, expect, sealed, FM_SEALED_SIZE, sealed, &got);
		CHECK(rc == FM_STORE_OK && got == version && memcmp(sealed, page, FM_PAGE_SIZE) == 0,
		      "in-place unseal fails (rc %d)", rc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 3 * FM_SEALED_SIZE)
		return 0;
	if (data[0] & 1)
		mutated(data + 1, size - 1);
	else
		raw_value(data + 1, size - 1);
	return 0;
}
