/* evict.c - keeping resident pages within the budgets.
 *
 * Two limits: the global budget (every client) and a tag's limit (the
 * processes of one `fluidmem run`). A fault that would exceed either first
 * evicts a batch. Victims are taken first-in first-out per region (the
 * monitor sees faults, not accesses, so FIFO is the order it knows).
 *
 * Evicting a batch (DESIGN.md): write-protect the victims through the owner's
 * userfaultfd, so a concurrent write waits instead of being lost; write the
 * non-zero ones to the store straight from the monitor's mapping;
 * punch them out of the memfd; wake anyone who hit the write-protection (they
 * re-fault as MISSING and get the page back from the store).
 *
 * Each of those is one call per run of victims, and a run may span pages
 * that hold nothing (a page not resident has no data in the memfd to punch,
 * and protecting it only marks its empty entry): scattered victims cost a
 * protect, a punch and an unprotect each (~4 us), a run of 64 about as much
 * as two. So in a region whose faults look random (the last 16 continued no
 * stream or stride), where no resident page is likelier to be used than
 * another, victims are taken by address, sweeping the region, instead of
 * first-in first-out: the resident pages of a stretch go out in a few runs
 * (--no-evict-sweep turns it off). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "uffd_compat.h"
#include "worker.h"

static unsigned do_evict_region(struct fm_region *r, unsigned max, struct fm_store *st);

void account_resident(struct fm_client *c, int64_t delta)
{
	if (c) {
		atomic_fetch_add(&c->resident, (uint64_t)delta);
		if (c->tag) {
			uint64_t t = atomic_fetch_add(&c->tag->resident, (uint64_t)delta) + (uint64_t)delta;
			uint64_t tp = atomic_load(&c->tag->peak);
			while (delta > 0 && t > tp && !atomic_compare_exchange_weak(&c->tag->peak, &tp, t))
				;
		}
		if (c->tenant)
			atomic_fetch_add(&c->tenant->resident, (uint64_t)delta);
		if (delta > 0 && atomic_load(&c->resident) > c->st.peak_resident_pages)
			c->st.peak_resident_pages = atomic_load(&c->resident);
	}
	uint64_t now = atomic_fetch_add(&D.resident, (uint64_t)delta) + (uint64_t)delta;
	if (delta > 0)
		evictor_kick();
	uint64_t peak = atomic_load(&D.peak_resident);
	while (delta > 0 && now > peak && !atomic_compare_exchange_weak(&D.peak_resident, &peak, now))
		;
}

/* Pages strictly between a and b hold nothing (each never touched or in the
 * store, none being fetched; a lost page's poison stays out of it too): one
 * call may cover [a, b]. Looks at most HOLE_SPAN pages. */
#define HOLE_SPAN 64
static bool holes_between(struct fm_client *c, struct fm_region *r, uint64_t a, uint64_t b)
{
	if (b - a > HOLE_SPAN)
		return false;
	for (uint64_t p = a + 1; p < b; p++) {
		int k = *page_state(r, p, false) & PS_STATE;
		if ((k != PS_EMPTY && k != PS_STORED) || inflight_has(c, r, p))
			return false;
	}
	return true;
}

/* The last index of the run starting at v[i]: victims one call may cover. */
static unsigned run_end(struct fm_client *c, struct fm_region *r, const uint64_t *v, unsigned i, unsigned n)
{
	while (i + 1 < n && (v[i + 1] == v[i] + 1 ||
			     (D.opt.evict_sweep && !r->shared && holes_between(c, r, v[i], v[i + 1]))))
		i++;
	return i;
}

/* Up to max resident pages of r by address from r->sweep on (wrapping),
 * looking at no more than 16 pages per victim. */
static unsigned sweep_victims(struct fm_region *r, uint64_t *v, unsigned max)
{
	unsigned n = 0;
	uint64_t p = r->sweep < r->npages ? r->sweep : 0;
	for (uint64_t seen = 0; n < max && seen < r->npages && seen < 16ull * max; seen++) {
		if ((*page_state(r, p, false) & PS_STATE) == PS_RESIDENT)
			v[n++] = p;
		p = p + 1 < r->npages ? p + 1 : 0;
	}
	r->sweep = p;
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Returns 0 or -errno of the ioctl. */
static int uffd_range(int uffd, unsigned long req, uint64_t addr, uint64_t len, uint64_t mode)
{
	int rc;
	if (!addr || uffd < 0)
		return -EINVAL;
	if (req == UFFDIO_WRITEPROTECT) {
		struct uffdio_writeprotect wp = { .range = { addr, len }, .mode = mode };
		rc = ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
	} else {
		struct uffdio_range r = { addr, len };
		rc = ioctl(uffd, UFFDIO_WAKE, &r);
	}
	return rc < 0 ? -errno : 0;
}

/* The same at a client address, unless an event read since the client's
 * maps were last brought up to date (seq) changed it: the mapping there may
 * be another by now. Returns whether it was done. It fails too while the
 * mapping changes under maps not brought up to date yet: EAGAIN while an
 * event is pending, ENOENT once an mremap moved the mapping away (remap.c:
 * the maps change at its END). A page not protected in every place the
 * program reaches it is not evicted: a write there would be lost. */
static bool uffd_range_at(struct fm_client *c, uint64_t seq, unsigned long req, uint64_t addr, uint64_t len,
			  uint64_t mode)
{
	if (!addr)
		return false;
	pthread_mutex_lock(&c->ev_lock);
	bool ok = !ev_touched(c, seq, addr, len);
	if (ok)
		ok = uffd_range(c->uffd, req, addr, len, mode) == 0;
	pthread_mutex_unlock(&c->ev_lock);
	return ok;
}

/* UFFDIO_WRITEPROTECT (mode) region pages [p, p+n) wherever they are mapped:
 * in the owner's maps of a private region, in every process's view of a
 * shared one. Returns false when an event not applied yet changed one of
 * those addresses (the mapping there may be another by now): not done there. */
static bool protect(struct fm_region *r, uint64_t p, uint64_t n, uint64_t mode)
{
	struct fm_client *c = r->owner;
	size_t count = r->shared ? r->nviews : c->nmaps;
	bool ok = true;
	for (size_t i = 0; i < count; i++) {
		uint64_t start, len, page;
		struct fm_client *vc = c;
		if (r->shared) {
			const struct fm_view *v = &r->views[i];
			start = v->start, len = v->len, page = v->page, vc = v->client;
		} else {
			const struct fm_map *m = &c->maps[i];
			if (m->region != r)
				continue;
			start = m->start, len = m->len, page = m->page;
		}
		/* the views of a shared region change only under its lock (held):
		 * they are at least as new as what the client has applied */
		uint64_t seq = __atomic_load_n(&vc->ev_applied, __ATOMIC_ACQUIRE);
		uint64_t a = p > page ? p : page, b = p + n < page + len / PAGE ? p + n : page + len / PAGE;
		if (a < b && !uffd_range_at(vc, seq, UFFDIO_WRITEPROTECT, start + (a - page) * PAGE, (b - a) * PAGE, mode))
			ok = false;
	}
	return ok;
}

static bool page_is_zero(const void *p)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < PAGE / sizeof(*w); i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return false;
	return true;
}

/* Evict up to max resident pages of r, oldest first. Caller holds the owner's
 * lock (private region) or a holder's (shared). A shared region's own lock is
 * only tried: the caller may hold another shared region's (a fault there),
 * and two such threads waiting for each other's region would never wake.
 * Its lock is recursive, so a fault in r may evict from r. Returns pages
 * evicted (0 when the region is busy). */
unsigned evict_region(struct fm_region *r, unsigned max, struct fm_store *st)
{
	if (r->shared && pthread_mutex_trylock(&r->lock) != 0)
		return 0;
	/* rebuilt after a restart: not while a process that maps it may be unprotected */
	unsigned got = r->shared && !persist_evictable(r) ? 0 : do_evict_region(r, max, st);
	shared_unlock(r);
	return got;
}

static unsigned do_evict_region(struct fm_region *r, unsigned max, struct fm_store *st)
{
	struct fm_worker *w = worker_get();
	struct fm_client *c = r->owner;
	uint64_t v[FM_BATCH_MAX];
	unsigned n = 0;

	if (max > FM_BATCH_MAX)
		max = FM_BATCH_MAX;
	if (!c || !w)
		return 0; /* unadopted fork snapshots have no userfaultfd to protect with */
	/* a shared region's counters are its own until its owner leaves */
	struct fm_stats *cst = r->shared ? &r->sst : &c->st;
	/* A victim taken by address keeps its (now stale) entry in the FIFO and
	 * its QUEUED mark: the FIFO skips pages not resident, and one that comes
	 * back goes to the back when that entry comes up (PS_REQUEUE). */
	bool swept = D.opt.evict_sweep && !r->shared && region_random(r) && (n = sweep_victims(r, v, max)) > 0;
	/* twice the queue at most: a page sent to the back comes up again */
	for (uint64_t left = 2 * r->qlen; !swept && n < max && left && r->qlen; left--) {
		uint64_t p = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % r->qcap;
		r->qlen--;
		uint8_t *s = page_state(r, p, false);
		*s &= (uint8_t)~PS_QUEUED;
		if ((*s & PS_STATE) != PS_RESIDENT)
			continue;
		if (*s & PS_REQUEUE) {
			*s &= (uint8_t)~PS_REQUEUE;
			region_enqueue(r, p, s);
			continue;
		}
		v[n++] = p;
	}
	if (!n)
		return 0;
	qsort(v, n, sizeof(v[0]), cmp_u64);

	/* 1. write-protect, run by run (a run is contiguous in the region), in
	 *    every map that shows it. A run whose address an event not applied
	 *    yet changed stays resident this time. */
	bool keep[FM_BATCH_MAX] = { 0 };
	for (unsigned i = 0; i < n; i++) {
		unsigned j = run_end(c, r, v, i, n);
		bool holes = v[j] - v[i] != j - i;
		if (!protect(r, v[i], v[j] - v[i] + 1, UFFDIO_WRITEPROTECT_MODE_WP)) {
			/* a pending event touched the span: a span over holes
			 * tries its contiguous pieces alone, so that only those
			 * the event touched stay */
			for (unsigned k = i, e; k <= j; k = e + 1) {
				for (e = k; e < j && v[e + 1] == v[e] + 1; e++)
					;
				bool done = holes && protect(r, v[k], e - k + 1, UFFDIO_WRITEPROTECT_MODE_WP);
				for (unsigned x = k; x <= e; x++)
					keep[x] = !done;
			}
		}
		i = j;
	}

	/* 2. write out; zero pages need no store write, clean ones neither
	 *    (a write since the protection above is still waiting for us). */
	unsigned nio = 0, ncapped = 0;
	bool zero[FM_BATCH_MAX], clean[FM_BATCH_MAX], capped[FM_BATCH_MAX];
	for (unsigned i = 0; i < n; i++) {
		const char *src = r->mon + v[i] * PAGE;
		uint8_t ps = *page_state(r, v[i], false);
		clean[i] = (ps & PS_CLEAN) && (ps & PS_INSTORE);
		zero[i] = !clean[i] && D.opt.zero_skip && page_is_zero(src);
		/* a new page in the store past the tenant's cap stays here */
		capped[i] = !keep[i] && !clean[i] && !zero[i] && !(ps & PS_INSTORE) && tenant_at_cap(c, ncapped + 1);
		if (capped[i])
			ncapped++;
		if (keep[i])
			clean[i] = zero[i] = false;
		if (zero[i] || clean[i] || capped[i] || keep[i])
			continue;
		/* written straight from the monitor's mapping: the page is
		 * write-protected, so it holds still until the punch */
		++*page_version(r, v[i]);
		persist_set(r, v[i], *page_version(r, v[i])); /* before the write */
		io_own(&w->ios[nio], r, v[i], (void *)src);
		nio++;
	}
	if (nio && fm_store_write(st, w->ios, nio) < 0)
		for (unsigned i = 0; i < nio; i++)
			w->ios[i].status = FM_STORE_UNAVAILABLE;

	/* 3. settle each page: stored, zero, or kept resident on a failed write. */
	struct fm_page_key stale[FM_BATCH_MAX];
	unsigned nstale = 0, evicted = 0, k = 0, failed = 0;
	uint64_t gone[FM_BATCH_MAX];
	for (unsigned i = 0; i < n; i++) {
		uint8_t *s = page_state(r, v[i], false);
		if (keep[i] || capped[i] || (!zero[i] && !clean[i] && w->ios[k++].status != FM_STORE_OK)) {
			failed += !capped[i] && !keep[i];
			protect(r, v[i], 1, 0); /* a kept run may be protected in some views */
			*s &= (uint8_t)~PS_CLEAN; /* writable now: its writes go unseen */
			/* back in the FIFO, unless it is there still (taken by address) */
			if (!(*s & PS_QUEUED) && region_queue_push(r, v[i]) == 0)
				*s |= PS_QUEUED;
			continue;
		}
		if (clean[i]) {
			*s = (uint8_t)((*s & PS_QUEUED) | PS_STORED | PS_INSTORE);
			r->stored++;
			cst->pages_clean_skipped++;
			clean_evicted(r);
		} else if (zero[i]) {
			if ((*s & PS_INSTORE) && copy_release(r, v[i], &stale[nstale]))
				nstale++;
			instore(c, s, false);
			persist_set(r, v[i], 0); /* before the punch */
			*s = (uint8_t)((*s & PS_QUEUED) | PS_EMPTY);
			cst->pages_zero_skipped++;
		} else {
			/* its new copy is its own: a shared old one may go */
			if (share_unref(r, v[i], &stale[nstale]))
				nstale++;
			instore(c, s, true);
			*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_STORED);
			r->stored++;
			cst->pages_written++;
			cst->bytes_out += PAGE;
		}
		gone[evicted++] = v[i];
	}
	if (nstale)
		fm_store_remove(st, stale, nstale);
	if (ncapped) {
		static _Thread_local uint64_t last_cap_ns;
		if (fm_now_ns() - last_cap_ns >= 1000000000ull) {
			fm_log("pid %d: uid %d is at its store cap: %u page(s) kept resident", (int)c->pid,
			       (int)c->uid, ncapped);
			last_cap_ns = fm_now_ns();
		}
	}
	if (failed) {
		/* One line a second at most: a dead store fails every batch. */
		static _Thread_local uint64_t last_ns, quiet;
		uint64_t now = fm_now_ns();
		cst->store_errors += failed;
		quiet += failed;
		if (now - last_ns >= 1000000000ull) {
			fm_log("pid %d: %llu page(s) could not be written to the store; kept resident",
			       (int)c->pid, (unsigned long long)quiet);
			last_ns = now;
			quiet = 0;
		}
	}

	/* 4. punch the evicted pages out of the memfd (a kept page between two
	 *    ends a run: it is resident again), then wake waiters. */
	for (unsigned i = 0; i < evicted; i++) {
		unsigned j = run_end(c, r, gone, i, evicted);
		fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(r->base_off + gone[i] * PAGE), (off_t)((gone[j] - gone[i] + 1) * PAGE));
		i = j;
	}
	/* Lifting the protection wakes the waiters and clears the markers the
	 * protection left on the emptied entries, so a page later prefetched
	 * there is not write-protected. */
	for (unsigned i = 0; i < evicted; i++) {
		unsigned j = run_end(c, r, gone, i, evicted);
		protect(r, gone[i], gone[j] - gone[i] + 1, 0);
		i = j;
	}

	r->resident -= evicted;
	cst->evictions += evicted;
	if (swept)
		cst->evictions_by_address += evicted;
	if (r->shared)
		cst->shared_evictions += evicted;
	account_resident(c, -(int64_t)evicted);
	return evicted;
}

/* c's region with most resident pages, the shared ones it maps included
 * (their counts are read without their lock: a hint). */
struct fm_region *largest_region(struct fm_client *c)
{
	struct fm_region *best = NULL;
	for (struct fm_region *r = c->regions; r; r = r->next)
		if (r->resident && (!best || r->resident > best->resident))
			best = r;
	for (unsigned i = 0; i < c->nshared; i++) {
		uint64_t res = __atomic_load_n(&c->shared[i]->resident, __ATOMIC_RELAXED);
		if (res && (!best || res > best->resident))
			best = c->shared[i];
	}
	return best;
}

/* From c's largest region, or, when none of its pages can go now (a shared
 * region's lock busy, a mapping event pending on its addresses), from any
 * other: a soak that unmaps and moves its mappings all the time peaked at up
 * to 145 pages at a 16-page budget while faults went over it instead. */
static unsigned evict_client(struct fm_client *c, unsigned max)
{
	struct fm_region *first = largest_region(c);
	unsigned got = first ? evict_region(first, max, worker_store()) : 0;
	for (struct fm_region *r = c->regions; first && !got && r; r = r->next)
		if (r != first && r->resident)
			got = evict_region(r, max, worker_store());
	return got;
}

static bool over(struct fm_client *c, uint64_t need, bool *tag_over)
{
	struct fm_tag *t = c ? c->tag : NULL;
	*tag_over = t && t->limit_pages && atomic_load(&t->resident) + need > t->limit_pages;
	return *tag_over || atomic_load(&D.resident) + need > atomic_load(&D.budget_pages);
}

/* Another client to evict from: for a tag over its limit, one of its
 * processes; for the global budget, the client with most resident pages.
 * Returns it locked (trylock: never wait on a lock while holding ours), or NULL. */
static struct fm_client *pick_other(struct fm_client *self, bool tag_only)
{
	struct fm_client *best = NULL;
	if (pthread_mutex_trylock(&D.lock) != 0)
		return NULL;
	for (struct fm_client *o = D.clients; o; o = o->next) {
		if (o == self || o->dead || (tag_only && o->tag != self->tag) || tenant_protected(o, self))
			continue;
		if (!best || atomic_load(&o->resident) > atomic_load(&best->resident))
			best = o;
	}
	if (best && (!atomic_load(&best->resident) || pthread_mutex_trylock(&best->lock) != 0))
		best = NULL;
	pthread_mutex_unlock(&D.lock);
	return best;
}

/* Make room for `need` more resident pages of client c (whose lock is held). */
void make_room(struct fm_client *c, uint64_t need)
{
	bool tag_over;
	for (int tries = 0; tries < 64 && over(c, need, &tag_over); tries++) {
		unsigned batch = D.opt.evict_batch;
		struct fm_client *o = NULL;
		/* The global budget: take from whoever holds the most, if that is
		 * not us, or from others first while our tenant is within its
		 * reserve. Over the tag limit: from ourselves first. */
		if (!tag_over && (tenant_protected(c, NULL) || atomic_load(&c->resident) * 2 < atomic_load(&D.resident)))
			o = pick_other(c, false);
		if (o) {
			unsigned got = evict_client(o, batch);
			pthread_mutex_unlock(&o->lock);
			if (got)
				continue;
		}
		/* A tenant within its reserve never pays for the global budget
		 * with its own pages: go over it briefly instead. */
		if (!tag_over && tenant_protected(c, NULL))
			break;
		if (evict_client(c, batch))
			continue;
		o = pick_other(c, tag_over);
		if (!o)
			break; /* nothing evictable now: go over the budget rather than stall */
		unsigned got = evict_client(o, batch);
		pthread_mutex_unlock(&o->lock);
		if (!got)
			break;
	}
}

/* One batch from the client holding most pages (tenants within their
 * reserve excepted), for the threads that evict on nobody's fault: the
 * control thread after a resize, the background evictor. wait: wait a while
 * for the client's lock (never holding D.lock), or only try it. Returns
 * pages evicted. */
unsigned evict_largest(bool wait)
{
	unsigned got = 0;
	pthread_mutex_lock(&D.lock);
	struct fm_client *best = NULL;
	for (struct fm_client *o = D.clients; o; o = o->next)
		if (!o->dead && !tenant_protected(o, NULL) &&
		    (!best || atomic_load(&o->resident) > atomic_load(&best->resident)))
			best = o;
	if (best)
		atomic_fetch_add(&best->refs, 1); /* D.lock goes before waiting for its lock */
	pthread_mutex_unlock(&D.lock);
	if (best && (wait ? client_lock_for(best, 1000) : pthread_mutex_trylock(&best->lock) == 0)) {
		got = evict_client(best, D.opt.evict_batch);
		pthread_mutex_unlock(&best->lock);
	}
	if (best)
		atomic_fetch_sub(&best->refs, 1);
	return got;
}

/* After the budget shrank: evict until under it (control thread). */
void evict_over_budget(void)
{
	for (int rounds = 0; rounds < 100000; rounds++)
		if (atomic_load(&D.resident) <= atomic_load(&D.budget_pages) || !evict_largest(true))
			return;
}
