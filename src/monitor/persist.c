/* persist.c - what a restarted monitor needs to take its clients back, and
 * taking them back (remote stores only; the local store dies with us).
 *
 * Per region (private, fork clone, or shared), a file
 * <state dir>/<region id in hex>.pages:
 *   a header: id, owner uid, flags, the store id its own copies are under
 *     (two copies and a selector: a fork changes it in one store), the
 *     highest version it ever recorded, and for shared regions the
 *     processes that hold it;
 *   a table of the fork backings it refers to (share.c): their store id and
 *     seal key, the key wrapped with the region's own (which only its
 *     process and we know);
 *   one 64-bit record per page: the version of the page's copy in the store
 *     (0 = none) and which copy, its own (slot 0) or a backing's (slot k),
 *     written in one store so no instant shows half of it.
 * The monitor maps it (MAP_SHARED: the page cache keeps what a SIGKILLed
 * monitor wrote; it lives on tmpfs as long as the programs can, so there
 * is nothing to fsync) and writes a record before the page's store write,
 * clears it before a page is punched out of the memfd as zero or dropped,
 * and removes a store copy only once no record refers to it. So whenever
 * the monitor dies, a page is in the memfd (the client's, it survives us),
 * or in the store under the key and version its record names, or zero with
 * its record clear. A fork writes the backing's table entry first, then the
 * records (same keys as before), then flips the store id; a clone's file
 * gets its magic last, before the child can know of it.
 *
 * The counts of shared copies are not written anywhere: at start the
 * records of every file are counted (persist_scan). A client re-attaching
 * (FM_MSG_ATTACH) hands back its memfd, region id and key; persist_attach()
 * then sets every page: in the memfd = resident, else a record = stored
 * under that key and version, else empty (its versions restart above the
 * file's high-water mark, so no copy a store may still hold is ever
 * mistaken for a new one). Files of regions that nobody takes back within
 * a while are removed with the copies only they referred to. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "worker.h"

#define PMAGIC "FMSTATE2"
#define PHOLDERS 128u   /* processes of a shared region recorded by pid */
#define PSLOTS 1024u    /* fork backings a region's file can name */
#define PSLOT_OFF 4096u /* the backing table */
#define PHDR (PSLOT_OFF + PSLOTS * sizeof(struct pslot)) /* the records (page aligned) */

struct pholder {
	uint32_t pid;           /* 0: free; written last */
	uint32_t pad;
	uint64_t start;         /* its start time (/proc/PID/stat), against pid reuse */
};

struct phdr {
	char magic[8];          /* written last at creation */
	uint64_t id[2];
	uint32_t uid;
	uint32_t flags;         /* PH_* */
	uint64_t sid[2][2];     /* the store id of its own copies: sid[sid_sel] */
	uint32_t sid_sel;
	uint32_t hwm;           /* highest version recorded */
	struct pholder holders[PHOLDERS];
};
#define PH_DROPPED 1u /* dropped by an operator: stays a SIGBUS after a restart */
#define PH_SHARED 2u  /* a shared region (shared.c) */
#define PH_MANY 4u    /* a shared region with more holders than the header names */

struct pslot {
	uint64_t bid[2];        /* 0: unused */
	unsigned char wrapped[FM_SECRET_SIZE];
};

_Static_assert(sizeof(struct phdr) <= PSLOT_OFF, "header fits before the slots");
_Static_assert(PHDR % 4096 == 0, "records start on a page");

#define REC_VERSION(x) ((uint32_t)(x))
#define REC_SLOT(x) ((uint16_t)((x) >> 32))

static struct phdr *hdr(struct fm_region *r)
{
	return (struct phdr *)(void *)r->pfile;
}

static void path_of(const uint64_t id[2], char *buf, size_t len)
{
	snprintf(buf, len, "%s/%016llx%016llx.pages", D.opt.state_dir, (unsigned long long)id[0],
		 (unsigned long long)id[1]);
}

static int map_file(struct fm_region *r, int fd, uint64_t npages)
{
	size_t len = PHDR + npages * sizeof(uint64_t);
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	r->pfile = m;
	r->precs = (uint64_t *)(void *)(m + PHDR);
	r->phwm = &((struct phdr *)(void *)m)->hwm;
	r->pcap = npages;
	return 0;
}

/* The pad that wraps backing bid's key in region r's file: a keyed hash of
 * the backing id under the region's own key. */
static void wrap(const unsigned char *rkey, const uint64_t bid[2], const unsigned char *in, unsigned char *out)
{
	unsigned char pad[FM_SECRET_SIZE];
	crypto_generichash(pad, sizeof(pad), (const unsigned char *)bid, 2 * sizeof(uint64_t), rkey, FM_SECRET_SIZE);
	for (unsigned i = 0; i < FM_SECRET_SIZE; i++)
		out[i] = in[i] ^ pad[i];
	sodium_memzero(pad, sizeof(pad));
}

/* Slot `slot` (1-based) of r's file names backing b, before any record
 * refers to it. -E2BIG when the table is full. */
int persist_slot(struct fm_region *r, uint16_t slot, const struct fm_backing *b)
{
	if (!r->pfile)
		return 0;
	if (!slot || slot > PSLOTS)
		return -E2BIG;
	struct pslot *e = (struct pslot *)(void *)(r->pfile + PSLOT_OFF) + (slot - 1);
	struct pslot n;
	memcpy(n.bid, b->id, sizeof(n.bid));
	wrap(r->secret, b->id, b->secret, n.wrapped);
	memcpy(e, &n, sizeof(n));
	sodium_memzero(&n, sizeof(n));
	return 0;
}

/* r writes under a new store id (r->sid) from now on. */
void persist_sid(struct fm_region *r)
{
	if (!r->pfile)
		return;
	struct phdr *h = hdr(r);
	uint32_t next = !h->sid_sel;
	memcpy(h->sid[next], r->sid, sizeof(h->sid[next]));
	__atomic_store_n(&h->sid_sel, next, __ATOMIC_RELEASE);
}

/* Start time of a process (field 22 of /proc/PID/stat), 0 if it is gone. */
static uint64_t pid_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command may hold spaces */
	if (!p)
		return 0;
	unsigned long long start = 0;
	char state = 0;
	/* after ") ": state(3) ... starttime(22) */
	if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &state, &start) != 2)
		return 0;
	/* a zombie leader may have live threads: it counts until reaped */
	return state == 'X' ? 0 : start;
}

/* pid holds shared region r (on) or left it: the header names it, so that
 * after a restart r is not evicted before it is back (or gone). */
void persist_holder(struct fm_region *r, pid_t pid, bool on)
{
	if (!r->pfile || atomic_load(&D.keep_state)) /* stopping: they come back */
		return;
	struct phdr *h = hdr(r);
	for (unsigned i = 0; i < PHOLDERS; i++)
		if (h->holders[i].pid == (uint32_t)pid) {
			if (!on)
				__atomic_store_n(&h->holders[i].pid, 0, __ATOMIC_RELEASE);
			return;
		}
	if (!on)
		return;
	for (unsigned i = 0; i < PHOLDERS; i++)
		if (!h->holders[i].pid) {
			h->holders[i].start = pid_start(pid);
			__atomic_store_n(&h->holders[i].pid, (uint32_t)pid, __ATOMIC_RELEASE);
			return;
		}
	h->flags |= PH_MANY;
}

/* May shared region r be evicted? Not while a process that held it before
 * a restart may still come back: it maps the pages, and our write-protection
 * (set through the views we know) would not stop its writes. */
bool persist_evictable(struct fm_region *r)
{
	if (!r->nawait && !r->await_until_ns)
		return true;
	uint64_t now = fm_now_ns();
	if (r->await_until_ns && now >= r->await_until_ns)
		r->await_until_ns = 0;
	if (now - r->await_checked_ns < 100000000ull)
		return false; /* /proc is read 10 times a second at most */
	r->await_checked_ns = now;
	for (unsigned i = r->nawait; i-- > 0;)
		if (r->await[i].start != pid_start(r->await[i].pid))
			r->await[i] = r->await[--r->nawait]; /* gone */
	return !r->nawait && !r->await_until_ns;
}

/* Write r's records, slots and header from memory, magic last (a new
 * region, or a fork clone: its pages may refer to backings already). */
static int fill(struct fm_region *r, uid_t uid)
{
	struct phdr *h = hdr(r);
	for (uint32_t k = 0; k < r->nbacks; k++)
		if (r->backs[k].b && persist_slot(r, (uint16_t)(k + 1), r->backs[k].b) < 0)
			return -E2BIG;
	uint32_t hwm = 0;
	for (uint64_t p = 0; p < r->npages; p++) {
		if (!r->chunks[p / CHUNK_PAGES]) {
			p |= CHUNK_PAGES - 1;
			continue;
		}
		if (!(r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES] & PS_INSTORE))
			continue;
		uint32_t v = *page_version(r, p);
		r->precs[p] = (uint64_t)share_slot_of(r, p) << 32 | v;
		if (v > hwm)
			hwm = v;
	}
	memcpy(h->id, r->id, sizeof(h->id));
	h->uid = (uint32_t)uid;
	h->flags = r->shared ? PH_SHARED : 0;
	memcpy(h->sid[0], r->sid, sizeof(h->sid[0]));
	h->sid_sel = 0;
	h->hwm = hwm;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(h->magic, PMAGIC, 8);
	return 0;
}

int persist_create(struct fm_region *r, uid_t uid)
{
	if (!D.persist)
		return 0;
	char path[512];
	path_of(r->id, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = ftruncate(fd, (off_t)(PHDR + r->npages * sizeof(uint64_t))) < 0 ? -errno : map_file(r, fd, r->npages);
	close(fd);
	if (rc == 0 && (rc = fill(r, uid)) < 0)
		persist_forget(r);
	if (rc < 0)
		unlink(path);
	return rc;
}

int persist_grow(struct fm_region *r, uint64_t npages)
{
	if (!r->pfile || npages <= r->pcap)
		return 0;
	char path[512];
	path_of(r->id, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (ftruncate(fd, (off_t)(PHDR + npages * sizeof(uint64_t))) < 0) {
		rc = -errno;
	} else {
		munmap(r->pfile, PHDR + r->pcap * sizeof(uint64_t));
		r->pfile = NULL;
		r->precs = NULL;
		rc = map_file(r, fd, npages);
	}
	close(fd);
	return rc;
}

/* r cannot be rebuilt after a restart: it keeps no state file, and is freed
 * as usual at a stop. */
void persist_noattach(struct fm_region *r)
{
	if (!r->pfile)
		return;
	char path[512];
	path_of(r->id, path, sizeof(path));
	unlink(path);
	persist_forget(r);
}

void persist_dropped(struct fm_region *r)
{
	if (r->pfile)
		hdr(r)->flags |= PH_DROPPED;
}

/* Unmap the state file and leave it where it is. */
void persist_forget(struct fm_region *r)
{
	if (r->pfile)
		munmap(r->pfile, PHDR + r->pcap * sizeof(uint64_t));
	r->pfile = NULL;
	r->precs = NULL;
	r->phwm = NULL;
}

void persist_close(struct fm_region *r)
{
	if (!r->pfile)
		return;
	persist_forget(r);
	if (!atomic_load(&D.keep_state)) {
		char path[512];
		path_of(r->id, path, sizeof(path));
		unlink(path);
	}
}

/* Data ranges of fd within [from, to): calls fn for each page index
 * (offset - base) / unit of its data. SEEK_DATA skips the holes of sparse
 * files: the untouched parts of a large region cost nothing. */
static int each_data(int fd, off_t from, off_t to, int (*fn)(void *, off_t, off_t), void *arg)
{
	off_t pos = from;
	while (pos < to) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -errno;
		if (d >= to)
			return 0;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || h > to)
			h = to;
		int rc = fn(arg, d, h);
		if (rc < 0)
			return rc;
		pos = h;
	}
	return 0;
}

struct rebuild {
	struct fm_client *c;
	struct fm_region *r;
	uint16_t fold;          /* a fork's freeze cut short: its backing's slot */
};

static int resident_range(void *arg, off_t a, off_t b)
{
	struct fm_region *r = ((struct rebuild *)arg)->r;
	uint64_t first = ((uint64_t)a - r->base_off) / PAGE;
	uint64_t end = ((uint64_t)b - r->base_off + PAGE - 1) / PAGE;
	for (uint64_t p = first; p < end && p < r->npages; p++) {
		uint8_t *s = page_state(r, p, true);
		if (!s)
			return -ENOMEM;
		*s = PS_RESIDENT;
		if (region_queue_push(r, p) == 0)
			*s |= PS_QUEUED;
		r->resident++;
	}
	return 0;
}

static int record_range(void *arg, off_t a, off_t b)
{
	struct rebuild *rb = arg;
	struct fm_region *r = rb->r;
	uint64_t first = ((uint64_t)a - PHDR) / sizeof(uint64_t);
	uint64_t end = ((uint64_t)b - PHDR + sizeof(uint64_t) - 1) / sizeof(uint64_t);
	for (uint64_t p = first; p < end && p < r->npages && p < r->pcap; p++) {
		uint64_t rec = r->precs[p];
		uint32_t v = REC_VERSION(rec);
		uint16_t k = REC_SLOT(rec);
		if (!v && !k)
			continue;
		uint8_t *s = page_state(r, p, true);
		if (!s)
			return -ENOMEM;
		if (!k && rb->fold) {
			/* its own copy, under the id the freeze gave the backing:
			 * the backing's now, as the freeze was going to make it */
			k = rb->fold;
			share_load_ref(r->backs[k - 1].b->id, p);
			persist_share(r, p, k, v);
		}
		if (k && share_attach_page(r, p, k) < 0)
			return -EINVAL; /* a slot the file does not name */
		*page_version(r, p) = v;
		if ((*s & PS_STATE) != PS_RESIDENT) {
			*s = PS_STORED;
			r->stored++;
		}
		instore(rb->c, s, true);
	}
	return 0;
}

/* The backings r's file names: linked again, their keys unwrapped with r's.
 * One whose id is still r's own store id (*fold) is a fork's freeze the
 * monitor died in (the records go to the backing before the new id). */
static int attach_slots(struct fm_region *r, int fd, uint16_t *fold, const char **why)
{
	static _Thread_local struct pslot t[PSLOTS];
	if (pread(fd, t, sizeof(t), PSLOT_OFF) != (ssize_t)sizeof(t)) {
		*why = "the region's state file is damaged";
		return -EINVAL;
	}
	int rc = 0;
	for (uint16_t k = 1; k <= PSLOTS && rc == 0; k++) {
		struct pslot *e = &t[k - 1];
		if (!e->bid[0] && !e->bid[1])
			continue;
		struct fm_backing *b = share_find(e->bid);
		if (!b)
			continue; /* no record refers to it any more */
		unsigned char key[FM_SECRET_SIZE];
		wrap(r->secret, e->bid, e->wrapped, key);
		if (e->bid[0] == r->sid[0] && e->bid[1] == r->sid[1])
			*fold = k;
		if (share_key(b, key) < 0) {
			*why = "the region's key does not open its fork relatives' store copies";
			rc = -EPERM;
		} else if ((rc = share_attach_slot(r, k, b)) < 0) {
			*why = "cannot link the region to its fork relatives' store copies";
		}
		sodium_memzero(key, sizeof(key));
	}
	sodium_memzero(t, sizeof(t));
	return rc;
}

/* Open the state of region r (id, key and memfd set, owner c) and rebuild
 * its page states. On failure r's states and share tables are left for the
 * caller to free without touching any count. */
int persist_attach(struct fm_client *c, struct fm_region *r, const char **why)
{
	char path[512];
	path_of(r->id, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	*why = "no state for this region (the monitor that had it kept none, or it was freed)";
	if (fd < 0)
		return -ENOENT;
	int rc = -EINVAL;
	struct phdr h;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < PHDR ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h.magic, PMAGIC, 8) ||
	    h.id[0] != r->id[0] || h.id[1] != r->id[1] || !(h.flags & PH_SHARED) != !r->shared) {
		*why = "the region's state file is damaged, or of another format";
		goto out;
	}
	if (h.uid != (uint32_t)c->uid) {
		rc = -EPERM;
		*why = "the region belongs to another user";
		goto out;
	}
	uint64_t have = ((uint64_t)sb.st_size - PHDR) / sizeof(uint64_t);
	if (have < r->npages && ftruncate(fd, (off_t)(PHDR + r->npages * sizeof(uint64_t))) < 0) {
		rc = -errno;
		*why = "cannot grow the region's state file";
		goto out;
	}
	memcpy(r->sid, h.sid[h.sid_sel & 1], sizeof(r->sid));
	struct rebuild rb = { c, r, 0 };
	if ((rc = attach_slots(r, fd, &rb.fold, why)) < 0)
		goto out;
	if ((rc = map_file(r, fd, have > r->npages ? have : r->npages)) < 0) {
		*why = "cannot map the region's state file";
		goto out;
	}
	r->dropped = h.flags & PH_DROPPED;
	r->vbase = h.hwm; /* before any page state chunk is made */
	*why = "cannot rebuild the region's page states";
	rc = each_data(r->memfd, (off_t)r->base_off, (off_t)(r->base_off + r->npages * PAGE), resident_range, &rb);
	if (rc == 0)
		rc = each_data(fd, PHDR, (off_t)(PHDR + r->npages * sizeof(uint64_t)), record_range, &rb);
	if (rc == -EINVAL)
		*why = "the region's state file refers to a fork backing it does not name";
	if (rc == 0 && rb.fold) { /* finish that freeze: a fresh id for its own copies */
		if (getrandom(r->sid, sizeof(r->sid), 0) != sizeof(r->sid))
			rc = -EIO;
		else
			persist_sid(r);
	}
	if (rc == 0 && r->shared) {
		/* the others that held it: not evicted before they are back */
		for (unsigned i = 0; i < PHOLDERS; i++) {
			struct pholder *o = &h.holders[i];
			if (!o->pid || o->pid == (uint32_t)c->pid || pid_start((pid_t)o->pid) != o->start)
				continue;
			struct fm_await *n = realloc(r->await, (r->nawait + 1) * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			r->await = n;
			r->await[r->nawait++] = (struct fm_await){ (pid_t)o->pid, o->start };
		}
		if (h.flags & PH_MANY)
			r->await_until_ns = fm_now_ns() + 120ull * 1000000000ull;
	}
	if (rc == 0)
		account_resident(c, (int64_t)r->resident);
	else
		persist_forget(r);
out:
	close(fd);
	return rc;
}

/* Is a region with this id alive here (or may it be: a client whose lock
 * stays busy counts as having it)? */
static bool region_known(const uint64_t id[2])
{
	size_t n;
	bool found = false;
	struct fm_client **v = clients_get(&n);
	for (size_t i = 0; i < n && !found; i++) {
		if (!client_lock_for(v[i], 1000)) {
			found = true;
			break;
		}
		found = region_find(v[i], id) != NULL;
		pthread_mutex_unlock(&v[i]->lock);
	}
	clients_put(v, n);
	if (found)
		return true;
	pthread_mutex_lock(&D.lock);
	for (struct fm_pending *pd = D.pending; pd && !found; pd = pd->next)
		found = pd->region->id[0] == id[0] && pd->region->id[1] == id[1];
	pthread_mutex_unlock(&D.lock);
	pthread_mutex_lock(&D.shared_lock);
	found = found || shared_find(id) != NULL;
	pthread_mutex_unlock(&D.shared_lock);
	return found;
}

/* One state file, read-only, for the scan and the collection below. */
struct pstate {
	struct phdr h;
	struct pslot slots[PSLOTS];
	const uint64_t *recs;
	struct fm_store *st;    /* collecting: remove what nobody refers to */
	struct fm_page_key keys[64];
	unsigned n;
	uint64_t pages;
};

static int scan_range(void *arg, off_t a, off_t b)
{
	struct pstate *o = arg;
	for (uint64_t p = ((uint64_t)a - PHDR) / 8; p < ((uint64_t)b - PHDR + 7) / 8; p++) {
		uint64_t rec = o->recs[p];
		uint16_t k = REC_SLOT(rec);
		const uint64_t *sid = o->h.sid[o->h.sid_sel & 1];
		if (!REC_VERSION(rec) && !k)
			continue;
		if (k > PSLOTS || (k && !o->slots[k - 1].bid[0] && !o->slots[k - 1].bid[1]))
			continue; /* damaged: refers to nothing */
		if (!o->st) { /* the scan: count it */
			if (k)
				share_load_ref(o->slots[k - 1].bid, p);
			continue;
		}
		if (k ? share_drop_ref(o->slots[k - 1].bid, p, &o->keys[o->n]) : true) {
			if (!k)
				o->keys[o->n] = (struct fm_page_key){ { sid[0], sid[1] }, p };
			o->n++;
			o->pages++;
		}
		if (o->n == 64) {
			fm_store_remove(o->st, o->keys, o->n);
			o->n = 0;
		}
	}
	return 0;
}

/* Read the file at path (region id) into o and walk its records. */
static int read_state(const char *path, const uint64_t id[2], struct pstate *o)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	int rc = -EINVAL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > PHDR &&
	    pread(fd, &o->h, sizeof(o->h), 0) == (ssize_t)sizeof(o->h) && !memcmp(o->h.magic, PMAGIC, 8) &&
	    o->h.id[0] == id[0] && o->h.id[1] == id[1] &&
	    pread(fd, o->slots, sizeof(o->slots), PSLOT_OFF) == (ssize_t)sizeof(o->slots)) {
		const char *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			o->recs = (const uint64_t *)(const void *)(m + PHDR);
			rc = each_data(fd, PHDR, sb.st_size, scan_range, o);
			if (o->st && o->n)
				fm_store_remove(o->st, o->keys, o->n);
			munmap((void *)m, (size_t)sb.st_size);
		}
	}
	close(fd);
	return rc;
}

/* Calls fn for every state file name (its region id and path). */
static void each_file(void (*fn)(const uint64_t id[2], const char *path, void *), void *arg)
{
	DIR *d = opendir(D.opt.state_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t id[2];
		char tail[16], path[512];
		if (sscanf(e->d_name, "%16llx%16llx%15s", (unsigned long long *)&id[0], (unsigned long long *)&id[1],
			   tail) != 3 || strcmp(tail, ".pages"))
			continue;
		path_of(id, path, sizeof(path));
		fn(id, path, arg);
	}
	closedir(d);
}

static void scan_one(const uint64_t id[2], const char *path, void *arg)
{
	(void)arg;
	static struct pstate o;
	memset(&o, 0, sizeof(o));
	read_state(path, id, &o);
}

/* At start, before any client: count the references the state files make
 * to copies shared since a fork (share.c). */
void persist_scan(void)
{
	if (D.persist)
		each_file(scan_one, NULL);
}

static void gc_one(const uint64_t id[2], const char *path, void *arg)
{
	time_t started = *(const time_t *)arg;
	struct stat sb;
	if (lstat(path, &sb) < 0 || sb.st_mtime >= started)
		return; /* made by this monitor: a live region, maybe not linked yet */
	if (region_known(id)) /* takes the locks it needs: not under D.lock */
		return;
	static struct pstate o;
	memset(&o, 0, sizeof(o));
	o.st = worker_store();
	if (o.st)
		read_state(path, id, &o);
	unlink(path);
	fm_log("region %016llx%016llx was not taken back after the restart: %llu stored page(s) freed",
	       (unsigned long long)id[0], (unsigned long long)id[1], (unsigned long long)o.pages);
}

/* State files of regions no client took back (its process died while no
 * monitor ran, or it gave up waiting): the store copies only they referred
 * to and the file go. Called once, a while after start (main.c). */
void persist_gc(time_t started)
{
	if (worker_store())
		each_file(gc_one, &started);
}
