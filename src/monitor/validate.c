/* validate.c - stateless checks of client requests (see validate.h). Kept
 * apart from client.c so that a fuzzer can call them without a daemon, a
 * socket or a single real descriptor. */
#include <errno.h>

#include "validate.h"

#define VPAGE 4096ull

int proto_check_register(const struct fm_register *rq, int64_t memfd_size, const char **why)
{
	*why = "bad registration";
	if (!rq->len || rq->len % VPAGE || rq->addr % VPAGE || rq->offset % VPAGE) {
		*why = "region address, length and offset must be non-zero page multiples";
		return -EINVAL;
	}
	if (rq->len > FM_MAX_REGION_BYTES || rq->addr + rq->len < rq->addr) {
		*why = "region larger than 64 TiB";
		return -EFBIG;
	}
	if (memfd_size < 0) {
		*why = "the descriptor is not a memfd";
		return -EBADF;
	}
	/* offset + len could wrap: compare without adding */
	if (rq->offset > (uint64_t)memfd_size || (uint64_t)memfd_size - rq->offset < rq->len) {
		*why = "the memfd is smaller than the registered range";
		return -EINVAL;
	}
	return 0;
}

int proto_check_grow(const struct fm_grow *g, uint64_t base_off, int64_t memfd_size, const char **why)
{
	*why = "bad size";
	if (g->new_len % VPAGE || g->new_len > FM_MAX_REGION_BYTES)
		return -EINVAL;
	if (memfd_size < 0 || (uint64_t)memfd_size < base_off + g->new_len) {
		*why = "the memfd is smaller than the new length";
		return -EINVAL;
	}
	return 0;
}

int proto_check_mremap(const struct fm_mremap *m, const char **why)
{
	*why = "bad mremap range";
	if (!m->old_len || m->old_len % VPAGE || m->old_addr % VPAGE || !m->new_len || m->new_len % VPAGE ||
	    m->new_addr % VPAGE)
		return -EINVAL;
	if (m->old_len > FM_MAX_REGION_BYTES || m->new_len > FM_MAX_REGION_BYTES ||
	    m->old_addr + m->old_len < m->old_addr || m->new_addr + m->new_len < m->new_addr) {
		*why = "mremap range larger than 64 TiB or wrapping";
		return -EINVAL;
	}
	return 0;
}

int proto_check_adopt(const struct fm_adopt *a, uint64_t npages, const char **why)
{
	*why = "bad adopt range";
	if (a->len % VPAGE || a->addr % VPAGE || a->offset % VPAGE ||
	    a->offset / VPAGE + a->len / VPAGE > npages || a->addr + a->len < a->addr)
		return -EINVAL;
	return 0;
}

int proto_check_attach(const struct fm_attach *a, int64_t memfd_size, const char **why)
{
	*why = "region address, length, offset and pages must be page multiples, the map inside the region";
	if (!a->len || !a->npages || a->len % VPAGE || a->addr % VPAGE || a->base_off % VPAGE)
		return -EINVAL;
	if (a->npages > FM_MAX_REGION_BYTES / VPAGE || a->addr + a->len < a->addr) {
		*why = "region larger than 64 TiB";
		return -EFBIG;
	}
	if (a->map_page > a->npages || a->len / VPAGE > a->npages - a->map_page)
		return -EINVAL;
	if (memfd_size < 0) {
		*why = "the descriptor is not a memfd";
		return -EBADF;
	}
	if (a->base_off > (uint64_t)memfd_size || ((uint64_t)memfd_size - a->base_off) / VPAGE < a->npages) {
		*why = "the memfd is smaller than the region";
		return -EINVAL;
	}
	return 0;
}
