/* fault.c - serving a client's userfaultfd: page faults and the events the
 * kernel reports about its mappings (madvise REMOVE, munmap, mremap).
 *
 * Messages are read in batches and handled in order under the client's lock:
 * an UNMAP read before a later request on the client's socket is applied
 * before it (client.c polls the uffd first). A page that cannot be restored
 * is poisoned (SIGBUS in the client), never filled with zeros. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "uffd_compat.h"
#include "worker.h"

#define MSG_BATCH 64

static void record_latency(struct fm_client *c, uint64_t t0)
{
	c->st.lat[fm_lat_bucket(fm_now_ns() - t0)]++;
}

static void wake(struct fm_client *c, uint64_t addr)
{
	struct uffdio_range r = { addr, PAGE };
	ioctl(c->uffd, UFFDIO_WAKE, &r);
}

/* ENOENT / ESRCH from an ioctl: the client's address space is going away. */
static void ioctl_failed(struct fm_client *c, const char *what, uint64_t addr, int err)
{
	if (err == ENOENT || err == ESRCH) {
		c->dead = true;
		return;
	}
	if (err == EAGAIN) { /* the mapping is changing (mremap): let it fault again */
		wake(c, addr);
		return;
	}
	fm_log("pid %d: %s at %#llx failed: %s", (int)c->pid, what, (unsigned long long)addr,
	       strerror(err));
	wake(c, addr);
}

static void poison(struct fm_client *c, uint64_t addr)
{
	struct uffdio_poison p = { .range = { addr, PAGE }, .mode = 0 };
	c->st.faults_poisoned++;
	int rc = ioctl(c->uffd, UFFDIO_POISON, &p);
	if (rc < 0 && errno == EEXIST) {
		/* A write-protect marker holds the entry: lift it (without waking
		 * the thread onto an empty page) and poison again. */
		struct uffdio_writeprotect wp = { .range = { addr, PAGE }, .mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE };
		ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp);
		rc = ioctl(c->uffd, UFFDIO_POISON, &p);
	}
	if (rc == 0)
		return;
	if (errno == ENOENT || errno == ESRCH) {
		c->dead = true;
		return;
	}
	if (errno == EAGAIN) { /* the mapping is changing (mremap): it faults again */
		c->st.faults_poisoned--;
		wake(c, addr);
		return;
	}
	/* Without UFFDIO_POISON the only safe answer is to stop the process:
	 * waking it would hand it a zero page. */
	fm_log("pid %d: cannot poison %#llx (%s): killing the process with SIGBUS", (int)c->pid,
	       (unsigned long long)addr, strerror(errno));
	syscall(SYS_pidfd_send_signal, c->pidfd, SIGBUS, NULL, 0);
}

static void fault_zero(struct fm_client *c, struct fm_region *r, uint64_t p, uint8_t *s, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { addr, PAGE }, .mode = 0 };
	if (ioctl(c->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST) {
		ioctl_failed(c, "UFFDIO_ZEROPAGE", addr, errno);
		return;
	}
	c->st.faults_zero++;
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT);
	if (!(*s & PS_QUEUED) && region_queue_push(r, p) == 0)
		*s |= PS_QUEUED;
	r->resident++;
	account_resident(c, 1);
}

/* Clean-page tracking (--clean-tracking): a page fetched from a store that
 * keeps its copy comes in write-protected; until the program writes it (one
 * WP fault) the store's copy is current and eviction skips the write. */
static bool keeps_clean(const struct fm_store *st)
{
	return D.opt.clean_tracking && !(st->ops->flags & FM_STORE_DROP_AFTER_READ);
}

static void fault_store(struct fm_client *c, struct fm_region *r, uint64_t p, uint8_t *s, uint64_t addr)
{
	struct fm_worker *w = worker_get();
	struct fm_store_io io;
	io_for(&io, r, p, w ? w->pages : NULL);
	if (w && fm_store_read(w->store, &io, 1) < 0)
		io.status = FM_STORE_UNAVAILABLE;
	if (io.status != FM_STORE_OK) {
		char health[256] = "";
		if (w && w->store->ops->describe)
			w->store->ops->describe(w->store, health, sizeof(health));
		fm_log("pid %d: page %llu of region %016llx%016llx: %s; delivering SIGBUS at %#llx [store: %s]",
		       (int)c->pid, (unsigned long long)p, (unsigned long long)r->id[0],
		       (unsigned long long)r->id[1], fm_store_strstatus(io.status), (unsigned long long)addr,
		       health);
		c->st.store_errors++;
		r->stored--;
		*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_LOST);
		poison(c, addr);
		return;
	}
	bool clean = keeps_clean(w->store);
	struct uffdio_copy cp = { .dst = addr, .src = (uint64_t)(uintptr_t)io.page, .len = PAGE,
				  .mode = clean ? UFFDIO_COPY_MODE_WP : 0 };
	if (ioctl(c->uffd, UFFDIO_COPY, &cp) < 0 && errno != EEXIST) {
		ioctl_failed(c, "UFFDIO_COPY", addr, errno);
		return;
	}
	c->st.faults_store++;
	c->st.bytes_in += PAGE;
	r->stored--;
	if (w->store->ops->flags & FM_STORE_DROP_AFTER_READ) {
		fm_store_remove(w->store, &io.key, 1);
		instore(c, s, false);
	}
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT | (clean ? PS_CLEAN : 0));
	if (!(*s & PS_QUEUED) && region_queue_push(r, p) == 0)
		*s |= PS_QUEUED;
	r->resident++;
	account_resident(c, 1);
}

/* Install n pages at client address addr: copies from src, or zero pages
 * when src is NULL, without waking anyone. Returns how many went in; a page
 * already present (EEXIST) ends the run early. */
static uint64_t install(struct fm_client *c, uint64_t addr, const char *src, uint64_t n, bool wp)
{
	if (src) {
		struct uffdio_copy cp = { .dst = addr, .src = (uint64_t)(uintptr_t)src, .len = n * PAGE,
					  .mode = UFFDIO_COPY_MODE_DONTWAKE | (wp ? UFFDIO_COPY_MODE_WP : 0) };
		if (ioctl(c->uffd, UFFDIO_COPY, &cp) == 0)
			return n;
		return cp.copy > 0 ? (uint64_t)cp.copy / PAGE : 0;
	}
	struct uffdio_zeropage z = { .range = { addr, n * PAGE }, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
	if (ioctl(c->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return n;
	return z.zeropage > 0 ? (uint64_t)z.zeropage / PAGE : 0;
}

static void mark_resident(struct fm_client *c, struct fm_region *r, uint64_t q, uint8_t *s)
{
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT);
	if (!(*s & PS_QUEUED) && region_queue_push(r, q) == 0)
		*s |= PS_QUEUED;
	r->resident++;
	account_resident(c, 1);
	c->st.pages_prefetched++;
}

/* Sequential prefetch. Two faults on consecutive pages, or a fault just past
 * the last window, start or continue a stream; the window doubles while the
 * stream goes on (4, 8, ... --prefetch pages). The window's pages are
 * installed with UFFDIO_COPY / UFFDIO_ZEROPAGE over whole runs, so each page
 * appears with its contents at once and the client touches it with no fault
 * at all. (Writing them through the monitor's mapping would be cheaper but
 * lets the client see a page between its allocation and its contents.) */
/* Strides: three faults a constant distance apart (other than +1, the
 * streams below), e.g. a column walk or a backwards scan: prefetch the next
 * few pages at that distance, one install each. Stops by itself: the next
 * fault off the stride resets it. */
#define STRIDE_MAX 64  /* pages between two faults still taken for a stride */
#define STRIDE_AHEAD 8
#define PF_CHUNK 8     /* stream pages installed per step */

static void prefetch_stride(struct fm_client *c, struct fm_region *r, uint64_t p, uint64_t addr,
			    int64_t delta)
{
	struct fm_worker *w = worker_get();
	struct fm_map *m = map_find(c, addr);
	if (!w || !m)
		return;
	uint64_t first = m->page, last = m->page + m->len / PAGE; /* the map's pages */
	uint64_t q[STRIDE_AHEAD];
	unsigned n = 0, nio = 0;
	for (int i = 1; i <= STRIDE_AHEAD; i++) {
		int64_t t = (int64_t)p + delta * i;
		if (t < (int64_t)first || t >= (int64_t)last || (uint64_t)t >= r->npages)
			break;
		uint8_t *s = page_state(r, (uint64_t)t, true);
		if (!s || (*s & PS_STATE) != PS_STORED)
			continue; /* only fetches pay: a zero page costs as much as its fault */
		q[n++] = (uint64_t)t;
	}
	if (!n)
		return;
	make_room(c, n);
	for (unsigned i = 0; i < n; i++)
		io_for(&w->ios[nio++], r, q[i], w->pages + (size_t)i * PAGE);
	if (fm_store_read(w->store, w->ios, nio) < 0)
		return;
	bool clean = keeps_clean(w->store);
	for (unsigned i = 0; i < n; i++) {
		if (w->ios[i].status != FM_STORE_OK)
			continue;
		uint64_t a = m->start + (q[i] - m->page) * PAGE;
		if (install(c, a, w->pages + (size_t)i * PAGE, 1, clean) != 1)
			continue;
		uint8_t *s = page_state(r, q[i], false);
		if (w->store->ops->flags & FM_STORE_DROP_AFTER_READ) {
			fm_store_remove(w->store, &w->ios[i].key, 1);
			instore(c, s, false);
		}
		r->stored--;
		c->st.bytes_in += PAGE;
		mark_resident(c, r, q[i], s);
		if (clean)
			*s |= PS_CLEAN;
	}
}

static void prefetch(struct fm_client *c, struct fm_region *r, uint64_t p, uint64_t addr)
{
	bool stream = p == r->last_fault + 1 || (r->pf_next && p == r->pf_next);
	int64_t delta = (int64_t)p - (int64_t)r->last_fault;
	bool stride = !stream && delta == r->last_delta && delta != 0 && delta != 1 &&
		      delta >= -STRIDE_MAX && delta <= STRIDE_MAX;
	r->last_delta = delta;
	r->last_fault = p;
	if (!D.opt.prefetch_max)
		return;
	if (stride) {
		prefetch_stride(c, r, p, addr, delta);
		return;
	}
	if (!stream) {
		r->pf_win = 0;
		r->pf_next = 0;
		return;
	}
	unsigned win = r->pf_win ? r->pf_win * 2 : 4;
	if (win > D.opt.prefetch_max)
		win = D.opt.prefetch_max;
	r->pf_win = win;
	r->pf_next = p + win + 1;
	struct fm_worker *w = worker_get();
	if (!w)
		return;
	/* The window: pages after p of one kind (all never-touched, or all
	 * stored), contiguous in the client's map. */
	struct fm_map *m = map_find(c, addr);
	uint64_t map_end = m ? m->page + m->len / PAGE : p + 1;
	uint64_t end = p + 1 + win;
	if (end > r->npages)
		end = r->npages;
	if (end > map_end)
		end = map_end;
	uint64_t n = 0;
	int kind = -1;
	for (uint64_t q = p + 1; q < end; q++, n++) {
		uint8_t *s = page_state(r, q, true);
		int k = s ? (*s & PS_STATE) : -1;
		if ((k != PS_EMPTY && k != PS_STORED) || (kind >= 0 && k != kind))
			break;
		kind = k;
	}
	if (!n)
		return;
	/* In chunks, nearest first: the program is already running (its fault
	 * was answered) and its next access is p+1; it waits for one chunk,
	 * not for the window. */
	bool clean = kind == PS_STORED && keeps_clean(w->store);
	for (uint64_t off = 0; off < n;) {
		uint64_t k = n - off < PF_CHUNK ? n - off : PF_CHUNK, first = p + 1 + off;
		make_room(c, k);
		if (kind == PS_STORED) {
			for (uint64_t i = 0; i < k; i++)
				io_for(&w->ios[i], r, first + i, w->pages + i * PAGE);
			if (fm_store_read(w->store, w->ios, k) < 0)
				return;
			for (uint64_t i = 0; i < k; i++)
				if (w->ios[i].status != FM_STORE_OK) {
					k = i; /* stop before a page its own fault must report */
					break;
				}
		}
		uint64_t got = install(c, addr + (1 + off) * PAGE, kind == PS_STORED ? w->pages : NULL, k, clean);
		for (uint64_t i = 0; i < got; i++) {
			uint8_t *s = page_state(r, first + i, false);
			if (kind == PS_STORED) {
				if (w->store->ops->flags & FM_STORE_DROP_AFTER_READ) {
					fm_store_remove(w->store, &w->ios[i].key, 1);
					instore(c, s, false);
				}
				r->stored--;
				c->st.bytes_in += PAGE;
			}
			mark_resident(c, r, first + i, s);
			if (clean)
				*s |= PS_CLEAN;
		}
		if (got < PF_CHUNK)
			return;
		off += got;
	}
}

static void handle_fault(struct fm_client *c, const struct uffd_msg *msg, uint64_t t0)
{
	uint64_t addr = msg->arg.pagefault.address & ~(PAGE - 1);
	struct fm_map *m = map_find(c, addr);
	for (size_t i = 0; !m && i < c->nmaps; i++) {
		/* a grow the monitor did not apply in place (a map seemed in the
		 * way) that the kernel did apply: the fault says so */
		struct fm_map *g = &c->maps[i];
		if (g->grow_to > g->len && addr >= g->start && addr < g->start + g->grow_to) {
			map_remove_range(c, g->start + g->len, g->start + g->grow_to);
			g = map_find(c, g->start);
			if (g)
				g->len = g->grow_to;
			m = map_find(c, addr);
		}
	}
	if (!m) {
		fm_log("pid %d: fault at %#llx outside every registered region: SIGBUS", (int)c->pid,
		       (unsigned long long)addr);
		poison(c, addr);
		return;
	}
	struct fm_region *r = m->region;
	uint64_t p = m->page + (addr - m->start) / PAGE;
	if (r->dropped) {
		poison(c, addr);
		return;
	}
	uint8_t *s = p < r->npages ? page_state(r, p, true) : NULL;
	if (!s) {
		fm_log("pid %d: fault at %#llx: page %llu beyond the region or out of memory: SIGBUS",
		       (int)c->pid, (unsigned long long)addr, (unsigned long long)p);
		poison(c, addr);
		return;
	}
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* Evicted meanwhile: wake, it re-faults as MISSING. Still
		 * resident: a stale protection, lift it (that wakes too). */
		c->st.faults_wp++;
		if ((*s & PS_STATE) == PS_RESIDENT) {
			*s &= (uint8_t)~PS_CLEAN; /* written: the store's copy is stale now */
			struct uffdio_writeprotect wp = { .range = { addr, PAGE }, .mode = 0 };
			if (ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
				ioctl_failed(c, "UFFDIO_WRITEPROTECT", addr, errno);
		} else {
			wake(c, addr);
		}
		return;
	}
	switch (*s & PS_STATE) {
	case PS_RESIDENT:
		c->st.faults_spurious++;
		wake(c, addr);
		return;
	case PS_LOST:
		poison(c, addr);
		return;
	case PS_EMPTY:
		make_room(c, 1);
		if (tenant_at_cap(c, 1) && atomic_load(&D.resident) >= atomic_load(&D.budget_pages)) {
			/* no room here, none allowed in the store: out of memory */
			fm_log("pid %d: uid %d is at its store cap and the budget is full: SIGBUS at %#llx",
			       (int)c->pid, (int)c->uid, (unsigned long long)addr);
			poison(c, addr);
			return;
		}
		fault_zero(c, r, p, s, addr);
		break;
	case PS_STORED:
		make_room(c, 1);
		fault_store(c, r, p, s, addr);
		break;
	}
	record_latency(c, t0);
	prefetch(c, r, p, addr);
}

/* [start, end) of the client's address space: pages become zeros. */
void drop_range(struct fm_client *c, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < c->nmaps; i++) {
		struct fm_map *m = &c->maps[i];
		uint64_t a = start > m->start ? start : m->start;
		uint64_t b = end < m->start + m->len ? end : m->start + m->len;
		if (a >= b)
			continue;
		region_drop_pages(c, m->region, m->page + (a - m->start) / PAGE, (b - a) / PAGE,
				  worker_store());
	}
}

static void handle_event(struct fm_client *c, const struct uffd_msg *msg)
{
	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
		drop_range(c, msg->arg.remove.start, msg->arg.remove.end);
		break;
	case UFFD_EVENT_UNMAP:
		/* The tail of an mremap move: its map has moved already, and the
		 * address may hold a new region by now. */
		for (unsigned i = 0; i < c->nmoved_from; i++)
			if (c->moved_from[i].start == msg->arg.remove.start &&
			    c->moved_from[i].end == msg->arg.remove.end) {
				c->moved_from[i] = c->moved_from[--c->nmoved_from];
				return;
			}
		drop_range(c, msg->arg.remove.start, msg->arg.remove.end);
		map_remove_range(c, msg->arg.remove.start, msg->arg.remove.end);
		client_release_unmapped(c, worker_store());
		break;
	case UFFD_EVENT_REMAP:
		if (c->nmoved_from == sizeof(c->moved_from) / sizeof(c->moved_from[0])) {
			/* full: forget the oldest expectation */
			memmove(&c->moved_from[0], &c->moved_from[1], sizeof(c->moved_from) - sizeof(c->moved_from[0]));
			c->nmoved_from--;
		}
		c->moved_from[c->nmoved_from].start = msg->arg.remap.from;
		c->moved_from[c->nmoved_from++].end = msg->arg.remap.from + msg->arg.remap.len;
		if (map_move(c, msg->arg.remap.from, msg->arg.remap.to, msg->arg.remap.len) < 0)
			fm_log("pid %d: mremap of %#llx: no such map", (int)c->pid,
			       (unsigned long long)msg->arg.remap.from);
		break;
	default:
		fm_log("pid %d: unexpected userfaultfd event %u", (int)c->pid, msg->event);
		break;
	}
}

/* Read and handle everything pending on the client's userfaultfd. Returns
 * the number of messages handled. */
unsigned handle_uffd(struct fm_client *c)
{
	struct uffd_msg msgs[MSG_BATCH];
	unsigned handled = 0;
	for (;;) {
		ssize_t n = read(c->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				fm_log("pid %d: reading userfaultfd: %s", (int)c->pid, strerror(errno));
				c->dead = true;
			}
			return handled;
		}
		handled += (unsigned)((size_t)n / sizeof(msgs[0]));
		uint64_t t0 = fm_now_ns();
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(c, &msgs[i], t0);
			else
				handle_event(c, &msgs[i]);
		}
		pthread_mutex_unlock(&c->lock);
		if ((size_t)n < sizeof(msgs))
			return handled;
	}
}
