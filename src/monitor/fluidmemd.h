/* fluidmemd.h - the monitor's shared state: clients, regions, tags, budget.
 *
 * Ownership: the daemon (struct fm_daemon, one) owns the list of clients and
 * tags; a client owns its regions and maps and is served by --fault-threads
 * handler threads reading its one userfaultfd.
 * Locking: a client's mutex guards its regions, maps and every page state of
 * those regions; the daemon mutex guards the lists. Lock order: daemon, then
 * client, then the client's ev_lock (see struct fm_client). A client's lock
 * is held across store I/O (eviction, prefetch, events), which can take
 * seconds while a store server does not answer, so no thread holding the
 * daemon mutex ever waits for a client's lock: it only tries it (eviction),
 * or takes references on the clients (clients_get) and lets go of the
 * daemon mutex first (status, metrics, control commands). Resident counters
 * that span clients are atomics. */
#ifndef FM_FLUIDMEMD_H
#define FM_FLUIDMEMD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/userfaultfd.h>
#include <time.h>

#include "fluidmem/store.h"
#include "proto.h"

#define PAGE 4096ull

/* Page states: 2 bits, plus flags. One byte per page of a region. */
enum {
	PS_EMPTY = 0,    /* never touched, or removed: reads as zeros */
	PS_RESIDENT = 1, /* in the memfd, mapped by the client */
	PS_STORED = 2,   /* in the store under (its store id, or a fork backing's, page) */
	PS_LOST = 3,     /* unrecoverable: delivered as SIGBUS */
	PS_STATE = 3,
	PS_QUEUED = 4,   /* has an entry in the region's eviction queue */
	PS_INSTORE = 8,  /* a copy is in the store (STORED, or RESIDENT and fetched) */
	PS_CLEAN = 16,   /* RESIDENT, fetched write-protected and not written since:
			  * the store's copy is current, eviction need not write it */
	PS_REQUEUE = 32, /* RESIDENT again while its queue entry is from before (it
			  * left by address, or was dropped): that entry's turn
			  * sends it to the back instead (region_enqueue) */
};

#define CHUNK_PAGES 4096u /* page states are allocated 4096 at a time (16 MiB of region) */

struct fm_tag;
struct fm_client;

/* A tenant: everything of one uid. */
struct fm_tenant {
	uid_t uid;
	uint64_t reserve_pages;        /* local pages it keeps against other tenants' faults */
	uint64_t store_cap_pages;      /* most pages it may hold in the store, 0 = no cap */
	atomic_uint_fast64_t resident;
	atomic_uint_fast64_t stored;   /* pages with a copy in the store */
	struct fm_tenant *next;
};

/* A frozen store namespace (share.c): the store copies a region had when it
 * forked, referred to since by it and its clones page by page. Never written
 * again; each copy is removed when the last region referring to it lets go. */
struct fm_backing {
	uint64_t id[2];        /* the region part of the copies' keys */
	unsigned char secret[FM_SECRET_SIZE]; /* they were sealed with */
	uint32_t **refs;       /* per page: regions referring to its copy (chunks) */
	uint64_t nchunks;
	uint64_t pages;        /* pages with a copy still referred to; freed at 0 */
	bool keyed;            /* secret known (rebuilt after a restart: once a referent is back) */
	struct fm_backing *next; /* every backing (share.c), found by id after a restart */
};

/* One client's view of a shared region: where it maps which pages. A region
 * shared by several processes is write-protected in each of them before a
 * page is copied out. */
struct fm_view {
	struct fm_client *client;
	int uffd;
	uint64_t start, len;   /* client addresses */
	uint64_t page;         /* region page at start */
};

struct fm_region {
	uint64_t id[2];
	uint64_t sid[2];       /* the region part of the store keys it writes: its id
				* until it forks, then a fresh one each fork (share.c) */
	unsigned char secret[FM_SECRET_SIZE]; /* encryption key of its stored pages; only here */
	struct fm_client *owner;
	int memfd;
	uint64_t base_off;     /* offset of page 0 in the memfd */
	uint64_t npages;
	char *mon;             /* the monitor's own mapping of the region */
	uint8_t **chunks;      /* page state chunks, NULL until touched */
	uint64_t nchunks;
	uint32_t *queue;       /* FIFO of resident page indexes (ring) */
	uint64_t qcap, qhead, qlen;
	uint64_t resident, stored;
	uint64_t last_fault;   /* sequential stream detection for prefetch */
	uint64_t pf_next;      /* first page after the last prefetch window */
	unsigned pf_win;       /* current window, doubles while the stream goes on */
	int64_t last_delta;    /* stride between the last two faults */
	uint64_t pf_lo, pf_hi; /* the last window's pages, not judged yet if pf_pending */
	uint64_t pf_pending;   /* pages it installed */
	int8_t pf_dir;         /* +1 forward, -1 backward (a negative stride) */
	bool pf_judge;         /* the last window (real or, while off, virtual) awaits the next fault */
	int pf_score;          /* prefetch hit score (fault.c): windows stop when low */
	int ct_score;          /* clean-tracking score (fault.c): write-protected installs stop when low */
	uint8_t ct_probe;      /* installs since the last probe while the score is low */
	uint64_t ct_stale;     /* clean evictions still to come that earn no score */
	uint64_t sweep;        /* next page an eviction by address looks at (evict.c) */
	uint8_t scattered;     /* faults in a row that continued no stream or stride */
	uint32_t flags;        /* FM_REGISTER_* */
	bool dropped;          /* by an operator: every fault in it is a SIGBUS */
	/* Store copies shared with relatives since a fork (share.c): per page
	 * 0 (its copy, if any, is under sid) or 1 + an index into backs. */
	uint16_t **share;      /* chunks of CHUNK_PAGES, NULL until one of its pages is shared */
	uint64_t nshare;
	struct fm_share_slot { struct fm_backing *b; uint64_t pages; } *backs;
	uint32_t nbacks;
	char *pfile;           /* its state file, mapped (persist.c); NULL: none */
	uint64_t *precs;       /* per page: version of the store's copy (0 = none) | slot << 32 */
	uint64_t pcap;         /* records in the file */
	uint32_t *phwm;        /* in the file: the highest version it ever recorded */
	uint32_t vbase;        /* versions of pages with no record start here (after a restart:
				* above every version the store may still hold) */
	/* A shared region rebuilt after a restart is not evicted until every
	 * process that held it is back or gone (persist.c): one not back yet
	 * maps its pages without our write-protection. */
	struct fm_await { pid_t pid; uint64_t start; } *await;
	unsigned nawait;
	uint64_t await_until_ns; /* holders not recorded (too many): wait this long */
	uint64_t await_checked_ns; /* last look in /proc for them */
	struct fm_region *next;
	/* Shared regions (FM_REGISTER_SHARED): mapped by several clients (a
	 * process and its fork children). They are on D.shared, not on any
	 * client's list; their own lock guards states, queue, views and
	 * holders (order: daemon, client, D.shared_lock, region). `owner` is one
	 * of the holders: its resident count carries the region's pages, and it
	 * passes to another holder when it leaves. */
	bool shared;
	bool owner_counted;    /* owner's st.regions counts it (the creator) */
	pthread_mutex_t lock;  /* recursive: a fault in it may evict from it */
	struct fm_view *views;
	unsigned nviews, capviews;
	struct fm_client **holders; /* clients that joined and have not left */
	unsigned nholders, capholders;
	struct fm_stats sst;   /* eviction counters, folded into the owner's when it leaves */
};

/* One contiguous piece of the client's address space backed by a region. */
struct fm_map {
	uint64_t start, len;
	struct fm_region *region;
	uint64_t page;         /* region page index at start */
};

/* An mremap the client announced (FM_MSG_MREMAP_BEGIN) and has not ended
 * (remap.c). Until its END the client's maps show the layout before it; the
 * kernel may already have the one after. Under the client's lock. */
#define FM_REMAP_EVENTS 8
struct fm_remap {
	bool active;
	uint64_t old_addr, old_len, new_len, new_addr; /* new_addr: MREMAP_FIXED's */
	uint32_t flags;
	/* the kernel's REMAP/UNMAP events for it: dropped at END, applied then
	 * if the mremap failed (it may have unmapped a target first) */
	struct uffd_msg events[FM_REMAP_EVENTS];
	unsigned nevents;
	/* faults in the ranges involved, or outside every map, held until END
	 * (their addresses: they are woken then and fault again) */
	uint64_t *held;
	size_t nheld, capheld;
};

#define FT_MAX 16   /* most handler threads per client (--fault-threads) */
#define EV_RING 64  /* address ranges of the latest events, for in-flight faults */

/* A store fault being fetched with the client's lock released. */
struct fm_inflight {
	struct fm_region *r;   /* NULL: slot free */
	uint64_t page;
	bool cancelled;        /* the page was dropped or its region freed meanwhile */
};

struct fm_client {
	int sock, uffd, pidfd, wake_fd;
	pid_t pid;
	uint32_t features;     /* FM_HELLO_* */
	uid_t uid;
	gid_t gid;
	pthread_mutex_t lock;
	struct fm_tag *tag;
	struct fm_tenant *tenant;
	struct fm_region *regions;
	struct fm_map *maps;
	size_t nmaps, capmaps;
	/* mremap's own UNMAP of the source, which the kernel sends after the
	 * REMAP, possibly after another thread has mapped something new there */
	struct { uint64_t start, end; } moved_from[8];
	unsigned nmoved_from;
	struct fm_remap remap;
	struct fm_stats st;
	atomic_uint_fast64_t resident; /* pages, read by other clients' evictors */
	atomic_bool dead;
	/* Several threads read the uffd (--fault-threads). ev_lock is held
	 * around every read of it and every ioctl that puts something at a
	 * client address: an event (UNMAP, REMOVE, REMAP, or an FM_MSG_UNMAP
	 * request) gets a sequence number and its ranges go in ev_ring when it
	 * is read, so a fault looked up before the event can tell that its
	 * address changed under it and let the program fault again instead of
	 * installing a page where a new mapping may be. Events are applied in
	 * sequence order (ev_applied, under the client's lock; ev_cond waits for
	 * it), and a fault is looked up only once every event read before it is
	 * applied. */
	pthread_mutex_t ev_lock;
	pthread_cond_t ev_cond;       /* with `lock`: ev_applied moved, an in-flight fault ended */
	uint64_t ev_read;             /* events read (ev_lock) */
	uint64_t ev_applied;          /* events applied (lock) */
	struct { uint64_t seq, start, end; } ev_ring[EV_RING];
	uint64_t ev_nring;            /* ranges ever noted; ev_ring[i % EV_RING] */
	struct fm_inflight inflight[FT_MAX]; /* under lock */
	unsigned ninflight, inflight_max;
	pthread_t helpers[FT_MAX];
	unsigned nhelpers;
	struct fm_region **shared; /* shared regions this client holds (joined, not left) */
	unsigned nshared, capshared;
	atomic_bool attaching;        /* re-attaching after a monitor restart: its uffd is not
				* read before FM_MSG_ATTACH_DONE (all its regions back) */
	/* Walkers outside D.lock (clients_get): client_free waits for them. */
	atomic_int refs;
	bool linked;                  /* on D.clients (D.lock); its counters are not in D.done */
	/* What a status or metrics reader saw last with the lock (seen_lock):
	 * shown instead while the lock stays busy, so counters never go back. */
	pthread_mutex_t seen_lock;
	struct fm_stats seen;
	uint64_t seen_size;           /* bytes of its regions */
	struct fm_client *next;
};

/* Processes started by one `fluidmem run` share a tag: its limit and stats. */
struct fm_tag {
	char name[FM_TAG_MAX];
	uid_t uid;             /* of the process that made it: only it (and root) sees it */
	uint64_t limit_pages;  /* 0: only the global budget */
	atomic_uint_fast64_t resident;
	atomic_uint_fast64_t peak; /* most pages resident at once, its processes together */
	struct fm_stats done;  /* counters of clients that have exited */
	int clients;
	struct fm_tag *next;
};

/* A fork snapshot waiting for the child to adopt it. */
struct fm_pending {
	struct fm_region *region;
	uint64_t addr, len;
	uint64_t created_ns;
	struct fm_pending *next;
};

struct fm_options {
	const char *socket_path;
	const char *store_url;
	uint64_t budget_pages;
	unsigned evict_batch;
	unsigned socket_mode;
	bool verbose;
	bool quiet;            /* only problems in the log (private monitors of `fluidmem run`) */
	const char *metrics_listen; /* ADDR:PORT of the Prometheus endpoint, NULL: none (metrics.c) */
	unsigned poll_us;      /* after a fault, keep reading the uffd this long before sleeping */
	unsigned prefetch_max; /* largest sequential prefetch window in pages, 0 = off */
	bool prefetch_gate;    /* stop prefetching in regions where it misses (fault.c) */
	enum { FM_PF_COPY, FM_PF_WRITE, FM_PF_CONTINUE } prefetch_install; /* how prefetched pages go in (fault.c) */
	bool zero_skip;        /* evicted all-zero pages are not written to the store */
	bool encrypt;          /* seal stored pages with each region's key (remote stores) */
	enum { FM_CT_OFF, FM_CT_AUTO, FM_CT_ALWAYS } clean_tracking; /* fetch pages write-protected,
				* evict clean ones without a write (fault.c) */
	unsigned async_evict;  /* >0: a background thread keeps this many pages free under
				* the budget, so faults rarely evict inline */
	int affinity_fault, affinity_evict; /* CPU for client threads / the evictor, -1 = any */
	bool placement;        /* fault threads follow a randomly faulting thread's CPU (placement.c) */
	bool evict_sweep;      /* random regions evict by address (evict.c) */
	unsigned fault_threads; /* handler threads per client reading its uffd (1..FT_MAX) */
	const char *state_dir; /* per-region state files, for re-attaching after a restart */
};

struct fm_daemon {
	struct fm_options opt;
	pthread_mutex_t lock;
	struct fm_client *clients;
	atomic_uint nclients;   /* linked into clients (placement.c reads it without the lock) */
	struct fm_tag *tags;
	struct fm_tenant *tenants;
	struct fm_pending *pending;
	pthread_mutex_t shared_lock; /* guards the list of shared regions */
	struct fm_region *shared;
	atomic_uint_fast64_t budget_pages;
	atomic_uint_fast64_t resident;
	atomic_uint_fast64_t peak_resident;
	struct fm_stats done;   /* counters of all clients that have exited */
	uint64_t start_ns;
	bool persist;           /* remote store: keep state files so a restart takes clients back */
	atomic_bool keep_state; /* shutting down: leave regions' store data and state files */
};

extern struct fm_daemon D;

uint32_t *page_version(struct fm_region *r, uint64_t page);
const struct fm_backing *share_of(const struct fm_region *r, uint64_t page);
/* A store read of page `page` of r into buf: its copy, r's own or one shared
 * since a fork (then with the key and seal key of the region that wrote it),
 * with the version r recorded for it. */
static inline void io_for(struct fm_store_io *io, struct fm_region *r, uint64_t page, void *buf)
{
	const struct fm_backing *b = share_of(r, page);
	const uint64_t *id = b ? b->id : r->sid;
	io->key = (struct fm_page_key){ { id[0], id[1] }, page };
	io->page = buf;
	io->version = *page_version(r, page);
	io->secret = D.opt.encrypt ? (b ? b->secret : r->secret) : NULL;
	io->status = FM_STORE_UNAVAILABLE;
}
/* A store write of page `page` of r from buf: always under r's own key, with
 * the page's current version (the writer bumps it first). */
static inline void io_own(struct fm_store_io *io, struct fm_region *r, uint64_t page, void *buf)
{
	io->key = (struct fm_page_key){ { r->sid[0], r->sid[1] }, page };
	io->page = buf;
	io->version = *page_version(r, page);
	io->secret = D.opt.encrypt ? r->secret : NULL;
	io->status = FM_STORE_UNAVAILABLE;
}

/* log.c */
void fm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fm_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t fm_now_ns(void);

/* region.c */
struct fm_region *region_new(struct fm_client *c, int memfd, uint64_t off, uint64_t len,
			     uint32_t flags, int *err);
void region_free(struct fm_region *r, struct fm_store *st);
int region_grow(struct fm_region *r, uint64_t new_len);
uint8_t *page_state(struct fm_region *r, uint64_t page, bool create);
int region_queue_push(struct fm_region *r, uint64_t page);
void region_enqueue(struct fm_region *r, uint64_t page, uint8_t *s);
struct fm_region *region_find(struct fm_client *c, const uint64_t id[2]);
struct fm_map *map_find(struct fm_client *c, uint64_t addr);
int map_add(struct fm_client *c, uint64_t start, uint64_t len, struct fm_region *r, uint64_t page);
bool map_has(struct fm_client *c, uint64_t start, uint64_t len, const struct fm_region *r, uint64_t page);
void map_remove_range(struct fm_client *c, uint64_t start, uint64_t end);
int map_move(struct fm_client *c, uint64_t from, uint64_t to, uint64_t len);
void region_drop_pages(struct fm_client *c, struct fm_region *r, uint64_t first, uint64_t count,
		       struct fm_store *st);
void client_release_unmapped(struct fm_client *c, struct fm_store *st);
int region_drop(const uint64_t id[2]);

/* shared.c */
int shared_register(struct fm_client *c, struct fm_region *r);
void shared_publish(struct fm_region *r);
struct fm_region *shared_find(const uint64_t id[2]);
int shared_join(struct fm_client *c, const struct fm_join *j, int memfd, const char **why);
int shared_attach(struct fm_client *c, const struct fm_attach *a, int memfd, const char **why);
int view_add(struct fm_region *r, struct fm_client *c, uint64_t start, uint64_t len, uint64_t page);
void view_remove(struct fm_region *r, struct fm_client *c, uint64_t start);
void shared_settle(struct fm_client *c, struct fm_store *st);
void shared_lock(struct fm_region *r);
void shared_unlock(struct fm_region *r);
/* The client whose counters carry r's resident pages: c, or r's owner. */
static inline struct fm_client *payer(struct fm_client *c, struct fm_region *r)
{
	return r->shared ? r->owner : c;
}

/* fault.c */
struct fm_store *thread_store(void);
unsigned handle_uffd(struct fm_client *c);
/* unmap: the client stops mapping the range (munmap); shared regions keep
 * their pages for the other processes. Otherwise (madvise) pages become zeros. */
void drop_range(struct fm_client *c, uint64_t start, uint64_t end, bool unmap);
bool ev_touched(struct fm_client *c, uint64_t since, uint64_t addr, uint64_t len);
void ev_note(struct fm_client *c, uint64_t seq, uint64_t start, uint64_t end);
void ev_wait_applied(struct fm_client *c, uint64_t seq);
uint64_t ev_local_begin(struct fm_client *c, uint64_t start, uint64_t end);
void ev_local_end(struct fm_client *c, uint64_t seq);
void ev_sync(struct fm_client *c);
void inflight_cancel(struct fm_client *c, struct fm_region *r, uint64_t first, uint64_t count);
void event_replay(struct fm_client *c, const struct uffd_msg *msg);
void wake(struct fm_client *c, uint64_t addr);
bool inflight_has(struct fm_client *c, struct fm_region *r, uint64_t p);
bool region_random(const struct fm_region *r);
void clean_evicted(struct fm_region *r);

/* placement.c */
void placement_note(struct fm_client *c, pid_t tid, bool streamed);
bool placement_may_spin(void);
int placement_wait_ms(void);
void placement_quiet(struct fm_client *c);
void placement_end(void);

/* remap.c */
int remap_begin(struct fm_client *c, const struct fm_mremap *m, const char **why);
int remap_end(struct fm_client *c, const struct fm_mremap_end *e, const char **why);
bool remap_hold_fault(struct fm_client *c, uint64_t addr);
bool remap_takes_event(struct fm_client *c, const struct uffd_msg *msg);
void remap_abort(struct fm_client *c);
void remap_free(struct fm_client *c);

/* evict.c */
void make_room(struct fm_client *c, uint64_t need);
unsigned evict_region(struct fm_region *r, unsigned max, struct fm_store *st);
void account_resident(struct fm_client *c, int64_t delta);
void evict_over_budget(void);
unsigned evict_largest(bool wait);
struct fm_region *largest_region(struct fm_client *c);

/* evictor.c */
int evictor_start(void);
void evictor_stop(void);
void evictor_kick(void);

/* client.c */
int client_start(int sock, const struct fm_msg_hdr *h, const struct fm_hello *hello,
		 const int *fds, int nfds);
void clients_stop_all(void);
struct fm_client **clients_get(size_t *n);
void clients_put(struct fm_client **v, size_t n);
bool client_lock_for(struct fm_client *c, unsigned ms);

/* Set or clear a page's INSTORE flag, keeping its tenant's store usage. */
static inline void instore(struct fm_client *c, uint8_t *s, bool on)
{
	if (on == !!(*s & PS_INSTORE))
		return;
	*s = on ? (uint8_t)(*s | PS_INSTORE) : (uint8_t)(*s & ~PS_INSTORE);
	if (c && c->tenant)
		atomic_fetch_add(&c->tenant->stored, on ? 1 : (uint64_t)-1);
}

/* share.c */
int share_freeze(struct fm_region *r);
int share_page(struct fm_region *clone, struct fm_region *r, uint64_t page);
bool share_unref(struct fm_region *r, uint64_t page, struct fm_page_key *gone);
bool copy_release(struct fm_region *r, uint64_t page, struct fm_page_key *gone);
void store_forget(struct fm_client *c, struct fm_region *r, uint64_t page, uint8_t *s, struct fm_store *st);
void share_region_free(struct fm_region *r);
/* After a restart (persist.c): backings and their counts rebuilt from the
 * state files' records, regions linked to them as they come back. */
void share_load_ref(const uint64_t id[2], uint64_t page);
bool share_drop_ref(const uint64_t id[2], uint64_t page, struct fm_page_key *gone);
struct fm_backing *share_find(const uint64_t id[2]);
int share_key(struct fm_backing *b, const unsigned char *secret);
int share_attach_slot(struct fm_region *r, uint16_t slot, struct fm_backing *b);
int share_attach_page(struct fm_region *r, uint64_t page, uint16_t slot);
uint16_t share_slot_of(const struct fm_region *r, uint64_t page);
void share_free_all(void);
struct fm_share_counters {
	uint64_t shared_now;   /* store copies in frozen namespaces */
	uint64_t fork_shared;  /* stored pages forks handed to clones by reference */
	uint64_t fork_copied;  /* resident pages forks copied memfd to memfd */
};
void share_counters(struct fm_share_counters *out);
void share_note_copied(uint64_t pages);
/* persist.c */
int persist_create(struct fm_region *r, uid_t uid);
int persist_grow(struct fm_region *r, uint64_t npages);
void persist_close(struct fm_region *r);
void persist_forget(struct fm_region *r);
void persist_noattach(struct fm_region *r);
int persist_attach(struct fm_client *c, struct fm_region *r, const char **why);
void persist_gc(time_t started);
void persist_dropped(struct fm_region *r);
void persist_scan(void);
int persist_slot(struct fm_region *r, uint16_t slot, const struct fm_backing *b);
void persist_sid(struct fm_region *r);
void persist_holder(struct fm_region *r, pid_t pid, bool on);
bool persist_evictable(struct fm_region *r);
/* Record the version of page p's own store copy (0: none) where a restart
 * finds it; the region's high-water mark first, so versions after a restart
 * start above it. */
static inline void persist_set(struct fm_region *r, uint64_t p, uint32_t version)
{
	if (r->precs && p < r->pcap) {
		if (version > *r->phwm)
			*r->phwm = version;
		r->precs[p] = version;
	}
}
/* Page p refers to the copy of backing `slot` (1-based) with this version. */
static inline void persist_share(struct fm_region *r, uint64_t p, uint16_t slot, uint32_t version)
{
	if (r->precs && p < r->pcap)
		r->precs[p] = (uint64_t)slot << 32 | version;
}

/* tenant.c */
int tenant_allow(const char *spec);
bool tenant_allowed(uid_t uid, gid_t gid);
struct fm_tenant *tenant_get(uid_t uid);
int tenant_reserve(const char *spec);
int tenant_store_cap(const char *spec);
int tenant_set(const struct fm_set_tenant *rq);
bool tenant_at_cap(const struct fm_client *c, uint64_t more);
bool tenant_protected(const struct fm_client *victim, const struct fm_client *for_whom);
void tenants_free(void);

/* status.c */
int status_render(char *buf, size_t cap, bool json, uid_t uid);
void tag_stats(const char *tag, uid_t uid, struct fm_stats *out);
bool client_view(struct fm_client *c, struct fm_stats *s, uint64_t *size);


#endif
