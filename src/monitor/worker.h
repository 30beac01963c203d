/* worker.h - what each monitor thread keeps for itself: its own store
 * handle (handles are single-threaded, see store.h) and page buffers for one
 * batch. Created on first use, freed when the thread exits. */
#ifndef FM_WORKER_H
#define FM_WORKER_H

#include "fluidmem/store.h"

#define FM_BATCH_MAX 256

struct fm_worker {
	struct fm_store *store;
	char *pages;                        /* FM_BATCH_MAX pages */
	struct fm_store_io ios[FM_BATCH_MAX];
};

struct fm_worker *worker_get(void);
struct fm_store *worker_store(void);
void worker_release_current(void);

#endif
