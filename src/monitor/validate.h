/* validate.h - the checks of a client's requests that need no state: pure
 * functions of the request and a few numbers the caller looked up (the size
 * of a memfd, a region's length). client.c calls them; fuzz/fuzz-validate.c
 * feeds them arbitrary requests.
 *
 * Not here: lookups (regions, overlaps with existing maps), fd kinds. Each
 * returns 0 or -errno and sets *why to a one-line reason for the client. */
#ifndef FM_VALIDATE_H
#define FM_VALIDATE_H

#include <stdint.h>

#include "proto.h"

#define FM_MAX_REGION_BYTES (1ull << 46) /* 64 TiB: page indexes fit 32 bits */

/* FM_MSG_REGISTER. memfd_size: the memfd's st_size, or < 0 when the
 * descriptor is not a memfd (fstat failed, not a regular file, no seals). */
int proto_check_register(const struct fm_register *rq, int64_t memfd_size, const char **why);

/* FM_MSG_GROW of a region mapped from base_off of its memfd. memfd_size:
 * st_size, or < 0 when fstat failed. */
int proto_check_grow(const struct fm_grow *g, uint64_t base_off, int64_t memfd_size, const char **why);

/* FM_MSG_MREMAP_BEGIN: page-multiple, non-empty, non-wrapping ranges. */
int proto_check_mremap(const struct fm_mremap *m, const char **why);

/* FM_MSG_ADOPT of a fork clone of npages pages. */
int proto_check_adopt(const struct fm_adopt *a, uint64_t npages, const char **why);

/* FM_MSG_ATTACH: a region back to a restarted monitor; memfd_size as for
 * REGISTER. The map [map_page, map_page + len/4096) must lie in the region's
 * npages, the region in the memfd. */
int proto_check_attach(const struct fm_attach *a, int64_t memfd_size, const char **why);

#endif
