/* seal.h - integrity framing, and encryption, of pages kept by remote stores.
 *
 * A sealed value is the 4096 page bytes (plain or encrypted) followed by a
 * trailer. Its first 16 bytes are the same in both layouts:
 *
 *   offset 4096  magic "FMPG"          4 bytes
 *          4100  format (1)            1 byte
 *          4101  algorithm             1 byte: 1 = XXH3-128 checksum,
 *                                              2 = XChaCha20-Poly1305-IETF
 *          4102  reserved, zero        2 bytes
 *          4104  page version          8 bytes, little endian
 *
 * Algorithm 1, checksum only (no secret): FM_SEALED_SIZE = 4128 bytes.
 *   offset    0  the page, in clear    4096 bytes
 *          4112  checksum              16 bytes, XXH3-128 (canonical, big endian)
 *                of the page data, seeded with XXH3-64 of region id, page
 *                index and bytes 4096..4111
 *
 * Algorithm 2, AEAD with the region's secret: FM_SEALED_AEAD_SIZE = 4152 bytes.
 *   offset    0  ciphertext            4096 bytes, the page under
 *                XChaCha20-Poly1305-IETF (libsodium, detached), key = the
 *                region's secret (FM_SECRET_SIZE bytes)
 *          4112  nonce                 24 bytes, random, fresh for every seal
 *          4136  tag                   16 bytes, Poly1305
 *   Additional data (authenticated, not stored twice): region id (2 x 8),
 *   page index (8), all little endian, then bytes 4096..4111 (magic, format,
 *   algorithm, version).
 *
 * Because the key is inside the checksum or the additional data, a value
 * copied from page A's key to page B's fails to unseal under B; because the
 * version is, an older value put back fails a read that names the version it
 * expects (a read that accepts any version cannot tell: replay protection
 * needs the caller to track versions). The checksum detects accidents (bit
 * rot, a wrong key, a foreign writer), not an attacker: an attacker can
 * recompute it. The AEAD also hides the page and detects an attacker who
 * does not know the secret. A value sealed with a secret read without one,
 * or the other way round, is FM_STORE_CORRUPT; so is a value under a wrong
 * secret. Cost per page (seal + unseal, measured in docs/stores.md): a few
 * hundred ns for the checksum, a few microseconds for the AEAD.
 *
 * Backends call fm_seal_init() once when they open, size their buffers with
 * FM_SEALED_MAX, and call fm_seal_with()/fm_unseal_with() with the io's
 * secret; they never parse a value.
 *
 * Not here: keys (the monitor generates and keeps them), I/O, storage. The
 * only global state is libsodium's one-time initialisation. */
#ifndef FLUIDMEM_STORE_SEAL_H
#define FLUIDMEM_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "fluidmem/store.h"

#define FM_SEAL_TRAILER 32
#define FM_SEALED_SIZE (FM_PAGE_SIZE + FM_SEAL_TRAILER)           /* checksum layout: 4128 */
#define FM_SEAL_AEAD_TRAILER 56
#define FM_SEALED_AEAD_SIZE (FM_PAGE_SIZE + FM_SEAL_AEAD_TRAILER) /* AEAD layout: 4152 */
#define FM_SEALED_MAX FM_SEALED_AEAD_SIZE                         /* room for either */

/* The length of a value sealed with secret (NULL: checksum only). */
static inline size_t fm_sealed_size(const unsigned char *secret)
{
	return secret ? FM_SEALED_AEAD_SIZE : FM_SEALED_SIZE;
}

/* Initialise libsodium, once per process (thread-safe, cheap after the first
 * call). 0, or -EIO when libsodium cannot start: then nothing can be sealed
 * with a secret. */
int fm_seal_init(void);

/* Seal page (FM_PAGE_SIZE bytes) stored under key with version into out
 * (fm_sealed_size(secret) bytes, at most FM_SEALED_MAX), encrypted with
 * secret (FM_SECRET_SIZE bytes) unless it is NULL. page and out must not
 * overlap. Returns the length written. With a secret, fm_seal_init() must
 * have returned 0 (it is called again here; if it failed, nothing is written
 * and 0 is returned). */
size_t fm_seal_with(const unsigned char *secret, const struct fm_page_key *key, uint64_t version,
		    const void *page, void *out);

/* Check (and decrypt, with a secret) a value of len bytes read back under key
 * and copy its page into page (FM_PAGE_SIZE bytes, written only on success;
 * may be in itself). expect_version 0 accepts any version. The version found
 * is stored in *version if not NULL. Returns FM_STORE_OK or FM_STORE_CORRUPT
 * (wrong size, magic, format, algorithm, key, version, checksum, tag or
 * secret). */
int fm_unseal_with(const unsigned char *secret, const struct fm_page_key *key, uint64_t expect_version,
		   const void *in, size_t len, void *page, uint64_t *version);

/* The checksum layout: fm_seal_with() and fm_unseal_with() without a secret. */
void fm_seal(const struct fm_page_key *key, uint64_t version, const void *page, void *out);
int fm_unseal(const struct fm_page_key *key, uint64_t expect_version, const void *in, size_t len,
	      void *page, uint64_t *version);

#endif
