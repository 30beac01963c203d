/* client_internal.h - what the preload shim needs from client.c beyond the
 * public API: raw syscalls that bypass its own wrappers, and hooks. */
#ifndef FM_CLIENT_INTERNAL_H
#define FM_CLIENT_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#define FM_MAP_HEAP 0x40000000 /* fm_map flag: this region is the malloc heap */
#define FM_MAP_SHARED 0x20000000 /* fm_map flag: MAP_SHARED memory, shared with fork children */

void *fm_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int fm_sys_munmap(void *addr, size_t len);
int fm_sys_madvise(void *addr, size_t len, int advice);
void *fm_sys_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr);
void *fm_mmap_fixed(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *fm_adopted_range(int fd, off_t off, size_t len);
int fm_unmap(void *addr, size_t len);
/* Is [addr, addr+len) inside a shared region (FM_MAP_SHARED)? */
int fm_owns_shared(const void *addr, size_t len);
void fm_start_watcher(void);
/* Register libfluidmem's fork handlers with reg (glibc's __register_atfork),
 * once, ahead of whatever is being registered now. */
void fm_atfork_first(int (*reg)(void (*)(void), void (*)(void), void (*)(void), void *), void *dso);
/* Set by the preload library: it starts the watcher thread itself, from its
 * constructor, because creating a thread inside malloc would recurse. */
extern int fm_in_preload;

#endif
