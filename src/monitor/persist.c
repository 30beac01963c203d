/* persist.c - what a restarted monitor needs to take its clients back, and
 * taking them back (remote stores only; the local store dies with us).
 *
 * Per region, a file <state dir>/<region id in hex>.pages: a header, then
 * one 32-bit record per page: the version of the page's copy in the store,
 * 0 when the store holds none. The monitor maps it and writes a record
 * before the page's store write and clears it before a page is punched out
 * of the memfd as zero or dropped. So whenever the monitor dies, a page is
 * either in the memfd (the client's, it survives us), or in the store with
 * its record set, or zero with its record clear. Records also keep the
 * versions that make stale or replayed store copies fail their check.
 *
 * A client re-attaching (FM_MSG_ATTACH) hands back its memfd, region id and
 * key; persist_rebuild() then sets every page: in the memfd = resident, else
 * a record = stored under that version, else empty. Files of regions that
 * nobody takes back within a while are removed with their store data. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "worker.h"

#define PMAGIC "FMSTATE1"
#define PHDR 64 /* header bytes before the records */

struct phdr {
	char magic[8];
	uint64_t id[2];
	uint32_t uid;
	uint32_t flags;         /* PH_DROPPED */
};
#define PH_DROPPED 1u /* dropped by an operator: stays a SIGBUS after a restart */

static void path_of(const uint64_t id[2], char *buf, size_t len)
{
	snprintf(buf, len, "%s/%016llx%016llx.pages", D.opt.state_dir, (unsigned long long)id[0],
		 (unsigned long long)id[1]);
}

static int map_file(struct fm_region *r, int fd, uint64_t npages)
{
	size_t len = PHDR + npages * sizeof(uint32_t);
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	r->pfile = m;
	r->precs = (uint32_t *)(m + PHDR);
	r->pcap = npages;
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
	int rc = ftruncate(fd, (off_t)(PHDR + r->npages * sizeof(uint32_t))) < 0 ? -errno : map_file(r, fd, r->npages);
	close(fd);
	if (rc < 0) {
		unlink(path);
		return rc;
	}
	struct phdr h = { .id = { r->id[0], r->id[1] }, .uid = (uint32_t)uid };
	memcpy(h.magic, PMAGIC, 8);
	memcpy(r->pfile, &h, sizeof(h));
	return 0;
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
	if (ftruncate(fd, (off_t)(PHDR + npages * sizeof(uint32_t))) < 0) {
		rc = -errno;
	} else {
		munmap(r->pfile, PHDR + r->pcap * sizeof(uint32_t));
		r->pfile = NULL;
		r->precs = NULL;
		rc = map_file(r, fd, npages);
	}
	close(fd);
	return rc;
}

/* r cannot be rebuilt after a restart (its store copies are shared with a
 * fork relative): it keeps no state file, and is freed as usual at a stop. */
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
		((struct phdr *)(void *)r->pfile)->flags |= PH_DROPPED;
}

/* Unmap the state file and leave it where it is. */
void persist_forget(struct fm_region *r)
{
	if (r->pfile)
		munmap(r->pfile, PHDR + r->pcap * sizeof(uint32_t));
	r->pfile = NULL;
	r->precs = NULL;
}

void persist_close(struct fm_region *r)
{
	if (!r->pfile)
		return;
	munmap(r->pfile, PHDR + r->pcap * sizeof(uint32_t));
	r->pfile = NULL;
	r->precs = NULL;
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
	uint64_t first = ((uint64_t)a - PHDR) / sizeof(uint32_t);
	uint64_t end = ((uint64_t)b - PHDR + sizeof(uint32_t) - 1) / sizeof(uint32_t);
	for (uint64_t p = first; p < end && p < r->npages && p < r->pcap; p++) {
		uint32_t v = r->precs[p];
		if (!v)
			continue;
		uint8_t *s = page_state(r, p, true);
		if (!s)
			return -ENOMEM;
		*page_version(r, p) = v;
		if ((*s & PS_STATE) != PS_RESIDENT) {
			*s = PS_STORED;
			r->stored++;
		}
		instore(rb->c, s, true);
	}
	return 0;
}

/* Open the state of region r (id and memfd set, owner c) and rebuild its
 * page states. */
int persist_attach(struct fm_client *c, struct fm_region *r, const char **why)
{
	char path[512];
	path_of(r->id, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	*why = "no state for this region (the monitor that had it kept none, it was freed, "
	       "or its store pages are shared with a fork relative)";
	if (fd < 0)
		return -ENOENT;
	int rc = -EINVAL;
	struct phdr h;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < PHDR ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h.magic, PMAGIC, 8) ||
	    h.id[0] != r->id[0] || h.id[1] != r->id[1]) {
		*why = "the region's state file is damaged";
		goto out;
	}
	if (h.uid != (uint32_t)c->uid) {
		rc = -EPERM;
		*why = "the region belongs to another user";
		goto out;
	}
	uint64_t have = ((uint64_t)sb.st_size - PHDR) / sizeof(uint32_t);
	if (have < r->npages && ftruncate(fd, (off_t)(PHDR + r->npages * sizeof(uint32_t))) < 0) {
		rc = -errno;
		*why = "cannot grow the region's state file";
		goto out;
	}
	if ((rc = map_file(r, fd, have > r->npages ? have : r->npages)) < 0) {
		*why = "cannot map the region's state file";
		goto out;
	}
	r->dropped = h.flags & PH_DROPPED;
	struct rebuild rb = { c, r };
	*why = "cannot rebuild the region's page states";
	rc = each_data(r->memfd, (off_t)r->base_off, (off_t)(r->base_off + r->npages * PAGE), resident_range, &rb);
	if (rc == 0)
		rc = each_data(fd, PHDR, (off_t)(PHDR + r->npages * sizeof(uint32_t)), record_range, &rb);
	if (rc == 0)
		account_resident(c, (int64_t)r->resident);
out:
	close(fd);
	return rc;
}

/* Is a region with this id alive here? Caller holds D.lock. */
static bool region_known(const uint64_t id[2])
{
	for (struct fm_client *c = D.clients; c; c = c->next) {
		pthread_mutex_lock(&c->lock);
		bool found = region_find(c, id) != NULL;
		pthread_mutex_unlock(&c->lock);
		if (found)
			return true;
	}
	for (struct fm_pending *pd = D.pending; pd; pd = pd->next)
		if (pd->region->id[0] == id[0] && pd->region->id[1] == id[1])
			return true;
	return false;
}

struct orphan {
	uint64_t id[2];
	const uint32_t *recs;
	struct fm_store *st;
	struct fm_page_key keys[64];
	unsigned n;
	uint64_t pages;
};

static int orphan_range(void *arg, off_t a, off_t b)
{
	struct orphan *o = arg;
	for (uint64_t p = ((uint64_t)a - PHDR) / 4; p < ((uint64_t)b - PHDR + 3) / 4; p++) {
		if (!o->recs[p])
			continue;
		o->keys[o->n++] = (struct fm_page_key){ { o->id[0], o->id[1] }, p };
		o->pages++;
		if (o->n == 64) {
			fm_store_remove(o->st, o->keys, o->n);
			o->n = 0;
		}
	}
	return 0;
}

/* State files of regions no client took back (its process died while no
 * monitor ran, or it gave up waiting): their store data and the file go.
 * Called once, a while after start (main.c). */
void persist_gc(time_t started)
{
	DIR *d = opendir(D.opt.state_dir);
	struct fm_store *st = worker_store();
	if (!d || !st) {
		if (d)
			closedir(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		struct orphan o = { .st = st };
		char tail[16];
		if (sscanf(e->d_name, "%16llx%16llx%15s", (unsigned long long *)&o.id[0],
			   (unsigned long long *)&o.id[1], tail) != 3 || strcmp(tail, ".pages"))
			continue;
		char path[512];
		struct stat sb;
		path_of(o.id, path, sizeof(path));
		if (lstat(path, &sb) < 0 || sb.st_mtime >= started)
			continue; /* made by this monitor: a live region, maybe not linked yet */
		pthread_mutex_lock(&D.lock);
		bool known = region_known(o.id);
		pthread_mutex_unlock(&D.lock);
		if (known)
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 && fstat(fd, &sb) == 0 && (uint64_t)sb.st_size > PHDR) {
			const char *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
			if (m != MAP_FAILED) {
				o.recs = (const uint32_t *)(m + PHDR);
				each_data(fd, PHDR, sb.st_size, orphan_range, &o);
				if (o.n)
					fm_store_remove(st, o.keys, o.n);
				munmap((void *)m, (size_t)sb.st_size);
			}
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
		fm_log("region %016llx%016llx was not taken back after the restart: %llu stored page(s) freed",
		       (unsigned long long)o.id[0], (unsigned long long)o.id[1], (unsigned long long)o.pages);
	}
	closedir(d);
}
