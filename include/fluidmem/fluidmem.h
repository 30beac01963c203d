/* fluidmem.h - the client API: memory regions served by fluidmemd.
 *
 * A region is anonymous-looking memory of any size whose pages beyond the
 * monitor's local budget live in its page store. Programs normally need none
 * of this: `fluidmem run -- PROGRAM` preloads libfluidmem-preload.so, which
 * puts malloc and large anonymous mmaps in regions. Link with -lfluidmem to
 * create regions explicitly.
 *
 * Functions return 0 or a negative errno (pointers: NULL with errno set) and
 * never print. None of them calls malloc. Thread-safe. */
#ifndef FLUIDMEM_H
#define FLUIDMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connect to the monitor ($FLUIDMEM_SOCKET or /run/fluidmem/fluidmemd.sock).
 * Called implicitly by the first fm_alloc(); 0 or -errno (-ENOENT, -ECONNREFUSED:
 * no monitor; -EPERM: no access to /dev/userfaultfd). */
int fm_init(void);

/* Does this process have a working connection to a monitor? */
int fm_connected(void);

/* A new region of len bytes (rounded up to pages), zero-filled, readable and
 * writable. Like mmap(MAP_PRIVATE|MAP_ANONYMOUS) but served by fluidmem; free
 * it with munmap() or fm_free(). With addr non-NULL and MAP_FIXED in flags the
 * region is placed there, replacing what was mapped. prot as for mmap. */
void *fm_alloc(size_t len);
void *fm_map(void *addr, size_t len, int prot, int flags);
int fm_free(void *addr, size_t len);

/* Register memory the program mapped itself: a MAP_SHARED mapping of a memfd
 * (QEMU's memory-backend-memfd). fd stays the caller's. */
int fm_adopt(void *addr, size_t len, int fd, off_t offset);

/* Is [addr, addr+len) inside a region of this process? */
int fm_owns(const void *addr, size_t len);

/* mremap(2) for memory that may be a region: moving, growing or shrinking a
 * region this way keeps the monitor in step (a plain mremap of a region
 * races the program's other threads; the preload library uses this). Same
 * arguments and result as mremap; new_addr is read with MREMAP_FIXED only.
 * A region grows only whole; MREMAP_DONTUNMAP of a region is EINVAL. */
void *fm_mremap(void *old_addr, size_t old_len, size_t new_len, int flags, void *new_addr);

/* Grow the memfd of the region mapped at addr with old_len bytes so a
 * following mremap to new_len finds the memory there (fm_mremap does this
 * itself). */
int fm_prepare_grow(void *addr, size_t old_len, size_t new_len);

/* Forget [addr, addr+len) of the region table after the program unmapped it. */
void fm_forget(void *addr, size_t len);

/* Latest error text from the monitor, for messages ("" if none). */
const char *fm_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
