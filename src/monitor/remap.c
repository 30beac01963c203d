/* remap.c - mremap of a region, announced by the client library, so that the
 * monitor changes its maps at a moment it knows to be right.
 *
 * The kernel reports an mremap (REMAP, and UNMAP for what it unmapped) only
 * after releasing mmap_lock, and a read of the userfaultfd returns pending
 * faults before pending events. So between the system call and the monitor
 * applying its events, other threads fault on the new layout (the moved or
 * grown mapping) while the monitor's maps still show the old one; a grow in
 * place sends no event at all. Such faults were poisoned (SIGBUS) or served
 * from a neighbour's stale map (wrong data).
 *
 * The library brackets every mremap of a region, holding its lock so that no
 * other change to the process's regions comes in between:
 *   BEGIN (old range, new length, flags, MREMAP_FIXED target; answered): a
 *     grow's region gets its new pages (the client grew the memfd), and from
 *     here the monitor holds every fault in the ranges involved or outside
 *     every map;
 *   the mremap system call: its events are read before it returns (the
 *     kernel waits for that) and set aside here, unapplied;
 *   END (the result; answered, so that an event the program causes after
 *     its mremap returns, a madvise REMOVE of the moved range, finds the
 *     maps moved): ordered with the uffd's events as one of them (fault.c's
 *     ev_local_*), the monitor applies the move in one step, drops the
 *     set-aside events (or, if the mremap failed, applies them: it may have
 *     unmapped a target first), then wakes the held faults to fault again on
 *     the new layout.
 * A fault the kernel queued before the mremap changed the layout is read no
 * later than its events: it is held, or handled before END, or (another
 * handler thread) after END, when END's ranges tell it its address changed
 * under it and it is woken too. Not here: eviction during the mremap
 * (evict.c writes out only pages it could write-protect). */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fluidmemd.h"
#include "validate.h"
#include "worker.h"

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The source of the mremap in progress, with what a grow in place adds. */
static uint64_t src_len(const struct fm_remap *o)
{
	return o->old_len > o->new_len ? o->old_len : o->new_len;
}

/* Does [a, a+len) touch the ranges the mremap in progress changes: its
 * source (and grown part), an MREMAP_FIXED target? */
static bool in_op(const struct fm_remap *o, uint64_t a, uint64_t len)
{
	return overlaps(a, len, o->old_addr, src_len(o)) ||
	       ((o->flags & MREMAP_FIXED) && overlaps(a, len, o->new_addr, o->new_len));
}

/* Pages [a, b) of private region r that no map shows: dropped, so that a
 * grow over them shows zeros whatever was left in the memfd there. */
static void drop_unmapped(struct fm_client *c, struct fm_region *r, uint64_t a, uint64_t b)
{
	if (b > r->npages)
		b = r->npages;
	while (a < b) {
		uint64_t end = b;
		bool shown = false;
		for (size_t i = 0; i < c->nmaps && !shown; i++) {
			const struct fm_map *m = &c->maps[i];
			uint64_t mb = m->page, me = m->page + m->len / PAGE;
			if (m->region != r)
				continue;
			if (a >= mb && a < me) {
				shown = true;
				a = me;
			} else if (mb > a && mb < end) {
				end = mb;
			}
		}
		if (!shown) {
			region_drop_pages(c, r, a, end - a, worker_store());
			a = end;
		}
	}
}

int remap_begin(struct fm_client *c, const struct fm_mremap *rq, const char **why)
{
	struct fm_remap *o = &c->remap;
	int err = proto_check_mremap(rq, why);
	if (err)
		return err;
	if (o->active) {
		*why = "an mremap is in progress already";
		return -EBUSY;
	}
	if (rq->flags & ~(uint32_t)(MREMAP_MAYMOVE | MREMAP_FIXED)) {
		*why = "mremap flags other than MAYMOVE and FIXED on a region";
		return -EINVAL;
	}
	struct fm_map *m = map_find(c, rq->old_addr);
	if (!m || rq->old_addr + rq->old_len > m->start + m->len) {
		*why = "mremap of a range that is not inside one map";
		return -ENOENT;
	}
	struct fm_region *r = m->region;
	uint64_t page = m->page + (rq->old_addr - m->start) / PAGE, need = page + rq->new_len / PAGE;
	if (rq->new_len > rq->old_len) {
		/* a grow: the client made the memfd large enough first */
		struct stat sb;
		if (r->shared) {
			*why = "mremap cannot grow a shared region";
			return -EINVAL;
		}
		if (need > r->npages &&
		    (fstat(r->memfd, &sb) < 0 || (uint64_t)sb.st_size < r->base_off + need * PAGE)) {
			*why = "mremap grow past the end of the region's memfd";
			return -EINVAL;
		}
		if ((err = region_grow(r, need * PAGE)) < 0) {
			*why = "cannot grow the region";
			return err;
		}
		drop_unmapped(c, r, page + rq->old_len / PAGE, need);
	}
	o->active = true;
	o->old_addr = rq->old_addr;
	o->old_len = rq->old_len;
	o->new_len = rq->new_len;
	o->new_addr = (rq->flags & MREMAP_FIXED) ? rq->new_addr : 0;
	o->flags = rq->flags;
	o->nevents = 0;
	o->nheld = 0;
	return 0;
}

/* The mremap moved [old, old+old_len) to [to, to+new_len). */
static void apply(struct fm_client *c, const struct fm_remap *o, uint64_t to)
{
	struct fm_map *m = map_find(c, o->old_addr);
	if (!m)
		return;
	struct fm_region *r = m->region;
	uint64_t page = m->page + (o->old_addr - m->start) / PAGE;
	if (o->new_len < o->old_len) /* the part a shrink unmapped */
		drop_range(c, o->old_addr + o->new_len, o->old_addr + o->old_len, true);
	map_remove_range(c, o->old_addr, o->old_addr + o->old_len);
	drop_range(c, to, to + o->new_len, true); /* what the move replaced (MREMAP_FIXED) */
	map_remove_range(c, to, to + o->new_len);
	if (map_add(c, to, o->new_len, r, page) < 0)
		fm_log("pid %d: mremap to %#llx: no memory for the map", (int)c->pid, (unsigned long long)to);
}

int remap_end(struct fm_client *c, const struct fm_mremap_end *e, const char **why)
{
	struct fm_remap *o = &c->remap;
	if (!o->active) {
		*why = "no mremap in progress";
		return -EINVAL;
	}
	bool ok = e->err == 0 && e->new_addr % PAGE == 0 && e->new_addr + o->new_len > e->new_addr;
	/* A change of the maps like an event: a fault read before it and
	 * looked up after it finds its address changed and faults again. */
	uint64_t seq = ev_local_begin(c, o->old_addr, o->old_addr + src_len(o));
	if (ok) {
		pthread_mutex_lock(&c->ev_lock);
		ev_note(c, seq, e->new_addr, e->new_addr + o->new_len);
		pthread_mutex_unlock(&c->ev_lock);
		apply(c, o, e->new_addr);
	} else {
		/* failed: whatever it did, its events say */
		for (unsigned i = 0; i < o->nevents; i++)
			event_replay(c, &o->events[i]);
	}
	o->active = false;
	o->nevents = 0;
	client_release_unmapped(c, worker_store());
	ev_local_end(c, seq);
	for (size_t i = 0; i < o->nheld; i++)
		wake(c, o->held[i]);
	o->nheld = 0;
	/* A fault at the new place that a monitor which died held (this BEGIN
	 * came again with a re-attach, see attach_all() in the library) is
	 * still asleep in the kernel, and ATTACH_DONE woke only the layout
	 * before the move: wake the new range too (a thread woken for nothing
	 * faults again). */
	if (ok) {
		struct uffdio_range wr = { e->new_addr, o->new_len };
		ioctl(c->uffd, UFFDIO_WAKE, &wr);
	}
	return 0;
}

bool remap_hold_fault(struct fm_client *c, uint64_t addr)
{
	struct fm_remap *o = &c->remap;
	if (!o->active || (!in_op(o, addr, PAGE) && map_find(c, addr)))
		return false;
	if (o->nheld == o->capheld) {
		size_t ncap = o->capheld ? o->capheld * 2 : 16;
		uint64_t *h = realloc(o->held, ncap * sizeof(*h));
		if (!h)
			return false; /* served on the maps as they are */
		o->held = h;
		o->capheld = ncap;
	}
	o->held[o->nheld++] = addr;
	return true;
}

bool remap_takes_event(struct fm_client *c, const struct uffd_msg *msg)
{
	struct fm_remap *o = &c->remap;
	uint64_t a, len;
	if (!o->active)
		return false;
	if (msg->event == UFFD_EVENT_REMAP) {
		a = msg->arg.remap.from;
		len = msg->arg.remap.len;
	} else if (msg->event == UFFD_EVENT_UNMAP) {
		a = msg->arg.remove.start;
		len = msg->arg.remove.end - msg->arg.remove.start;
	} else {
		return false;
	}
	if (!in_op(o, a, len))
		return false;
	if (o->nevents < FM_REMAP_EVENTS)
		o->events[o->nevents++] = *msg;
	return true;
}

/* The client's socket is gone with an mremap announced and not ended: its
 * END will never come. Whatever the mremap did, its events say (those not
 * read yet are applied as they come); the held faults go. */
void remap_abort(struct fm_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->remap.active) {
		struct fm_mremap_end e = { .err = EIO };
		const char *why;
		ev_sync(c);
		remap_end(c, &e, &why);
	}
	pthread_mutex_unlock(&c->lock);
}

void remap_free(struct fm_client *c)
{
	free(c->remap.held);
	c->remap.held = NULL;
	c->remap.nheld = c->remap.capheld = 0;
	c->remap.active = false;
}
