/* preload.c - libfluidmem-preload.so: puts an unmodified program's memory in
 * fluidmem regions. Loaded with LD_PRELOAD by `fluidmem run`.
 *
 * - The malloc family is mimalloc (a well-kept allocator) whose arena is one
 *   large fluidmem region, the heap. glibc's malloc calls mmap internally, not
 *   through the PLT, so intercepting mmap alone would catch no malloc at all.
 * - Anonymous private mmaps of FLUIDMEM_MMAP_THRESHOLD bytes or more become
 *   regions, including the reserve-PROT_NONE-then-MAP_FIXED pattern of QEMU,
 *   JVMs and allocators: MAP_FIXED inside a region becomes "zero these pages
 *   and set this protection" and the memory stays in the region.
 * - Anonymous shared mmaps (MAP_SHARED|MAP_ANONYMOUS, e.g. PostgreSQL's
 *   shared_buffers) of that size become shared regions: fork children keep
 *   them mapped and join them (client.c). FLUIDMEM_SHARED=0 leaves them local.
 * - munmap, mremap and madvise(DONTNEED/FREE) on regions keep their meaning:
 *   DONTNEED becomes MADV_REMOVE so the pages read back as zeros at once
 *   (on a shared region DONTNEED keeps the contents, so it does nothing);
 *   munmap, mremap and MAP_FIXED over a region are serialised with the
 *   monitor (client.c: fm_unmap, fm_mremap, fm_mmap_fixed).
 * - MAP_SHARED mappings of a memfd named FLUIDMEM_ADOPT_MEMFD (default
 *   "memory-backend-memfd": QEMU's hotpluggable guest RAM) are registered as
 *   regions as they are made.
 * FLUIDMEM_HEAP=0 leaves malloc's memory local, FLUIDMEM_ANON=0 anonymous
 * mmaps (`fluidmem run` sets both for qemu-system-*: only guest RAM backends).
 * What stays local: thread stacks (glibc maps them internally), small and
 * executable mappings, file mappings, and everything when no monitor answers
 * (then the program runs normally, unless FLUIDMEM_REQUIRED=1, which stops it). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client_internal.h"
#include "fluidmem/fluidmem.h"
#include "size.h"

#define EXPORT __attribute__((visibility("default")))
#define HEAP_ALIGN (64ul << 20) /* mimalloc finds segments by address masking */

static struct {
	int state;               /* 0 untouched, 1 initialising, 2 ready */
	bool enabled;            /* connected to a monitor */
	bool anon;               /* large anonymous mmaps become regions (FLUIDMEM_ANON, default 1) */
	bool shared;             /* and shared anonymous ones (FLUIDMEM_SHARED, default 1) */
	size_t threshold;
	char adopt[64];          /* memfd name to adopt, "" for none */
	pthread_t init_thread;
} P = { .threshold = 1ul << 20 };

/* pthread_atfork() of other libraries (compiled into them from
 * libc_nonshared) calls this: libfluidmem's handlers go in first, so its
 * child handler runs before theirs (client.c, fm_atfork_first). */
extern void *__dso_handle;
EXPORT int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso)
{
	static int (*real)(void (*)(void), void (*)(void), void (*)(void), void *);
	if (!real)
		real = (int (*)(void (*)(void), void (*)(void), void (*)(void), void *))dlvsym(
			RTLD_NEXT, "__register_atfork", "GLIBC_2.3.2");
	if (!real)
		return ENOMEM;
	fm_atfork_first(real, &__dso_handle);
	return real(prepare, parent, child, dso);
}

static void die(const char *what)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "fluidmem: %s: %s\n", what, fm_last_error());
	if (write(2, msg, (size_t)n) < 0) {
	}
	_exit(70);
}

static uint64_t env_size(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	uint64_t out;
	return v && fm_parse_size(v, &out) == 0 ? out : dflt;
}

/* The heap: one region, aligned for mimalloc, given to it as an arena. */
static bool heap_init(void)
{
	uint64_t size = env_size("FLUIDMEM_HEAP_SIZE", 64ull << 30);
	size = (size + HEAP_ALIGN - 1) & ~(HEAP_ALIGN - 1);
	char *res = fm_sys_mmap(NULL, size + HEAP_ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return false;
	char *aligned = (char *)(((uintptr_t)res + HEAP_ALIGN - 1) & ~(HEAP_ALIGN - 1));
	char *heap = fm_map(aligned, size, PROT_READ | PROT_WRITE, MAP_FIXED | FM_MAP_HEAP);
	if (aligned > res)
		fm_sys_munmap(res, (size_t)(aligned - res));
	fm_sys_munmap(aligned + size, (size_t)(res + HEAP_ALIGN - aligned));
	if (!heap) {
		fm_sys_munmap(aligned, size);
		return false;
	}
	/* Committed and zero: the region reads as zeros until written. */
	return mi_manage_os_memory(heap, size, true, false, true, -1);
}

static void init(void)
{
	if (__atomic_load_n(&P.state, __ATOMIC_ACQUIRE) == 2)
		return;
	/* Calls from inside the initialisation (mimalloc setting itself up)
	 * must not wait for it. */
	if (P.state == 1 && pthread_equal(P.init_thread, pthread_self()))
		return;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	if (P.state == 0) {
		P.init_thread = pthread_self();
		P.state = 1;
		fm_in_preload = 1;
		const char *req = getenv("FLUIDMEM_REQUIRED");
		bool required = req && strcmp(req, "1") == 0;
		const char *heap = getenv("FLUIDMEM_HEAP");
		const char *adopt = getenv("FLUIDMEM_ADOPT_MEMFD");
		const char *anon = getenv("FLUIDMEM_ANON");
		P.anon = !anon || strcmp(anon, "0") != 0;
		const char *shared = getenv("FLUIDMEM_SHARED");
		P.shared = P.anon && (!shared || strcmp(shared, "0") != 0);
		P.threshold = env_size("FLUIDMEM_MMAP_THRESHOLD", P.threshold);
		if (P.threshold < 4096)
			P.threshold = 4096;
		snprintf(P.adopt, sizeof(P.adopt), "%s", adopt ? adopt : "memory-backend-memfd");
		if (fm_init() < 0) {
			if (required)
				die("cannot use fluidmem");
			static const char w[] = "fluidmem: no monitor; running with local memory only\n";
			if (getenv("FLUIDMEM_SOCKET") && write(2, w, sizeof(w) - 1) < 0) {
			}
		} else {
			P.enabled = true;
			if (!heap || strcmp(heap, "0") != 0) {
				if (!heap_init() && required)
					die("cannot create the heap region");
			}
		}
		__atomic_store_n(&P.state, 2, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
}

/* ---- the malloc family ---- */

EXPORT void *malloc(size_t n) { init(); return mi_malloc(n); }
EXPORT void free(void *p) { mi_free(p); }
EXPORT void *calloc(size_t n, size_t m) { init(); return mi_calloc(n, m); }
EXPORT void *realloc(void *p, size_t n) { init(); return mi_realloc(p, n); }
EXPORT void *reallocarray(void *p, size_t n, size_t m) { init(); return mi_reallocarray(p, n, m); }
EXPORT void *memalign(size_t a, size_t n) { init(); return mi_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { init(); return mi_aligned_alloc(a, n); }
EXPORT int posix_memalign(void **out, size_t a, size_t n) { init(); return mi_posix_memalign(out, a, n); }
EXPORT void *valloc(size_t n) { init(); return mi_valloc(n); }
EXPORT void *pvalloc(size_t n) { init(); return mi_pvalloc(n); }
EXPORT size_t malloc_usable_size(void *p) { return mi_usable_size(p); }
EXPORT void cfree(void *p) { mi_free(p); }
EXPORT int malloc_trim(size_t pad) { (void)pad; mi_collect(true); return 1; }

/* ---- mappings ---- */

static bool anon_private(int flags, int fd)
{
	return (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && fd == -1 &&
	       !(flags & (MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB));
}

static bool anon_shared(int flags, int fd)
{
	return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_SHARED && fd == -1 &&
	       !(flags & (MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB));
}

/* A memfd named P.adopt? (/proc/self/fd/N -> "/memfd:NAME (deleted)") */
static bool adoptable_memfd(int fd)
{
	char path[64], link[128];
	if (!P.adopt[0])
		return false;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	size_t len = strlen(P.adopt);
	return strncmp(link, "/memfd:", 7) == 0 && strncmp(link + 7, P.adopt, len) == 0 &&
	       (link[7 + len] == ' ' || link[7 + len] == 0);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	init();
	if (P.enabled && P.shared && anon_shared(flags, fd) && !(prot & PROT_EXEC) && len >= P.threshold &&
	    !((flags & MAP_FIXED) && fm_owns(addr, len))) {
		void *p = fm_map(addr, len, prot, (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) | FM_MAP_SHARED);
		if (p)
			return p;
		if (flags & MAP_FIXED_NOREPLACE && errno == EEXIST)
			return MAP_FAILED;
	} else if (P.enabled && P.anon && anon_private(flags, fd) && !(prot & PROT_EXEC)) {
		if ((flags & MAP_FIXED) && fm_owns(addr, len) && !fm_owns_shared(addr, len)) {
			/* Fresh zero memory inside a region: stays in the region. */
			if (fm_sys_madvise(addr, len, MADV_REMOVE) == 0 && mprotect(addr, len, prot) == 0)
				return addr;
		} else if (len >= P.threshold) {
			void *p = fm_map(addr, len, prot, flags & (MAP_FIXED | MAP_FIXED_NOREPLACE));
			if (p)
				return p;
			if (flags & MAP_FIXED_NOREPLACE && errno == EEXIST)
				return MAP_FAILED;
		}
	}
	/* MAP_FIXED over (part of) a region: released first, as by munmap */
	void *p = (flags & MAP_FIXED) ? fm_mmap_fixed(addr, len, prot, flags, fd, off)
				      : fm_sys_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return p;
	if (P.enabled && (flags & MAP_SHARED) && fd >= 0 && len >= P.threshold && adoptable_memfd(fd)) {
		int rc = fm_adopt(p, len, fd, off);
		if (rc < 0) {
			char msg[256];
			int n = snprintf(msg, sizeof(msg), "fluidmem: cannot register memfd mapping at %p: %s (%s)\n",
					 p, strerror(-rc), fm_last_error());
			if (write(2, msg, (size_t)n) < 0) {
			}
		}
	}
	return p;
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
	int rc = fm_unmap(addr, len);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		__builtin_va_list ap;
		__builtin_va_start(ap, flags);
		new_addr = __builtin_va_arg(ap, void *);
		__builtin_va_end(ap);
	}
	return fm_mremap(old, old_len, new_len, flags, new_addr);
}

EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (advice == MADV_DONTNEED && fm_owns_shared(addr, len)) {
		/* Shared memory keeps its contents after DONTNEED; the kernel
		 * would report it as a REMOVE, which drops them. */
		return 0;
	} else if ((advice == MADV_DONTNEED || advice == MADV_FREE) && fm_owns(addr, len) &&
		   !fm_owns_shared(addr, len)) {
		/* On a shared mapping DONTNEED would only drop our page table
		 * entries and the old contents would come back: remove them. */
		advice = MADV_REMOVE;
	} else if ((advice == MADV_DOFORK || advice == MADV_WIPEONFORK) && fm_owns(addr, len) &&
		   !fm_owns_shared(addr, len)) {
		return 0; /* a child never shares a region: it gets a snapshot */
	}
	return fm_sys_madvise(addr, len, advice) < 0 ? -1 : 0;
}

/* A hole punched in an adopted memfd (virtio-mem unplugging memory) reaches
 * the monitor as MADV_REMOVE of the mapped range: the same hole, plus the
 * event that makes the monitor forget the pages and their stored copies. */
EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	if ((mode & FALLOC_FL_PUNCH_HOLE) && len > 0 && P.enabled) {
		void *addr = fm_adopted_range(fd, off, (size_t)len);
		if (addr && off % 4096 == 0 && len % 4096 == 0)
			return fm_sys_madvise(addr, (size_t)len, MADV_REMOVE) < 0 ? -1 : 0;
	}
	return (int)syscall(SYS_fallocate, fd, mode, off, len);
}
EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

__attribute__((constructor(200))) static void preload_init(void)
{
	init();
	fm_start_watcher();
}
