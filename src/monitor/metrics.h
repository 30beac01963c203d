/* metrics.h - Prometheus metrics of fluidmemd over HTTP (--metrics-listen). */
#ifndef FM_METRICS_H
#define FM_METRICS_H

#include <stddef.h>

/* Serve /metrics on ADDR:PORT ("127.0.0.1:9464", "[::1]:9464", "*:9464" or
 * ":9464" for every address) from a thread of libmicrohttpd. Returns 0, or
 * -errno with a reason in why. */
int metrics_start(const char *listen, char *why, size_t cap);
/* Stop serving (before the clients are torn down). Safe when not started. */
void metrics_stop(void);

/* The exposition text (Prometheus text format 0.0.4), malloc'd into *out.
 * Takes D.lock, then each client's lock, as status.c does. 0 or -ENOMEM. */
int metrics_render(char **out, size_t *len);

#endif
