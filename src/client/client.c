/* client.c - libfluidmem: regions of this process and its connection to
 * fluidmemd.
 *
 * A region is a memfd mapped MAP_SHARED here, registered with this process's
 * userfaultfd (MISSING | WP) and handed to the monitor with the uffd, which
 * then serves every fault in it. The process keeps its own references to the
 * memfds and the uffd: if the monitor dies, faulting threads wait instead of
 * reading zero pages. With a monitor that keeps its state (remote store) the
 * watcher thread re-attaches to the restarted monitor (reattach()), which
 * then answers the waiting faults; otherwise it stops the process with a
 * message.
 *
 * Nothing here calls malloc (the preload library calls in from malloc), and
 * mappings are made with raw syscalls so the preload's mmap wrappers do not
 * see our own. fork() is handled with pthread_atfork: the monitor snapshots
 * every private region, and the child maps the snapshots where the regions
 * were. Shared regions (MAP_SHARED memory) stay mapped in the child, which
 * registers them with its own userfaultfd and JOINs them before fork returns:
 * an unregistered child touching an evicted page would read zeros. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "fluidmem/fluidmem.h"
#include "client_internal.h"
#include "proto.h"
#include "size.h"
#include "uffd_compat.h"

#define MAX_REGIONS 1024
#define PAGE_SZ 4096ul

struct cregion {
	uintptr_t addr;
	size_t len;     /* mapped bytes at addr */
	size_t size;    /* memfd size */
	off_t offset;   /* of addr in the memfd */
	int memfd;      /* ours (-1 for adopted memfds, which stay the program's) */
	int adopted_fd; /* the program's memfd for adopted regions, else -1 */
	dev_t dev;      /* and its identity, in case the number is reused */
	ino_t ino;
	uint64_t id[2];
	bool shared;    /* FM_MAP_SHARED: fork children map it too */
	/* for FM_MSG_ATTACH to a restarted monitor */
	uint64_t base_off, npages; /* the memfd range the region covers, as the monitor has it */
	uint32_t flags;            /* FM_REGISTER_* */
	unsigned char secret[FM_REGION_SECRET]; /* its pages' key in the store: only here */
};

/* A recursive lock usable from the watcher, which is no pthread on x86-64
 * (see spawn_watcher): owner is a kernel thread id, waiters sleep on a futex. */
struct rlock {
	atomic_int owner;
	int depth;
	atomic_int waiters;
};

static struct {
	struct rlock lock;
	int state;                 /* 0 untried, 1 connected, -errno failed */
	_Atomic int sock;
	int uffd, pidfd;
	_Atomic ino_t sock_ino;
	atomic_uint gen;           /* bumped by every re-attach */
	atomic_int reattaching;    /* a thread is re-attaching: others wait for gen to move */
	bool persist;              /* the monitor keeps state: re-attach when it restarts */
	unsigned reattach_secs;    /* how long to wait for it ($FLUIDMEM_REATTACH_SECONDS) */
	struct cregion r[MAX_REGIONS];
	int n;
	bool watcher_started;
	char err[128];
	/* Settings read once from the environment: a forked child reconnects
	 * before its heap is back, when a program's own getenv (bash has one)
	 * could not run. */
	char sock_path[108];
	unsigned fork_delay_ms;    /* tests: a fork child waits this long before it reconnects */
	struct fm_hello hello;
	/* fork snapshot, from prepare to the parent/child handlers */
	struct fm_snapshot_entry snap[FM_SNAPSHOT_TOTAL];
	int snap_fds[FM_SNAPSHOT_TOTAL];
	uint32_t nsnap;            /* entries received */
	int snap_nfds;             /* fds received (to close) */
	int snap_err;
	/* The mremap of a region between BEGIN's answer and END's (fm_mremap),
	 * for a re-attach in between: before the system call returned the new
	 * monitor is sent the BEGIN again (the kernel may have moved the
	 * mapping, but its events wait for a reader: the new monitor sets them
	 * aside and END comes as usual); after, the table takes the result and
	 * the monitor is given the new layout, no END. */
	struct {
		atomic_int phase;          /* MR_NONE, MR_BEGUN, MR_DONE, MR_APPLYING */
		struct fm_mremap rq;
		uint64_t id[2];            /* the region's */
		bool whole;                /* the whole region moved (else a part, or its tail went) */
		uintptr_t result;          /* MR_DONE: where it is now; 0: the mremap failed */
	} mr;
	unsigned mr_pause_ms;      /* $FLUIDMEM_TEST_MREMAP_PAUSE_MS */
	int mr_noted;              /* the last re-attach met an mremap: 1 before, 2 after its system call */
} G = {
	.sock = -1, .uffd = -1, .pidfd = -1,
};

/* System calls the watcher may make: raw on x86-64 (no errno, no TLS),
 * through libc elsewhere, where the watcher is a pthread. -errno on failure. */
#if defined(__x86_64__)
static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}
#else
static long sys3(long n, long a, long b, long c)
{
	long r = syscall(n, a, b, c);
	return r < 0 ? -errno : r;
}
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}
#endif

static void rl_lock(struct rlock *l)
{
	int me = (int)sys3(SYS_gettid, 0, 0, 0);
	if (atomic_load(&l->owner) == me) {
		l->depth++;
		return;
	}
	for (;;) {
		int free_ = 0;
		if (atomic_compare_exchange_strong(&l->owner, &free_, me))
			break;
		atomic_fetch_add(&l->waiters, 1);
		sys6(SYS_futex, (long)&l->owner, FUTEX_WAIT_PRIVATE, free_, 0, 0, 0);
		atomic_fetch_sub(&l->waiters, 1);
	}
	l->depth = 1;
}

/* Try for up to ms milliseconds. */
static bool rl_lock_for(struct rlock *l, long ms)
{
	int me = (int)sys3(SYS_gettid, 0, 0, 0);
	if (atomic_load(&l->owner) == me) {
		l->depth++;
		return true;
	}
	for (long waited = 0;; waited++) {
		int free_ = 0;
		if (atomic_compare_exchange_strong(&l->owner, &free_, me)) {
			l->depth = 1;
			return true;
		}
		if (waited >= ms)
			return false;
		struct timespec ts = { 0, 1000000 };
		sys3(SYS_nanosleep, (long)&ts, 0, 0);
	}
}

static void rl_unlock(struct rlock *l)
{
	if (--l->depth)
		return;
	atomic_store(&l->owner, 0);
	if (atomic_load(&l->waiters))
		sys6(SYS_futex, (long)&l->owner, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

int fm_in_preload;

void *fm_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
int fm_sys_munmap(void *addr, size_t len) { return (int)syscall(SYS_munmap, addr, len); }
int fm_sys_madvise(void *addr, size_t len, int advice) { return (int)syscall(SYS_madvise, addr, len, advice); }
void *fm_sys_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static void set_err(const char *why)
{
	snprintf(G.err, sizeof(G.err), "%.127s", why);
}

const char *fm_last_error(void)
{
	return G.err;
}

static void reattach(unsigned gen);

enum { MR_NONE, MR_BEGUN, MR_DONE, MR_APPLYING };
static void nap_ms(long ms);

static bool conn_lost(int rc)
{
	return rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN || rc == -ECONNREFUSED;
}

/* One request and its reply on the monitor connection. Caller holds G.lock.
 * A connection lost on the way, to a monitor that keeps state, is taken back
 * (reattach) and the request sent again to the restarted monitor. */
static int call(uint16_t type, const void *p, uint32_t len, const int *fds, int nfds, void *rep,
		uint32_t cap, int *rfds, int *nrfds)
{
	int want = nrfds ? *nrfds : 0;
	for (int tries = 0;; tries++) {
		int sock = G.sock;
		unsigned gen = atomic_load(&G.gen);
		struct fm_msg_hdr h;
		char buf[sizeof(struct fm_snapshot_reply)];
		int none = 0;
		if (nrfds)
			*nrfds = want;
		if (type == FM_MSG_MREMAP_END && atomic_load(&G.mr.phase) != MR_DONE)
			return 0; /* a re-attach gave the new monitor the result instead */
		int rc = fm_send(sock, type, 0, p, len, fds, nfds);
		if (rc == 0)
			rc = fm_recv(sock, &h, buf, sizeof(buf), rfds, nrfds ? nrfds : &none);
		if (rc < 0 && conn_lost(rc) && G.persist && tries < 3) {
			reattach(gen);
			continue;
		}
		/* The socket read above was closed by another thread's re-attach
		 * (the watcher's, while this one waited in mremap): the new one. */
		if ((rc == -EBADF || rc == -ENOTSOCK) && tries < 3 &&
		    (atomic_load(&G.reattaching) || atomic_load(&G.gen) != gen)) {
			reattach(gen);
			continue;
		}
		if (rc < 0)
			return rc;
		if (h.status < 0) {
			if (h.len)
				set_err(buf[h.len - 1] == 0 ? buf : "monitor refused the request");
			return h.status;
		}
		if (rep)
			memcpy(rep, buf, h.len < cap ? h.len : cap);
		return 0;
	}
}

static int open_uffd(void)
{
	int fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	int dev = fd >= 0 ? ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK) : -1;
	if (fd >= 0)
		close(fd);
	if (dev >= 0)
		return dev;
	/* No access to /dev/userfaultfd: the syscall works for root, or when
	 * vm.unprivileged_userfaultfd=1. Never UFFD_USER_MODE_ONLY: kernel
	 * accesses (read(2) into a region) must fault and wait too. */
	dev = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return dev >= 0 ? dev : -errno;
}

/* A userfaultfd with the features regions need; *flags gets FM_HELLO_*. */
static int make_uffd(uint32_t *flags)
{
	const uint64_t need = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
			      UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_MISSING_SHMEM;
	const uint64_t want = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED |
			      UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID;
	int probe = open_uffd();
	if (probe < 0) {
		set_err("cannot create a userfaultfd: give the user read/write access to /dev/userfaultfd "
			"or set sysctl vm.unprivileged_userfaultfd=1");
		return probe;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int rc = ioctl(probe, UFFDIO_API, &api);
	close(probe);
	if (rc < 0 || (api.features & need) != need) {
		set_err("this kernel's userfaultfd lacks shmem events (Linux 5.x or later needed)");
		return -ENOSYS;
	}
	int fd = open_uffd();
	if (fd < 0)
		return fd;
	struct uffdio_api api2 = { .api = UFFD_API, .features = need | (api.features & want) };
	if (ioctl(fd, UFFDIO_API, &api2) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*flags = ((api2.features & UFFD_FEATURE_WP_UNPOPULATED) ? FM_HELLO_WP_UNPOPULATED : 0) |
		 ((api2.features & UFFD_FEATURE_POISON) ? FM_HELLO_POISON : 0);
	return fd;
}

static void read_settings(void)
{
	if (G.sock_path[0])
		return;
	snprintf(G.sock_path, sizeof(G.sock_path), "%s", fm_default_socket());
	const char *tag = getenv("FLUIDMEM_TAG");
	const char *lim = getenv("FLUIDMEM_LOCAL_MEMORY");
	if (tag)
		snprintf(G.hello.tag, sizeof(G.hello.tag), "%s", tag);
	if (lim && fm_parse_size(lim, &G.hello.local_limit) < 0)
		G.hello.local_limit = 0;
	const char *wait = getenv("FLUIDMEM_REATTACH_SECONDS");
	G.reattach_secs = wait && *wait ? (unsigned)strtoul(wait, NULL, 10) : 60;
	const char *delay = getenv("FLUIDMEM_TEST_FORK_DELAY_MS");
	G.fork_delay_ms = delay ? (unsigned)strtoul(delay, NULL, 10) : 0;
	/* tests only: widen fm_mremap's BEGIN..END window (t-rel-restart-mremap) */
	const char *pause = getenv("FLUIDMEM_TEST_MREMAP_PAUSE_MS");
	G.mr_pause_ms = pause ? (unsigned)strtoul(pause, NULL, 10) : 0;
}

static int connect_monitor(void)
{
	read_settings();
	G.persist = false; /* until this monitor says it keeps state */
	int s = fm_connect_unix(G.sock_path);
	if (s < 0) {
		snprintf(G.err, sizeof(G.err), "cannot reach fluidmemd at %.90s: %s", G.sock_path, strerror(-s));
		return s;
	}
	int uffd = make_uffd(&G.hello.flags);
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (uffd < 0 || pidfd < 0) {
		int e = uffd < 0 ? uffd : -errno;
		if (uffd >= 0)
			close(uffd);
		if (pidfd < 0 && uffd >= 0)
			set_err("pidfd_open failed (Linux 5.3 or later needed)");
		close(s);
		return e;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	G.sock = s;
	int fds[2] = { uffd, pidfd };
	struct fm_hello_reply hr = { 0 };
	int rc = call(FM_MSG_HELLO, &G.hello, sizeof(G.hello), fds, 2, &hr, sizeof(hr), NULL, NULL);
	if (rc < 0) {
		if (!G.err[0])
			snprintf(G.err, sizeof(G.err), "fluidmemd refused the connection: %s", strerror(-rc));
		close(s);
		close(uffd);
		close(pidfd);
		G.sock = -1;
		return rc;
	}
	struct stat sb;
	fstat(s, &sb);
	G.sock_ino = sb.st_ino;
	G.uffd = uffd;
	G.pidfd = pidfd;
	G.persist = hr.flags & FM_HELLO_REPLY_PERSIST;
	return 0;
}

int fm_init(void)
{
	rl_lock(&G.lock);
	if (G.state == 0) {
		int rc = connect_monitor();
		G.state = rc < 0 ? rc : 1;
	}
	int st = G.state;
	rl_unlock(&G.lock);
	return st < 0 ? st : 0;
}

int fm_connected(void)
{
	return G.state == 1;
}

static int uffd_register(uintptr_t addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { addr, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	return ioctl(G.uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

/* Register [addr, addr+len) of memfd at offset with the monitor; record it. */
static int add_region(uintptr_t addr, size_t len, int memfd, off_t offset, size_t size, uint32_t flags,
		      bool owned)
{
	if (G.n == MAX_REGIONS) {
		set_err("too many regions in one process");
		return -ENOSPC;
	}
	int rc = uffd_register(addr, len);
	if (rc < 0) {
		set_err("UFFDIO_REGISTER failed");
		return rc;
	}
	struct fm_register rq = { .addr = addr, .len = len, .offset = (uint64_t)offset, .flags = flags };
	struct fm_register_reply rep;
	rc = call(FM_MSG_REGISTER, &rq, sizeof(rq), &memfd, 1, &rep, sizeof(rep), NULL, NULL);
	if (rc < 0) {
		struct uffdio_range r = { addr, len };
		ioctl(G.uffd, UFFDIO_UNREGISTER, &r);
		return rc;
	}
	struct stat sb = { 0 };
	fstat(memfd, &sb);
	G.r[G.n++] = (struct cregion){ .addr = addr, .len = len, .size = size, .offset = offset,
				       .memfd = owned ? memfd : -1, .adopted_fd = owned ? -1 : memfd,
				       .dev = sb.st_dev, .ino = sb.st_ino,
				       .id = { rep.region[0], rep.region[1] },
				       .shared = (flags & FM_REGISTER_SHARED) != 0,
				       .base_off = (uint64_t)offset, .npages = len / PAGE_SZ, .flags = flags };
	memcpy(G.r[G.n - 1].secret, rep.secret, sizeof(rep.secret));
	explicit_bzero(rep.secret, sizeof(rep.secret));
	return 0;
}

static void forget_locked(uintptr_t a, uintptr_t e, const struct cregion *keep);
static bool release_locked(uintptr_t a, uintptr_t e);

void *fm_map(void *addr, size_t len, int prot, int flags)
{
	len = (len + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
	if (!len) {
		errno = EINVAL;
		return NULL;
	}
	int rc = fm_init();
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	rl_lock(&G.lock);
	void *p = NULL;
	int fd = memfd_create("fluidmem", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
		rc = -errno;
		goto out;
	}
	int mflags = MAP_SHARED | MAP_NORESERVE | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE));
	if (flags & MAP_FIXED)
		release_locked((uintptr_t)addr, (uintptr_t)addr + len); /* what it replaces */
	p = fm_sys_mmap(addr, len, prot, mflags, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		p = NULL;
		goto out;
	}
	/* A child of fork gets its own copy from the monitor, never this
	 * mapping; unless it is shared memory, which the child joins. */
	if (!(flags & FM_MAP_SHARED))
		fm_sys_madvise(p, len, MADV_DONTFORK);
	if (flags & MAP_FIXED)
		forget_locked((uintptr_t)p, (uintptr_t)p + len, NULL); /* what it replaced */
	rc = add_region((uintptr_t)p, len, fd, 0, len,
			((flags & FM_MAP_HEAP) ? FM_REGISTER_HEAP : 0) | ((flags & FM_MAP_SHARED) ? FM_REGISTER_SHARED : 0),
			true);
	if (rc < 0) {
		fm_sys_munmap(p, len);
		p = NULL;
	} else if (!fm_in_preload) {
		fm_start_watcher(); /* the preload starts it outside malloc */
	}
out:
	if (rc < 0 && fd >= 0)
		close(fd);
	rl_unlock(&G.lock);
	if (!p)
		errno = -rc;
	return p;
}

void *fm_alloc(size_t len)
{
	return fm_map(NULL, len, PROT_READ | PROT_WRITE, 0);
}

int fm_adopt(void *addr, size_t len, int fd, off_t offset)
{
	struct stat sb;
	int rc = fm_init();
	if (rc < 0)
		return rc;
	if (fstat(fd, &sb) < 0)
		return -errno;
	rl_lock(&G.lock);
	rc = add_region((uintptr_t)addr, len, fd, offset, (size_t)sb.st_size, FM_REGISTER_ADOPTED, false);
	rl_unlock(&G.lock);
	return rc;
}

static struct cregion *find(uintptr_t a, size_t len)
{
	for (int i = 0; i < G.n; i++)
		if (a >= G.r[i].addr && a + len <= G.r[i].addr + G.r[i].len)
			return &G.r[i];
	return NULL;
}

int fm_owns(const void *addr, size_t len)
{
	if (G.n == 0)
		return 0;
	rl_lock(&G.lock);
	int yes = find((uintptr_t)addr, len ? len : 1) != NULL;
	rl_unlock(&G.lock);
	return yes;
}

int fm_owns_shared(const void *addr, size_t len)
{
	if (G.n == 0)
		return 0;
	rl_lock(&G.lock);
	struct cregion *r = find((uintptr_t)addr, len ? len : 1);
	int yes = r && r->shared;
	rl_unlock(&G.lock);
	return yes;
}

/* The memfd of table entry r grows to hold new_len bytes mapped from r's
 * start. Caller holds G.lock. */
static int grow_memfd_locked(struct cregion *r, size_t new_len)
{
	if (r->memfd < 0 || r->shared) {
		set_err("mremap grows only private fluidmem regions");
		return -EINVAL;
	}
	size_t need = (size_t)r->offset + new_len;
	if (need > r->size) {
		if (ftruncate(r->memfd, (off_t)need) < 0)
			return -errno;
		r->size = need;
	}
	return 0;
}

int fm_prepare_grow(void *addr, size_t old_len, size_t new_len)
{
	rl_lock(&G.lock);
	struct cregion *r = find((uintptr_t)addr, old_len);
	int rc = -ENOENT;
	if (!r || r->addr != (uintptr_t)addr) {
		set_err("mremap grows only whole private fluidmem regions");
	} else if ((rc = grow_memfd_locked(r, (new_len + PAGE_SZ - 1) & ~(PAGE_SZ - 1))) == 0) {
		/* the monitor's view of the region grows too */
		struct fm_grow g = { .region = { r->id[0], r->id[1] }, .new_len = r->size };
		rc = call(FM_MSG_GROW, &g, sizeof(g), NULL, 0, NULL, 0, NULL, NULL);
	}
	rl_unlock(&G.lock);
	return rc;
}

/* The table after an mremap of [a, a+olen) of region id to [p, p+nlen):
 * the region moved (MREMAP_FIXED replaced what was at the target), or its
 * tail went. A part moved out of a region stays counted where it was: the
 * table keeps one place per memfd. Caller holds G.lock (or is the re-attach
 * that took the result over, see G.mr). */
static void mremap_table(const uint64_t id[2], uintptr_t a, size_t olen, size_t nlen, bool whole, uintptr_t p)
{
	struct cregion *r = NULL;
	for (int i = 0; i < G.n && !r; i++)
		if (G.r[i].id[0] == id[0] && G.r[i].id[1] == id[1])
			r = &G.r[i];
	if (!r)
		return;
	if (whole) {
		r->addr = p;
		r->len = nlen;
		forget_locked(p, p + nlen, r);
	} else if (p == a && a + olen == r->addr + r->len) {
		r->len -= olen - nlen;
	}
}

/* mremap, with the monitor told before and after when it moves, grows or
 * shrinks a region (FM_MSG_MREMAP_BEGIN/END): from BEGIN to END it holds the
 * faults the move could misplace, and at END it applies the move itself
 * (src/monitor/remap.c says why the kernel's events alone are not enough).
 * G.lock is held throughout, so no other change to this process's regions
 * (fm_map, munmap, MAP_FIXED, another mremap) comes in between. */
void *fm_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	uintptr_t a = (uintptr_t)old;
	size_t olen = (old_len + PAGE_SZ - 1) & ~(PAGE_SZ - 1), nlen = (new_len + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
	uintptr_t to = (flags & MREMAP_FIXED) ? (uintptr_t)new_addr : 0;
	void *p = MAP_FAILED;
	int err = 0;
	rl_lock(&G.lock);
	struct cregion *r = G.n && olen ? find(a, olen) : NULL;
	if (!r) {
		/* Not a region; MREMAP_FIXED still replaces whatever is at the target. */
		if (to && nlen)
			release_locked(to, to + nlen);
		p = fm_sys_mremap(old, old_len, new_len, flags, new_addr);
		err = errno;
		if (p != MAP_FAILED && to)
			forget_locked(to, to + nlen, NULL);
		goto out;
	}
	bool whole = r->addr == a && r->len == olen;
	if (flags & MREMAP_DONTUNMAP) {
		err = EINVAL; /* the region would be mapped twice */
		goto out;
	}
	if (nlen > olen && (!whole || grow_memfd_locked(r, nlen) < 0)) { /* BEGIN grows the monitor's view */
		if (!whole)
			set_err("mremap grows only whole private fluidmem regions");
		err = ENOMEM;
		goto out;
	}
	struct fm_mremap rq = { .old_addr = a, .old_len = olen, .new_len = nlen, .new_addr = to, .flags = (uint32_t)flags };
	/* Refused (a range the monitor does not know as one map) or no
	 * monitor to tell: the kernel's events are all it gets, as for a
	 * program calling the system call itself. */
	bool told = G.state == 1 && nlen && call(FM_MSG_MREMAP_BEGIN, &rq, sizeof(rq), NULL, 0, NULL, 0, NULL, NULL) == 0;
	if (told) {
		G.mr.rq = rq;
		G.mr.id[0] = r->id[0];
		G.mr.id[1] = r->id[1];
		G.mr.whole = whole;
		atomic_store(&G.mr.phase, MR_BEGUN);
		if (G.mr_pause_ms)
			nap_ms(G.mr_pause_ms);
	}
	p = fm_sys_mremap(old, old_len, new_len, flags, new_addr);
	err = p == MAP_FAILED ? errno : 0;
	if (told) {
		G.mr.result = p == MAP_FAILED ? 0 : (uintptr_t)p;
		atomic_store(&G.mr.phase, MR_DONE);
		if (G.mr_pause_ms)
			nap_ms(G.mr_pause_ms);
		/* answered: an event this process causes after mremap returns (a
		 * madvise REMOVE) must find the move applied */
		struct fm_mremap_end e = { .new_addr = G.mr.result, .err = err };
		call(FM_MSG_MREMAP_END, &e, sizeof(e), NULL, 0, NULL, 0, NULL, NULL);
		int done = MR_DONE;
		if (!atomic_compare_exchange_strong(&G.mr.phase, &done, MR_NONE))
			goto out; /* a re-attach applied it to the table already */
	}
	if (p == MAP_FAILED)
		goto out;
	mremap_table(r->id, a, olen, nlen, whole, (uintptr_t)p);
out:
	rl_unlock(&G.lock);
	if (p == MAP_FAILED)
		errno = err;
	return p;
}

/* mmap with MAP_FIXED of something that is not a region: the regions it
 * replaces are released first (as by munmap), under G.lock. */
void *fm_mmap_fixed(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t a = (uintptr_t)addr, e = a + ((len + PAGE_SZ - 1) & ~(PAGE_SZ - 1));
	rl_lock(&G.lock);
	bool ours = G.n && release_locked(a, e);
	void *p = fm_sys_mmap(addr, len, prot, flags, fd, off);
	int err = errno;
	if (p != MAP_FAILED && ours)
		forget_locked(a, e, NULL);
	rl_unlock(&G.lock);
	errno = err;
	return p;
}

/* The program punches a hole in a memfd it gave us (QEMU's virtio-mem
 * unplugging blocks): where that memfd is mapped as a region, the monitor must
 * drop those pages too, or it would bring them back from its store. Returns
 * the client address of [off, off+len) of fd, or NULL when fd is not an
 * adopted region or the range is not (wholly) mapped. */
void *fm_adopted_range(int fd, off_t off, size_t len)
{
	struct stat sb;
	void *out = NULL;
	if (G.n == 0 || fstat(fd, &sb) < 0)
		return NULL;
	rl_lock(&G.lock);
	for (int i = 0; i < G.n && !out; i++) {
		struct cregion *r = &G.r[i];
		if (r->adopted_fd < 0 || r->dev != sb.st_dev || r->ino != sb.st_ino)
			continue;
		if (off >= r->offset && (size_t)(off - r->offset) + len <= r->len)
			out = (void *)(r->addr + (uintptr_t)(off - r->offset));
	}
	rl_unlock(&G.lock);
	return out;
}

/* Drop [a, e) from the table (except the entry keep). Caller holds G.lock. */
static void forget_locked(uintptr_t a, uintptr_t e, const struct cregion *keep)
{
	/* entries move as others are dropped: recognise keep by its id */
	uint64_t kid[2] = { keep ? keep->id[0] : 0, keep ? keep->id[1] : 0 };
	for (int i = 0; i < G.n; i++) {
		struct cregion *r = &G.r[i];
		if (keep && r->id[0] == kid[0] && r->id[1] == kid[1])
			continue;
		if (a <= r->addr && e >= r->addr + r->len) { /* the whole region went */
			if (r->memfd >= 0)
				sys3(SYS_close, r->memfd, 0, 0); /* raw: the watcher may be here (attach_all) */
			G.r[i--] = G.r[--G.n];
		} else if (a <= r->addr && e > r->addr) { /* its head went */
			r->offset += (off_t)(e - r->addr);
			r->len -= e - r->addr;
			r->addr = e;
		} else if (a < r->addr + r->len && e >= r->addr + r->len) { /* its tail went */
			r->len = a - r->addr;
		}
		/* a hole in the middle: the table keeps the outer bounds */
	}
}

void fm_forget(void *addr, size_t len)
{
	rl_lock(&G.lock);
	forget_locked((uintptr_t)addr, (uintptr_t)addr + len, NULL);
	rl_unlock(&G.lock);
}

/* The regions in [a, e): the monitor forgets them (FM_MSG_UNMAP, answered)
 * and they are unregistered, before the caller unmaps or replaces them under
 * G.lock: no UNMAP event is left to arrive after another thread reused the
 * address. Returns whether [a, e) held any region. */
static bool release_locked(uintptr_t a, uintptr_t e)
{
	bool ours = false;
	for (int i = 0; i < G.n && !ours; i++)
		ours = a < G.r[i].addr + G.r[i].len && G.r[i].addr < e;
	if (!ours || G.state != 1 || a % PAGE_SZ)
		return ours;
	struct fm_unmap rq = { .addr = a, .len = e - a };
	if (call(FM_MSG_UNMAP, &rq, sizeof(rq), NULL, 0, NULL, 0, NULL, NULL) < 0)
		return ours;
	/* region by region: one range over other kinds of mapping (a file)
	 * would be refused whole */
	for (int i = 0; i < G.n; i++) {
		uintptr_t ra = G.r[i].addr > a ? G.r[i].addr : a;
		uintptr_t re = G.r[i].addr + G.r[i].len < e ? G.r[i].addr + G.r[i].len : e;
		if (ra < re) {
			struct uffdio_range r = { ra, re - ra };
			ioctl(G.uffd, UFFDIO_UNREGISTER, &r);
		}
	}
	return ours;
}

/* munmap of memory that may hold regions: released first (above). */
int fm_unmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, e = a + ((len + PAGE_SZ - 1) & ~(PAGE_SZ - 1));
	rl_lock(&G.lock);
	bool ours = G.n && release_locked(a, e);
	int rc = fm_sys_munmap(addr, len) < 0 ? -errno : 0;
	if (rc == 0 && ours)
		forget_locked(a, e, NULL);
	rl_unlock(&G.lock);
	return rc;
}

int fm_free(void *addr, size_t len)
{
	return fm_unmap(addr, len);
}

/* The watcher: the monitor's connection closing means our pages in its store
 * are out of reach until a monitor takes them back. With a monitor that keeps
 * state (remote store) it waits for a restarted one and re-attaches
 * (reattach()); faulting threads wait meanwhile, the uffd being ours. With
 * one that keeps none (local store) the pages are gone: stop loudly.
 *
 * On x86-64 it is a bare clone() thread, not a pthread: glibc does not know
 * it, so setuid/setgid in the program (su, sudo, setpriv, daemons dropping
 * privileges) is not broadcast to it (a pthread without the program's
 * keep-caps would fail the broadcast and glibc aborts), and it allocates
 * nothing. Without glibc's thread setup it must not touch TLS (errno):
 * every call it makes, reattach() included, is a raw system call. */
static const char gone_msg[] = "fluidmem: the monitor (fluidmemd) went away; this process's "
			       "memory in its store is unreachable. Stopping.\n";

static void say(const char *m)
{
	sys3(SYS_write, 2, (long)m, (long)strlen(m));
}

static __attribute__((noreturn)) void stop_now(const char *why, const char *detail)
{
	if (!why) {
		say(gone_msg);
	} else {
		say("fluidmem: the monitor (fluidmemd) went away and no monitor took this process back (");
		say(why);
		say(detail);
		say("); its memory in the store is unreachable. Stopping.\n");
	}
	for (;;)
		sys3(SYS_exit_group, 70, 0, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts = { 0, 0 };
	sys3(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	sys3(SYS_nanosleep, (long)&ts, 0, 0);
}

static int raw_send(int s, uint16_t type, const void *p, uint32_t len, const int *fds, int nfds)
{
	struct fm_msg_hdr h = { FM_PROTO_MAGIC, FM_PROTO_VERSION, type, len, 0 };
	char buf[sizeof(h) + sizeof(struct fm_attach)];
	union {
		char b[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	if (len > sizeof(buf) - sizeof(h) || nfds > 2)
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), p, len);
	size_t total = sizeof(h) + len, off = 0;
	struct iovec iov = { buf, total };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds)
		fm_msg_attach_fds(&m, u.b, fds, nfds);
	while (off < total) {
		long n = sys3(SYS_sendmsg, s, (long)&m, MSG_NOSIGNAL);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		off += (size_t)n;
		iov.iov_base = buf + off;
		iov.iov_len = total - off;
		m.msg_control = NULL; /* fds go with the first byte only */
		m.msg_controllen = 0;
	}
	return 0;
}

static int raw_read(int s, void *b, size_t n)
{
	char *p = b;
	while (n) {
		struct pollfd pf = { .fd = s, .events = POLLIN };
		long r = sys3(SYS_poll, (long)&pf, 1, 10000);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			return r ? (int)r : -ETIMEDOUT;
		r = sys3(SYS_read, s, (long)p, (long)n);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			return r ? (int)r : -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One request on the new connection. Returns -errno when the connection
 * failed, else 0 with the monitor's answer in *status (its reason in why). */
static int raw_call(int s, uint16_t type, const void *p, uint32_t len, const int *fds, int nfds,
		    void *rep, uint32_t cap, int *status, char *why, size_t whylen)
{
	struct fm_msg_hdr h;
	char buf[512];
	int rc = raw_send(s, type, p, len, fds, nfds);
	if (!rc)
		rc = raw_read(s, &h, sizeof(h));
	if (!rc && (h.magic != FM_PROTO_MAGIC || h.len > sizeof(buf)))
		rc = -EPROTO;
	if (!rc && h.len)
		rc = raw_read(s, buf, h.len);
	if (rc)
		return rc;
	*status = h.status;
	if (h.status < 0 && h.len && buf[h.len - 1] == 0) {
		size_t k = strlen(buf) < whylen - 1 ? strlen(buf) : whylen - 1;
		memcpy(why, buf, k);
		why[k] = 0;
	}
	if (rep)
		memcpy(rep, buf, h.len < cap ? h.len : cap);
	return 0;
}

/* HELLO (re-attaching), one ATTACH per region, ATTACH_DONE. -errno: the
 * connection failed (try again); 1: the monitor refused (reason in why). */
static int attach_all(int s, char *why, size_t whylen)
{
	struct fm_hello hello = G.hello;
	struct fm_hello_reply hr = { 0 };
	int fds[2] = { G.uffd, G.pidfd }, st = 0;
	hello.flags |= FM_HELLO_REATTACH;
	int rc = raw_call(s, FM_MSG_HELLO, &hello, sizeof(hello), fds, 2, &hr, sizeof(hr), &st, why, whylen);
	if (rc || st < 0)
		return rc ? rc : 1;
	if (!(hr.flags & FM_HELLO_REPLY_PERSIST)) {
		memcpy(why, "the new monitor keeps no state (local store)", 45);
		return 1;
	}
	/* An mremap between BEGIN and END (G.mr): once its system call
	 * returned, the table takes its result and the new monitor gets the
	 * layout after it, with no END to come; while it is still in the
	 * system call, BEGIN again below. */
	int ph = MR_DONE;
	G.mr_noted = 0;
	if (atomic_compare_exchange_strong(&G.mr.phase, &ph, MR_APPLYING)) {
		G.mr_noted = 2;
		if (G.mr.result)
			mremap_table(G.mr.id, G.mr.rq.old_addr, G.mr.rq.old_len, G.mr.rq.new_len, G.mr.whole,
				     G.mr.result);
		atomic_store(&G.mr.phase, MR_NONE);
	}
	bool rebegin = atomic_load(&G.mr.phase) == MR_BEGUN;
	if (rebegin)
		G.mr_noted = 1;
	for (int i = 0; i < G.n; i++) {
		struct cregion *r = &G.r[i];
		int fd = r->memfd;
		if (fd < 0) { /* adopted: the program's memfd, if it still has it */
			struct stat sb;
			fd = r->adopted_fd;
			if (sys3(SYS_fstat, fd, (long)&sb, 0) < 0 || sb.st_dev != r->dev || sb.st_ino != r->ino) {
				memcpy(why, "the program closed an adopted memfd", 36);
				return 1;
			}
		}
		/* a memfd of ours grew with its mremaps: the monitor's view did too */
		uint64_t npages = r->memfd >= 0 && r->size / PAGE_SZ > r->npages ? r->size / PAGE_SZ : r->npages;
		struct fm_attach a = { .region = { r->id[0], r->id[1] }, .base_off = r->base_off,
				       .npages = npages, .addr = r->addr, .len = r->len,
				       .map_page = ((uint64_t)r->offset - r->base_off) / PAGE_SZ, .flags = r->flags };
		memcpy(a.secret, r->secret, sizeof(a.secret));
		rc = raw_call(s, FM_MSG_ATTACH, &a, sizeof(a), &fd, 1, NULL, 0, &st, why, whylen);
		explicit_bzero(a.secret, sizeof(a.secret));
		if (rc || st < 0)
			return rc ? rc : 1;
	}
	/* Refused (it should not be), its END is refused too and the kernel's
	 * events tell the monitor where the mapping went. */
	if (rebegin && (rc = raw_call(s, FM_MSG_MREMAP_BEGIN, &G.mr.rq, sizeof(G.mr.rq), NULL, 0, NULL, 0, &st,
				      why, whylen)))
		return rc;
	rc = raw_call(s, FM_MSG_ATTACH_DONE, NULL, 0, NULL, 0, NULL, 0, &st, why, whylen);
	return rc ? rc : st < 0 ? 1 : 0;
}

/* The connection of generation gen was lost. Caller holds G.lock (the
 * watcher: or gave up waiting for it, see watcher_loop). Wait up
 * to reattach_secs for a monitor on the same socket to take every region
 * back; stop the process when none does. Only raw system calls: the
 * watcher runs it too. */
static void reattach(unsigned gen)
{
	if (!G.persist)
		stop_now(NULL, NULL);
	if (atomic_exchange(&G.reattaching, 1)) { /* another thread is at it */
		while (atomic_load(&G.gen) == gen)
			nap_ms(10);
		return;
	}
	if (atomic_load(&G.gen) != gen) { /* another thread did it */
		atomic_store(&G.reattaching, 0);
		return;
	}
	say("fluidmem: the monitor (fluidmemd) went away; waiting for it to come back\n");
	sys3(SYS_close, G.sock, 0, 0);
	uint64_t deadline = now_ms() + (uint64_t)G.reattach_secs * 1000;
	char why[160];
	for (;;) {
		if (now_ms() >= deadline)
			stop_now("none came back within $FLUIDMEM_REATTACH_SECONDS", "");
		why[0] = 0;
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		memcpy(a.sun_path, G.sock_path, sizeof(a.sun_path) < sizeof(G.sock_path) ? sizeof(a.sun_path) :
										  sizeof(G.sock_path));
		int s = (int)sys3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || sys3(SYS_connect, s, (long)&a, sizeof(a)) < 0) {
			if (s >= 0)
				sys3(SYS_close, s, 0, 0);
			nap_ms(100);
			continue;
		}
		int rc = attach_all(s, why, sizeof(why));
		if (rc == 0) {
			struct stat sb;
			sys3(SYS_fstat, s, (long)&sb, 0);
			G.sock_ino = sb.st_ino;
			G.sock = s;
			atomic_fetch_add(&G.gen, 1);
			atomic_store(&G.reattaching, 0);
			say(G.mr_noted == 1 ? "fluidmem: re-attached to the restarted monitor (an mremap in its system call: announced again)\n"
			    : G.mr_noted == 2 ? "fluidmem: re-attached to the restarted monitor (an mremap done: its result given)\n"
			    : "fluidmem: re-attached to the restarted monitor\n");
			return;
		}
		sys3(SYS_close, s, 0, 0);
		if (rc > 0)
			stop_now("the new monitor refused it: ", why);
		nap_ms(100);
	}
}

static int watcher_loop(void)
{
	for (;;) {
		unsigned gen = atomic_load(&G.gen);
		int sock = G.sock;
		struct pollfd p = { .fd = sock, .events = POLLRDHUP };
		long n = sys3(SYS_poll, (long)&p, 1, 1000);
		if (n == -EINTR || n == 0 || atomic_load(&G.gen) != gen)
			continue;
		struct stat sb;
		if (n < 0 || (p.revents & POLLNVAL) || sys3(SYS_fstat, sock, (long)&sb, 0) < 0 ||
		    sb.st_ino != G.sock_ino) {
			/* Another thread re-attaching closed the socket (and may have
			 * reused its number): wait for it. Leaving here then took the
			 * watcher away for good, and a later monitor death found
			 * nobody to notice it while a thread in mremap waited for
			 * the dead monitor to read its event (a hang). */
			if (atomic_load(&G.reattaching) || atomic_load(&G.gen) != gen) {
				nap_ms(10);
				continue;
			}
			break; /* the program closed our socket (and reused the number) */
		}
		if (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) {
			if (!G.persist)
				stop_now(NULL, NULL); /* local store: nothing to wait for */
			/* The lock keeps the region table still. A thread may hold it
			 * while the kernel waits for the dead monitor to read an
			 * event (mremap's REMAP): it cannot let go before we are
			 * back, so after a while go ahead without it. */
			bool locked = rl_lock_for(&G.lock, 500);
			reattach(gen);
			if (locked)
				rl_unlock(&G.lock);
		}
	}
	return 0;
}

#if defined(__x86_64__)
static int watcher(void *arg)
{
	(void)arg;
	watcher_loop();
	sys3(SYS_exit, 0, 0, 0);
	return 0;
}

static bool spawn_watcher(void)
{
	const size_t stack = 64 * 1024;
	char *st = fm_sys_mmap(NULL, stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (st == MAP_FAILED)
		return false;
	/* Born with every signal blocked: process signals are never its to take. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int tid = clone(watcher, st + stack, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				    CLONE_SYSVSEM, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (tid < 0)
		fm_sys_munmap(st, stack);
	return tid >= 0;
}
#else
static void *watcher(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	watcher_loop();
	return NULL;
}

static bool spawn_watcher(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 * 1024);
	bool ok = pthread_create(&t, &a, watcher, NULL) == 0;
	pthread_attr_destroy(&a);
	return ok;
}
#endif

void fm_start_watcher(void)
{
	rl_lock(&G.lock);
	if (G.state == 1 && !G.watcher_started)
		G.watcher_started = spawn_watcher();
	rl_unlock(&G.lock);
}

/* ---- fork ---- */

static void fork_prepare(void)
{
	rl_lock(&G.lock);
	G.snap_nfds = 0;
	G.snap_err = 0;
	G.nsnap = 0;
	int nprivate = 0;
	for (int i = 0; i < G.n; i++)
		nprivate += !G.r[i].shared;
	if (G.state != 1 || nprivate == 0)
		return;
	/* The reply comes in parts of FM_SNAPSHOT_MAX entries and their fds. */
	static struct fm_snapshot_reply part;
	int nfds = FM_SNAPSHOT_MAX;
	int rc = call(FM_MSG_SNAPSHOT, NULL, 0, NULL, 0, &part, sizeof(part), G.snap_fds, &nfds);
	while (rc == 0) {
		G.snap_nfds += nfds;
		if ((uint32_t)nfds != part.count || part.total > FM_SNAPSHOT_TOTAL ||
		    part.count > part.total - G.nsnap) {
			rc = -EPROTO;
			break;
		}
		memcpy(&G.snap[G.nsnap], part.e, part.count * sizeof(part.e[0]));
		G.nsnap += part.count;
		if (G.nsnap == part.total)
			break;
		struct fm_msg_hdr h;
		nfds = FM_SNAPSHOT_TOTAL - (int)G.nsnap < FM_SNAPSHOT_MAX ? FM_SNAPSHOT_TOTAL - (int)G.nsnap : FM_SNAPSHOT_MAX;
		rc = fm_recv(G.sock, &h, &part, sizeof(part), G.snap_fds + G.nsnap, &nfds);
		if (rc == 0 && (h.type != FM_MSG_REPLY || h.status < 0 || h.len != sizeof(part)))
			rc = -EPROTO;
	}
	if (rc < 0) {
		G.snap_err = rc;
		for (int i = 0; i < G.snap_nfds; i++)
			close(G.snap_fds[i]);
		G.snap_nfds = 0;
		G.nsnap = 0;
	}
}

static void fork_parent(void)
{
	for (int i = 0; i < G.snap_nfds; i++)
		close(G.snap_fds[i]);
	G.snap_nfds = 0;
	rl_unlock(&G.lock);
}

static void die_in_child(const char *why)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "fluidmem: forked child cannot get its memory: %s (%s)\n", why, G.err);
	if (write(2, msg, (size_t)n) < 0) {
	}
	_exit(70);
}

/* Map a snapshot where the parent's region was. Everything is mapped
 * read-write: regions are, unless the program mprotected parts of them (a
 * PROT_NONE guard inside a large mmap), in which case the child loses that
 * guard. */
static void child_map(const struct fm_snapshot_entry *e, int fd)
{
	void *p = fm_sys_mmap((void *)(uintptr_t)e->addr, e->len, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, (off_t)e->offset);
	if (p == MAP_FAILED)
		die_in_child("mmap of the snapshot failed");
	fm_sys_madvise(p, e->len, MADV_DONTFORK);
}

/* No monitor to reconnect to (it died around the fork), but the parent's
 * kept state: make the uffd and pidfd here and wait for the restarted one
 * like any re-attaching process (reattach(), after the ranges are
 * registered): the snapshots' state files are there, whether or not the
 * old monitor saw them adopted. */
static void child_offline(void)
{
	int uffd = make_uffd(&G.hello.flags);
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (uffd < 0 || pidfd < 0)
		die_in_child("cannot reconnect to fluidmemd, nor make a userfaultfd to wait for it");
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	G.uffd = uffd;
	G.pidfd = pidfd;
	G.sock = -1;
	G.sock_ino = 0;
	G.persist = true;
}

static void fork_child(void)
{
	/* The lock was taken by the parent's thread, whose id this thread does
	 * not have: a recursive mutex would refuse our unlock. Start afresh. */
	atomic_store(&G.lock.owner, 0);
	atomic_store(&G.lock.waiters, 0);
	G.lock.depth = 0;
	atomic_store(&G.reattaching, 0);
	rl_lock(&G.lock);
	if (G.state != 1) {
		rl_unlock(&G.lock);
		return;
	}
	int nprivate = 0;
	bool persist = G.persist; /* the parent's monitor keeps state */
	if (G.fork_delay_ms)
		nap_ms(G.fork_delay_ms);
	/* The monitor that made the snapshot died (its connection, the
	 * parent's, is closed): a restarted one has no pending snapshot to
	 * adopt, only the state files; take them back like a re-attach. */
	struct pollfd pf = { .fd = G.sock, .events = POLLRDHUP };
	bool gone = poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
	/* The parent's connection, uffd and private memfds are the parent's
	 * business; shared regions are mapped here too and stay in the table. */
	close(G.sock);
	close(G.uffd);
	close(G.pidfd);
	int n = 0;
	for (int i = 0; i < G.n; i++) {
		if (G.r[i].shared) {
			G.r[n++] = G.r[i];
			continue;
		}
		nprivate++;
		if (G.r[i].memfd >= 0)
			close(G.r[i].memfd);
	}
	G.n = n;
	int nshared = n;
	G.sock = G.uffd = G.pidfd = -1;
	G.watcher_started = false;
	G.state = 0;
	if (!nprivate && !G.n) {
		rl_unlock(&G.lock);
		return;
	}
	if (nprivate && (G.snap_err || G.snap_nfds == 0))
		die_in_child(G.snap_err ? strerror(-G.snap_err) : "no snapshot");
	bool offline = persist && gone;
	if (!offline && connect_monitor() < 0) {
		if (!persist)
			die_in_child("cannot reconnect to fluidmemd");
		offline = true;
	}
	if (offline)
		child_offline();
	G.state = 1;
	/* Every range registered and in the table before the first request:
	 * if the monitor dies meanwhile, the re-attach takes all of them back
	 * (and the JOIN or ADOPT sent again finds them mapped). */
	for (int i = 0; i < nshared; i++)
		if (uffd_register(G.r[i].addr, G.r[i].len) < 0)
			die_in_child("UFFDIO_REGISTER of shared memory failed");
	for (uint32_t i = 0; i < G.nsnap; i++) {
		const struct fm_snapshot_entry *e = &G.snap[i];
		child_map(e, G.snap_fds[i]);
		if (uffd_register(e->addr, e->len) < 0)
			die_in_child("UFFDIO_REGISTER failed");
		/* One table entry per clone memfd; more maps of it share the fd. */
		struct stat sb;
		fstat(G.snap_fds[i], &sb);
		bool dup = false;
		for (int k = 0; k < G.n; k++)
			if (G.r[k].id[0] == e->clone[0] && G.r[k].id[1] == e->clone[1])
				dup = true;
		if (dup || G.n == MAX_REGIONS)
			continue;
		G.r[G.n++] = (struct cregion){ .addr = e->addr, .len = e->len, .size = (size_t)sb.st_size,
					       .offset = (off_t)e->offset, .memfd = G.snap_fds[i], .adopted_fd = -1,
					       .dev = sb.st_dev, .ino = sb.st_ino, .id = { e->clone[0], e->clone[1] },
					       .base_off = 0, .npages = (uint64_t)sb.st_size / PAGE_SZ };
		memcpy(G.r[G.n - 1].secret, e->secret, sizeof(e->secret));
		G.snap_fds[i] = -1; /* the table's now */
	}
	if (offline) {
		reattach(atomic_load(&G.gen));
	} else {
		for (int i = 0; i < nshared; i++) {
			struct cregion *r = &G.r[i];
			struct fm_join j = { .region = { r->id[0], r->id[1] }, .addr = r->addr, .len = r->len,
					     .offset = (uint64_t)r->offset };
			if (call(FM_MSG_JOIN, &j, sizeof(j), &r->memfd, 1, NULL, 0, NULL, NULL) < 0)
				die_in_child("the monitor refused to share the parent's shared memory");
		}
		for (uint32_t i = 0; i < G.nsnap; i++) {
			const struct fm_snapshot_entry *e = &G.snap[i];
			struct fm_adopt a = { .clone = { e->clone[0], e->clone[1] }, .addr = e->addr, .len = e->len,
					      .offset = e->offset };
			if (call(FM_MSG_ADOPT, &a, sizeof(a), NULL, 0, NULL, 0, NULL, NULL) < 0)
				die_in_child("the monitor refused the snapshot");
		}
	}
	for (uint32_t i = 0; i < G.nsnap; i++)
		if (G.snap_fds[i] >= 0)
			close(G.snap_fds[i]); /* further maps of a clone in the table */
	G.snap_nfds = 0;
	rl_unlock(&G.lock);
	fm_start_watcher();
}

/* Our child handler must run before any other library's: theirs may touch
 * memory in regions (jemalloc's re-initialises its arenas' locks), which the
 * child has only once ours has mapped the clones. Child handlers run in the
 * order they were registered, so the preload library registers ours through
 * here as soon as anybody registers anything (fm_atfork_first), and the
 * constructor only if nobody did before. */
static atomic_flag atfork_done = ATOMIC_FLAG_INIT;

void fm_atfork_first(int (*reg)(void (*)(void), void (*)(void), void (*)(void), void *), void *dso)
{
	if (!atomic_flag_test_and_set(&atfork_done))
		reg(fork_prepare, fork_parent, fork_child, dso);
}

__attribute__((constructor)) static void client_init(void)
{
	if (!atomic_flag_test_and_set(&atfork_done))
		pthread_atfork(fork_prepare, fork_parent, fork_child);
}
