/* clock.h - the monotonic clock the remote backends time their timeouts and
 * retry backoff with (shared, so both measure the same way). */
#ifndef FM_STORE_CLOCK_H
#define FM_STORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep until monotonic time t (ns); at once if it has passed. */
static inline void sleep_until(uint64_t t)
{
	uint64_t n = now_ns();
	if (t <= n)
		return;
	struct timespec ts = { .tv_sec = (time_t)((t - n) / 1000000000ull),
			       .tv_nsec = (long)((t - n) % 1000000000ull) };
	nanosleep(&ts, NULL);
}

#endif
