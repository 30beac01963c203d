/* local.c - the embedded store: pages kept in the monitor's own memory.
 *
 * Pages live in 64 MiB slabs mapped with mmap. A freed page's slot goes onto a
 * stack of free slots; beyond the newest 4096 of them (16 MiB) their pages go
 * back to the kernel (MADV_FREE: reclaimed lazily, reused in place), so the
 * monitor's memory follows what is stored, within 16 MiB. Each region maps page
 * index -> slot through chunks of 4096 slot numbers allocated on first use:
 * 4 bytes per stored page plus 16 KiB per 16 MiB of region touched. All
 * handles share one table (the data is the monitor's), guarded by one mutex:
 * every operation is a memcpy, shorter than any contention it could cause.
 *
 * Not here: integrity checks (this memory is the monitor's own) and limits
 * other than the address space; a failed slab mmap is FM_STORE_FULL. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fluidmem/store.h"

#define SLAB_PAGES 16384u /* 64 MiB */
#define CHUNK_SLOTS 4096u
#define HOT_SLOTS 4096u   /* free slots kept backed (16 MiB), see slot_free */

struct local_region {
	uint64_t id[2];
	uint32_t **chunks; /* chunks[page / CHUNK_SLOTS][page % CHUNK_SLOTS] = slot, 0 = none */
	size_t nchunks;
	size_t stored;     /* pages held: the table is freed when it drops to 0 */
	int used;          /* slot in the hash table is taken (a removed region stays as a tombstone) */
};

static struct {
	pthread_mutex_t lock;
	char **slabs;
	size_t nslabs;
	uint32_t *free_slots;          /* stack of free slot numbers */
	size_t nfree, capfree;
	size_t ncold;                  /* free_slots[0..ncold) were given back (MADV_FREE) */
	uint32_t next_fresh;           /* slots below this were handed out at least once */
	struct local_region *regions;  /* open addressing, capacity a power of two */
	size_t cap, count;
	size_t pages_stored;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct local_store {
	struct fm_store base;
};

extern const struct fm_store_ops fm_store_local_ops;

static char *slot_page(uint32_t slot)
{
	uint32_t i = slot - 1;
	return L.slabs[i / SLAB_PAGES] + (size_t)(i % SLAB_PAGES) * FM_PAGE_SIZE;
}

static uint32_t slot_alloc(void)
{
	if (L.nfree) {
		if (L.ncold == L.nfree)
			L.ncold--;
		return L.free_slots[--L.nfree];
	}
	if (L.next_fresh == L.nslabs * SLAB_PAGES) {
		if (L.nslabs == UINT32_MAX / SLAB_PAGES)
			return 0;
		char **slabs = realloc(L.slabs, (L.nslabs + 1) * sizeof(*slabs));
		if (!slabs)
			return 0;
		L.slabs = slabs;
		void *p = mmap(NULL, (size_t)SLAB_PAGES * FM_PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return 0;
		L.slabs[L.nslabs++] = p;
	}
	return ++L.next_fresh;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Give the pages of slots back to the kernel, a run of consecutive slots of
 * one slab per madvise: a program's exit frees its pages in page order, and
 * their slots were mostly handed out in that order (one call per 4 KiB page
 * held the store's lock ~1 us a page longer). L.lock held: a slot on the
 * free list may be taken again as soon as it is let go. */
static void give_back(uint32_t *slots, size_t n)
{
	qsort(slots, n, sizeof(*slots), cmp_u32);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && slots[j] == slots[j - 1] + 1 && (slots[j] - 1) % SLAB_PAGES != 0; j++)
			;
		madvise(slot_page(slots[i]), (j - i) * FM_PAGE_SIZE, MADV_FREE);
	}
}

/* Returns a slot whose page should go back to the kernel (give_back), or 0. */
static uint32_t slot_free(uint32_t slot)
{
	if (L.nfree == L.capfree) {
		size_t ncap = L.capfree ? L.capfree * 2 : 4096;
		uint32_t *n = realloc(L.free_slots, ncap * sizeof(*n));
		if (!n)
			return 0; /* the slot leaks; nothing breaks */
		L.free_slots = n;
		L.capfree = ncap;
	}
	L.free_slots[L.nfree++] = slot;
	/* The newest HOT_SLOTS free slots keep their memory: under paging a
	 * slot freed by a fault is taken again by the next eviction, and giving
	 * it back in between costs a madvise, then a page fault and a zeroed
	 * page in the monitor. Older ones go back to the kernel. */
	return L.nfree - L.ncold > HOT_SLOTS ? L.free_slots[L.ncold++] : 0;
}

static size_t region_hash(const uint64_t id[2])
{
	uint64_t h = id[0] ^ (id[1] * 0x9E3779B97F4A7C15ull);
	return (size_t)(h ^ (h >> 29));
}

static struct local_region *region_find(const uint64_t id[2], int create)
{
	if (create && (L.count + 1) * 2 > L.cap) {
		size_t ncap = L.cap ? L.cap * 2 : 64;
		struct local_region *n = calloc(ncap, sizeof(*n));
		if (!n)
			return NULL;
		L.count = 0; /* tombstones are dropped by the rehash */
		for (size_t i = 0; i < L.cap; i++) {
			if (!L.regions[i].used || !L.regions[i].chunks)
				continue;
			size_t j = region_hash(L.regions[i].id) & (ncap - 1);
			while (n[j].used)
				j = (j + 1) & (ncap - 1);
			n[j] = L.regions[i];
			L.count++;
		}
		free(L.regions);
		L.regions = n;
		L.cap = ncap;
	}
	if (!L.cap)
		return NULL;
	size_t j = region_hash(id) & (L.cap - 1);
	struct local_region *tomb = NULL;
	while (L.regions[j].used) {
		struct local_region *r = &L.regions[j];
		if (r->id[0] == id[0] && r->id[1] == id[1] && r->chunks)
			return r;
		if (!r->chunks && !tomb)
			tomb = r;
		j = (j + 1) & (L.cap - 1);
	}
	if (!create)
		return NULL;
	struct local_region *r = tomb ? tomb : &L.regions[j];
	if (!tomb)
		L.count++;
	r->used = 1;
	r->id[0] = id[0];
	r->id[1] = id[1];
	r->nchunks = 0;
	r->stored = 0;
	r->chunks = calloc(1, sizeof(uint32_t *));
	return r->chunks ? r : NULL;
}

static uint32_t *slot_ref(struct local_region *r, uint64_t page, int create)
{
	size_t c = page / CHUNK_SLOTS;
	if (c >= r->nchunks) {
		if (!create)
			return NULL;
		uint32_t **n = realloc(r->chunks, (c + 1) * sizeof(*n));
		if (!n)
			return NULL;
		memset(n + r->nchunks, 0, (c + 1 - r->nchunks) * sizeof(*n));
		r->chunks = n;
		r->nchunks = c + 1;
	}
	if (!r->chunks[c]) {
		if (!create)
			return NULL;
		r->chunks[c] = calloc(CHUNK_SLOTS, sizeof(uint32_t));
		if (!r->chunks[c])
			return NULL;
	}
	return &r->chunks[c][page % CHUNK_SLOTS];
}

static int local_open(const char *url, struct fm_store **out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	if (strcmp(url, "local://") != 0 && strcmp(url, "local:///") != 0) {
		snprintf(err, errlen, "local store takes no address: use local://");
		return -EINVAL;
	}
	struct local_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &fm_store_local_ops;
	*out = &s->base;
	return 0;
}

static void local_close(struct fm_store *s)
{
	free(s);
}

static int local_read(struct fm_store *s, struct fm_store_io *ios, size_t n)
{
	(void)s;
	pthread_mutex_lock(&L.lock);
	for (size_t i = 0; i < n; i++) {
		struct local_region *r = region_find(ios[i].key.region, 0);
		uint32_t *ref = r ? slot_ref(r, ios[i].key.page, 0) : NULL;
		if (!ref || !*ref) {
			ios[i].status = FM_STORE_MISSING;
			continue;
		}
		memcpy(ios[i].page, slot_page(*ref), FM_PAGE_SIZE);
		ios[i].status = FM_STORE_OK;
	}
	pthread_mutex_unlock(&L.lock);
	return 0;
}

static int local_write(struct fm_store *s, struct fm_store_io *ios, size_t n)
{
	(void)s;
	pthread_mutex_lock(&L.lock);
	for (size_t i = 0; i < n; i++) {
		struct local_region *r = region_find(ios[i].key.region, 1);
		uint32_t *ref = r ? slot_ref(r, ios[i].key.page, 1) : NULL;
		if (ref && !*ref) {
			*ref = slot_alloc();
			if (*ref) {
				L.pages_stored++;
				r->stored++;
			}
		}
		if (!ref || !*ref) {
			ios[i].status = FM_STORE_FULL;
			continue;
		}
		memcpy(slot_page(*ref), ios[i].page, FM_PAGE_SIZE);
		ios[i].status = FM_STORE_OK;
	}
	pthread_mutex_unlock(&L.lock);
	return 0;
}

static void region_release(struct local_region *r)
{
	for (size_t c = 0; c < r->nchunks; c++)
		free(r->chunks[c]);
	free(r->chunks);
	r->chunks = NULL; /* stays used: a tombstone for the probe sequence */
	r->nchunks = 0;
}

static int local_remove(struct fm_store *s, const struct fm_page_key *keys, size_t n)
{
	uint32_t cold[256];
	size_t ncold = 0;
	(void)s;
	pthread_mutex_lock(&L.lock);
	for (size_t i = 0; i < n; i++) {
		struct local_region *r = region_find(keys[i].region, 0);
		uint32_t *ref = r ? slot_ref(r, keys[i].page, 0) : NULL;
		if (!ref || !*ref)
			continue;
		if ((cold[ncold] = slot_free(*ref)) != 0 && ++ncold == sizeof(cold) / sizeof(cold[0])) {
			give_back(cold, ncold);
			ncold = 0;
		}
		*ref = 0;
		L.pages_stored--;
		if (--r->stored == 0)
			region_release(r);
	}
	give_back(cold, ncold);
	pthread_mutex_unlock(&L.lock);
	return 0;
}

static void local_describe(struct fm_store *s, char *buf, size_t len)
{
	(void)s;
	pthread_mutex_lock(&L.lock);
	snprintf(buf, len, "local: %zu pages held, %zu MiB of slabs", L.pages_stored,
		 L.nslabs * (size_t)SLAB_PAGES * FM_PAGE_SIZE >> 20);
	pthread_mutex_unlock(&L.lock);
}

const struct fm_store_ops fm_store_local_ops = {
	.scheme = "local",
	.flags = FM_STORE_DROP_AFTER_READ,
	.open = local_open,
	.close = local_close,
	.read = local_read,
	.write = local_write,
	.remove = local_remove,
	.describe = local_describe,
};
