/* ctl.c - runtime control requests that act on pages: evict now (everything,
 * or one tag) and change one tag's resident limit.
 *
 * Both evict through evict.c's evict_region(), from the control thread, in
 * rounds: each round takes references on the clients (not holding D.lock
 * while it waits for a client's lock, see fluidmemd.h), then each matching
 * client's lock in turn, evicts one batch per region, and lets go, so the
 * clients keep faulting between rounds. A client whose lock stays busy (a
 * store server not answering) is passed over in that round. A tenant (a uid
 * other than root or the daemon's) acts on its own processes only, and a
 * tag it has no process in is "no such tag" whether or not it exists.
 * What it does not do: drop regions, or keep a busy client from faulting
 * its pages straight back in (an evict is a moment, not a limit). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "fluidmemd.h"
#include "worker.h"

static bool is_admin(uid_t uid)
{
	return uid == 0 || uid == getuid();
}

/* Caller holds D.lock. */
static struct fm_tag *do_tag_find(const char *name)
{
	for (struct fm_tag *t = D.tags; t; t = t->next)
		if (strncmp(t->name, name, FM_TAG_MAX) == 0)
			return t;
	return NULL;
}

static bool matches(const struct fm_client *c, const struct fm_tag *t, uid_t uid)
{
	return !c->dead && (!t || c->tag == t) && (is_admin(uid) || c->uid == uid);
}

/* Evict from the clients of t (NULL: all) that uid may touch until t's
 * resident pages are at most `target` (t != NULL), or until they have none.
 * Returns pages evicted; *nclients the processes that matched. */
static uint64_t evict_rounds(struct fm_tag *t, uid_t uid, uint64_t target, uint64_t *nclients)
{
	uint64_t total = 0, cap = 0;
	pthread_mutex_lock(&D.lock);
	*nclients = 0;
	for (struct fm_client *c = D.clients; c; c = c->next)
		if (matches(c, t, uid)) {
			cap += atomic_load(&c->resident);
			(*nclients)++;
		}
	pthread_mutex_unlock(&D.lock);

	/* at most what was resident when asked: a client that faults its pages
	 * back as fast as we take them does not keep us here */
	while (total < cap) {
		uint64_t got = 0;
		size_t n;
		struct fm_client **v = clients_get(&n);
		for (size_t k = 0; k < n; k++) {
			struct fm_client *c = v[k];
			if (!matches(c, t, uid) || !atomic_load(&c->resident))
				continue;
			if (t && atomic_load(&t->resident) <= target)
				break;
			if (!client_lock_for(c, 200))
				continue;
			for (struct fm_region *r = c->regions; r; r = r->next)
				if (r->resident)
					got += evict_region(r, D.opt.evict_batch, worker_store());
			for (unsigned i = 0; i < c->nshared; i++)
				if (c->shared[i]->owner == c && c->shared[i]->resident)
					got += evict_region(c->shared[i], D.opt.evict_batch, worker_store());
			pthread_mutex_unlock(&c->lock);
		}
		clients_put(v, n);
		total += got;
		if (!got || (t && atomic_load(&t->resident) <= target))
			break;
	}
	return total;
}

int ctl_evict(const char *tag, uid_t uid, struct fm_evict_reply *out, const char **why)
{
	struct fm_tag *t = NULL;
	memset(out, 0, sizeof(*out));
	if (tag[0]) {
		bool mine = false;
		pthread_mutex_lock(&D.lock);
		t = do_tag_find(tag);
		for (struct fm_client *c = D.clients; t && c; c = c->next)
			if (matches(c, t, uid))
				mine = true;
		pthread_mutex_unlock(&D.lock);
		/* tags live until the daemon exits; a tag without a process of
		 * the requester's is not worth naming */
		if (!t || (!mine && !is_admin(uid))) {
			*why = "no such tag (see fluidmem status)";
			return -ENOENT;
		}
	}
	out->pages = evict_rounds(t, uid, 0, &out->clients);
	fm_info("evict%s%s (uid %d): %llu pages from %llu processes", t ? " tag " : "", t ? t->name : "",
		(int)uid, (unsigned long long)out->pages, (unsigned long long)out->clients);
	return 0;
}

int ctl_set_tag_limit(const char *tag, uint64_t bytes, uid_t uid, struct fm_evict_reply *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (!tag[0]) {
		*why = "a tag is required (fluidmem resize --tag TAG)";
		return -EINVAL;
	}
	if (bytes && bytes < 16 * PAGE) {
		*why = "a tag's limit must be at least 64K (or 0: no limit of its own)";
		return -EINVAL;
	}
	pthread_mutex_lock(&D.lock);
	struct fm_tag *t = do_tag_find(tag);
	bool mine = false, others = false;
	for (struct fm_client *c = D.clients; t && c; c = c->next) {
		if (c->dead || c->tag != t)
			continue;
		mine |= c->uid == uid;
		others |= c->uid != uid;
	}
	if (!t || (!is_admin(uid) && !mine)) {
		pthread_mutex_unlock(&D.lock);
		*why = "no such tag (see fluidmem status)";
		return -ENOENT;
	}
	if (!is_admin(uid) && others) {
		pthread_mutex_unlock(&D.lock);
		*why = "the tag has processes of other users: only root may resize it";
		return -EPERM;
	}
	t->limit_pages = (bytes + PAGE - 1) / PAGE;
	pthread_mutex_unlock(&D.lock);
	fm_info("tag %s: limit set to %llu MiB (uid %d)", t->name, (unsigned long long)(bytes >> 20), (int)uid);
	if (bytes)
		out->pages = evict_rounds(t, uid, t->limit_pages, &out->clients);
	return 0;
}
