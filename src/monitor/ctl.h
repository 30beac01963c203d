/* ctl.h - control requests that evict (ctl.c): FM_MSG_EVICT and
 * FM_MSG_SET_TAG_LIMIT, answered by main.c's control_request. */
#ifndef FM_CTL_H
#define FM_CTL_H

#include <sys/types.h>

#include "proto.h"

/* Evict every resident page of tag (empty: of every process) that uid may
 * act on (root and the daemon's uid: all; others: their own processes).
 * Returns 0 with the counts in *out, or -ENOENT with a reason in *why. */
int ctl_evict(const char *tag, uid_t uid, struct fm_evict_reply *out, const char **why);

/* Set tag's resident limit (0: only the global budget) and evict down to it.
 * A tenant may change a tag only when all of its processes are the
 * tenant's. Returns 0 (pages evicted in *out), -ENOENT, -EPERM or -EINVAL. */
int ctl_set_tag_limit(const char *tag, uint64_t bytes, uid_t uid, struct fm_evict_reply *out,
		      const char **why);

#endif
