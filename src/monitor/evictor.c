/* evictor.c - asynchronous eviction (--async-evict N): one background thread
 * keeps N pages of headroom under the global budget, so a fault finds room
 * already made instead of evicting a batch inline. Faults kick it when they
 * cross the low-water mark; it evicts batches from the client holding most
 * pages (tenants within their reserve excepted) until under the mark. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <time.h>

#include "fluidmemd.h"
#include "worker.h"

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool wanted;
	bool stop, running;
} E = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static uint64_t low_water(void)
{
	uint64_t b = atomic_load(&D.budget_pages);
	return b > D.opt.async_evict ? b - D.opt.async_evict : 0;
}

/* Called on every new resident page: cheap unless the mark is crossed. */
void evictor_kick(void)
{
	if (!E.running || atomic_load(&D.resident) <= low_water() || atomic_exchange(&E.wanted, true))
		return;
	pthread_mutex_lock(&E.lock);
	pthread_cond_signal(&E.cond);
	pthread_mutex_unlock(&E.lock);
}

static void *evictor(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "fm-evictor");
	if (D.opt.affinity_evict >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(D.opt.affinity_evict, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	pthread_mutex_lock(&E.lock);
	while (!E.stop) {
		if (atomic_load(&D.resident) <= low_water()) {
			atomic_store(&E.wanted, false);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&E.cond, &E.lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&E.lock);
		unsigned got = evict_largest(false);
		pthread_mutex_lock(&E.lock);
		if (!got) {
			/* every client busy (its handler holds its lock) or
			 * protected: try again at the next kick. `wanted` is
			 * cleared first, or no kick would signal: waiting with
			 * it set slept for good while faults evicted inline. */
			atomic_store(&E.wanted, false);
			pthread_cond_wait(&E.cond, &E.lock);
		}
	}
	pthread_mutex_unlock(&E.lock);
	worker_release_current();
	return NULL;
}

int evictor_start(void)
{
	if (!D.opt.async_evict)
		return 0;
	E.running = true;
	int err = pthread_create(&E.thread, NULL, evictor, NULL);
	if (err)
		E.running = false;
	return -err;
}

void evictor_stop(void)
{
	if (!E.running)
		return;
	pthread_mutex_lock(&E.lock);
	E.stop = true;
	pthread_cond_signal(&E.cond);
	pthread_mutex_unlock(&E.lock);
	pthread_join(E.thread, NULL);
	E.running = false;
}
