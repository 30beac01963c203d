/* fault.c - serving a client's userfaultfd: page faults and the events the
 * kernel reports about its mappings (madvise REMOVE, munmap, mremap).
 *
 * Several threads may read one client's uffd (--fault-threads). Events get a
 * sequence number when read and are applied in that order under the client's
 * lock; a fault is looked up once every event read before it is applied, and
 * before any ioctl at its address checks (under ev_lock, which also covers
 * reads) that no event read since has touched that address. A store read is
 * done with the client's lock released, its page listed as in flight: a
 * second fault on it waits for the first, eviction does not see it (it is not
 * resident), an event that drops it cancels the install. During an mremap
 * the client announced, faults on the ranges it changes wait and its events
 * are set aside (remap.c). A page that cannot be restored is poisoned (SIGBUS
 * in the client), never filled with zeros. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "uffd_compat.h"
#include "worker.h"

#define MSG_BATCH 64

/* The event sequence number a fault was read at (events read before it): the
 * thread's fault being handled. */
static _Thread_local uint64_t cur_seq;

/* Note a range an event changes (ev_lock held). */
void ev_note(struct fm_client *c, uint64_t seq, uint64_t start, uint64_t end)
{
	__typeof__(c->ev_ring[0]) *e = &c->ev_ring[c->ev_nring++ % EV_RING];
	e->seq = seq;
	e->start = start;
	e->end = end;
}

/* Has an event read after `since` changed [addr, addr+len)? (ev_lock held) */
bool ev_touched(struct fm_client *c, uint64_t since, uint64_t addr, uint64_t len)
{
	if (c->ev_read == since)
		return false;
	uint64_t n = c->ev_nring < EV_RING ? c->ev_nring : EV_RING;
	for (uint64_t i = 1; i <= n; i++) {
		const __typeof__(c->ev_ring[0]) *e = &c->ev_ring[(c->ev_nring - i) % EV_RING];
		if (e->seq <= since)
			return false;
		if (addr < e->end && e->start < addr + len)
			return true;
	}
	return c->ev_nring > EV_RING; /* older ranges are forgotten: assume the worst */
}

/* Wait (client lock held) until events up to seq are applied. */
void ev_wait_applied(struct fm_client *c, uint64_t seq)
{
	while (c->ev_applied < seq)
		pthread_cond_wait(&c->ev_cond, &c->lock);
}

/* Pages [first, first+count) of r were dropped (or r is being freed): an
 * in-flight fetch of one of them must not install it. Client lock held. */
void inflight_cancel(struct fm_client *c, struct fm_region *r, uint64_t first, uint64_t count)
{
	for (unsigned i = 0; c && c->ninflight && i < FT_MAX; i++)
		if (c->inflight[i].r == r && c->inflight[i].page >= first && c->inflight[i].page - first < count)
			c->inflight[i].cancelled = true;
}

/* Another handler thread is fetching page p of r. Client lock held. */
bool inflight_has(struct fm_client *c, struct fm_region *r, uint64_t p)
{
	for (unsigned i = 0; c->ninflight && i < FT_MAX; i++)
		if (c->inflight[i].r == r && c->inflight[i].page == p)
			return true;
	return false;
}

static void record_latency(struct fm_client *c, uint64_t t0)
{
	c->st.lat[fm_lat_bucket(fm_now_ns() - t0)]++;
}

void wake(struct fm_client *c, uint64_t addr)
{
	struct uffdio_range r = { addr, PAGE };
	ioctl(c->uffd, UFFDIO_WAKE, &r);
}

/* Before an ioctl that puts something at [addr, addr+len) for the current
 * fault: take ev_lock, so no event is read until the ioctl is done, and make
 * sure none read since the fault has touched the range (else the mapping
 * there may be another by now: unlock, and let the program fault again). */
static bool at_addr(struct fm_client *c, uint64_t addr, uint64_t len, bool wake_on_fail)
{
	pthread_mutex_lock(&c->ev_lock);
	if (!ev_touched(c, cur_seq, addr, len))
		return true;
	pthread_mutex_unlock(&c->ev_lock);
	if (wake_on_fail)
		wake(c, addr);
	return false;
}

static void at_addr_done(struct fm_client *c)
{
	pthread_mutex_unlock(&c->ev_lock);
}

/* An ioctl at addr failed: ESRCH means the address space is gone. */
static void ioctl_failed(struct fm_client *c, const char *what, uint64_t addr, int err)
{
	if (err == ESRCH) { /* its address space is gone */
		c->dead = true;
		return;
	}
	if (err == EAGAIN || err == ENOENT) {
		/* EAGAIN: the mapping is changing (mremap). ENOENT: nothing of
		 * ours is mapped there any more (an unmap we have not applied
		 * yet): the process lives on; the thread faults again and meets
		 * whatever is mapped there now. */
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
	if (!at_addr(c, addr, PAGE, true))
		return;
	c->st.faults_poisoned++;
	int rc = ioctl(c->uffd, UFFDIO_POISON, &p);
	if (rc < 0 && errno == EEXIST) {
		/* A write-protect marker holds the entry: lift it (without waking
		 * the thread onto an empty page) and poison again. */
		struct uffdio_writeprotect wp = { .range = { addr, PAGE }, .mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE };
		ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp);
		rc = ioctl(c->uffd, UFFDIO_POISON, &p);
	}
	int err = errno;
	at_addr_done(c);
	errno = err;
	if (rc == 0)
		return;
	if (errno == ESRCH) {
		c->dead = true;
		return;
	}
	if (errno == EAGAIN || errno == ENOENT) { /* mapping changing or gone (see ioctl_failed) */
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
	if (!at_addr(c, addr, PAGE, true))
		return;
	int rc = ioctl(c->uffd, UFFDIO_ZEROPAGE, &z), err = errno;
	at_addr_done(c);
	if (rc < 0 && err != EEXIST) {
		ioctl_failed(c, "UFFDIO_ZEROPAGE", addr, err);
		return;
	}
	c->st.faults_zero++;
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT);
	region_enqueue(r, p, s);
	r->resident++;
	account_resident(payer(c, r), 1);
}

/* Clean-page tracking (--clean-tracking): a page fetched from the store
 * comes in write-protected and the store keeps its copy (the local store
 * too, which otherwise drops a copy once read); until the program writes the
 * page (one WP fault) that copy is current, and eviction skips the write.
 * It pays where fetched pages stay unwritten (a read pass: no store write at
 * eviction) and costs a WP round trip per page where they are written (a
 * read-modify-write pass). `auto`, the default, keeps a score per region,
 * 0 (on) at first: +1 for each clean eviction; a write to a clean page
 * takes it to CT_OFF and CT_WRITE below (a round trip costs several times
 * what a skipped write saves), and only pages fetched after that write earn
 * again. At CT_OFF or below, pages come in writable but for one install in
 * CT_PROBE, which keeps the score current. Not in shared regions: the other
 * processes map the page without the protection.
 * A PS_CLEAN page must stay protected wherever it is mapped: whatever lifts
 * the protection of a resident page clears the mark with it. */
#define CT_WRITE 8
#define CT_MAX 64
#define CT_OFF (-1) /* a region starts at 0: on */
#define CT_PROBE 64
static bool keeps_clean(struct fm_region *r)
{
	if (!D.opt.clean_tracking || r->shared)
		return false;
	if (D.opt.clean_tracking == FM_CT_ALWAYS || r->ct_score > CT_OFF)
		return true;
	return ++r->ct_probe % CT_PROBE == 0;
}

/* Lift the write protection of n pages at addr (that wakes the faulting
 * thread too). Returns false when an event touched the range since the
 * fault: then nothing was done and the program faults again. */
static bool unprotect(struct fm_client *c, uint64_t addr, uint64_t n)
{
	struct uffdio_writeprotect wp = { .range = { addr, n * PAGE }, .mode = 0 };
	if (!at_addr(c, addr, n * PAGE, true))
		return false;
	int rc = ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp), err = errno;
	at_addr_done(c);
	if (rc < 0)
		ioctl_failed(c, "UFFDIO_WRITEPROTECT", addr, err);
	return true;
}

/* A page of r went out clean: it saved a store write (unless it was
 * resident at the region's last write, see dirty_clean). */
void clean_evicted(struct fm_region *r)
{
	if (r->ct_stale)
		r->ct_stale--;
	else if (r->ct_score < CT_MAX)
		r->ct_score++;
}

/* Page p of r is in memory now. A store that drops copies once read (the
 * local one) drops its copy, unless the page came in clean: then the copy
 * stays current until the page is written. */
static void drop_read_copy(struct fm_client *c, struct fm_region *r, uint64_t p, uint8_t *s,
			   struct fm_store *st, bool clean)
{
	if (st && (st->ops->flags & FM_STORE_DROP_AFTER_READ) && !clean)
		store_forget(payer(c, r), r, p, s, st);
}

/* The program wrote clean page p: the store's copy is stale. Lift the
 * protection; under `auto`, from the clean pages that follow too (the rest of
 * a prefetch window), so a write pass pays one WP fault, not one a page. A
 * store that drops copies once read drops these now. */
static void dirty_clean(struct fm_client *c, struct fm_region *r, uint64_t p, uint64_t addr)
{
	struct fm_map *m = map_find(c, addr);
	uint64_t n = 1;
	/* A write outweighs the clean evictions before it, and the pages
	 * resident now, fetched before it (eviction is mostly oldest first),
	 * earn nothing when they go: in a read pass followed by a write pass
	 * they would turn protection back on for a page in eight. */
	r->ct_score = (r->ct_score < CT_OFF ? r->ct_score : CT_OFF) - CT_WRITE;
	if (r->ct_score < -CT_MAX)
		r->ct_score = -CT_MAX;
	r->ct_stale = r->resident;
	if (m && D.opt.clean_tracking == FM_CT_AUTO) {
		uint64_t last = m->page + m->len / PAGE;
		for (; p + n < last && n < FM_BATCH_MAX; n++) {
			uint8_t *t = page_state(r, p + n, false);
			if (!t || (*t & (PS_STATE | PS_CLEAN)) != (PS_RESIDENT | PS_CLEAN))
				break;
		}
	}
	/* a failed ioctl may be done in part: all n count as written (a page
	 * still protected takes the stale-protection path at its write) */
	if (!unprotect(c, addr, n))
		return;
	struct fm_store *st = worker_store();
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *t = page_state(r, p + i, false);
		*t &= (uint8_t)~PS_CLEAN;
		drop_read_copy(c, r, p + i, t, st, false);
	}
}

/* A page from the store. The read is done with the client's lock released
 * (the page listed in c->inflight meanwhile), so faults of other threads and
 * regions go on; then, locked again, the page is installed unless an event
 * dropped it or changed its address meanwhile (the program faults again). */
static bool fault_store(struct fm_client *c, struct fm_region *r, uint64_t p, uint8_t *s, uint64_t addr)
{
	struct fm_worker *w = worker_get();
	struct fm_store_io io;
	io_for(&io, r, p, w ? w->pages : NULL);
	if (w) {
		unsigned char secret[FM_SECRET_SIZE];
		if (io.secret) { /* the region may go while we read */
			memcpy(secret, io.secret, sizeof(secret));
			io.secret = secret;
		}
		/* Not for a shared region: its lock is held, and taking the
		 * client's lock back under it would invert the lock order. */
		struct fm_inflight *f = NULL;
		for (unsigned i = 0; !f && !r->shared && i < FT_MAX; i++)
			if (!c->inflight[i].r)
				f = &c->inflight[i];
		if (f) {
			*f = (struct fm_inflight){ .r = r, .page = p };
			if (++c->ninflight > 1)
				c->st.faults_concurrent++;
			if (c->ninflight > c->inflight_max)
				c->inflight_max = c->ninflight;
			pthread_mutex_unlock(&c->lock);
		}
		if (fm_store_read(w->store, &io, 1) < 0)
			io.status = FM_STORE_UNAVAILABLE;
		if (f) {
			pthread_mutex_lock(&c->lock);
			bool cancelled = f->cancelled;
			f->r = NULL;
			c->ninflight--;
			pthread_cond_broadcast(&c->ev_cond);
			if (cancelled) { /* dropped meanwhile: it faults again and finds it empty */
				wake(c, addr);
				return false;
			}
			s = page_state(r, p, false);
		}
	}
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
		return true;
	}
	bool clean = keeps_clean(r);
	struct uffdio_copy cp = { .dst = addr, .src = (uint64_t)(uintptr_t)io.page, .len = PAGE,
				  .mode = clean ? UFFDIO_COPY_MODE_WP : 0 };
	if (!at_addr(c, addr, PAGE, true))
		return false; /* the page stays stored */
	int rc = ioctl(c->uffd, UFFDIO_COPY, &cp), err = errno;
	at_addr_done(c);
	if (rc < 0 && err != EEXIST) {
		ioctl_failed(c, "UFFDIO_COPY", addr, err);
		return false;
	}
	c->st.faults_store++;
	c->st.shared_faults_store += r->shared;
	c->st.bytes_in += PAGE;
	r->stored--;
	clean = clean && rc == 0; /* EEXIST: the page there is not ours, nor protected */
	drop_read_copy(c, r, p, s, w->store, clean);
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT | (clean ? PS_CLEAN : 0));
	region_enqueue(r, p, s);
	r->resident++;
	account_resident(payer(c, r), 1);
	return true;
}

/* Install n pages at client address addr: copies from src, or zero pages
 * when src is NULL, waking whoever faulted there meanwhile. Returns how many went in; a page
 * already present (EEXIST) ends the run early. */
static uint64_t do_install(struct fm_client *c, uint64_t addr, const char *src, uint64_t n, bool wp)
{
	if (src) {
		struct uffdio_copy cp = { .dst = addr, .src = (uint64_t)(uintptr_t)src, .len = n * PAGE,
					  .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };
		if (ioctl(c->uffd, UFFDIO_COPY, &cp) == 0)
			return n;
		return cp.copy > 0 ? (uint64_t)cp.copy / PAGE : 0;
	}
	struct uffdio_zeropage z = { .range = { addr, n * PAGE }, .mode = 0 };
	if (ioctl(c->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return n;
	return z.zeropage > 0 ? (uint64_t)z.zeropage / PAGE : 0;
}

static const char zero_page[PAGE] __attribute__((aligned(PAGE)));

/* Write n pages into r's memfd from page q on (copies from src, zeros when
 * src is NULL), then wake whoever faulted there meanwhile. A shmem write
 * adds each page to the page cache locked and not uptodate, copies, then
 * marks it uptodate and unlocks (shmem_write_begin/end): a fault of the
 * program on it meanwhile waits on the page lock, and fault-around skips
 * it, so the program never sees it half written. Stops before a page the
 * memfd already holds (as UFFDIO_COPY's EEXIST does). Returns how many
 * went in. Caller holds at_addr. */
static uint64_t do_write(struct fm_client *c, struct fm_region *r, uint64_t q, uint64_t addr,
			 const char *src, uint64_t n)
{
	off_t off = (off_t)(r->base_off + q * PAGE);
	struct stat sb; /* never grow a memfd its owner shrank */
	if (fstat(r->memfd, &sb) < 0 || sb.st_size <= off)
		return 0;
	if ((uint64_t)(sb.st_size - off) / PAGE < n)
		n = (uint64_t)(sb.st_size - off) / PAGE;
	off_t data = lseek(r->memfd, off, SEEK_DATA);
	if (data < 0 && errno != ENXIO) /* ENXIO: nothing from off on */
		return 0;
	if (data >= 0 && (uint64_t)(data - off) < n * PAGE)
		n = (uint64_t)(data - off) / PAGE;
	struct iovec iov[FM_BATCH_MAX + 1];
	uint64_t done = 0;
	while (done < n) {
		int k = 0;
		if (src)
			iov[k++] = (struct iovec){ (void *)(src + done * PAGE), (n - done) * PAGE };
		else
			for (; k < (int)(sizeof(iov) / sizeof(iov[0])) && done + (uint64_t)k < n; k++)
				iov[k] = (struct iovec){ (void *)zero_page, PAGE };
		ssize_t w = pwritev(r->memfd, iov, k, off + (off_t)(done * PAGE));
		if (w <= 0)
			break;
		done += (uint64_t)w / PAGE;
		if (w % PAGE) { /* a page half written: it must not stay */
			fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  off + (off_t)(done * PAGE), PAGE);
			break;
		}
	}
	if (done && D.opt.prefetch_install == FM_PF_CONTINUE) {
		/* map them too (and wake); any failure leaves them to minor faults */
		struct uffdio_continue ct = { .range = { addr, done * PAGE }, .mode = 0 };
		if (ioctl(c->uffd, UFFDIO_CONTINUE, &ct) == 0)
			return done;
	}
	if (done) {
		struct uffdio_range rg = { addr, done * PAGE };
		ioctl(c->uffd, UFFDIO_WAKE, &rg);
	}
	return done;
}

/* Install prefetched pages [q, q+n) of r at client address addr: a write
 * into the memfd (--prefetch-install write or continue) or UFFDIO_COPY /
 * ZEROPAGE (copy, the default: measured fastest). Write-protected installs
 * (clean tracking) and shared regions stay on the ioctls: a written page is
 * mapped by the program's own minor fault, with no write protection, and in
 * every process sharing it; so does `copy`: the fault's own page, which the
 * install must wake onto. */
static uint64_t install(struct fm_client *c, struct fm_region *r, uint64_t q, uint64_t addr,
			const char *src, uint64_t n, bool wp, bool copy)
{
	/* never len 0: a waking UFFDIO_COPY of 0 bytes does not return here
	 * (Linux 6.18: the ioctl spins) */
	if (!n || !at_addr(c, addr, n * PAGE, false))
		return 0;
	bool write = !copy && D.opt.prefetch_install != FM_PF_COPY && !wp && !r->shared;
	uint64_t got = write ? do_write(c, r, q, addr, src, n) : do_install(c, addr, src, n, wp);
	at_addr_done(c);
	return got;
}

static void mark_resident(struct fm_client *c, struct fm_region *r, uint64_t q, uint8_t *s)
{
	*s = (uint8_t)((*s & (PS_QUEUED | PS_INSTORE)) | PS_RESIDENT);
	region_enqueue(r, q, s);
	r->resident++;
	account_resident(payer(c, r), 1);
	c->st.pages_prefetched++;
}

/* Sequential prefetch. Two faults on consecutive pages, or a fault just past
 * the last window, start or continue a stream; the window doubles while the
 * stream goes on (4, 8, ... --prefetch pages). The window's pages are
 * installed with UFFDIO_COPY / UFFDIO_ZEROPAGE over whole runs, so each page
 * appears with its contents at once and the client touches it with no fault
 * at all. (Writing them through the monitor's mapping would let the client
 * see a page between its allocation and its contents. A pwrite() into the
 * memfd does not -- the page is locked until its contents are in -- and
 * costs the monitor a little less, but the program then maps each page by
 * its own minor fault, one or two per page: its registration includes WP,
 * which turns fault-around off and maps shared pages read-only first. So
 * --prefetch-install write, and write + UFFDIO_CONTINUE, measured slower:
 * docs/benchmarks.md, "fourth round".)
 * Installs wake: the program, already running after its fault, has most
 * likely faulted on the first page of the window meanwhile.
 *
 * Strides: three faults a constant distance apart (other than +1, the
 * streams), e.g. a column walk or a backwards scan: prefetch the next few
 * pages at that distance, one install each.
 *
 * Hit rate. The monitor sees no access to a prefetched page, but it sees the
 * region's next fault: one in the last window or just past it (in the
 * stream's direction, within STRIDE_MAX pages) means the program went
 * through it, and its pages count as hits; any other means the window was
 * (at least partly) wasted. A score per region goes up and down with that;
 * at PF_OFF or below no windows are issued (prefetch_skipped counts them),
 * but the windows that would have been are judged the same way, so a
 * sequential run brings it back after a few faults. So
 * random access, and short runs such as 2-page records read in random order,
 * stop paying store reads and evictions for pages nobody reads. Faults of
 * several threads interleaved in one region blur it (one stream per region). */
#define STRIDE_MAX 64  /* pages between two faults still taken for a stride */
#define STRIDE_AHEAD 8
#define PF_CHUNK 8     /* stream pages installed first */
#define PF_STEP 32     /* later steps, when the store pipelines reads */
#define PF_SCORE_MAX 8
#define PF_OFF (-4)

/* A window of `n` pages in [lo, hi) was just installed; dir: +1 or -1.
 * n == 0: a window that would have been issued had prefetch been on. */
static void pf_issued(struct fm_region *r, uint64_t lo, uint64_t hi, uint64_t n, int dir)
{
	r->pf_lo = lo;
	r->pf_hi = hi;
	r->pf_pending = n;
	r->pf_dir = (int8_t)dir;
	r->pf_judge = true;
}

/* Judge the last window by the region's next fault p: the program went
 * through it if p is in it or just past it, in the stream's direction. */
static void pf_judge(struct fm_client *c, struct fm_region *r, uint64_t p)
{
	if (!r->pf_judge)
		return;
	uint64_t reach = r->pf_hi - r->pf_lo + STRIDE_MAX;
	bool hit = r->pf_dir > 0 ? p >= r->pf_lo && p - r->pf_lo < reach
				 : p < r->pf_hi && r->pf_hi - p <= reach;
	if (hit) {
		c->st.prefetch_hits += r->pf_pending;
		if (r->pf_score < PF_SCORE_MAX)
			r->pf_score++;
	} else if (r->pf_score > -PF_SCORE_MAX) {
		r->pf_score--;
	}
	r->pf_pending = 0;
	r->pf_judge = false;
}

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
		if (!s || (*s & PS_STATE) != PS_STORED || inflight_has(c, r, (uint64_t)t))
			continue; /* only fetches pay: a zero page costs as much as its fault */
		q[n++] = (uint64_t)t;
	}
	if (!n)
		return;
	for (unsigned i = 0; i < n; i++)
		io_for(&w->ios[nio++], r, q[i], w->pages + (size_t)i * PAGE);
	if (fm_store_read(w->store, w->ios, nio) < 0)
		return;
	bool clean = keeps_clean(r);
	unsigned got = 0;
	for (unsigned i = 0; i < n; i++) {
		if (w->ios[i].status != FM_STORE_OK)
			continue;
		uint64_t a = m->start + (q[i] - m->page) * PAGE;
		if (install(c, r, q[i], a, w->pages + (size_t)i * PAGE, 1, clean, false) != 1)
			continue;
		uint8_t *s = page_state(r, q[i], false);
		drop_read_copy(c, r, q[i], s, w->store, clean);
		r->stored--;
		c->st.bytes_in += PAGE;
		mark_resident(c, r, q[i], s);
		if (clean)
			*s |= PS_CLEAN;
		got++;
	}
	make_room(c, 0);
	if (got) {
		uint64_t far = (uint64_t)((int64_t)p + delta * STRIDE_AHEAD);
		if (delta > 0)
			pf_issued(r, p + 1, far + 1, got, 1);
		else
			pf_issued(r, far, p, got, -1);
	}
}

/* The region's faults look random: the last RANDOM_AFTER of them continued
 * no stream and no stride. */
#define RANDOM_AFTER 16
bool region_random(const struct fm_region *r)
{
	return r->scattered >= RANDOM_AFTER;
}

/* Does a fault on page p continue r's stream, with prefetch on for r? */
static bool pf_streaming(const struct fm_region *r, uint64_t p)
{
	return D.opt.prefetch_max && !r->shared && r->pf_win &&
	       (p == r->last_fault + 1 || (r->pf_next && p == r->pf_next)) &&
	       !(D.opt.prefetch_gate && r->pf_score <= PF_OFF);
}

/* The length of the prefetch step at window position off of n: the fault's
 * page and the next PF_CHUNK first, then the rest, or PF_STEP at a time when
 * the store pipelines reads. */
static unsigned pf_step_len(unsigned n, unsigned off, bool lead, bool pipe)
{
	unsigned first = PF_CHUNK + lead;
	if (off == 0 && n > first)
		return first;
	return pipe && n - off > PF_STEP ? PF_STEP : n - off;
}

/* The worker's buffers for prefetch step `step`: all of them, or with
 * pipelined reads (two steps' reads at once) the two halves in turn. */
static struct fm_store_io *pf_step_buf(struct fm_worker *w, unsigned step, bool pipe, char **pages)
{
	size_t base = pipe ? (step % 2) * (FM_BATCH_MAX / 2) : 0;
	*pages = w->pages + base * PAGE;
	return w->ios + base;
}

/* The store reads of the step [off, off + k) of a window: its stored pages,
 * in order, one buffer slot each. Returns how many. */
static unsigned pf_step_ios(struct fm_region *r, const uint64_t *q, const uint8_t *kind, unsigned off,
			    unsigned k, struct fm_store_io *ios, char *pages)
{
	unsigned nio = 0;
	for (unsigned i = off; i < off + k; i++)
		if (kind[i] == PS_STORED) {
			io_for(&ios[nio], r, q[i], pages + (size_t)nio * PAGE);
			nio++;
		}
	return nio;
}

/* After the fault on page p (at addr) was answered, or, with `lead` (a
 * stream going on: pf_streaming), before: then page p, still missing,
 * leads the window's first step and is answered with it, one store read
 * and one install for both instead of two round trips each. Returns
 * whether p was installed (with lead; else the caller answers it alone,
 * and the window was tried already). Client lock held. */
static bool prefetch(struct fm_client *c, struct fm_region *r, uint64_t p, uint64_t addr, bool lead,
		     uint64_t t0)
{
	pf_judge(c, r, p);
	bool stream = p == r->last_fault + 1 || (r->pf_next && p == r->pf_next);
	int64_t delta = (int64_t)p - (int64_t)r->last_fault;
	bool stride = !stream && delta == r->last_delta && delta != 0 && delta != 1 &&
		      delta >= -STRIDE_MAX && delta <= STRIDE_MAX;
	r->last_delta = delta;
	r->last_fault = p;
	if (stream || stride)
		r->scattered = 0;
	else if (r->scattered < RANDOM_AFTER)
		r->scattered++;
	if (!D.opt.prefetch_max)
		return false;
	if ((stream || stride) && D.opt.prefetch_gate && r->pf_score <= PF_OFF) {
		/* off for this region: judge the window it would have issued */
		c->st.prefetch_skipped++;
		if (stride && delta < 0)
			pf_issued(r, (uint64_t)((int64_t)p + delta * STRIDE_AHEAD), p, 0, -1);
		else
			pf_issued(r, p + 1, p + 1 + (stride ? (uint64_t)delta * STRIDE_AHEAD : 4), 0, 1);
		r->pf_win = 0;
		r->pf_next = 0;
		return false;
	}
	if (stride) {
		prefetch_stride(c, r, p, addr, delta);
		return false;
	}
	if (!stream) {
		r->pf_win = 0;
		r->pf_next = 0;
		return false;
	}
	unsigned win = r->pf_win ? r->pf_win * 2 : 4;
	if (win > D.opt.prefetch_max)
		win = D.opt.prefetch_max;
	r->pf_win = win;
	r->pf_next = p + win + 1;
	struct fm_worker *w = worker_get();
	if (!w)
		return false;
	/* The window: `win` pages to fetch after p, contiguous in the
	 * client's map. Pages still resident are stepped over (after a random
	 * pass a quarter of a region is resident, scattered: stopping at them
	 * made windows of ~3 pages and broke the stream); a lost page or one
	 * in flight ends it. */
	struct fm_map *m = map_find(c, addr);
	uint64_t map_end = m ? m->page + m->len / PAGE : p + 1;
	uint64_t end = p + 1 + 2 * (uint64_t)win;
	if (end > r->npages)
		end = r->npages;
	if (end > map_end)
		end = map_end;
	uint64_t q[FM_BATCH_MAX + 1];
	uint8_t kind[FM_BATCH_MAX + 1];
	unsigned n = 0;
	if (lead) {
		q[n] = p;
		kind[n++] = (uint8_t)(*page_state(r, p, false) & PS_STATE);
	}
	uint64_t scan = p + 1;
	for (; scan < end && n < win + lead; scan++) {
		uint8_t *s = page_state(r, scan, true);
		int k = s ? (*s & PS_STATE) : -1;
		if (k == PS_RESIDENT)
			continue;
		if ((k != PS_EMPTY && k != PS_STORED) || inflight_has(c, r, scan))
			break;
		q[n] = scan;
		kind[n++] = (uint8_t)k;
	}
	r->pf_next = scan; /* the stream goes on at the first page not covered */
	if (n == lead)
		return false;
	/* Two steps, nearest first: the program's next access is p+1 (or p
	 * itself, with lead); it waits for PF_CHUNK pages, not for the window,
	 * then runs over them while the rest comes in one batch (every step
	 * wakes it: more steps, more wake-ups). Each step reads its stored
	 * pages in one batch and installs runs of one kind with one ioctl
	 * each. Room is made after the window is in (the budget is overshot
	 * by at most a window meanwhile): the eviction then overlaps the
	 * program's run over the window instead of stalling it in the middle. */
	bool clean_ok = keeps_clean(r);
	/* A store that pipelines reads (remote ones) gets PF_STEP-page steps,
	 * each read started before the previous step is installed: the server
	 * answers while we install, and the program waits for a step, not for
	 * the rest of the window. Steps then use the two halves of the
	 * worker's buffers in turn. */
	bool pipe = w->store->ops->read_start != NULL;
	uint64_t done = 0;
	unsigned off = 0, step = 0, next_nio = 0;
	bool stop = false, led = false, started = false;
	while (off < n && !stop) {
		unsigned k = pf_step_len(n, off, lead, pipe), nio;
		char *pages, *npages;
		struct fm_store_io *ios = pf_step_buf(w, step, pipe, &pages);
		if (started) {
			nio = next_nio;
			started = false;
			if (nio && fm_store_read_finish(w->store, ios, nio) < 0)
				break;
		} else {
			nio = pf_step_ios(r, q, kind, off, k, ios, pages);
			if (nio && fm_store_read(w->store, ios, nio) < 0)
				break;
		}
		if (pipe && off + k < n) {
			struct fm_store_io *nios = pf_step_buf(w, step + 1, pipe, &npages);
			unsigned nk = pf_step_len(n, off + k, lead, pipe);
			next_nio = pf_step_ios(r, q, kind, off + k, nk, nios, npages);
			started = next_nio == 0 || fm_store_read_start(w->store, nios, next_nio) == 0;
		}
		step++;
		/* The step's runs: consecutive pages of one kind. When prefetched
		 * pages are written, the fault's own page is a run of its own, put
		 * in last with UFFDIO_COPY: that wakes the program onto a step
		 * already in the memfd. */
		bool lead_last = lead && off == 0 && D.opt.prefetch_install != FM_PF_COPY && !r->shared;
		unsigned rs[FM_BATCH_MAX + 1], re[FM_BATCH_MAX + 1], rio[FM_BATCH_MAX + 1], nr = 0, io = 0;
		for (unsigned i = off; i < off + k;) {
			unsigned j = i + 1;
			if (!(lead_last && i == 0))
				while (j < off + k && kind[j] == kind[i] && q[j] == q[j - 1] + 1)
					j++;
			rs[nr] = i;
			re[nr] = j;
			rio[nr++] = io;
			if (kind[i] == PS_STORED)
				io += j - i;
			i = j;
		}
		if (lead_last && nr > 1) {
			unsigned s0 = rs[0], e0 = re[0], i0 = rio[0];
			memmove(rs, rs + 1, (nr - 1) * sizeof(rs[0]));
			memmove(re, re + 1, (nr - 1) * sizeof(re[0]));
			memmove(rio, rio + 1, (nr - 1) * sizeof(rio[0]));
			rs[nr - 1] = s0;
			re[nr - 1] = e0;
			rio[nr - 1] = i0;
		}
		for (unsigned x = 0; x < nr; x++) {
			unsigned i = rs[x], len = re[x] - i, io0 = rio[x];
			bool own = lead && i == 0; /* the fault's own page leads this run */
			if (stop && !(own && lead_last))
				continue;
			bool stored = kind[i] == PS_STORED, bad = false;
			if (stored) {
				for (unsigned t = 0; t < len; t++)
					if (ios[io0 + t].status != FM_STORE_OK) {
						len = t; /* stop before a page its own fault must report */
						bad = true;
						break;
					}
			}
			bool clean = stored && clean_ok;
			uint64_t a = addr + (q[i] - p) * PAGE;
			uint64_t got = install(c, r, q[i], a, stored ? pages + (size_t)io0 * PAGE : NULL, len,
					       clean, own && lead_last);
			for (uint64_t t = 0; t < got; t++) {
				uint8_t *s = page_state(r, q[i] + t, false);
				if (stored) {
					drop_read_copy(c, r, q[i] + t, s, w->store, clean);
					r->stored--;
					c->st.bytes_in += PAGE;
				}
				mark_resident(c, r, q[i] + t, s);
				if (clean)
					*s |= PS_CLEAN;
			}
			if (own && got) { /* the fault's own page: not a prefetch */
				led = true;
				record_latency(c, t0);
				c->st.pages_prefetched--;
				if (stored)
					c->st.faults_store++;
				else
					c->st.faults_zero++;
			}
			done += got;
			if (own && lead_last)
				continue; /* last: the stream's end was settled by the others */
			if (bad)
				stop = true;
			if (got < len) {
				stop = true;
				r->pf_next = q[i] + got;
			}
			if (stop && got == len)
				r->pf_next = q[i] + len;
		}
		off += k;
	}
	if (started && next_nio) { /* stopped early: collect the answers, unused */
		char *unused;
		fm_store_read_finish(w->store, pf_step_buf(w, step, pipe, &unused), next_nio);
	}
	make_room(c, 0);
	done -= led;
	if (done)
		pf_issued(r, p + 1, r->pf_next, done, 1);
	return led;
}

/* The fault at addr in map m of region r (locked if shared). Returns true
 * when it must be looked up again (another thread was fetching the page). */
static bool fault_in(struct fm_client *c, struct fm_map *m, struct fm_region *r, const struct uffd_msg *msg,
		     uint64_t addr, uint64_t t0);

static void handle_fault(struct fm_client *c, const struct uffd_msg *msg, uint64_t t0, uint64_t seq)
{
	uint64_t addr = msg->arg.pagefault.address & ~(PAGE - 1);
	cur_seq = seq;
	ev_wait_applied(c, seq);
retry:
	pthread_mutex_lock(&c->ev_lock);
	bool moved = ev_touched(c, seq, addr, PAGE);
	pthread_mutex_unlock(&c->ev_lock);
	if (moved) { /* unmapped or moved since: let it fault again, if it still does */
		wake(c, addr);
		return;
	}
	if (remap_hold_fault(c, addr))
		return; /* an mremap is changing this part of the maps: woken at its END */
	struct fm_map *m = map_find(c, addr);
	if (!m) {
		fm_log("pid %d: fault at %#llx outside every registered region: SIGBUS", (int)c->pid,
		       (unsigned long long)addr);
		poison(c, addr);
		return;
	}
	struct fm_region *r = m->region;
	uint64_t prefetched = c->st.pages_prefetched;
	/* A private region may be freed while fault_store lets the client's
	 * lock go (the program unmapped it meanwhile): r is not read after
	 * fault_in. A shared one keeps its lock throughout. */
	bool shared = r->shared;
	shared_lock(r);
	bool again = fault_in(c, m, r, msg, addr, t0);
	if (shared)
		shared_unlock(r);
	if (again)
		goto retry;
	placement_note(c, (pid_t)msg->arg.pagefault.feat.ptid, c->st.pages_prefetched != prefetched);
}

static bool fault_in(struct fm_client *c, struct fm_map *m, struct fm_region *r, const struct uffd_msg *msg,
		     uint64_t addr, uint64_t t0)
{
	uint64_t p = m->page + (addr - m->start) / PAGE;
	if (r->dropped) {
		poison(c, addr);
		return false;
	}
	uint8_t *s = p < r->npages ? page_state(r, p, true) : NULL;
	if (!s) {
		fm_log("pid %d: fault at %#llx: page %llu beyond the region or out of memory: SIGBUS",
		       (int)c->pid, (unsigned long long)addr, (unsigned long long)p);
		poison(c, addr);
		return false;
	}
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* Evicted meanwhile: wake, it re-faults as MISSING. Still
		 * resident: a stale protection, lift it (that wakes too). */
		c->st.faults_wp++;
		if ((*s & PS_STATE) != PS_RESIDENT)
			wake(c, addr);
		else if (*s & PS_CLEAN)
			dirty_clean(c, r, p, addr);
		else
			unprotect(c, addr, 1);
		return false;
	}
	bool tried = false; /* the stream's window, led by p, was tried */
	switch (*s & PS_STATE) {
	case PS_RESIDENT:
		c->st.faults_spurious++;
		wake(c, addr);
		return false;
	case PS_LOST:
		poison(c, addr);
		return false;
	case PS_EMPTY:
		make_room(c, 1);
		if (pf_streaming(r, p) && !tenant_at_cap(c, 1)) {
			tried = true;
			if (prefetch(c, r, p, addr, true, t0))
				return false;
		}
		if (tenant_at_cap(c, 1) && atomic_load(&D.resident) >= atomic_load(&D.budget_pages)) {
			/* no room here, none allowed in the store: out of memory */
			fm_log("pid %d: uid %d is at its store cap and the budget is full: SIGBUS at %#llx",
			       (int)c->pid, (int)c->uid, (unsigned long long)addr);
			poison(c, addr);
			return false;
		}
		fault_zero(c, r, p, s, addr);
		break;
	case PS_STORED:
		if (inflight_has(c, r, p)) {
			/* another thread is fetching it: wait, then look again
			 * (never for a shared region, whose lock we would hold) */
			pthread_cond_wait(&c->ev_cond, &c->lock);
			return true;
		}
		make_room(c, 1);
		if (pf_streaming(r, p)) {
			tried = true;
			if (prefetch(c, r, p, addr, true, t0))
				return false;
		}
		if (!fault_store(c, r, p, s, addr))
			return false;
		break;
	}
	record_latency(c, t0);
	if (!tried)
		prefetch(c, r, p, addr, false, t0);
	return false;
}

/* [start, end) of the client's address space: pages become zeros, except
 * those of shared regions the client is only unmapping. */
void drop_range(struct fm_client *c, uint64_t start, uint64_t end, bool unmap)
{
	for (size_t i = 0; i < c->nmaps; i++) {
		struct fm_map *m = &c->maps[i];
		uint64_t a = start > m->start ? start : m->start;
		uint64_t b = end < m->start + m->len ? end : m->start + m->len;
		if (a >= b || (unmap && m->region->shared))
			continue;
		shared_lock(m->region);
		region_drop_pages(c, m->region, m->page + (a - m->start) / PAGE, (b - a) / PAGE,
				  worker_store());
		shared_unlock(m->region);
	}
}

static void apply_event(struct fm_client *c, const struct uffd_msg *msg)
{
	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
		drop_range(c, msg->arg.remove.start, msg->arg.remove.end, false);
		break;
	case UFFD_EVENT_UNMAP:
		if (remap_takes_event(c, msg))
			break; /* an announced mremap's: its END applies it (remap.c) */
		/* The tail of an unannounced mremap move: its map has moved
		 * already, and the address may hold a new region by now. */
		for (unsigned i = 0; i < c->nmoved_from; i++)
			if (c->moved_from[i].start == msg->arg.remove.start &&
			    c->moved_from[i].end == msg->arg.remove.end) {
				c->moved_from[i] = c->moved_from[--c->nmoved_from];
				return;
			}
		drop_range(c, msg->arg.remove.start, msg->arg.remove.end, true);
		map_remove_range(c, msg->arg.remove.start, msg->arg.remove.end);
		client_release_unmapped(c, worker_store());
		break;
	case UFFD_EVENT_REMAP:
		if (remap_takes_event(c, msg))
			break;
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

/* An event set aside during an mremap that failed: applied after all
 * (remap.c; client lock held, ordered as the END request). */
void event_replay(struct fm_client *c, const struct uffd_msg *msg)
{
	apply_event(c, msg);
}

/* Events in the order they were read (seq), client lock held. */
static void handle_event(struct fm_client *c, const struct uffd_msg *msg, uint64_t seq)
{
	ev_wait_applied(c, seq - 1);
	apply_event(c, msg);
	c->ev_applied = seq;
	pthread_cond_broadcast(&c->ev_cond);
}

/* The ranges an event read just now changes (ev_lock held). */
static void note_event(struct fm_client *c, const struct uffd_msg *msg)
{
	uint64_t seq = ++c->ev_read;
	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		ev_note(c, seq, msg->arg.remove.start, msg->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		ev_note(c, seq, msg->arg.remap.from, msg->arg.remap.from + msg->arg.remap.len);
		ev_note(c, seq, msg->arg.remap.to, msg->arg.remap.to + msg->arg.remap.len);
		break;
	default:
		ev_note(c, seq, 0, UINT64_MAX);
		break;
	}
}

/* Read and handle everything pending on the client's userfaultfd. Returns
 * the number of messages handled. With several handler threads each reads
 * one message at a time, so the others take the next faults. */
unsigned handle_uffd(struct fm_client *c)
{
	struct uffd_msg msgs[MSG_BATCH];
	uint64_t seqs[MSG_BATCH];
	size_t batch = D.opt.fault_threads > 1 ? 1 : MSG_BATCH;
	unsigned handled = 0;
	for (;;) {
		pthread_mutex_lock(&c->ev_lock);
		ssize_t n = read(c->uffd, msgs, batch * sizeof(msgs[0]));
		int err = errno;
		size_t cnt = n > 0 ? (size_t)n / sizeof(msgs[0]) : 0;
		for (size_t i = 0; i < cnt; i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				note_event(c, &msgs[i]);
			seqs[i] = c->ev_read;
		}
		pthread_mutex_unlock(&c->ev_lock);
		if (n < 0) {
			if (err != EAGAIN && err != EINTR) {
				fm_log("pid %d: reading userfaultfd: %s", (int)c->pid, strerror(err));
				c->dead = true;
			}
			return handled;
		}
		handled += (unsigned)cnt;
		uint64_t t0 = fm_now_ns();
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < cnt; i++) {
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(c, &msgs[i], t0, seqs[i]);
			else
				handle_event(c, &msgs[i], seqs[i]);
		}
		pthread_mutex_unlock(&c->lock);
		if (cnt < batch)
			return handled;
	}
}

/* A change of the client's maps that comes over its socket (FM_MSG_UNMAP):
 * ordered with the uffd's events, as one of them. Client lock held. */
uint64_t ev_local_begin(struct fm_client *c, uint64_t start, uint64_t end)
{
	pthread_mutex_lock(&c->ev_lock);
	uint64_t seq = ++c->ev_read;
	ev_note(c, seq, start, end);
	pthread_mutex_unlock(&c->ev_lock);
	ev_wait_applied(c, seq - 1);
	return seq;
}

void ev_local_end(struct fm_client *c, uint64_t seq)
{
	c->ev_applied = seq;
	pthread_cond_broadcast(&c->ev_cond);
}

/* Before a request on the socket: every event read so far is applied. */
void ev_sync(struct fm_client *c)
{
	pthread_mutex_lock(&c->ev_lock);
	uint64_t upto = c->ev_read;
	pthread_mutex_unlock(&c->ev_lock);
	ev_wait_applied(c, upto);
}
