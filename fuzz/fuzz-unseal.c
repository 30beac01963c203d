/* fuzz-unseal.c - fm_unseal_with (src/store/seal.c): every value a remote
 * store gives back is untrusted (bit rot, a stale copy, another key's value,
 * a foreign writer, an attacker without the region's secret) and goes
 * through it, in the checksum layout (no secret) or the AEAD layout.
 *
 * The first input byte picks a mode; bit 1 set: with a secret (AEAD), else
 * the checksum layout.
 *  bit 0 clear: the rest is a value as read from a store. Checksum layout:
 *        key and expected version from its first 32 bytes (the page is in
 *        clear); AEAD: a fixed secret and key, any version. It may unseal
 *        only when it is exactly the seal of the page returned under that
 *        key and version (fm_seal again; for the AEAD, the page encrypted
 *        again with the value's nonce); the output page is untouched unless
 *        it returns OK.
 *  bit 0 set: a page is sealed properly (key, version, contents and secret
 *        from the input) and then changed as the rest of the input says: bytes
 *        flipped or set, the length cut or extended, the key, the expected
 *        version, the secret. The changed value must unseal only if nothing
 *        changed, the original must unseal, also in place (page == in), and
 *        never with the other layout's reader (secret given or not).
 * sources: src/store/seal.c
 * libs: -lxxhash -lsodium */
#include <sodium.h>
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
static void raw_value(const uint8_t *secret, const uint8_t *data, size_t size)
{
	static uint8_t page[FM_PAGE_SIZE], resealed[FM_SEALED_MAX];
	struct fm_page_key key = { { 0, 0 }, 0 };
	uint64_t expect = 0, version = 0xdeadbeef;
	if (secret) {
		/* the AEAD's data is ciphertext: a fixed key, as for the secret */
		key = (struct fm_page_key){ { 0x1122334455667788ull, 0x99aabbccddeeff00ull }, 42 };
	} else if (size >= 32) {
		key.region[0] = get64(data);
		key.region[1] = get64(data + 8);
		key.page = get64(data + 16);
		expect = get64(data + 24) & 3; /* mostly 0: accept any version */
	}
	memset(page, 0xa5, sizeof(page));
	/* the value in a buffer of its exact size, so ASan sees overreads */
	uint8_t *in = malloc(size ? size : 1);
	memcpy(in, data, size);
	int rc = fm_unseal_with(secret, &key, expect, in, size, page, &version);
	CHECK(rc == FM_STORE_OK || rc == FM_STORE_CORRUPT, "result %d", rc);
	if (rc != FM_STORE_OK) {
		for (size_t i = 0; i < sizeof(page); i++)
			CHECK(page[i] == 0xa5, "CORRUPT but page byte %zu written", i);
		CHECK(version == 0xdeadbeef, "CORRUPT but version written");
	} else {
		CHECK(size == fm_sealed_size(secret), "OK for a value of %zu bytes", size);
		CHECK(!expect || version == expect, "OK with version %llu, %llu expected",
		      (unsigned long long)version, (unsigned long long)expect);
		if (!secret) {
			fm_seal(&key, version, page, resealed);
		} else {
			/* seal.h's AEAD layout, again: the same nonce gives the same value */
			const uint8_t *t = in + FM_PAGE_SIZE, *nonce = t + 16;
			uint8_t ad[40];
			memcpy(resealed + FM_PAGE_SIZE, t, 16 + 24);
			for (int i = 0; i < 8; i++) {
				ad[i] = (uint8_t)(key.region[0] >> 8 * i);
				ad[8 + i] = (uint8_t)(key.region[1] >> 8 * i);
				ad[16 + i] = (uint8_t)(key.page >> 8 * i);
			}
			memcpy(ad + 24, t, 16);
			crypto_aead_xchacha20poly1305_ietf_encrypt_detached(resealed, resealed + FM_PAGE_SIZE + 40, NULL,
									    page, FM_PAGE_SIZE, ad, sizeof(ad), NULL,
									    nonce, secret);
		}
		CHECK(memcmp(resealed, in, size) == 0, "OK for a value that is not a sealed page");
	}
	free(in);
}

/* A proper seal, then mutations. */
static void mutated(const uint8_t *secret, const uint8_t *data, size_t size)
{
	static uint8_t page[FM_PAGE_SIZE], out[FM_PAGE_SIZE], sealed[FM_SEALED_MAX + 64], secret2[FM_SECRET_SIZE];
	const size_t full = fm_sealed_size(secret);
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
	CHECK(fm_seal_with(secret, &key, version, page, sealed) == full, "seal length");
	memset(sealed + full, 0, 64);

	int rc = fm_unseal_with(secret, &key, version, sealed, full, out, &got);
	CHECK(rc == FM_STORE_OK && got == version && memcmp(out, page, FM_PAGE_SIZE) == 0,
	      "a fresh seal does not unseal (rc %d)", rc);
	/* the other layout's reader refuses it, whatever the length given */
	static const uint8_t other_secret[FM_SECRET_SIZE] = { 1 };
	CHECK(fm_unseal_with(secret ? NULL : other_secret, &key, 0, sealed, full, out, NULL) == FM_STORE_CORRUPT &&
		      fm_unseal_with(secret ? NULL : other_secret, &key, 0, sealed, FM_SEALED_SIZE + FM_SEALED_AEAD_SIZE - full,
				     out, NULL) == FM_STORE_CORRUPT,
	      "a value unseals with the other layout");

	static uint8_t pristine[FM_SEALED_MAX];
	memcpy(pristine, sealed, full);

	/* mutations, 4 bytes each: op, and a 24-bit argument */
	size_t len = full;
	const uint8_t *sec2 = secret;
	if (secret)
		memcpy(secret2, secret, FM_SECRET_SIZE);
	struct fm_page_key k2 = key;
	uint64_t expect = version;
	bool changed = false;
	for (; size >= 4; data += 4, size -= 4) {
		uint32_t arg = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
		switch (data[0] % 7) {
		case 0: /* flip bits of one byte */
			if ((uint8_t)(arg >> 16)) {
				sealed[(arg & 0xffff) % full] ^= (uint8_t)(arg >> 16);
				changed = true;
			}
			break;
		case 1: /* set one byte */
			{
				size_t at = (arg & 0xffff) % full;
				if (sealed[at] != (uint8_t)(arg >> 16))
					changed = true;
				sealed[at] = (uint8_t)(arg >> 16);
			}
			break;
		case 2: /* length */
			len = (size_t)arg % (full + 64);
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
		case 6: /* the secret */
			if (secret) {
				secret2[arg % FM_SECRET_SIZE] ^= (uint8_t)(arg >> 8);
				sec2 = secret2;
			}
			break;
		}
	}
	bool same_meta = memcmp(&k2, &key, sizeof(key)) == 0 && (expect == 0 || expect == version) &&
			 (!secret || memcmp(sec2, secret, FM_SECRET_SIZE) == 0);
	bool same = !changed && len == full && same_meta;
	/* a flip may have been undone by another flip */
	if (changed && len == full && memcmp(sealed, pristine, full) == 0)
		same = same_meta;
	memset(out, 0x5a, sizeof(out));
	uint8_t *in = malloc(len ? len : 1);
	memcpy(in, sealed, len);
	rc = fm_unseal_with(sec2, &k2, expect, in, len, out, NULL);
	free(in);
	if (same)
		CHECK(rc == FM_STORE_OK && memcmp(out, page, FM_PAGE_SIZE) == 0, "an unchanged value fails (rc %d)", rc);
	else
		CHECK(rc == FM_STORE_CORRUPT, "a changed value (len %zu) unseals", len);

	/* in place: the page is unsealed over the value itself */
	if (same) {
		rc = fm_unseal_with(sec2, &k2, expect, sealed, full, sealed, &got);
		CHECK(rc == FM_STORE_OK && got == version && memcmp(sealed, page, FM_PAGE_SIZE) == 0,
		      "in-place unseal fails (rc %d)", rc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t secret[FM_SECRET_SIZE];
	if (size == 0 || size > 3 * FM_SEALED_MAX)
		return 0;
	const uint8_t *sec = NULL;
	if (data[0] & 2) {
		/* raw values: a fixed secret (fuzz/seeds.c seals a valid one
		 * with it); mutations: a hash of the input's tail, so it varies */
		memset(secret, 0x42, sizeof(secret));
		if (data[0] & 1)
			crypto_generichash(secret, sizeof(secret), data + size / 2, size - size / 2, NULL, 0);
		sec = secret;
	}
	if (data[0] & 1)
		mutated(sec, data + 1, size - 1);
	else
		raw_value(sec, data + 1, size - 1);
	return 0;
}
