/* client.c - one connected process: its registration, its handler thread,
 * its requests (register, grow, mremap, fork snapshot, adopt, join, unmap)
 * and its teardown.
 *
 * The handler thread polls the client's userfaultfd, socket and pidfd. The
 * uffd is drained before the socket is read, and a request waits until every
 * event read so far is applied, so an event the kernel reported before a
 * request was sent is applied before that request. --fault-threads N adds
 * N-1 helper threads that only read the uffd (fault.c orders them). The client is
 * gone when its pidfd fires or its socket closes (exec closes it); then its
 * regions and their store data are freed and the other clients never notice. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "uffd_compat.h"
#include "validate.h"
#include "worker.h"

/* The kind of an anonymous-inode fd ("[userfaultfd]", "[pidfd]"), via /proc. */
static bool fd_is(int fd, const char *kind)
{
	char path[64], link[128];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return strncmp(link, "anon_inode:", 11) == 0 && strcmp(link + 11, kind) == 0;
}

static pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	FILE *f = fopen(path, "r");
	pid_t pid = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

static void reply(int sock, int32_t status, const void *payload, uint32_t len)
{
	fm_send(sock, FM_MSG_REPLY, status, payload, len, NULL, 0);
}

static void reply_error(int sock, int err, const char *why)
{
	fm_send(sock, FM_MSG_REPLY, -err, why, (uint32_t)strlen(why) + 1, NULL, 0);
}

/* A tag is its creator's: another uid naming the same tag gets its own. */
static struct fm_tag *tag_get(const char *name, uint64_t limit_pages, uid_t uid)
{
	struct fm_tag *t;
	for (t = D.tags; t; t = t->next)
		if (strncmp(t->name, name, FM_TAG_MAX) == 0 && t->uid == uid)
			break;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		memcpy(t->name, name, FM_TAG_MAX);
		t->name[FM_TAG_MAX - 1] = 0;
		t->uid = uid;
		t->next = D.tags;
		D.tags = t;
	}
	if (limit_pages && !t->limit_pages) /* kept once set: `fluidmem resize --tag` outlives new processes */
		t->limit_pages = limit_pages;
	t->clients++;
	return t;
}

static int do_register(struct fm_client *c, const struct fm_register *rq, int memfd,
		       struct fm_register_reply *out, const char **why)
{
	struct stat sb;
	int64_t size = -1; /* not a memfd */
	if (fstat(memfd, &sb) == 0 && S_ISREG(sb.st_mode) && fcntl(memfd, F_GET_SEALS) >= 0)
		size = (int64_t)sb.st_size;
	int rc = proto_check_register(rq, size, why);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < c->nmaps; i++)
		if (rq->addr < c->maps[i].start + c->maps[i].len &&
		    c->maps[i].start < rq->addr + rq->len) {
			*why = "range overlaps a registered region";
			return -EEXIST;
		}
	int err = 0;
	struct fm_region *r = region_new(c, memfd, rq->offset, rq->len, rq->flags, &err);
	if (!r) {
		*why = "cannot map the region";
		return err;
	}
	if (rq->flags & FM_REGISTER_SHARED)
		shared_register(c, r);
	/* the state file first: a shared region's map_add names its holder there */
	if ((err = persist_create(r, c->uid)) < 0)
		fm_log("pid %d: no state file for a region (%s): a monitor restart cannot take it back",
		       (int)c->pid, strerror(-err));
	if ((err = map_add(c, rq->addr, rq->len, r, 0)) < 0) {
		r->memfd = -1;
		for (unsigned i = 0; i < c->nshared; i++) /* held before its view failed */
			if (c->shared[i] == r)
				c->shared[i--] = c->shared[--c->nshared];
		region_free(r, NULL);
		return err;
	}
	if (r->shared) {
		shared_publish(r);
	} else {
		r->next = c->regions;
		c->regions = r;
	}
	c->st.regions++;
	out->region[0] = r->id[0];
	out->region[1] = r->id[1];
	memcpy(out->secret, r->secret, sizeof(out->secret));
	fm_debug("pid %d: region %016llx at %#llx, %llu MiB", (int)c->pid, (unsigned long long)r->id[0],
		 (unsigned long long)rq->addr, (unsigned long long)(rq->len >> 20));
	return 0;
}

static int do_grow(struct fm_client *c, const struct fm_grow *g, const char **why)
{
	struct fm_region *r = region_find(c, g->region);
	struct stat sb;
	*why = "no such region";
	if (!r)
		return -ENOENT;
	int err = proto_check_grow(g, r->base_off, fstat(r->memfd, &sb) < 0 ? -1 : (int64_t)sb.st_size, why);
	if (err)
		return err;
	/* The region only: the maps change at the END of the mremap (remap.c). */
	return region_grow(r, g->new_len);
}

/* A clone of r for a forked child: resident pages copied memfd to memfd
 * (at most the local budget), stored pages shared in the store, not copied:
 * r's copies are frozen (share.c) and the clone refers to them with the
 * version r recorded. NULL when out of memory. */
static struct fm_region *clone_region(struct fm_region *r, struct fm_store *st)
{
	int fd = memfd_create("fluidmem-fork", MFD_CLOEXEC);
	int err = 0;
	struct fm_region *cl = NULL;
	if (fd < 0 || ftruncate(fd, (off_t)(r->npages * PAGE)) < 0 || share_freeze(r) < 0 ||
	    !(cl = region_new(NULL, fd, 0, r->npages * PAGE, r->flags, &err))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (uint64_t p = 0; p < r->npages; p++) {
		if (!r->chunks[p / CHUNK_PAGES]) {
			p |= CHUNK_PAGES - 1;
			continue;
		}
		uint8_t s = r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES] & PS_STATE;
		if (s == PS_EMPTY)
			continue;
		uint8_t *cs = page_state(cl, p, true);
		if (!cs)
			goto fail;
		if (s == PS_LOST) {
			*cs = PS_LOST;
		} else if (s == PS_RESIDENT) {
			memcpy(cl->mon + p * PAGE, r->mon + p * PAGE, PAGE);
			*cs = PS_RESIDENT | PS_QUEUED;
			region_queue_push(cl, p);
			cl->resident++;
		} else {
			if (share_page(cl, r, p) < 0)
				goto fail;
			*cs = PS_STORED | PS_INSTORE;
			*page_version(cl, p) = *page_version(r, p);
			cl->stored++;
		}
	}
	share_note_copied(cl->resident);
	account_resident(NULL, (int64_t)cl->resident);
	return cl;
fail:
	account_resident(NULL, (int64_t)cl->resident); /* region_free takes them off again */
	region_free(cl, st);
	return NULL;
}

/* Fork: give every private region a clone holding its current contents.
 * Called with c->lock held; it is let go for a moment (see below). The
 * child maps the clones at the same addresses and adopts them
 * (FM_MSG_ADOPT). The reply goes in parts of FM_SNAPSHOT_MAX maps. */
static void do_snapshot(struct fm_client *c)
{
	struct fm_snapshot_reply rep = { 0 };
	struct fm_store *st = worker_store();
	if (!st) {
		reply_error(c->sock, EIO, "store unavailable");
		return;
	}
	if (c->nmaps > FM_SNAPSHOT_TOTAL) {
		reply_error(c->sock, E2BIG, "too many regions to snapshot for fork");
		return;
	}
	size_t n = c->nmaps ? c->nmaps : 1;
	struct fm_region **clones = calloc(n, sizeof(*clones)), **origs = calloc(n, sizeof(*origs));
	struct fm_snapshot_entry *e = calloc(n, sizeof(*e));
	int *fds = calloc(n, sizeof(*fds));
	unsigned nclones = 0, ne = 0;
	if (!clones || !origs || !e || !fds)
		goto fail;
	for (size_t i = 0; i < c->nmaps; i++) {
		struct fm_map *m = &c->maps[i];
		struct fm_region *cl = NULL;
		if (m->region->shared)
			continue; /* the child maps it too, and JOINs it */
		for (unsigned k = 0; k < nclones; k++)
			if (origs[k] == m->region)
				cl = clones[k];
		if (!cl) {
			if (!(cl = clone_region(m->region, st)))
				goto fail;
			/* Complete before the child can learn of it (the reply):
			 * a restart before it adopts the clone takes it back too. */
			if (persist_create(cl, c->uid) < 0)
				fm_log("pid %d: no state file for a fork snapshot: a monitor restart cannot take it back",
				       (int)c->pid);
			origs[nclones] = m->region;
			clones[nclones++] = cl;
		}
		e[ne] = (struct fm_snapshot_entry){ .clone = { cl->id[0], cl->id[1] }, .addr = m->start,
						    .len = m->len, .offset = m->page * PAGE };
		memcpy(e[ne].secret, cl->secret, sizeof(e[ne].secret));
		fds[ne++] = cl->memfd;
	}
	uint64_t now = fm_now_ns();
	/* The daemon lock comes before a client's (status takes both in that
	 * order, and waited here forever while this thread waited for it): let
	 * go of ours while the clones go on the daemon's pending list. Nothing
	 * from here on reads c's regions; the child that adopts the clones
	 * exists only after the reply. */
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&D.lock);
	for (unsigned k = 0; k < nclones; k++) {
		struct fm_pending *pd = calloc(1, sizeof(*pd));
		if (!pd)
			continue; /* the clone leaks until shutdown; the child gets ENOENT */
		pd->region = clones[k];
		pd->created_ns = now;
		pd->next = D.pending;
		D.pending = pd;
	}
	pthread_mutex_unlock(&D.lock);
	pthread_mutex_lock(&c->lock);
	rep.total = ne;
	unsigned sent = 0;
	do {
		rep.count = ne - sent < FM_SNAPSHOT_MAX ? ne - sent : FM_SNAPSHOT_MAX;
		memcpy(rep.e, e + sent, rep.count * sizeof(*e));
		if (fm_send(c->sock, FM_MSG_REPLY, 0, &rep, sizeof(rep), fds + sent, (int)rep.count) < 0)
			break; /* the client is gone: its snapshots expire unadopted */
		sent += rep.count;
	} while (sent < ne);
	explicit_bzero(&rep, sizeof(rep));
	explicit_bzero(e, ne * sizeof(*e));
	free(clones);
	free(origs);
	free(e);
	free(fds);
	return;
fail:
	for (unsigned k = 0; k < nclones; k++)
		region_free(clones[k], st);
	free(clones);
	free(origs);
	free(e);
	free(fds);
	reply_error(c->sock, ENOMEM, "cannot snapshot the regions for fork");
}

/* A fork snapshot waiting for its child, taken off the pending list; NULL
 * if there is none. Called without the client's lock (lock order: daemon,
 * then client). */
static struct fm_region *pending_take(const uint64_t id[2])
{
	struct fm_region *r = NULL;
	pthread_mutex_lock(&D.lock);
	for (struct fm_pending **pp = &D.pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->region->id[0] == id[0] && (*pp)->region->id[1] == id[1]) {
			struct fm_pending *pd = *pp;
			*pp = pd->next;
			r = pd->region;
			free(pd);
			break;
		}
	}
	pthread_mutex_unlock(&D.lock);
	return r;
}

/* taken: the snapshot pending_take() found for this request, or NULL (a
 * further map of a clone this client adopted already). */
static int do_adopt(struct fm_client *c, const struct fm_adopt *a, struct fm_region *taken, const char **why)
{
	struct fm_region *r = taken ? taken : region_find(c, a->clone);
	*why = "no such fork snapshot";
	if (!r)
		return -ENOENT;
	if (taken) {
		r->owner = c;
		r->next = c->regions;
		c->regions = r;
		c->st.regions++;
		/* its resident pages were counted globally at snapshot time;
		 * its stored ones count for this client's tenant from now on */
		for (uint64_t p = 0; p < r->npages; p++)
			if (r->chunks[p / CHUNK_PAGES] && (r->chunks[p / CHUNK_PAGES][p % CHUNK_PAGES] & PS_INSTORE))
				atomic_fetch_add(&c->tenant->stored, 1);
		atomic_fetch_add(&c->resident, r->resident);
		if (c->tag)
			atomic_fetch_add(&c->tag->resident, r->resident);
		if (c->tenant)
			atomic_fetch_add(&c->tenant->resident, r->resident);
	}
	int err = proto_check_adopt(a, r->npages, why);
	if (err)
		return err;
	if (!taken && map_has(c, a->addr, a->len, r, a->offset / PAGE))
		return 0; /* sent again after a re-attach (the ATTACH mapped it) */
	return map_add(c, a->addr, a->len, r, a->offset / PAGE);
}

/* A region back from a monitor that died: the client's memfd, id and key;
 * page states come from the memfd and the region's state file (persist.c). */
static int do_attach(struct fm_client *c, const struct fm_attach *a, int memfd, const char **why)
{
	struct stat sb;
	int64_t size = -1;
	if (!D.persist) {
		*why = "this monitor keeps no state (local store): nothing to re-attach";
		return -EOPNOTSUPP;
	}
	if (!c->attaching) {
		*why = "ATTACH only before ATTACH_DONE of a re-attaching client";
		return -EINVAL;
	}
	if (fstat(memfd, &sb) == 0 && S_ISREG(sb.st_mode) && fcntl(memfd, F_GET_SEALS) >= 0)
		size = (int64_t)sb.st_size;
	int rc = proto_check_attach(a, size, why);
	if (rc < 0)
		return rc;
	if (a->flags & FM_REGISTER_SHARED)
		return shared_attach(c, a, memfd, why);
	pthread_mutex_lock(&D.lock);
	bool dup = false;
	for (struct fm_client *o = D.clients; o && !dup; o = o->next)
		if (o != c)
			for (struct fm_region *r = o->regions; r && !dup; r = r->next)
				dup = r->id[0] == a->region[0] && r->id[1] == a->region[1];
	pthread_mutex_unlock(&D.lock);
	if (dup || region_find(c, a->region)) {
		*why = "the region is attached already";
		return -EEXIST;
	}
	int err = 0;
	struct fm_region *r = region_new(c, memfd, a->base_off, a->npages * PAGE, a->flags, &err);
	if (!r) {
		*why = "cannot map the region";
		return err;
	}
	memcpy(r->id, a->region, sizeof(r->id));
	memcpy(r->sid, a->region, sizeof(r->sid)); /* the state file says which, if it forked */
	memcpy(r->secret, a->secret, sizeof(r->secret));
	if ((err = map_add(c, a->addr, a->len, r, a->map_page)) < 0) {
		*why = "range overlaps a registered region";
		r->memfd = -1;
		region_free(r, NULL);
		return err;
	}
	r->next = c->regions;
	c->regions = r;
	c->st.regions++;
	if ((err = persist_attach(c, r, why)) < 0) {
		/* unlink it again without touching its memfd, store data or file */
		c->regions = r->next;
		map_remove_range(c, a->addr, a->addr + a->len);
		account_resident(c, -(int64_t)r->resident);
		for (uint64_t i = 0; i < r->nchunks; i++)
			free(r->chunks[i]);
		memset(r->chunks, 0, r->nchunks * sizeof(*r->chunks));
		r->resident = 0;
		persist_forget(r); /* region_free frees its share tables, counting nothing */
		r->memfd = -1;
		region_free(r, NULL);
		return err;
	}
	fm_info("pid %d: region %016llx re-attached: %llu resident, %llu stored page(s)", (int)c->pid,
		(unsigned long long)r->id[0], (unsigned long long)r->resident, (unsigned long long)r->stored);
	return 0;
}

/* Every region is back: lift write-protections a dead monitor's eviction
 * left behind and wake every thread that faulted meanwhile (the old monitor
 * may have read its fault and died before answering); each faults again and
 * is served from the rebuilt states. */
static void attach_done(struct fm_client *c)
{
	c->attaching = false;
	for (size_t i = 0; i < c->nmaps; i++) {
		struct uffdio_writeprotect wp = { .range = { c->maps[i].start, c->maps[i].len }, .mode = 0 };
		ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp);
		struct uffdio_range r = { c->maps[i].start, c->maps[i].len };
		ioctl(c->uffd, UFFDIO_WAKE, &r);
	}
	fm_info("pid %d re-attached with %llu region(s)", (int)c->pid, (unsigned long long)c->st.regions);
}

/* One request on a client connection. Returns <0 to drop the client. */
static int client_request(struct fm_client *c)
{
	union {
		struct fm_register reg;
		struct fm_grow grow;
		struct fm_adopt adopt;
		struct fm_join join;
		struct fm_unmap unmap;
		struct fm_mremap mremap;
		struct fm_mremap_end mremap_end;
		struct fm_attach attach;
		char raw[256];
	} u;
	struct fm_msg_hdr h;
	int fds[FM_PROTO_MAX_FDS], nfds = FM_PROTO_MAX_FDS;
	int rc = fm_recv(c->sock, &h, &u, sizeof(u), fds, &nfds);
	if (rc < 0) {
		if (rc != -ECONNRESET)
			fm_log("pid %d: bad message (%s): dropping the client", (int)c->pid, strerror(-rc));
		return rc;
	}
	const char *why = "";
	struct fm_region *taken = NULL;
	if (h.type == FM_MSG_ADOPT && h.len == sizeof(u.adopt))
		taken = pending_take(u.adopt.clone);
	struct fm_register_reply rr;
	pthread_mutex_lock(&c->lock);
	ev_sync(c);
	switch (h.type) {
	case FM_MSG_REGISTER:
		if (h.len != sizeof(u.reg) || nfds != 1) {
			rc = -EINVAL;
			why = "REGISTER takes one memfd and a struct fm_register";
		} else {
			rc = do_register(c, &u.reg, fds[0], &rr, &why);
			if (rc == 0)
				nfds = 0; /* the region owns the memfd now */
		}
		if (rc == 0)
			reply(c->sock, 0, &rr, sizeof(rr));
		explicit_bzero(&rr, sizeof(rr));
		break;
	case FM_MSG_ATTACH:
		if (h.len != sizeof(u.attach) || nfds != 1) {
			rc = -EINVAL;
			why = "ATTACH takes one memfd and a struct fm_attach";
		} else {
			rc = do_attach(c, &u.attach, fds[0], &why);
			if (rc == 0)
				nfds = 0;
		}
		explicit_bzero(&u.attach, sizeof(u.attach));
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_ATTACH_DONE:
		if (!c->attaching) {
			rc = -EINVAL;
			why = "not re-attaching";
			break;
		}
		attach_done(c);
		reply(c->sock, 0, NULL, 0);
		rc = 0;
		break;
	case FM_MSG_GROW:
		rc = h.len == sizeof(u.grow) ? do_grow(c, &u.grow, &why) : -EINVAL;
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_SNAPSHOT:
		do_snapshot(c);
		rc = 0;
		break;
	case FM_MSG_ADOPT:
		rc = h.len == sizeof(u.adopt) ? do_adopt(c, &u.adopt, taken, &why) : -EINVAL;
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_JOIN:
		if (h.len != sizeof(u.join) || nfds != 1) {
			rc = -EINVAL;
			why = "JOIN takes one memfd and a struct fm_join";
		} else {
			rc = shared_join(c, &u.join, fds[0], &why);
		}
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_MREMAP_BEGIN:
		rc = h.len == sizeof(u.mremap) ? remap_begin(c, &u.mremap, &why) : -EINVAL;
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_MREMAP_END:
		rc = h.len == sizeof(u.mremap_end) ? remap_end(c, &u.mremap_end, &why) : -EINVAL;
		if (rc == 0)
			reply(c->sock, 0, NULL, 0);
		break;
	case FM_MSG_UNMAP:
		if (h.len != sizeof(u.unmap) || u.unmap.addr % PAGE || u.unmap.addr + u.unmap.len < u.unmap.addr) {
			rc = -EINVAL;
			why = "bad unmap range";
			break;
		}
		uint64_t seq = ev_local_begin(c, u.unmap.addr, u.unmap.addr + u.unmap.len);
		drop_range(c, u.unmap.addr, u.unmap.addr + u.unmap.len, true);
		map_remove_range(c, u.unmap.addr, u.unmap.addr + u.unmap.len);
		client_release_unmapped(c, worker_store());
		ev_local_end(c, seq);
		reply(c->sock, 0, NULL, 0);
		rc = 0;
		break;
	default:
		rc = -EINVAL;
		why = "unknown request on a client connection";
		break;
	}
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rc < 0) {
		fm_log("pid %d: request %u refused: %s (%s)", (int)c->pid, h.type, why, strerror(-rc));
		reply_error(c->sock, -rc, why[0] ? why : strerror(-rc));
	}
	return 0;
}

static void client_free(struct fm_client *c)
{
	pthread_mutex_lock(&c->lock);
	struct fm_store *st = worker_store();
	/* the shared regions first: their other processes keep them */
	map_remove_range(c, 0, UINT64_MAX);
	shared_settle(c, st);
	remap_free(c);
	uint64_t regions = c->st.regions;
	while (c->regions) {
		struct fm_region *r = c->regions;
		c->regions = r->next;
		region_free(r, st);
	}
	c->nmaps = 0;
	c->dead = true;
	pthread_mutex_unlock(&c->lock);

	/* Unlink and fold the counters into the totals in one step, so a
	 * reader sees the client either live or done, never neither. c->st
	 * stays as it is: a walker holding a reference may still read it. */
	struct fm_stats done = c->st;
	pthread_mutex_lock(&D.lock);
	for (struct fm_client **pp = &D.clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			atomic_fetch_sub(&D.nclients, 1);
			break;
		}
	c->linked = false;
	done.regions = regions;
	done.clients = 1;
	done.resident_pages = 0;
	done.stored_pages = 0;
	fm_stats_add(&D.done, &done);
	if (c->tag) {
		fm_stats_add(&c->tag->done, &done);
		c->tag->clients--;
	}
	pthread_mutex_unlock(&D.lock);
	while (atomic_load(&c->refs)) /* walkers let go within a lock timeout */
		usleep(1000);
	fm_debug("pid %d: gone, %llu faults, %llu evictions", (int)c->pid,
		 (unsigned long long)(c->st.faults_zero + c->st.faults_store),
		 (unsigned long long)c->st.evictions);
	close(c->sock);
	close(c->uffd);
	close(c->pidfd);
	close(c->wake_fd);
	free(c->maps);
	free(c->shared);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->seen_lock);
	pthread_mutex_destroy(&c->ev_lock);
	pthread_cond_destroy(&c->ev_cond);
	free(c);
}

/* Does the client's address space still hold its regions? After exec the
 * old address space is gone and the uffd answers ESRCH; a program that merely
 * closed our socket (some daemons close every descriptor) still needs them. */
static bool client_mm_alive(struct fm_client *c)
{
	pthread_mutex_lock(&c->lock);
	bool alive = false;
	if (c->nmaps) {
		/* a clean page keeps its protection: lifting it would hide its writes */
		const struct fm_map *m = &c->maps[0];
		const uint8_t *s = m->region->shared ? NULL : page_state(m->region, m->page, false);
		struct uffdio_writeprotect wp = { .range = { m->start, PAGE },
						  .mode = s && (*s & PS_CLEAN) ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
		alive = ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp) == 0 || errno != ESRCH;
	}
	pthread_mutex_unlock(&c->lock);
	return alive;
}

/* The monitor stops while a client that closed its fluidmem socket runs on:
 * libfluidmem's watcher went with that socket, so nothing stops it or takes
 * it to a new monitor, and once its userfaultfd closes here its pages in the
 * store would read as zeros. A page we cannot give back is a SIGBUS; one
 * that catches it (and would go on) is killed. Waits for it to go first. */
static void stop_orphan(struct fm_client *c)
{
	fm_log("pid %d closed its fluidmem socket and cannot follow the monitor: stopping it with SIGBUS "
	       "(its pages in the store go with this monitor)", (int)c->pid);
	struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
	if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGBUS, NULL, 0) == 0 && poll(&p, 1, 1000) == 0 &&
	    syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) == 0)
		poll(&p, 1, 1000);
}

static void thread_setup(struct fm_client *c, unsigned k)
{
	char name[32];
	if (k)
		snprintf(name, sizeof(name), "fm-pid%d.%u", (int)c->pid, k % 100);
	else
		snprintf(name, sizeof(name), "fm-pid%d", (int)c->pid);
	name[15] = 0; /* the kernel's limit */
	pthread_setname_np(pthread_self(), name);
	if (D.opt.affinity_fault >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(D.opt.affinity_fault, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
}

/* Busy-poll a little after activity: a fault that arrives while we spin is
 * served without waking a halted vCPU (~30 us here). */
static void spin(struct fm_client *c)
{
	if (!D.opt.poll_us || !placement_may_spin())
		return;
	uint64_t until = fm_now_ns() + D.opt.poll_us * 1000ull;
	while (!c->dead && !c->attaching) {
		if (handle_uffd(c))
			until = fm_now_ns() + D.opt.poll_us * 1000ull;
		else if (fm_now_ns() >= until)
			break;
		else
			__builtin_ia32_pause();
	}
}

/* A helper (--fault-threads): reads the uffd only; the client's thread
 * stops it through wake_fd. */
static void *helper_thread(void *arg)
{
	struct fm_client *c = arg;
	unsigned k = 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nhelpers; i++)
		if (pthread_equal(c->helpers[i], pthread_self()))
			k = i + 1;
	pthread_mutex_unlock(&c->lock);
	thread_setup(c, k);
	struct pollfd pfd[2] = { { .fd = c->uffd, .events = POLLIN }, { .fd = c->wake_fd, .events = POLLIN } };
	while (!c->dead) {
		spin(c);
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & POLLIN)
			handle_uffd(c);
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
	}
	return NULL;
}

/* More threads reading the uffd (--fault-threads); for a re-attaching
 * client only once its regions are back. */
static void start_helpers(struct fm_client *c)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 1; i < D.opt.fault_threads && c->nhelpers < FT_MAX - 1; i++)
		if (pthread_create(&c->helpers[c->nhelpers], NULL, helper_thread, c) == 0)
			c->nhelpers++;
	pthread_mutex_unlock(&c->lock);
}

static void *client_thread(void *arg)
{
	struct fm_client *c = arg;
	thread_setup(c, 0);
	bool helpers = !c->attaching;
	if (helpers)
		start_helpers(c);
	struct pollfd pfd[4] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->sock, .events = POLLIN },
		{ .fd = c->pidfd, .events = POLLIN },
		{ .fd = c->wake_fd, .events = POLLIN },
	};
	while (!c->dead) {
		spin(c);
		pfd[0].fd = c->attaching ? -1 : c->uffd;
		int n = poll(pfd, 4, placement_wait_ms());
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0) { /* no fault for a while: the program thread gets its CPUs back */
			pthread_mutex_lock(&c->lock);
			placement_quiet(c);
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		if (pfd[0].revents & POLLIN)
			handle_uffd(c);
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (pfd[2].revents || pfd[3].revents)
			break;
		if (pfd[1].revents && client_request(c) < 0) {
			if (!client_mm_alive(c))
				break;
			fm_log("pid %d closed its fluidmem socket; serving its regions until it exits", (int)c->pid);
			pfd[1].fd = -1;
			remap_abort(c); /* an mremap's END cannot come any more */
		}
		if (!helpers && !c->attaching) {
			helpers = true;
			start_helpers(c);
		}
	}
	bool stopping = !c->dead && (pfd[3].revents & POLLIN) && !pfd[2].revents;
	c->dead = true;
	uint64_t one = 1;
	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
	}
	for (unsigned i = 0; i < c->nhelpers; i++)
		pthread_join(c->helpers[i], NULL);
	placement_end();
	if (stopping && pfd[1].fd < 0)
		stop_orphan(c);
	client_free(c);
	return NULL;
}

int client_start(int sock, const struct fm_msg_hdr *h, const struct fm_hello *hello,
		 const int *fds, int nfds)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	const char *why = NULL;
	if (h->len != sizeof(*hello) || nfds != 2)
		why = "HELLO takes a struct fm_hello, a userfaultfd and a pidfd";
	else if (!fd_is(fds[0], "[userfaultfd]"))
		why = "the first descriptor is not a userfaultfd";
	else if (!fd_is(fds[1], "[pidfd]"))
		why = "the second descriptor is not a pidfd";
	else if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		why = "no peer credentials";
	else if (pidfd_pid(fds[1]) != cred.pid)
		why = "the pidfd is not the connecting process's";
	if (why) {
		reply_error(sock, EINVAL, why);
		return -EINVAL;
	}
	if (!tenant_allowed(cred.uid, cred.gid)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "user %d is not allowed to register memory with this fluidmemd (--allow)",
			 (int)cred.uid);
		fm_log("pid %d: refused: %s", (int)cred.pid, msg);
		reply_error(sock, EPERM, msg);
		return -EPERM;
	}
	struct fm_client *c = calloc(1, sizeof(*c));
	if (!c) {
		reply_error(sock, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	c->sock = sock;
	c->uffd = fds[0];
	c->pidfd = fds[1];
	c->pid = cred.pid;
	c->features = hello->flags;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->attaching = hello->flags & FM_HELLO_REATTACH;
	fcntl(c->uffd, F_SETFL, fcntl(c->uffd, F_GETFL) | O_NONBLOCK);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->seen_lock, NULL);
	pthread_mutex_init(&c->ev_lock, NULL);
	pthread_cond_init(&c->ev_cond, NULL);
	char tag[FM_TAG_MAX];
	memcpy(tag, hello->tag, FM_TAG_MAX);
	tag[FM_TAG_MAX - 1] = 0;
	pthread_mutex_lock(&D.lock);
	c->tag = tag_get(tag, (hello->local_limit + PAGE - 1) / PAGE, c->uid);
	c->tenant = tenant_get(c->uid);
	c->next = D.clients;
	D.clients = c;
	c->linked = true;
	atomic_fetch_add(&D.nclients, 1);
	pthread_mutex_unlock(&D.lock);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	struct fm_hello_reply hr = { .flags = D.persist ? FM_HELLO_REPLY_PERSIST : 0 };
	reply(sock, 0, &hr, sizeof(hr));
	fm_debug("pid %d (uid %d) connected, tag '%s'", (int)c->pid, (int)c->uid, tag);
	/* c is the thread's from here: a process that exits at once may be
	 * freed by it before pthread_create returns */
	pid_t pid = c->pid;
	pthread_t thread;
	int err = pthread_create(&thread, &attr, client_thread, c);
	pthread_attr_destroy(&attr);
	if (err) {
		fm_log("pid %d: cannot start a handler thread: %s", (int)pid, strerror(err));
		client_free(c);
		return -err;
	}
	return 0;
}

/* Shutdown: wake every handler thread and wait for the list to empty. */
void clients_stop_all(void)
{
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&D.lock);
		struct fm_client *c = D.clients;
		for (; c; c = c->next) {
			uint64_t one = 1;
			if (write(c->wake_fd, &one, sizeof(one)) < 0) {
			}
		}
		bool empty = !D.clients;
		pthread_mutex_unlock(&D.lock);
		if (empty)
			return;
		usleep(10000);
	}
}

/* Every client on the list, each with a reference that keeps it allocated
 * (client_free waits for it): walk them with D.lock let go, since a client's
 * lock can stay busy for seconds (store I/O to a server that stopped
 * answering) and D.lock is needed by every other client. NULL when there
 * are none or no memory. */
struct fm_client **clients_get(size_t *n)
{
	*n = 0;
	pthread_mutex_lock(&D.lock);
	size_t k = 0;
	for (struct fm_client *c = D.clients; c; c = c->next)
		k++;
	struct fm_client **v = k ? malloc(k * sizeof(*v)) : NULL;
	for (struct fm_client *c = D.clients; v && c; c = c->next) {
		atomic_fetch_add(&c->refs, 1);
		v[(*n)++] = c;
	}
	pthread_mutex_unlock(&D.lock);
	return v;
}

void clients_put(struct fm_client **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_fetch_sub(&v[i]->refs, 1);
	free(v);
}

/* Take c's lock within ms milliseconds; false: it stayed busy. */
bool client_lock_for(struct fm_client *c, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_mutex_timedlock(&c->lock, &ts) == 0;
}
