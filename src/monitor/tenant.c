/* tenant.c - tenants: the users (uids from SO_PEERCRED) whose processes
 * register memory. Who may register at all (--allow), and how much of the
 * local budget a tenant keeps however hard another one pages (--reserve).
 * Counts are per tenant; the clients and their locks are elsewhere. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluidmemd.h"
#include "size.h"

#define MAX_ALLOW 64

static struct {
	uid_t uids[MAX_ALLOW];
	gid_t gids[MAX_ALLOW];
	int nuids, ngids;
	bool restricted;        /* an allow-list was given */
} allow;

static int parse_user(const char *s, uid_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s && !*end) {
		*out = (uid_t)v;
		return 0;
	}
	struct passwd *pw = getpwnam(s);
	if (!pw)
		return -ENOENT;
	*out = pw->pw_uid;
	return 0;
}

int tenant_allow(const char *spec)
{
	allow.restricted = true;
	if (spec[0] == '@') {
		struct group *gr = getgrnam(spec + 1);
		char *end;
		unsigned long v = strtoul(spec + 1, &end, 10);
		if (allow.ngids == MAX_ALLOW || (!gr && (*end || !spec[1])))
			return -EINVAL;
		allow.gids[allow.ngids++] = gr ? gr->gr_gid : (gid_t)v;
		return 0;
	}
	uid_t uid;
	if (allow.nuids == MAX_ALLOW || parse_user(spec, &uid) < 0)
		return -EINVAL;
	allow.uids[allow.nuids++] = uid;
	return 0;
}

/* May this peer register memory? root and the daemon's own user always may. */
bool tenant_allowed(uid_t uid, gid_t gid)
{
	if (!allow.restricted || uid == 0 || uid == getuid())
		return true;
	for (int i = 0; i < allow.nuids; i++)
		if (allow.uids[i] == uid)
			return true;
	for (int i = 0; i < allow.ngids; i++)
		if (allow.gids[i] == gid)
			return true;
	/* supplementary groups of the user, as the system knows them */
	struct passwd *pw = getpwuid(uid);
	if (pw && allow.ngids) {
		gid_t groups[64];
		int n = 64;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0)
			for (int i = 0; i < n; i++)
				for (int k = 0; k < allow.ngids; k++)
					if (groups[i] == allow.gids[k])
						return true;
	}
	return false;
}

/* Caller holds D.lock. */
struct fm_tenant *tenant_get(uid_t uid)
{
	for (struct fm_tenant *t = D.tenants; t; t = t->next)
		if (t->uid == uid)
			return t;
	struct fm_tenant *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->uid = uid;
	t->next = D.tenants;
	D.tenants = t;
	return t;
}

/* USER=SIZE, as --reserve and --store-cap take it. */
static int parse_user_size(const char *spec, uid_t *uid, uint64_t *bytes)
{
	const char *eq = strchr(spec, '=');
	char user[64];
	if (!eq || (size_t)(eq - spec) >= sizeof(user))
		return -EINVAL;
	memcpy(user, spec, (size_t)(eq - spec));
	user[eq - spec] = 0;
	if (parse_user(user, uid) < 0 || fm_parse_size(eq + 1, bytes) < 0)
		return -EINVAL;
	return 0;
}

/* --reserve USER=SIZE and --store-cap USER=SIZE: parsed before any client exists. */
static int set_limit(const char *spec, bool cap)
{
	uid_t uid;
	uint64_t bytes;
	if (parse_user_size(spec, &uid, &bytes) < 0)
		return -EINVAL;
	pthread_mutex_lock(&D.lock);
	struct fm_tenant *t = tenant_get(uid);
	if (t && cap)
		t->store_cap_pages = bytes / PAGE ? bytes / PAGE : 1;
	else if (t)
		t->reserve_pages = bytes / PAGE;
	pthread_mutex_unlock(&D.lock);
	return t ? 0 : -ENOMEM;
}

int tenant_reserve(const char *spec)
{
	return set_limit(spec, false);
}

int tenant_store_cap(const char *spec)
{
	return set_limit(spec, true);
}

/* Would `more` new pages in the store take c's tenant past its cap? */
bool tenant_at_cap(const struct fm_client *c, uint64_t more)
{
	const struct fm_tenant *t = c ? c->tenant : NULL;
	return t && t->store_cap_pages && atomic_load(&t->stored) + more > t->store_cap_pages;
}

/* A client whose tenant is within its reserve is not a victim for other
 * tenants' faults. */
bool tenant_protected(const struct fm_client *victim, const struct fm_client *for_whom)
{
	const struct fm_tenant *t = victim->tenant;
	if (!t || !t->reserve_pages || (for_whom && for_whom->tenant == t))
		return false;
	return atomic_load(&t->resident) <= t->reserve_pages;
}

void tenants_free(void)
{
	while (D.tenants) {
		struct fm_tenant *t = D.tenants;
		D.tenants = t->next;
		free(t);
	}
}

/* fluidmem tenant: change a tenant's reserve or store cap while running. */
int tenant_set(const struct fm_set_tenant *rq)
{
	if (rq->set & ~(FM_TENANT_RESERVE | FM_TENANT_STORE_CAP) || !rq->set)
		return -EINVAL;
	pthread_mutex_lock(&D.lock);
	struct fm_tenant *t = tenant_get((uid_t)rq->uid);
	if (t && (rq->set & FM_TENANT_RESERVE))
		t->reserve_pages = rq->reserve_bytes / PAGE;
	if (t && (rq->set & FM_TENANT_STORE_CAP))
		t->store_cap_pages = rq->store_cap_bytes ? (rq->store_cap_bytes / PAGE ? rq->store_cap_bytes / PAGE : 1) : 0;
	pthread_mutex_unlock(&D.lock);
	if (t)
		fm_info("uid %u: reserve %llu MiB, store cap %llu MiB", rq->uid,
			(unsigned long long)(t->reserve_pages * PAGE >> 20),
			(unsigned long long)(t->store_cap_pages * PAGE >> 20));
	return t ? 0 : -ENOMEM;
}
