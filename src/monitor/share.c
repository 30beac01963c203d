/* share.c - copy-on-write in the store: the store copies a forked region and
 * its clones share.
 *
 * At fork the parent's store namespace (the region part of its keys, and the
 * seal key) is frozen into a backing. Its copies stay where they are: the
 * parent and each clone refer to them page by page, with a count per page,
 * and read them under the backing's id, seal key and the version they
 * recorded at the fork (a clone verifies its parent's copy as its parent's).
 * Nobody writes a frozen namespace again: the parent goes on under a fresh
 * store id (r->sid), a clone under its own, so a page rewritten and evicted
 * by one never overwrites the copy another still reads. A copy goes when its
 * last referent lets go of it: reads it into a store that keeps no copies,
 * evicts a newer version, drops the page, unmaps, exits. Nothing is copied
 * in the store at fork, and the forking region stays writable throughout.
 *
 * Locking: a region's page slots and its table of backings are its owner's
 * (under the client lock, as its page states); the counts inside backings
 * are shared between clients and guarded by one leaf lock, taken under a
 * client lock, never held across store I/O; so is the list of every
 * backing, by which a restarted monitor finds them again (persist.c). The
 * state files record each page's backing; the counts are not recorded but
 * counted from those records at start (share_load_ref).
 *
 * Not here: the fork snapshot itself (client.c) and store I/O (callers
 * remove the keys these functions say are free). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fluidmemd.h"

static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t shared_now, fork_shared, fork_copied;
static struct fm_backing *all; /* every backing, under share_lock */

static uint16_t *slot_of(struct fm_region *r, uint64_t p, bool create)
{
	uint64_t c = p / CHUNK_PAGES;
	if (c >= r->nshare) {
		if (!create)
			return NULL;
		uint16_t **n = realloc(r->share, (c + 1) * sizeof(*n));
		if (!n)
			return NULL;
		memset(n + r->nshare, 0, (c + 1 - r->nshare) * sizeof(*n));
		r->share = n;
		r->nshare = c + 1;
	}
	if (!r->share[c]) {
		if (!create)
			return NULL;
		r->share[c] = calloc(CHUNK_PAGES, sizeof(uint16_t));
		if (!r->share[c])
			return NULL;
	}
	return &r->share[c][p % CHUNK_PAGES];
}

const struct fm_backing *share_of(const struct fm_region *r, uint64_t p)
{
	uint64_t c = p / CHUNK_PAGES;
	if (c >= r->nshare || !r->share[c] || !r->share[c][p % CHUNK_PAGES])
		return NULL;
	return r->backs[r->share[c][p % CHUNK_PAGES] - 1].b;
}

static uint32_t *ref_of(struct fm_backing *b, uint64_t p, bool create)
{
	uint64_t c = p / CHUNK_PAGES;
	if (c >= b->nchunks)
		return NULL; /* sized at the freeze; later pages are never in it */
	if (!b->refs[c] && create)
		b->refs[c] = calloc(CHUNK_PAGES, sizeof(uint32_t));
	return b->refs[c] ? &b->refs[c][p % CHUNK_PAGES] : NULL;
}

static void backing_free(struct fm_backing *b)
{
	for (struct fm_backing **pp = &all; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	for (uint64_t c = 0; c < b->nchunks; c++)
		free(b->refs[c]);
	free(b->refs);
	explicit_bzero(b->secret, sizeof(b->secret));
	free(b);
}

/* r's index (1-based) for backing b, added to its table if new; 0 when the
 * table cannot grow. */
static uint16_t slot_for(struct fm_region *r, struct fm_backing *b)
{
	uint32_t free_i = r->nbacks;
	for (uint32_t i = 0; i < r->nbacks; i++) {
		if (r->backs[i].b == b)
			return (uint16_t)(i + 1);
		if (!r->backs[i].b && free_i == r->nbacks)
			free_i = i;
	}
	if (free_i == r->nbacks) {
		if (r->nbacks == UINT16_MAX)
			return 0;
		struct fm_share_slot *n = realloc(r->backs, (r->nbacks + 1) * sizeof(*n));
		if (!n)
			return 0;
		r->backs = n;
		r->nbacks++;
	}
	r->backs[free_i] = (struct fm_share_slot){ b, 0 };
	return (uint16_t)(free_i + 1);
}

/* Before r is cloned: its own store copies (pages INSTORE and not shared)
 * become a backing that r refers to, and r writes under a fresh store id
 * from now on. Nothing moves in the store. 0, or -errno with r unchanged. */
int share_freeze(struct fm_region *r)
{
	struct fm_backing *b = NULL;
	/* Pass 1: allocate everything, so pass 2 cannot fail halfway (a region
	 * half frozen would write its next copies into the frozen namespace). */
	for (uint64_t c = 0; c < r->nchunks; c++) {
		if (!r->chunks[c])
			continue;
		bool any = false;
		for (uint64_t i = 0; i < CHUNK_PAGES && !any; i++) {
			uint64_t p = c * CHUNK_PAGES + i;
			any = p < r->npages && (r->chunks[c][i] & PS_INSTORE) && !share_of(r, p);
		}
		if (!any)
			continue;
		if (!b) {
			b = calloc(1, sizeof(*b));
			if (!b || !(b->refs = calloc(r->nchunks, sizeof(*b->refs))))
				goto nomem;
			b->nchunks = r->nchunks;
			memcpy(b->id, r->sid, sizeof(b->id));
			memcpy(b->secret, r->secret, sizeof(b->secret));
			b->keyed = true;
		}
		if (!ref_of(b, c * CHUNK_PAGES, true) || !slot_of(r, c * CHUNK_PAGES, true))
			goto nomem;
	}
	if (!b)
		return 0; /* nothing in the store: nothing to share */
	uint64_t new_sid[2];
	uint16_t slot = slot_for(r, b);
	if (!slot || getrandom(new_sid, sizeof(new_sid), 0) != sizeof(new_sid)) {
		if (slot)
			r->backs[slot - 1].b = NULL;
		goto nomem;
	}
	/* The state file (persist.c) learns the backing before any record
	 * refers to it, the records before the new store id: the frozen
	 * copies keep their keys, so a restart in between finds each page
	 * under the right one either way. */
	if (r->pfile && persist_slot(r, slot, b) < 0) {
		fm_log("region %016llx: more backings than its state file holds; a restart will not take it back",
		       (unsigned long long)r->id[0]);
		persist_noattach(r);
	}
	/* Pass 2. */
	pthread_mutex_lock(&share_lock);
	b->next = all;
	all = b;
	for (uint64_t p = 0; p < r->npages; p++) {
		if (!r->chunks[p / CHUNK_PAGES]) {
			p |= CHUNK_PAGES - 1;
			continue;
		}
		uint16_t *sl = slot_of(r, p, false);
		if (!(r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES] & PS_INSTORE) || *sl)
			continue;
		*sl = slot;
		r->backs[slot - 1].pages++;
		*ref_of(b, p, false) = 1;
		b->pages++;
		persist_share(r, p, slot, *page_version(r, p));
	}
	atomic_fetch_add(&shared_now, b->pages);
	pthread_mutex_unlock(&share_lock);
	memcpy(r->sid, new_sid, sizeof(r->sid));
	persist_sid(r);
	return 0;
nomem:
	if (b && b->refs)
		backing_free(b);
	else
		free(b);
	return -ENOMEM;
}

/* clone refers to r's store copy of page p from now on (r frozen first, so
 * every copy of r's is a shared one). 0, or -ENOMEM. */
int share_page(struct fm_region *clone, struct fm_region *r, uint64_t p)
{
	uint16_t *rs = slot_of(r, p, false);
	if (!rs || !*rs)
		return -EINVAL;
	struct fm_backing *b = r->backs[*rs - 1].b;
	uint16_t *cs = slot_of(clone, p, true);
	uint16_t slot = cs ? slot_for(clone, b) : 0;
	if (!slot)
		return -ENOMEM;
	*cs = slot;
	clone->backs[slot - 1].pages++;
	pthread_mutex_lock(&share_lock);
	++*ref_of(b, p, false);
	pthread_mutex_unlock(&share_lock);
	atomic_fetch_add(&fork_shared, 1);
	return 0;
}

/* r stops referring to the shared copy of page p, if it has one. True when
 * it was the last referent: the copy is nobody's now, its key is in *gone
 * and the caller removes it from the store. */
bool share_unref(struct fm_region *r, uint64_t p, struct fm_page_key *gone)
{
	uint16_t *sl = slot_of(r, p, false);
	if (!sl || !*sl)
		return false;
	struct fm_share_slot *e = &r->backs[*sl - 1];
	struct fm_backing *b = e->b;
	*sl = 0;
	if (--e->pages == 0)
		e->b = NULL;
	pthread_mutex_lock(&share_lock);
	uint32_t *ref = ref_of(b, p, false);
	bool last = --*ref == 0;
	if (last) {
		*gone = (struct fm_page_key){ { b->id[0], b->id[1] }, p };
		atomic_fetch_sub(&shared_now, 1);
		if (--b->pages == 0)
			backing_free(b);
	}
	pthread_mutex_unlock(&share_lock);
	return last;
}

/* r no longer needs its store copy of page p (which it has: INSTORE). True
 * when the copy must go, its key in *gone: r's own copy always, a shared one
 * when r was its last referent. */
bool copy_release(struct fm_region *r, uint64_t p, struct fm_page_key *gone)
{
	if (share_of(r, p))
		return share_unref(r, p, gone);
	*gone = (struct fm_page_key){ { r->sid[0], r->sid[1] }, p };
	return true;
}

/* copy_release for one page, with the store removal and the INSTORE flag
 * (and its tenant's count). */
void store_forget(struct fm_client *c, struct fm_region *r, uint64_t p, uint8_t *s, struct fm_store *st)
{
	struct fm_page_key k;
	if (!(*s & PS_INSTORE))
		return;
	instore(c, s, false);
	if (copy_release(r, p, &k) && st)
		fm_store_remove(st, &k, 1);
}

/* The region's share tables, once region_drop_pages has let go of every
 * copy (it is being freed). */
void share_region_free(struct fm_region *r)
{
	for (uint64_t c = 0; c < r->nshare; c++)
		free(r->share[c]);
	free(r->share);
	free(r->backs);
	r->share = NULL;
	r->backs = NULL;
	r->nshare = r->nbacks = 0;
}

/* ---- after a restart (persist.c) ----
 * A backing's counts are not kept anywhere: they are the number of state
 * files whose record of the page refers to it, counted at start. Each
 * region that comes back links its slots to them again without counting. */

static struct fm_backing *find(const uint64_t id[2])
{
	for (struct fm_backing *b = all; b; b = b->next)
		if (b->id[0] == id[0] && b->id[1] == id[1])
			return b;
	return NULL;
}

struct fm_backing *share_find(const uint64_t id[2])
{
	pthread_mutex_lock(&share_lock);
	struct fm_backing *b = find(id);
	pthread_mutex_unlock(&share_lock);
	return b;
}

/* One state file refers to the copy of page p under backing id. */
void share_load_ref(const uint64_t id[2], uint64_t p)
{
	uint64_t c = p / CHUNK_PAGES;
	pthread_mutex_lock(&share_lock);
	struct fm_backing *b = find(id);
	if (!b && (b = calloc(1, sizeof(*b)))) {
		memcpy(b->id, id, sizeof(b->id));
		b->next = all;
		all = b;
	}
	if (b && c >= b->nchunks) {
		uint32_t **n = realloc(b->refs, (c + 1) * sizeof(*n));
		if (n) {
			memset(n + b->nchunks, 0, (c + 1 - b->nchunks) * sizeof(*n));
			b->refs = n;
			b->nchunks = c + 1;
		}
	}
	uint32_t *ref = b ? ref_of(b, p, true) : NULL;
	if (!ref)
		fm_log("out of memory counting a shared store copy: it may go before its last referent");
	else if ((*ref)++ == 0) {
		b->pages++;
		atomic_fetch_add(&shared_now, 1);
	}
	pthread_mutex_unlock(&share_lock);
}

/* A state file that nobody took back let go of page p of backing id. True
 * when that was the last reference: the copy's key is in *gone. */
bool share_drop_ref(const uint64_t id[2], uint64_t p, struct fm_page_key *gone)
{
	bool last = false;
	pthread_mutex_lock(&share_lock);
	struct fm_backing *b = find(id);
	uint32_t *ref = b ? ref_of(b, p, false) : NULL;
	if (ref && *ref && --*ref == 0) {
		last = true;
		*gone = (struct fm_page_key){ { id[0], id[1] }, p };
		atomic_fetch_sub(&shared_now, 1);
		if (--b->pages == 0)
			backing_free(b);
	}
	pthread_mutex_unlock(&share_lock);
	return last;
}

/* The backing's seal key, as one of its referents' state unwrapped it:
 * the first sets it, the others must agree. */
int share_key(struct fm_backing *b, const unsigned char *secret)
{
	int rc = 0;
	pthread_mutex_lock(&share_lock);
	if (!b->keyed) {
		memcpy(b->secret, secret, sizeof(b->secret));
		b->keyed = true;
	} else if (memcmp(b->secret, secret, sizeof(b->secret))) {
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&share_lock);
	return rc;
}

/* r's slot (1-based) refers to b again. */
int share_attach_slot(struct fm_region *r, uint16_t slot, struct fm_backing *b)
{
	if (!slot)
		return -EINVAL;
	if (slot > r->nbacks) {
		struct fm_share_slot *n = realloc(r->backs, slot * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + r->nbacks, 0, (slot - r->nbacks) * sizeof(*n));
		r->backs = n;
		r->nbacks = slot;
	}
	if (r->backs[slot - 1].b && r->backs[slot - 1].b != b)
		return -EINVAL;
	r->backs[slot - 1].b = b;
	return 0;
}

/* Page p of r refers to its slot's copy again (counted at start already). */
int share_attach_page(struct fm_region *r, uint64_t p, uint16_t slot)
{
	if (!slot || slot > r->nbacks || !r->backs[slot - 1].b)
		return -EINVAL;
	uint16_t *sl = slot_of(r, p, true);
	if (!sl)
		return -ENOMEM;
	*sl = slot;
	r->backs[slot - 1].pages++;
	return 0;
}

uint16_t share_slot_of(const struct fm_region *r, uint64_t p)
{
	uint64_t c = p / CHUNK_PAGES;
	return c < r->nshare && r->share[c] ? r->share[c][p % CHUNK_PAGES] : 0;
}

/* At exit: backings left to the next monitor (their copies stay). */
void share_free_all(void)
{
	pthread_mutex_lock(&share_lock);
	while (all)
		backing_free(all);
	pthread_mutex_unlock(&share_lock);
}

void share_note_copied(uint64_t pages)
{
	atomic_fetch_add(&fork_copied, pages);
}

void share_counters(struct fm_share_counters *out)
{
	out->shared_now = atomic_load(&shared_now);
	out->fork_shared = atomic_load(&fork_shared);
	out->fork_copied = atomic_load(&fork_copied);
}
