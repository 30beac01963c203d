/* fuzz-validate.c - the monitor's checks of client requests
 * (src/monitor/validate.c): REGISTER, GROW, ADOPT, ATTACH and MREMAP payloads come from any
 * process that can connect to the socket.
 *
 * The first input byte picks the request; the rest fills its struct and the
 * numbers the monitor would have looked up (memfd size, base offset, pages).
 * Each check is compared with the rule written again here in 128-bit
 * arithmetic, both ways: what it accepts must be a range that fits (no
 * wrapped end address, inside the memfd), and what fits must be accepted.
 * A rejection carries a reason and an errno the protocol documents.
 * sources: src/monitor/validate.c */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "validate.h"

#define P 4096u
typedef unsigned __int128 u128;
static const u128 END = (u128)1 << 64; /* the first address that does not exist */

static uint64_t take64(const uint8_t **d, size_t *n)
{
	uint64_t v = 0;
	size_t k = *n < 8 ? *n : 8;
	memcpy(&v, *d, k);
	*d += k;
	*n -= k;
	/* small values and page multiples are where the edges are */
	switch (v >> 61) {
	case 0: return v & 0xffffff000ull;
	case 1: return v & ~0xfffull;
	case 2: return (uint64_t)0 - (v & 0x3ffff000ull);
	default: return v;
	}
}

static void check_register(const uint8_t *d, size_t n)
{
	struct fm_register rq = { 0 };
	rq.addr = take64(&d, &n);
	rq.len = take64(&d, &n);
	rq.offset = take64(&d, &n);
	rq.flags = (uint32_t)take64(&d, &n);
	int64_t size = (int64_t)take64(&d, &n);
	const char *why = NULL;
	int rc = proto_check_register(&rq, size, &why);
	bool fits = rq.len && rq.len % P == 0 && rq.addr % P == 0 && rq.offset % P == 0 &&
		    rq.len <= FM_MAX_REGION_BYTES && (u128)rq.addr + rq.len < END && size >= 0 &&
		    (u128)rq.offset + rq.len <= (u128)size;
	CHECK(rc == 0 || rc == -EINVAL || rc == -EFBIG || rc == -EBADF, "register: %d", rc);
	CHECK(rc == 0 || (why && why[0]), "register refused (%d) without a reason", rc);
	CHECK(!rc == fits, "register addr %#llx len %#llx offset %#llx in a memfd of %lld: %s (%s)",
	      (unsigned long long)rq.addr, (unsigned long long)rq.len, (unsigned long long)rq.offset,
	      (long long)size, rc ? "refused" : "accepted", rc ? why : "");
}

static void check_grow(const uint8_t *d, size_t n)
{
	struct fm_grow g = { { 0, 0 }, 0 };
	g.region[0] = take64(&d, &n);
	g.region[1] = take64(&d, &n);
	g.new_len = take64(&d, &n);
	/* the region was registered: its offset is inside a memfd */
	uint64_t base = take64(&d, &n) & INT64_MAX;
	int64_t size = (int64_t)take64(&d, &n);
	const char *why = NULL;
	int rc = proto_check_grow(&g, base, size, &why);
	bool fits = g.new_len % P == 0 && g.new_len <= FM_MAX_REGION_BYTES && size >= 0 &&
		    (u128)base + g.new_len <= (u128)size;
	CHECK(rc == 0 || rc == -EINVAL, "grow: %d", rc);
	CHECK(rc == 0 || (why && why[0]), "grow refused (%d) without a reason", rc);
	CHECK(!rc == fits, "grow to %#llx at base %#llx of a memfd of %lld: %s",
	      (unsigned long long)g.new_len, (unsigned long long)base, (long long)size,
	      rc ? "refused" : "accepted");
}

static void check_adopt(const uint8_t *d, size_t n)
{
	struct fm_adopt a = { { 0, 0 }, 0, 0, 0 };
	a.clone[0] = take64(&d, &n);
	a.clone[1] = take64(&d, &n);
	a.addr = take64(&d, &n);
	a.len = take64(&d, &n);
	a.offset = take64(&d, &n);
	uint64_t npages = take64(&d, &n) >> 12 & 0xffffffffu; /* a region has < 2^32 pages */
	const char *why = NULL;
	int rc = proto_check_adopt(&a, npages, &why);
	bool fits = a.len % P == 0 && a.addr % P == 0 && a.offset % P == 0 &&
		    (u128)a.addr + a.len < END && (u128)a.offset + a.len <= (u128)npages * P;
	CHECK(rc == 0 || rc == -EINVAL, "adopt: %d", rc);
	CHECK(rc == 0 || (why && why[0]), "adopt refused (%d) without a reason", rc);
	CHECK(!rc == fits, "adopt addr %#llx len %#llx offset %#llx of a clone of %llu pages: %s",
	      (unsigned long long)a.addr, (unsigned long long)a.len, (unsigned long long)a.offset,
	      (unsigned long long)npages, rc ? "refused" : "accepted");
}

static void check_attach(const uint8_t *d, size_t n)
{
	struct fm_attach a;
	memset(&a, 0, sizeof(a));
	a.region[0] = take64(&d, &n);
	a.region[1] = take64(&d, &n);
	a.addr = take64(&d, &n);
	a.len = take64(&d, &n);
	a.map_page = take64(&d, &n) >> 12;
	a.base_off = take64(&d, &n);
	a.npages = take64(&d, &n) >> 12;
	int64_t size = (int64_t)take64(&d, &n);
	const char *why = NULL;
	int rc = proto_check_attach(&a, size, &why);
	bool fits = a.len && a.npages && a.len % P == 0 && a.addr % P == 0 && a.base_off % P == 0 &&
		    a.npages <= FM_MAX_REGION_BYTES / P && (u128)a.addr + a.len < END &&
		    (u128)a.map_page + a.len / P <= a.npages && size >= 0 &&
		    (u128)a.base_off + (u128)a.npages * P <= (u128)size;
	CHECK(rc == 0 || rc == -EINVAL || rc == -EFBIG || rc == -EBADF, "attach: %d", rc);
	CHECK(rc == 0 || (why && why[0]), "attach refused (%d) without a reason", rc);
	CHECK(!rc == fits, "attach addr %#llx len %#llx page %llu of %llu pages at %#llx of a memfd of %lld: %s (%s)",
	      (unsigned long long)a.addr, (unsigned long long)a.len, (unsigned long long)a.map_page,
	      (unsigned long long)a.npages, (unsigned long long)a.base_off, (long long)size,
	      rc ? "refused" : "accepted", rc ? why : "");
}

static void check_mremap(const uint8_t *d, size_t n)
{
	struct fm_mremap m;
	memset(&m, 0, sizeof(m));
	m.old_addr = take64(&d, &n);
	m.old_len = take64(&d, &n);
	m.new_len = take64(&d, &n);
	m.new_addr = take64(&d, &n);
	m.flags = (uint32_t)take64(&d, &n);
	const char *why = NULL;
	int rc = proto_check_mremap(&m, &why);
	bool fits = m.old_len && m.new_len && m.old_len % P == 0 && m.new_len % P == 0 &&
		    m.old_addr % P == 0 && m.new_addr % P == 0 && m.old_len <= FM_MAX_REGION_BYTES &&
		    m.new_len <= FM_MAX_REGION_BYTES && (u128)m.old_addr + m.old_len < END &&
		    (u128)m.new_addr + m.new_len < END;
	CHECK(rc == 0 || rc == -EINVAL, "mremap: %d", rc);
	CHECK(rc == 0 || (why && why[0]), "mremap refused (%d) without a reason", rc);
	CHECK(!rc == fits, "mremap %#llx+%#llx to %#llx+%#llx: %s",
	      (unsigned long long)m.old_addr, (unsigned long long)m.old_len,
	      (unsigned long long)m.new_addr, (unsigned long long)m.new_len, rc ? "refused" : "accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0: check_register(data + 1, size - 1); break;
	case 1: check_grow(data + 1, size - 1); break;
	case 2: check_adopt(data + 1, size - 1); break;
	case 3: check_attach(data + 1, size - 1); break;
	case 4: check_mremap(data + 1, size - 1); break;
	}
	return 0;
}
