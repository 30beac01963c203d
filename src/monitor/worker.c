/* worker.c - per-thread store handle and batch buffers (see worker.h). */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "fluidmemd.h"
#include "worker.h"

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void worker_free(void *p)
{
	struct fm_worker *w = p;
	fm_store_close(w->store);
	munmap(w->pages, (size_t)FM_BATCH_MAX * PAGE);
	free(w);
}

static void make_key(void)
{
	pthread_key_create(&key, worker_free);
}

struct fm_worker *worker_get(void)
{
	pthread_once(&once, make_key);
	struct fm_worker *w = pthread_getspecific(key);
	if (w)
		return w;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	char err[256];
	int rc = fm_store_open(D.opt.store_url, &w->store, err, sizeof(err));
	if (rc < 0) {
		fm_log("cannot open store %s: %s", D.opt.store_url, err);
		free(w);
		return NULL;
	}
	w->pages = mmap(NULL, (size_t)FM_BATCH_MAX * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->pages == MAP_FAILED) {
		fm_store_close(w->store);
		free(w);
		return NULL;
	}
	pthread_setspecific(key, w);
	return w;
}

struct fm_store *worker_store(void)
{
	struct fm_worker *w = worker_get();
	return w ? w->store : NULL;
}

/* The main thread's worker is not freed by a thread exit: do it at shutdown. */
void worker_release_current(void)
{
	pthread_once(&once, make_key); /* key 0 may be another library's (libmicrohttpd's) */
	struct fm_worker *w = pthread_getspecific(key);
	if (w) {
		pthread_setspecific(key, NULL);
		worker_free(w);
	}
}
