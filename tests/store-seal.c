/* store-seal.c - a sealed page unseals only under its own key and version
 * and with every byte intact: each single-bit flip of value or trailer, a
 * value moved to another page's or region's key, a stale version, a short or
 * long value are all FM_STORE_CORRUPT and leave the output untouched.
 * Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/store/seal.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL line %d: ", __LINE__); \
	printf(__VA_ARGS__); printf("\n"); failures++; } } while (0)

int main(void)
{
	static unsigned char page[FM_PAGE_SIZE], out[FM_PAGE_SIZE], v[FM_SEALED_SIZE + 1];
	struct fm_page_key k = { { 0x1122334455667788ull, 0x99aabbccddeeff00ull }, 42 };
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (unsigned char)(i * 7 + 3);
	fm_seal(&k, 9, page, v);
	CHECK(memcmp(v, page, FM_PAGE_SIZE) == 0, "page bytes stored first");

	uint64_t ver = 0;
	CHECK(fm_unseal(&k, 0, v, FM_SEALED_SIZE, out, &ver) == FM_STORE_OK, "roundtrip, any version");
	CHECK(ver == 9 && memcmp(out, page, FM_PAGE_SIZE) == 0, "roundtrip bytes and version");
	CHECK(fm_unseal(&k, 9, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_OK, "roundtrip, version 9");

	memset(out, 0xEE, sizeof(out));
	struct fm_page_key other = k;
	other.page = 43;
	CHECK(fm_unseal(&other, 0, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_CORRUPT, "other page's key");
	other = k;
	other.region[1] ^= 1;
	CHECK(fm_unseal(&other, 0, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_CORRUPT, "other region's key");
	CHECK(fm_unseal(&k, 8, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_CORRUPT, "stale version");
	CHECK(fm_unseal(&k, 0, v, FM_SEALED_SIZE - 1, out, NULL) == FM_STORE_CORRUPT, "short value");
	CHECK(fm_unseal(&k, 0, v, FM_SEALED_SIZE + 1, out, NULL) == FM_STORE_CORRUPT, "long value");
	CHECK(fm_unseal(&k, 0, v, FM_PAGE_SIZE, out, NULL) == FM_STORE_CORRUPT, "bare page, no trailer");

	size_t flips = 0, caught = 0;
	for (size_t byte = 0; byte < FM_SEALED_SIZE; byte += (byte < FM_PAGE_SIZE ? 61 : 1)) {
		for (int bit = 0; bit < 8; bit++) {
			v[byte] ^= (unsigned char)(1u << bit);
			flips++;
			caught += fm_unseal(&k, 0, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_CORRUPT;
			v[byte] ^= (unsigned char)(1u << bit);
		}
	}
	CHECK(caught == flips, "bit flips caught: %zu of %zu", caught, flips);
	for (size_t i = 0; i < sizeof(out); i++)
		if (out[i] != 0xEE) {
			CHECK(0, "a failed unseal wrote into the output at byte %zu", i);
			break;
		}
	CHECK(fm_unseal(&k, 9, v, FM_SEALED_SIZE, out, NULL) == FM_STORE_OK, "restored value unseals");
	if (failures)
		return 1;
	printf("seal passed: %zu single-bit flips caught\n", flips);
	return 0;
}
