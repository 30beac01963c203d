/* proto.h - the wire protocol between clients, the fluidmem command and fluidmemd.
 *
 * One Unix stream socket per connection. Every message is a fixed header and
 * a payload of the size its type fixes (text payloads excepted), with file
 * descriptors riding along as SCM_RIGHTS. The first message of a connection
 * decides its kind: FM_MSG_HELLO makes it a client (it owns a userfaultfd and
 * registers regions), anything else is a one-shot control request.
 * All integers are native endian: both ends are on the same host. */
#ifndef FM_PROTO_H
#define FM_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FM_PROTO_MAGIC 0x4d454d46u /* "FMEM" */
#define FM_PROTO_VERSION 1
#define FM_PROTO_MAX_PAYLOAD (1u << 20)
#define FM_PROTO_MAX_FDS 64
#define FM_TAG_MAX 32

enum fm_msg_type {
	/* client connection */
	FM_MSG_HELLO = 1,       /* fds: uffd, pidfd. payload fm_hello */
	FM_MSG_REGISTER = 2,    /* fds: memfd. payload fm_register, reply fm_register_reply */
	FM_MSG_GROW = 3,        /* payload fm_grow: a region's memfd grew (fm_prepare_grow) */
	FM_MSG_SNAPSHOT = 4,    /* fork: replies fm_snapshot_reply + one fd per entry, in parts */
	FM_MSG_ADOPT = 5,       /* child after fork: fds memfd, payload fm_adopt */
	FM_MSG_UNMAP = 6,       /* payload fm_unmap: the client is about to munmap a range */
	FM_MSG_JOIN = 7,        /* child after fork: fds memfd, payload fm_join: one more
				 * process maps a shared region */
	FM_MSG_MREMAP_BEGIN = 8, /* payload fm_mremap: the client is about to mremap a region */
	FM_MSG_MREMAP_END = 9,  /* payload fm_mremap_end: what that mremap did */
	FM_MSG_ATTACH = 10,     /* after a monitor restart: fds memfd, payload fm_attach */
	FM_MSG_ATTACH_DONE = 11, /* every region is back: the monitor starts reading the uffd */
	/* control connection */
	FM_MSG_STATUS = 16,     /* payload fm_status_req, reply text */
	FM_MSG_SET_BUDGET = 17, /* payload fm_set_budget */
	FM_MSG_TAG_STATS = 18,  /* payload fm_tag_req, reply fm_stats */
	FM_MSG_EVICT = 19,      /* payload fm_tag_req (empty tag: all): evict now */
	FM_MSG_SHUTDOWN = 20,   /* root only: stop the daemon */
	FM_MSG_SET_TAG_LIMIT = 21, /* payload fm_set_tag_limit, reply fm_evict_reply */
	FM_MSG_DROP = 22,       /* root: payload fm_drop; the region's memory is gone */
	FM_MSG_SET_TENANT = 23, /* root: payload fm_set_tenant: a tenant's reserve and store cap */
	FM_MSG_REPLY = 64,
};

struct fm_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;    /* payload bytes after this header */
	int32_t status;  /* replies: 0 or -errno; payload may carry a text reason */
};

/* fm_hello.flags: what the client's userfaultfd can do */
#define FM_HELLO_WP_UNPOPULATED 1u /* write-protect reaches pages it has not mapped yet:
				    * the monitor may fill pages behind its back (prefetch) */
#define FM_HELLO_POISON 2u
#define FM_HELLO_REATTACH 4u        /* the client comes back to a restarted monitor: no uffd
				     * message is read before FM_MSG_ATTACH_DONE */

struct fm_hello {
	uint64_t local_limit;    /* bytes resident for this tag, 0 = only the global budget */
	char tag[FM_TAG_MAX];    /* groups the processes of one `fluidmem run` for stats and limits */
	uint32_t flags;          /* FM_HELLO_* */
	uint32_t pad;
};

/* Reply of HELLO. FM_HELLO_REPLY_PERSIST: the monitor keeps what a restarted
 * monitor needs (remote store, state directory): if the connection closes,
 * re-attach instead of stopping. */
#define FM_HELLO_REPLY_PERSIST 1u
struct fm_hello_reply {
	uint32_t flags;
	uint32_t pad;
};

#define FM_REGISTER_HEAP 1u     /* the preload's malloc heap */
#define FM_REGISTER_ADOPTED 2u  /* a memfd the program made itself (QEMU memory backend) */
#define FM_REGISTER_SHARED 4u   /* MAP_SHARED|MAP_ANONYMOUS memory: stays mapped in fork
				 * children, which JOIN it; one region, several processes */
struct fm_register {
	uint64_t addr;           /* where the client mapped the memfd */
	uint64_t len;            /* bytes mapped, page multiple */
	uint64_t offset;         /* offset of addr in the memfd, page multiple */
	uint32_t flags;
	uint32_t pad;
};
/* The region's id and its encryption key (store sealing): the client keeps
 * both in memory, only to hand them back on FM_MSG_ATTACH. */
#define FM_REGION_SECRET 32
struct fm_register_reply {
	uint64_t region[2];
	unsigned char secret[FM_REGION_SECRET];
};

struct fm_grow {
	uint64_t region[2];
	uint64_t new_len;
};

/* A fork snapshot: one entry per map of a private region, with the fd of
 * that region's clone (maps of one region share it). It comes in parts of
 * at most FM_SNAPSHOT_MAX entries, each a REPLY carrying `count` fds, until
 * `total` entries have come; a process has at most FM_SNAPSHOT_TOTAL maps
 * (the client's region slots). */
#define FM_SNAPSHOT_MAX 64
#define FM_SNAPSHOT_TOTAL 1024
struct fm_snapshot_entry {
	uint64_t clone[2];
	uint64_t addr, len, offset;
	unsigned char secret[FM_REGION_SECRET];
};
struct fm_snapshot_reply {
	uint32_t count;          /* entries in this part */
	uint32_t total;          /* entries in all parts */
	struct fm_snapshot_entry e[FM_SNAPSHOT_MAX];
};

/* Sent (and answered) before the client unregisters and unmaps a range, so
 * the monitor forgets it before its address can be reused; the kernel then
 * sends no UNMAP event, which could arrive after a REMAP onto that address. */
struct fm_unmap {
	uint64_t addr, len;
};

/* mremap of (part of) a region, bracketed: BEGIN before the system call,
 * END with its result after it, both answered (an event the client causes
 * after its mremap returns, a madvise REMOVE, must find the move applied),
 * nothing else of the client's regions changing in between (the library
 * holds its lock). A grow's memfd is grown by the
 * client before BEGIN. From BEGIN to END the monitor holds faults in the
 * ranges involved; at END it applies the move itself and discards the
 * REMAP/UNMAP events the kernel sent for it (ARCHITECTURE.md, "Events"). */
struct fm_mremap {
	uint64_t old_addr, old_len;  /* page multiples (the library rounds up) */
	uint64_t new_len;
	uint64_t new_addr;           /* with MREMAP_FIXED, else 0 */
	uint32_t flags;              /* MREMAP_* as given to mremap */
	uint32_t pad;
};
struct fm_mremap_end {
	uint64_t new_addr;           /* mremap's result */
	int32_t err;                 /* 0, or the errno of a failed mremap */
	uint32_t pad;
};

struct fm_adopt {
	uint64_t clone[2];
	uint64_t addr, len, offset;
};

/* A forked child maps a shared region its parent registered (FM_REGISTER_SHARED)
 * and registered it with its own userfaultfd. The memfd rides along: the
 * monitor checks it is the region's file, so only a process that holds the
 * memory can join it. */
struct fm_join {
	uint64_t region[2];
	uint64_t addr, len, offset;
};

/* A region back to a restarted monitor: its memfd (fds), id and key, the
 * part of the memfd the region covers (base_off, npages: as registered, or
 * grown) and where the client maps it (addr, len; map_page: region page at
 * addr). The monitor rebuilds page states from the memfd and its state file. */
struct fm_attach {
	uint64_t region[2];
	unsigned char secret[FM_REGION_SECRET];
	uint64_t base_off, npages;
	uint64_t addr, len, map_page;
	uint32_t flags;          /* FM_REGISTER_* */
	uint32_t pad;
};

#define FM_STATUS_JSON 1u
struct fm_status_req {
	uint32_t flags;
	uint32_t pad;
};

/* Drop a region (root): its pages and store data are freed and any later
 * access by its process is a SIGBUS. */
struct fm_drop {
	uint64_t region[2];
};

#define FM_TENANT_RESERVE 1u
#define FM_TENANT_STORE_CAP 2u
struct fm_set_tenant {
	uint32_t uid;
	uint32_t set;            /* FM_TENANT_*: which of the two to change */
	uint64_t reserve_bytes;
	uint64_t store_cap_bytes; /* 0: no cap */
};

struct fm_set_budget {
	uint64_t bytes;
};

struct fm_tag_req {
	char tag[FM_TAG_MAX];
};

/* Reply of FM_MSG_EVICT and FM_MSG_SET_TAG_LIMIT. */
struct fm_evict_reply {
	uint64_t pages;          /* pages evicted */
	uint64_t clients;        /* processes they were taken from */
};

struct fm_set_tag_limit {
	uint64_t bytes;          /* the tag's resident limit; 0: only the global budget */
	char tag[FM_TAG_MAX];
};

/* The scalar counters of struct fm_stats, for code that prints them all. */
#define FM_STATS_FIELDS(X) \
	X(faults_zero) X(faults_store) X(faults_wp) X(faults_spurious) X(faults_poisoned) \
	X(evictions) X(pages_prefetched) X(pages_written) X(pages_clean_skipped) X(pages_zero_skipped) X(bytes_in) X(bytes_out) \
	X(store_errors) X(resident_pages) X(stored_pages) X(peak_resident_pages) X(regions) X(clients) \
	X(faults_concurrent) X(prefetch_hits) X(prefetch_skipped) \
	X(shared_evictions) X(shared_faults_store) X(placement_moves) X(evictions_by_address)

/* Counters, kept per client and summed per tag. Latencies in nanoseconds. */
#define FM_LAT_BUCKETS 256
struct fm_stats {
	uint64_t faults_zero;      /* served with a zero page: never-seen or all-zero evicted */
	uint64_t faults_store;     /* served from the store */
	uint64_t faults_wp;        /* write-protect faults */
	uint64_t faults_spurious;  /* already resident when read: just woken */
	uint64_t faults_poisoned;  /* delivered as SIGBUS */
	uint64_t evictions;
	uint64_t pages_prefetched; /* made resident ahead of a fault (sequential streams) */
	uint64_t pages_written;    /* evicted pages written to the store */
	uint64_t pages_clean_skipped; /* evicted clean: the store's copy was current */
	uint64_t pages_zero_skipped; /* evicted all-zero pages not written */
	uint64_t bytes_in, bytes_out;
	uint64_t store_errors;
	uint64_t resident_pages, stored_pages, peak_resident_pages;
	uint64_t regions, clients;
	uint64_t faults_concurrent; /* store faults begun while another of the same process
				     * was being fetched (--fault-threads > 1) */
	uint64_t prefetch_hits;    /* prefetched pages the program went through (the stream
				    * went on past them: inferred, the monitor sees no access) */
	uint64_t prefetch_skipped; /* prefetch windows not issued: the region's hit rate was low */
	uint64_t shared_evictions;    /* of those evictions, pages of shared regions */
	uint64_t shared_faults_store; /* of the store faults, pages of shared regions */
	uint64_t placement_moves;  /* fault thread moved onto or off the faulting CPU (placement.c) */
	uint64_t evictions_by_address; /* of the evictions, victims of a sweep (random regions, evict.c) */
	uint64_t lat[FM_LAT_BUCKETS]; /* log2-linear histogram, see fm_lat_bucket() */
};

/* Histogram: 8 sub-buckets per power of two of nanoseconds. */
unsigned fm_lat_bucket(uint64_t ns);
uint64_t fm_lat_bucket_value(unsigned b);
uint64_t fm_lat_percentile(const uint64_t *lat, double p);
void fm_stats_add(struct fm_stats *dst, const struct fm_stats *src);

/* Attach nfds descriptors to m as SCM_RIGHTS, in cbuf (CMSG_SPACE of them). */
struct msghdr;
void fm_msg_attach_fds(struct msghdr *m, void *cbuf, const int *fds, int nfds);
/* Send a message with fds (nfds may be 0). Returns 0 or -errno. */
int fm_send(int sock, uint16_t type, int32_t status, const void *payload, uint32_t len,
	    const int *fds, int nfds);
/* Receive one message: header into *h, payload (up to cap bytes) into buf,
 * fds into fds (up to *nfds, updated). Extra fds are closed; a payload larger
 * than cap is an error (-EMSGSIZE) after draining it. 0 on success, -ECONNRESET
 * on EOF, -EPROTO on a bad header. */
int fm_recv(int sock, struct fm_msg_hdr *h, void *buf, uint32_t cap, int *fds, int *nfds);

/* Connect to the monitor's socket. Returns fd or -errno. */
int fm_connect_unix(const char *path);
/* Default socket path: $FLUIDMEM_SOCKET, else /run/fluidmem/fluidmemd.sock. */
const char *fm_default_socket(void);

#endif
