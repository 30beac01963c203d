/* store.h - the page store contract (the paper's libexternram).
 *
 * A store keeps 4 KiB pages under keys made of a region id and a page offset,
 * never an address. Backends (local, memcached, redis) implement struct
 * fm_store_ops and are chosen at run time from the URL scheme:
 *
 *   local://                         pages in the monitor's own memory (default)
 *   memcached://h1:p1,h2:p2?replicas=2&timeout_ms=500
 *   redis://[:password@]host:port[/db]?timeout_ms=500
 *
 * Threading: a struct fm_store handle is used by one thread at a time. The
 * monitor opens one handle per thread with fm_store_open() on the same URL.
 * Backends that keep pages in-process share them across handles.
 *
 * Results: functions return 0 or -errno for whole-call failures (bad URL,
 * unreachable at open). Per-page outcomes of batched calls are in
 * struct fm_store_io.status, one of enum fm_store_status. */
#ifndef FLUIDMEM_STORE_H
#define FLUIDMEM_STORE_H

#include <stddef.h>
#include <stdint.h>

#define FM_PAGE_SIZE 4096

/* A region id is 128 random bits: unguessable, so keys of one tenant cannot be
 * named by another. page is the page index inside the region (offset / 4096). */
struct fm_page_key {
	uint64_t region[2];
	uint64_t page;
};

enum fm_store_status {
	FM_STORE_OK = 0,
	FM_STORE_MISSING,     /* no value under this key (never written, or the server lost it) */
	FM_STORE_CORRUPT,     /* a value came back but failed its integrity check */
	FM_STORE_UNAVAILABLE, /* every server that could hold it failed or timed out */
	FM_STORE_FULL,        /* the store refused the write for lack of space */
};

struct fm_store_io {
	struct fm_page_key key;
	void *page;          /* FM_PAGE_SIZE bytes: source of a write, destination of a read */
	uint64_t version;    /* write: version to seal with; read: version expected (0 = any) */
	const unsigned char *secret; /* FM_SECRET_SIZE bytes, the region's key: remote backends
				      * encrypt and authenticate the page with it; NULL: checksum only */
	int status;          /* enum fm_store_status, set by the call */
};

#define FM_SECRET_SIZE 32

struct fm_store;

/* fm_store_ops.flags */
#define FM_STORE_DROP_AFTER_READ 1u /* stored pages cost the monitor's own memory:
				     * remove a page's copy once it is read back */

struct fm_store_ops {
	const char *scheme;  /* "local", "memcached", "redis" */
	unsigned flags;      /* FM_STORE_* */
	/* Parse url (the full URL, scheme included) and connect. On failure return
	 * -errno and write a one-line reason into err. */
	int (*open)(const char *url, struct fm_store **out, char *err, size_t errlen);
	void (*close)(struct fm_store *s);
	/* Batched: n pages. Each io gets its own status; the call returns 0, or
	 * -errno when nothing could be attempted. */
	int (*read)(struct fm_store *s, struct fm_store_io *ios, size_t n);
	/* Optional, for pipelining: read_start sends the requests of a read
	 * and returns; read_finish (same ios and n) collects the answers, does
	 * what read would have done after, and sets the statuses. The caller
	 * works meanwhile, with no other call on the handle (one that comes
	 * anyway finishes the read first). NULL: read does it all at finish. */
	int (*read_start)(struct fm_store *s, struct fm_store_io *ios, size_t n);
	int (*read_finish)(struct fm_store *s, struct fm_store_io *ios, size_t n);
	int (*write)(struct fm_store *s, struct fm_store_io *ios, size_t n);
	/* Remove keys; missing keys are not an error. Remote backends never
	 * wait for a dead server here: -EAGAIN means some copies could not be
	 * removed (they stay until overwritten or their server restarts). */
	int (*remove)(struct fm_store *s, const struct fm_page_key *keys, size_t n);
	/* One line of health for status output ("3/3 servers up"), may be NULL. */
	void (*describe)(struct fm_store *s, char *buf, size_t len);
};

/* A handle: backends embed this first in their own struct. */
struct fm_store {
	const struct fm_store_ops *ops;
};

int fm_store_open(const char *url, struct fm_store **out, char *err, size_t errlen);
static inline void fm_store_close(struct fm_store *s) { if (s) s->ops->close(s); }
static inline int fm_store_read(struct fm_store *s, struct fm_store_io *ios, size_t n)
{ return s->ops->read(s, ios, n); }
static inline int fm_store_read_start(struct fm_store *s, struct fm_store_io *ios, size_t n)
{ return s->ops->read_start ? s->ops->read_start(s, ios, n) : 0; }
static inline int fm_store_read_finish(struct fm_store *s, struct fm_store_io *ios, size_t n)
{ return s->ops->read_finish ? s->ops->read_finish(s, ios, n) : s->ops->read(s, ios, n); }
static inline int fm_store_write(struct fm_store *s, struct fm_store_io *ios, size_t n)
{ return s->ops->write(s, ios, n); }
static inline int fm_store_remove(struct fm_store *s, const struct fm_page_key *keys, size_t n)
{ return s->ops->remove(s, keys, n); }
const char *fm_store_strstatus(int status);

/* Format a key as the text remote backends store it under:
 * "fm:<32 hex region>:<hex page>". buf must hold FM_KEY_MAX bytes. */
#define FM_KEY_MAX 64
int fm_store_key_format(const struct fm_page_key *key, char *buf);

#endif
