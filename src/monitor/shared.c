/* shared.c - regions several processes map: MAP_SHARED|MAP_ANONYMOUS memory
 * of a program and of the children it forks (PostgreSQL's shared_buffers).
 *
 * Such a region is one memfd that stays mapped in fork children. Each child
 * registers it with its own userfaultfd and JOINs it: the monitor then has one
 * region and several views of it, one per (client, mapped piece). Faults from
 * any view fill the same memfd page (UFFDIO_COPY into one mm makes the shmem
 * page present for all); eviction write-protects the page in every view,
 * copies it out, punches it (which unmaps it from every mm) and lifts the
 * protections. The region's own recursive lock serialises all of that; it is
 * taken after the client's lock and never held while waiting for a client's
 * or the daemon's lock.
 *
 * A client holds the region from its first view until it has no view left
 * (it unmapped it, exec'd or exited); the region lives while anyone holds it.
 * Not here: faults (fault.c), eviction (evict.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "validate.h"

void shared_lock(struct fm_region *r)
{
	if (r->shared)
		pthread_mutex_lock(&r->lock);
}

void shared_unlock(struct fm_region *r)
{
	if (r->shared)
		pthread_mutex_unlock(&r->lock);
}

static int grow(void *pp, unsigned n, unsigned *cap, size_t elem)
{
	void **p = pp;
	if (n < *cap)
		return 0;
	unsigned ncap = *cap ? *cap * 2 : 4;
	void *q = realloc(*p, ncap * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = ncap;
	return 0;
}

/* c starts holding r (caller holds c's lock and r's). */
static int hold(struct fm_region *r, struct fm_client *c)
{
	for (unsigned i = 0; i < c->nshared; i++)
		if (c->shared[i] == r)
			return 0;
	if (grow(&c->shared, c->nshared, &c->capshared, sizeof(*c->shared)) < 0 ||
	    grow(&r->holders, r->nholders, &r->capholders, sizeof(*r->holders)) < 0)
		return -ENOMEM;
	c->shared[c->nshared++] = r;
	r->holders[r->nholders++] = c;
	persist_holder(r, c->pid, true);
	return 0;
}

/* A region registered with FM_REGISTER_SHARED by c, before its first map. */
int shared_register(struct fm_client *c, struct fm_region *r)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&r->lock, &a);
	pthread_mutexattr_destroy(&a);
	r->shared = true;
	r->owner = c;
	r->owner_counted = true;
	return 0;
}

/* After its first map: other processes can find and join it now. */
void shared_publish(struct fm_region *r)
{
	pthread_mutex_lock(&D.shared_lock);
	r->next = D.shared;
	D.shared = r;
	pthread_mutex_unlock(&D.shared_lock);
}

int view_add(struct fm_region *r, struct fm_client *c, uint64_t start, uint64_t len, uint64_t page)
{
	pthread_mutex_lock(&r->lock);
	int rc = hold(r, c);
	if (rc == 0)
		rc = grow(&r->views, r->nviews, &r->capviews, sizeof(*r->views));
	if (rc == 0)
		r->views[r->nviews++] = (struct fm_view){ .client = c, .uffd = c->uffd, .start = start,
							  .len = len, .page = page };
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* c's map at start no longer shows r. It still holds r until shared_settle. */
void view_remove(struct fm_region *r, struct fm_client *c, uint64_t start)
{
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nviews; i++)
		if (r->views[i].client == c && r->views[i].start == start) {
			r->views[i] = r->views[--r->nviews];
			break;
		}
	pthread_mutex_unlock(&r->lock);
}

/* c stops holding r (caller holds D.shared_lock and r's lock). Returns true
 * when nobody holds r any more: the caller unlinks and frees it. */
static bool leave(struct fm_region *r, struct fm_client *c)
{
	for (unsigned i = 0; i < r->nholders; i++)
		if (r->holders[i] == c) {
			memmove(&r->holders[i], &r->holders[i + 1], (r->nholders - i - 1) * sizeof(*r->holders));
			r->nholders--;
			break;
		}
	persist_holder(r, c->pid, false);
	if (r->owner != c)
		return false;
	fm_stats_add(&c->st, &r->sst);
	memset(&r->sst, 0, sizeof(r->sst));
	if (r->owner_counted)
		c->st.regions--;
	r->owner_counted = false;
	if (!r->nholders)
		return true; /* c stays owner: region_free settles its counters */
	/* The next holder carries the resident pages (and, for another tenant,
	 * the store usage) from now on. */
	struct fm_client *o = r->holders[0];
	account_resident(c, -(int64_t)r->resident);
	account_resident(o, (int64_t)r->resident);
	if (o->tenant != c->tenant) {
		uint64_t n = 0;
		for (uint64_t p = 0; p < r->npages; p++)
			if (r->chunks[p / CHUNK_PAGES] && (r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES] & PS_INSTORE))
				n++;
		if (c->tenant)
			atomic_fetch_sub(&c->tenant->stored, n);
		if (o->tenant)
			atomic_fetch_add(&o->tenant->stored, n);
	}
	r->owner = o;
	return false;
}

/* Release the shared regions c holds but no longer maps (after an unmap, or
 * at its end). Caller holds c's lock. */
void shared_settle(struct fm_client *c, struct fm_store *st)
{
	for (unsigned i = c->nshared; i-- > 0;) {
		struct fm_region *r = c->shared[i];
		pthread_mutex_lock(&D.shared_lock);
		pthread_mutex_lock(&r->lock);
		bool mapped = false, gone = false;
		for (unsigned k = 0; k < r->nviews && !mapped; k++)
			mapped = r->views[k].client == c;
		if (!mapped) {
			c->shared[i] = c->shared[--c->nshared];
			gone = leave(r, c);
			if (gone)
				for (struct fm_region **pp = &D.shared; *pp; pp = &(*pp)->next)
					if (*pp == r) {
						*pp = r->next;
						break;
					}
		}
		pthread_mutex_unlock(&r->lock);
		pthread_mutex_unlock(&D.shared_lock);
		if (gone) {
			fm_debug("pid %d: shared region %016llx freed (last process left)", (int)c->pid,
				 (unsigned long long)r->id[0]);
			region_free(r, st);
		}
	}
}

/* The shared region with that id, or NULL. Caller holds D.shared_lock. */
struct fm_region *shared_find(const uint64_t id[2])
{
	struct fm_region *r = D.shared;
	while (r && (r->id[0] != id[0] || r->id[1] != id[1]))
		r = r->next;
	return r;
}

/* FM_MSG_JOIN: c (a fork child) maps shared region j->region with the
 * memfd `memfd`, which must be the region's own file. */
int shared_join(struct fm_client *c, const struct fm_join *j, int memfd, const char **why)
{
	struct stat a, b;
	int rc = -ENOENT;
	*why = "no such shared region";
	if (fstat(memfd, &a) < 0) {
		*why = "bad descriptor";
		return -EBADF;
	}
	pthread_mutex_lock(&D.shared_lock);
	struct fm_region *r = shared_find(j->region);
	if (r) {
		rc = -EPERM;
		*why = "the descriptor is not the shared region's memfd";
		if (fstat(r->memfd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			struct fm_adopt ad = { .addr = j->addr, .len = j->len, .offset = j->offset - r->base_off };
			rc = j->offset < r->base_off ? -EINVAL : proto_check_adopt(&ad, r->npages, why);
			if (rc == 0 && map_has(c, j->addr, j->len, r, ad.offset / PAGE))
				rc = 0; /* sent again after a re-attach, which mapped it */
			else if (rc == 0)
				rc = map_add(c, j->addr, j->len, r, ad.offset / PAGE); /* views it */
			if (rc == -EEXIST)
				*why = "range overlaps a registered region";
		}
	}
	pthread_mutex_unlock(&D.shared_lock);
	return rc;
}

/* FM_MSG_ATTACH of a shared region after a monitor restart: the first of
 * its processes to come back rebuilds it from the memfd and its state file
 * (persist.c), the others join it as at a fork. The memfd must be the
 * region's own file. Caller holds c's lock. */
int shared_attach(struct fm_client *c, const struct fm_attach *a, int memfd, const char **why)
{
	struct stat sa, sb;
	if (fstat(memfd, &sa) < 0) {
		*why = "bad descriptor";
		return -EBADF;
	}
	pthread_mutex_lock(&D.shared_lock);
	struct fm_region *r = shared_find(a->region);
	int rc;
	if (r) {
		*why = "the descriptor is not the shared region's memfd";
		rc = -EPERM;
		if (fstat(r->memfd, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
		    a->base_off == r->base_off && a->map_page + a->len / PAGE <= r->npages) {
			rc = map_add(c, a->addr, a->len, r, a->map_page);
			*why = "range overlaps a registered region";
		}
		if (rc == 0) {
			pthread_mutex_lock(&r->lock);
			for (unsigned i = 0; i < r->nawait; i++)
				if (r->await[i].pid == c->pid)
					r->await[i--] = r->await[--r->nawait];
			pthread_mutex_unlock(&r->lock);
			close(memfd); /* the region has its own */
		}
		pthread_mutex_unlock(&D.shared_lock);
		return rc;
	}
	int err = 0;
	r = region_new(c, memfd, a->base_off, a->npages * PAGE, a->flags, &err);
	if (!r) {
		pthread_mutex_unlock(&D.shared_lock);
		*why = "cannot map the region";
		return err;
	}
	memcpy(r->id, a->region, sizeof(r->id));
	memcpy(r->sid, a->region, sizeof(r->sid));
	memcpy(r->secret, a->secret, sizeof(r->secret));
	shared_register(c, r);
	rc = map_add(c, a->addr, a->len, r, a->map_page);
	if (rc < 0)
		*why = "range overlaps a registered region";
	else
		rc = persist_attach(c, r, why);
	if (rc < 0) {
		/* unlink it again without touching its memfd, store data or file */
		map_remove_range(c, a->addr, a->addr + a->len);
		for (unsigned i = 0; i < c->nshared; i++)
			if (c->shared[i] == r)
				c->shared[i--] = c->shared[--c->nshared];
		r->nholders = 0;
		account_resident(c, -(int64_t)r->resident);
		for (uint64_t i = 0; i < r->nchunks; i++) {
			free(r->chunks[i]);
			r->chunks[i] = NULL;
		}
		r->resident = 0;
		persist_forget(r);
		r->memfd = -1;
		pthread_mutex_unlock(&D.shared_lock);
		region_free(r, NULL);
		return rc;
	}
	r->next = D.shared;
	D.shared = r;
	c->st.regions++;
	pthread_mutex_unlock(&D.shared_lock);
	return 0;
}
