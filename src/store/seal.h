/* seal.h - integrity framing of pages kept by remote stores.
 *
 * A sealed value is the 4096 page bytes followed by a 32-byte trailer:
 *
 *   offset 4096  magic "FMPG"          4 bytes
 *          4100  format (1)            1 byte
 *          4101  algorithm (1 = XXH3-128 checksum)  1 byte
 *          4102  reserved, zero        2 bytes
 *          4104  page version          8 bytes, little endian
 *          4112  checksum              16 bytes, XXH3-128 (canonical, big endian)
 *                of the page data, seeded with XXH3-64 of region id, page
 *                index and bytes 4096..4111
 *
 * Because the key is inside the checksum, a value copied from page A's key to
 * page B's fails to unseal under B. The checksum detects accidents (bit rot, a
 * wrong key, a foreign writer), not an attacker: an attacker can recompute it.
 * The algorithm byte leaves room for an AEAD (libsodium, a key per region,
 * looked up from the region id by this module): the trailer then grows, so
 * backends use FM_SEALED_SIZE and these two calls and never parse a value.
 *
 * Not here: keys, I/O, storage. */
#ifndef FLUIDMEM_STORE_SEAL_H
#define FLUIDMEM_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "fluidmem/store.h"

#define FM_SEAL_TRAILER 32
#define FM_SEALED_SIZE (FM_PAGE_SIZE + FM_SEAL_TRAILER)

/* Seal page (FM_PAGE_SIZE bytes) stored under key with version into out
 * (FM_SEALED_SIZE bytes). page and out must not overlap. */
void fm_seal(const struct fm_page_key *key, uint64_t version, const void *page, void *out);

/* Check a value of len bytes read back under key and copy its page into page
 * (FM_PAGE_SIZE bytes, written only on success). expect_version 0 accepts
 * any version. The version found is stored in *version if not NULL.
 * Returns FM_STORE_OK or FM_STORE_CORRUPT (wrong size, magic, format, key,
 * version or checksum). */
int fm_unseal(const struct fm_page_key *key, uint64_t expect_version, const void *in, size_t len,
	      void *page, uint64_t *version);

#endif
