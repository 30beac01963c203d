/* region.c - regions (a client's memfd as the monitor sees it), their page
 * states and eviction queues, and the maps from client addresses to regions.
 * Callers hold the owning client's lock. No uffd ioctls here except what
 * dropping pages needs; the fault path is fault.c, eviction evict.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "worker.h"

struct fm_region *region_new(struct fm_client *c, int memfd, uint64_t off, uint64_t len,
			     uint32_t flags, int *err)
{
	struct fm_region *r = calloc(1, sizeof(*r));
	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	if (getrandom(r->id, sizeof(r->id), 0) != sizeof(r->id) ||
	    getrandom(r->secret, sizeof(r->secret), 0) != sizeof(r->secret)) {
		*err = -errno;
		free(r);
		return NULL;
	}
	memcpy(r->sid, r->id, sizeof(r->sid));
	r->mon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, (off_t)off);
	if (r->mon == MAP_FAILED) {
		*err = -errno;
		free(r);
		return NULL;
	}
	r->owner = c;
	r->memfd = memfd;
	r->base_off = off;
	r->npages = len / PAGE;
	r->flags = flags;
	r->nchunks = (r->npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
	r->chunks = calloc(r->nchunks ? r->nchunks : 1, sizeof(*r->chunks));
	if (!r->chunks) {
		munmap(r->mon, len);
		free(r);
		*err = -ENOMEM;
		return NULL;
	}
	return r;
}

uint8_t *page_state(struct fm_region *r, uint64_t page, bool create)
{
	static uint8_t empty = PS_EMPTY;
	uint64_t c = page / CHUNK_PAGES;
	if (c >= r->nchunks)
		return create ? NULL : &empty;
	if (!r->chunks[c]) {
		if (!create)
			return &empty;
		/* the states, then each page's store version (uint32) */
		r->chunks[c] = calloc(CHUNK_PAGES, 1 + sizeof(uint32_t));
		if (!r->chunks[c])
			return NULL;
		/* after a restart: above every version the store may hold */
		uint32_t *v = (uint32_t *)(r->chunks[c] + CHUNK_PAGES);
		for (unsigned i = 0; r->vbase && i < CHUNK_PAGES; i++)
			v[i] = r->vbase;
	}
	return &r->chunks[c][page % CHUNK_PAGES];
}

/* The version of the page's copy in the store: bumped by every write, checked
 * by every read, so a stale or replayed copy is an integrity failure. */
uint32_t *page_version(struct fm_region *r, uint64_t page)
{
	static uint32_t none;
	uint64_t c = page / CHUNK_PAGES;
	if (c >= r->nchunks || !r->chunks[c]) {
		none = 0;
		return &none;
	}
	return (uint32_t *)(r->chunks[c] + CHUNK_PAGES) + page % CHUNK_PAGES;
}

int region_queue_push(struct fm_region *r, uint64_t page)
{
	if (r->qlen == r->qcap) {
		uint64_t ncap = r->qcap ? r->qcap * 2 : 1024;
		uint32_t *q = malloc(ncap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (uint64_t i = 0; i < r->qlen; i++)
			q[i] = r->queue[(r->qhead + i) % r->qcap];
		free(r->queue);
		r->queue = q;
		r->qcap = ncap;
		r->qhead = 0;
	}
	r->queue[(r->qhead + r->qlen) % r->qcap] = (uint32_t)page;
	r->qlen++;
	return 0;
}

/* Page `page` (state *s) became resident: to the back of the eviction FIFO.
 * One still queued from before goes to the back when that entry comes up. */
void region_enqueue(struct fm_region *r, uint64_t page, uint8_t *s)
{
	if (*s & PS_QUEUED) {
		if (D.opt.evict_sweep) /* only a sweep leaves entries this early */
			*s |= PS_REQUEUE;
	} else if (region_queue_push(r, page) == 0)
		*s |= PS_QUEUED;
}

int region_grow(struct fm_region *r, uint64_t new_len)
{
	uint64_t npages = new_len / PAGE;
	if (npages <= r->npages)
		return 0;
	if (npages > UINT32_MAX)
		return -EFBIG;
	void *m = mremap(r->mon, r->npages * PAGE, npages * PAGE, MREMAP_MAYMOVE);
	if (m == MAP_FAILED)
		return -errno;
	r->mon = m;
	uint64_t nchunks = (npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
	uint8_t **ch = realloc(r->chunks, nchunks * sizeof(*ch));
	if (!ch)
		return -ENOMEM; /* the mapping grew; the states stay short: faults there are refused */
	memset(ch + r->nchunks, 0, (nchunks - r->nchunks) * sizeof(*ch));
	r->chunks = ch;
	r->nchunks = nchunks;
	r->npages = npages;
	if (persist_grow(r, npages) < 0)
		fm_log("region %016llx: cannot grow its state file; a restart will not take it back",
		       (unsigned long long)r->id[0]);
	return 0;
}

/* Drop pages [first, first+count) of r: their contents become zeros, their
 * store copies go, resident ones leave the memfd. */
void region_drop_pages(struct fm_client *c, struct fm_region *r, uint64_t first, uint64_t count,
		       struct fm_store *st)
{
	struct fm_page_key keys[64];
	size_t nkeys = 0;
	int64_t unresident = 0;
	c = payer(c, r);
	if (first >= r->npages)
		return;
	if (first + count > r->npages)
		count = r->npages - first;
	inflight_cancel(c, r, first, count);
	for (uint64_t p = first; p < first + count; p++) {
		if (!r->chunks[p / CHUNK_PAGES]) {
			p |= CHUNK_PAGES - 1; /* an untouched chunk: nothing to drop */
			continue;
		}
		uint8_t *s = &r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES];
		persist_set(r, p, 0); /* before the punch below */
		if ((*s & PS_STATE) == PS_RESIDENT) {
			unresident++;
			r->resident--;
		}
		if ((*s & PS_STATE) == PS_STORED)
			r->stored--;
		/* a copy shared since a fork stays while someone else refers to it */
		if ((*s & PS_INSTORE) && copy_release(r, p, &keys[nkeys]) && ++nkeys == 64) {
			if (st)
				fm_store_remove(st, keys, nkeys);
			nkeys = 0;
		}
		instore(c, s, false);
		*s &= PS_QUEUED; /* EMPTY; a stale queue entry is skipped when popped */
	}
	if (nkeys && st)
		fm_store_remove(st, keys, nkeys);
	fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(r->base_off + first * PAGE), (off_t)(count * PAGE));
	if (unresident)
		account_resident(c, -unresident);

}

void region_free(struct fm_region *r, struct fm_store *st)
{
	struct fm_client *c = r->owner;
	/* A monitor stopping for a restart leaves the memfd, the store's
	 * copies and the state file to the next one. */
	if (!atomic_load(&D.keep_state) || !r->pfile)
		region_drop_pages(c, r, 0, r->npages, st);
	else if (r->resident)
		account_resident(c, -(int64_t)r->resident);
	persist_close(r);
	share_region_free(r);
	for (uint64_t i = 0; i < r->nchunks; i++)
		free(r->chunks[i]);
	free(r->chunks);
	free(r->queue);
	explicit_bzero(r->secret, sizeof(r->secret));
	munmap(r->mon, r->npages * PAGE);
	close(r->memfd);
	free(r->await);
	if (r->shared) { /* its holders' counters were settled when they left */
		free(r->views);
		free(r->holders);
		pthread_mutex_destroy(&r->lock);
	} else if (c) {
		c->st.regions--;
	}
	free(r);
}

struct fm_region *region_find(struct fm_client *c, const uint64_t id[2])
{
	for (struct fm_region *r = c->regions; r; r = r->next)
		if (r->id[0] == id[0] && r->id[1] == id[1])
			return r;
	return NULL;
}

/* Maps: a small array sorted by start; a heap region is one map, a program
 * with many large mmaps has one per mapping. */
struct fm_map *map_find(struct fm_client *c, uint64_t addr)
{
	size_t lo = 0, hi = c->nmaps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct fm_map *m = &c->maps[mid];
		if (addr < m->start)
			hi = mid;
		else if (addr >= m->start + m->len)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

int map_add(struct fm_client *c, uint64_t start, uint64_t len, struct fm_region *r, uint64_t page)
{
	if (!len)
		return 0;
	for (size_t i = 0; i < c->nmaps; i++)
		if (start < c->maps[i].start + c->maps[i].len && c->maps[i].start < start + len)
			return -EEXIST;
	if (c->nmaps == c->capmaps) {
		size_t ncap = c->capmaps ? c->capmaps * 2 : 8;
		struct fm_map *m = realloc(c->maps, ncap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		c->maps = m;
		c->capmaps = ncap;
	}
	if (r->shared && view_add(r, c, start, len, page) < 0)
		return -ENOMEM;
	size_t i = c->nmaps;
	while (i > 0 && c->maps[i - 1].start > start) {
		c->maps[i] = c->maps[i - 1];
		i--;
	}
	c->maps[i] = (struct fm_map){ .start = start, .len = len, .region = r, .page = page };
	c->nmaps++;
	return 0;
}

/* Is exactly this map there already? (A request sent again after a
 * re-attach found it made by the ATTACH.) */
bool map_has(struct fm_client *c, uint64_t start, uint64_t len, const struct fm_region *r, uint64_t page)
{
	struct fm_map *m = map_find(c, start);
	return m && m->start == start && m->len == len && m->region == r && m->page == page;
}

/* Remove [start, end) from the maps, splitting a map cut in the middle. */
void map_remove_range(struct fm_client *c, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < c->nmaps; i++) {
		struct fm_map m = c->maps[i];
		uint64_t mend = m.start + m.len;
		if (end <= m.start || start >= mend)
			continue;
		memmove(&c->maps[i], &c->maps[i + 1], (c->nmaps - i - 1) * sizeof(*c->maps));
		c->nmaps--;
		i--;
		if (m.region->shared)
			view_remove(m.region, c, m.start);
		if (m.start < start)
			map_add(c, m.start, start - m.start, m.region, m.page);
		if (end < mend)
			map_add(c, end, mend - end, m.region, m.page + (end - m.start) / PAGE);
		if (m.start < start || end < mend)
			i = (size_t)-1; /* the array was reordered: rescan */
	}
}

/* An mremap nobody announced (remap.c handles those that were) moved
 * [from, from+len) to `to`: the whole map or part of one. */
int map_move(struct fm_client *c, uint64_t from, uint64_t to, uint64_t len)
{
	struct fm_map *m = map_find(c, from);
	if (!m)
		return -ENOENT;
	struct fm_region *r = m->region;
	uint64_t page = m->page + (from - m->start) / PAGE;
	map_remove_range(c, from, from + len);
	map_remove_range(c, to, to + len); /* the kernel unmapped whatever was there */
	return map_add(c, to, len, r, page);
}

/* Free regions no map refers to any more (the client unmapped them); leave
 * the shared ones it no longer maps. */
void client_release_unmapped(struct fm_client *c, struct fm_store *st)
{
	shared_settle(c, st);
	struct fm_region **pp = &c->regions;
	while (*pp) {
		struct fm_region *r = *pp;
		bool used = false;
		for (size_t i = 0; i < c->nmaps && !used; i++)
			used = c->maps[i].region == r;
		if (used) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		fm_debug("pid %d: region %016llx freed (unmapped)", (int)c->pid,
			 (unsigned long long)r->id[0]);
		region_free(r, st);
	}
}

/* An operator drops a region (fluidmem drop): its pages and store data go,
 * and its process gets SIGBUS wherever it touches it from now on. */
int region_drop(const uint64_t id[2])
{
	size_t n;
	struct fm_client **v = clients_get(&n); /* D.lock is not held while waiting for a client's */
	for (size_t i = 0; i < n; i++) {
		struct fm_client *c = v[i];
		pthread_mutex_lock(&c->lock);
		struct fm_region *r = region_find(c, id);
		if (r) {
			region_drop_pages(c, r, 0, r->npages, worker_store());
			r->dropped = true;
			persist_dropped(r);
			fm_log("pid %d: region %016llx%016llx dropped by the operator", (int)c->pid,
			       (unsigned long long)id[0], (unsigned long long)id[1]);
		}
		pthread_mutex_unlock(&c->lock);
		if (r) {
			clients_put(v, n);
			return 0;
		}
	}
	clients_put(v, n);
	return -ENOENT;
}
