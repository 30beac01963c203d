/* main.c - fluidmemd: options, the listening socket, and the accept loop.
 *
 * A connection's first message decides what it is: HELLO hands the socket
 * to a new client (client.c, a thread per client); any other message is a
 * control request answered here and the connection closed. A peer that
 * sends nothing within a second, or garbage, is answered with an error and
 * dropped; nothing it sends can stop the loop. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "fluidmemd.h"
#include "metrics.h"
#include "size.h"
#include "worker.h"

struct fm_daemon D = { .lock = PTHREAD_MUTEX_INITIALIZER, .shared_lock = PTHREAD_MUTEX_INITIALIZER };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fluidmemd [OPTION]...\n"
		"Serve page faults of fluidmem regions, keeping at most --local-memory of them\n"
		"resident and the rest in a page store.\n\n"
		"  -c, --config FILE        read settings from FILE (default " FM_CONFIG_DEFAULT "\n"
		"                           when it exists): `key = value` lines, the keys are the\n"
		"                           long options below; flags given here override it\n"
		"  -s, --socket PATH        listen on PATH (default /run/fluidmem/fluidmemd.sock)\n"
		"  -m, --local-memory SIZE  global budget of resident pages, e.g. 512M, 4G (default 1G)\n"
		"  -S, --store URL          page store (default local://):\n"
		"                             local://\n"
		"                             memcached://HOST:PORT[,HOST:PORT...][?replicas=N&timeout_ms=T&retry_ms=R]\n"
		"                             redis://[[USER]:PASSWORD@]HOST:PORT[/DB][?timeout_ms=T&retry_ms=R]\n"
		"                           (timeout_ms: one reply, default 500; retry_ms: how long a\n"
		"                           fault waits for a dead server, default 5000; docs/stores.md)\n"
		"  -b, --evict-batch N      pages evicted per batch (default 64, max %d)\n"
		"      --socket-mode MODE   permissions of the socket, octal (default 0666)\n"
		"  -v, --verbose            log every client and region\n"
		"  -q, --quiet              log only problems\n"
		"      --metrics-listen ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		"                           (e.g. 127.0.0.1:9464; default: none)\n"
		"      --poll-us N          after a fault, keep polling for the next one for N\n"
		"                           microseconds before sleeping (0: never; default 50)\n"
		"      --prefetch N         largest sequential prefetch window, pages (0: off;\n"
		"                           default 64)\n"
		"      --no-prefetch-gate   keep prefetching in regions where windows go unused\n"
		"                           (default: a region whose windows miss stops until\n"
		"                           its faults look sequential again)\n"
		"      --prefetch-install copy|write|continue  how prefetched pages go in: UFFDIO_COPY\n"
		"                           (default), a write into the region's memfd (the program\n"
		"                           maps them by minor faults), or the write + UFFDIO_CONTINUE\n"
		"                           to map them\n"
		"      --no-zero-skip       write evicted all-zero pages to the store too\n"
		"      --no-encrypt         store pages in remote stores with a checksum only,\n"
		"                           not encrypted with the region's key\n"
		"      --clean-tracking[=auto|always|off]  fetch pages write-protected and evict\n"
		"                           unwritten ones without writing them back; auto (the\n"
		"                           default) only in regions whose fetched pages stay\n"
		"                           unwritten; bare: always\n"
		"      --async-evict N      a background thread keeps N pages free under the\n"
		"                           budget (0: faults evict inline; default 0)\n"
		"      --fault-threads N    threads serving each client's faults (1-%d; default 1):\n"
		"                           store reads of one process overlap; 2 pays for\n"
		"                           multi-threaded programs with a remote store\n"
		"      --affinity F,E       pin client threads to CPU F and the evictor to CPU E\n"
		"                           (-1: any; default -1,-1)\n"
		"      --no-evict-sweep     evict first-in first-out everywhere (default: regions\n"
		"                           whose faults look random evict by address)\n"
		"      --no-placement       leave client threads where the scheduler puts them\n"
		"                           (default: a thread serving random faults of one\n"
		"                           program thread runs on that thread's CPU)\n"
		"      --allow USER|@GROUP  only these users (names or uids) and groups may\n"
		"                           register memory; repeatable (default: anyone who\n"
		"                           can open the socket); root always may\n"
		"      --reserve USER=SIZE  local memory USER keeps however hard other users\n"
		"                           page; repeatable\n"
		"      --state-dir DIR      remote stores: where per-region page maps are kept so\n"
		"                           that a restarted fluidmemd takes running programs\n"
		"                           back (default: state/ beside the socket)\n"
		"      --store-cap USER=SIZE  most of USER's pages the store may hold; past it\n"
		"                           pages stay local, and with the budget full too a new\n"
		"                           page is a SIGBUS (out of memory); repeatable\n"
		"  -h, --help               show this help\n",
		FM_BATCH_MAX, FT_MAX);
}

static int listen_unix(const char *path, unsigned mode)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	/* A stale socket from a dead daemon is replaced; a live one is not. */
	int probe = fm_connect_unix(path);
	if (probe >= 0) {
		close(probe);
		return -EADDRINUSE;
	}
	unlink(path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, mode) < 0 || listen(s, 128) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	return s;
}

static void control_request(int sock, const struct fm_msg_hdr *h, const void *payload, uid_t uid)
{
	switch (h->type) {
	case FM_MSG_STATUS: {
		const struct fm_status_req *rq = payload;
		bool json = h->len == sizeof(*rq) && (rq->flags & FM_STATUS_JSON);
		size_t cap = 1 << 20;
		char *buf = malloc(cap);
		int n = buf ? status_render(buf, cap, json, uid == getuid() ? 0 : uid) : -1;
		if (n < 0)
			fm_send(sock, FM_MSG_REPLY, -ENOMEM, "status too large", 17, NULL, 0);
		else
			fm_send(sock, FM_MSG_REPLY, 0, buf, (uint32_t)n, NULL, 0);
		free(buf);
		return;
	}
	case FM_MSG_SET_BUDGET: {
		const struct fm_set_budget *rq = payload;
		if (h->len != sizeof(*rq) || rq->bytes < 16 * PAGE) {
			fm_send(sock, FM_MSG_REPLY, -EINVAL, "budget must be at least 64K", 28, NULL, 0);
			return;
		}
		if (uid != 0 && uid != getuid()) {
			fm_send(sock, FM_MSG_REPLY, -EPERM, "only root may resize the budget", 32, NULL, 0);
			return;
		}
		atomic_store(&D.budget_pages, rq->bytes / PAGE);
		fm_info("budget set to %llu MiB", (unsigned long long)(rq->bytes >> 20));
		evict_over_budget();
		fm_send(sock, FM_MSG_REPLY, 0, NULL, 0, NULL, 0);
		return;
	}
	case FM_MSG_TAG_STATS: {
		const struct fm_tag_req *rq = payload;
		struct fm_stats s;
		char tag[FM_TAG_MAX];
		if (h->len != sizeof(*rq)) {
			fm_send(sock, FM_MSG_REPLY, -EINVAL, "bad request", 12, NULL, 0);
			return;
		}
		memcpy(tag, rq->tag, FM_TAG_MAX);
		tag[FM_TAG_MAX - 1] = 0;
		tag_stats(tag, uid == getuid() ? 0 : uid, &s);
		fm_send(sock, FM_MSG_REPLY, 0, &s, sizeof(s), NULL, 0);
		return;
	}
	case FM_MSG_EVICT:
	case FM_MSG_SET_TAG_LIMIT: {
		struct fm_evict_reply out;
		const char *why = "bad request";
		char tag[FM_TAG_MAX];
		int rc = -EINVAL;
		if (h->type == FM_MSG_EVICT && h->len == sizeof(struct fm_tag_req)) {
			memcpy(tag, ((const struct fm_tag_req *)payload)->tag, FM_TAG_MAX);
			tag[FM_TAG_MAX - 1] = 0;
			rc = ctl_evict(tag, uid, &out, &why);
		} else if (h->type == FM_MSG_SET_TAG_LIMIT && h->len == sizeof(struct fm_set_tag_limit)) {
			struct fm_set_tag_limit rq;
			memcpy(&rq, payload, sizeof(rq));
			memcpy(tag, rq.tag, FM_TAG_MAX);
			tag[FM_TAG_MAX - 1] = 0;
			rc = ctl_set_tag_limit(tag, rq.bytes, uid, &out, &why);
		}
		if (rc < 0)
			fm_send(sock, FM_MSG_REPLY, rc, why, (uint32_t)strlen(why) + 1, NULL, 0);
		else
			fm_send(sock, FM_MSG_REPLY, 0, &out, sizeof(out), NULL, 0);
		return;
	}
	case FM_MSG_SET_TENANT: {
		struct fm_set_tenant rq;
		if (uid != 0 && uid != getuid()) {
			fm_send(sock, FM_MSG_REPLY, -EPERM, "only root may change a tenant's quota", 38, NULL, 0);
			return;
		}
		if (h->len != sizeof(rq)) {
			fm_send(sock, FM_MSG_REPLY, -EINVAL, "bad request", 12, NULL, 0);
			return;
		}
		memcpy(&rq, payload, sizeof(rq));
		int rc = tenant_set(&rq);
		fm_send(sock, FM_MSG_REPLY, rc, rc ? "bad tenant request" : NULL, rc ? 19 : 0, NULL, 0);
		return;
	}
	case FM_MSG_DROP: {
		struct fm_drop rq;
		if (uid != 0 && uid != getuid()) {
			fm_send(sock, FM_MSG_REPLY, -EPERM, "only root may drop a region", 28, NULL, 0);
			return;
		}
		if (h->len != sizeof(rq)) {
			fm_send(sock, FM_MSG_REPLY, -EINVAL, "bad request", 12, NULL, 0);
			return;
		}
		memcpy(&rq, payload, sizeof(rq));
		if (region_drop(rq.region) < 0)
			fm_send(sock, FM_MSG_REPLY, -ENOENT, "no such region", 15, NULL, 0);
		else
			fm_send(sock, FM_MSG_REPLY, 0, NULL, 0, NULL, 0);
		return;
	}
	case FM_MSG_SHUTDOWN:
		if (uid != 0 && uid != getuid()) {
			fm_send(sock, FM_MSG_REPLY, -EPERM, "only root may stop the daemon", 30, NULL, 0);
			return;
		}
		fm_send(sock, FM_MSG_REPLY, 0, NULL, 0, NULL, 0);
		kill(getpid(), SIGTERM);
		return;
	default:
		fm_send(sock, FM_MSG_REPLY, -EINVAL, "unknown request", 16, NULL, 0);
	}
}

/* Wait until a new connection's whole first message is buffered, at most
 * FIRST_MESSAGE_MS in all: a peer dripping bytes cannot hold it longer. */
#define FIRST_MESSAGE_MS 1000
#define MAX_CONNECTING 32   /* first messages being read at once; more wait in the backlog */

static int wait_first_message(int s)
{
	uint64_t deadline = fm_now_ns() + FIRST_MESSAGE_MS * 1000000ull;
	size_t need = sizeof(struct fm_msg_hdr);
	for (;;) {
		int avail = 0;
		if (ioctl(s, FIONREAD, &avail) < 0)
			return -errno;
		if (avail > 0 && (size_t)avail >= need) {
			struct fm_msg_hdr h;
			if (need > sizeof(h))
				return 0;
			if (recv(s, &h, sizeof(h), MSG_PEEK) != (ssize_t)sizeof(h))
				return -EPROTO;
			if (h.magic != FM_PROTO_MAGIC || h.len > 512 || h.len == 0)
				return 0; /* fm_recv has the words for it */
			need += h.len;
			continue;
		}
		uint64_t now = fm_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (avail > 0) {
			usleep(2000); /* some bytes, not all: poll would not wait */
		} else if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 && errno != EINTR) {
			return -errno;
		}
		if (p.revents & (POLLHUP | POLLERR))
			return 0; /* fm_recv sees the end */
	}
}

static atomic_int connecting;

/* First message of a new connection, on its own short-lived thread so that
 * one slow peer never holds up the others. */
static void *first_message(void *arg)
{
	int s = (int)(intptr_t)arg;
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct fm_msg_hdr h;
	char payload[512];
	int fds[FM_PROTO_MAX_FDS], nfds = FM_PROTO_MAX_FDS;
	int rc = wait_first_message(s);
	if (rc == 0)
		rc = fm_recv(s, &h, payload, sizeof(payload), fds, &nfds);
	else
		nfds = 0;
	if (rc < 0) {
		if (rc != -ECONNRESET && rc != -EAGAIN) {
			const char *why = rc == -EPROTO ? "not a fluidmem message (bad magic or version)" :
					  rc == -ETIMEDOUT ? "no complete request within a second" : strerror(-rc);
			fm_send(s, FM_MSG_REPLY, rc, why, (uint32_t)strlen(why) + 1, NULL, 0);
		}
		close(s);
		atomic_fetch_sub(&connecting, 1);
		return NULL;
	}
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		cred.uid = (uid_t)-1;
	if (h.type == FM_MSG_HELLO) {
		struct timeval none = { 0 };
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
		if (client_start(s, &h, (const struct fm_hello *)payload, fds, nfds) == 0) {
			atomic_fetch_sub(&connecting, 1);
			return NULL; /* the client owns s and the fds now */
		}
	} else {
		control_request(s, &h, payload, cred.uid);
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(s);
	atomic_fetch_sub(&connecting, 1);
	return NULL;
}

static void accept_one(int lsock)
{
	/* All slots busy: leave new connections in the listen backlog (they
	 * wait, they are not refused) until one first message is done. */
	if (atomic_load(&connecting) >= MAX_CONNECTING) {
		usleep(1000);
		return;
	}
	int s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return;
	atomic_fetch_add(&connecting, 1);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, first_message, (void *)(intptr_t)s) != 0) {
		atomic_fetch_sub(&connecting, 1);
		close(s);
	}
	pthread_attr_destroy(&a);
}

#define STATE_GC_NS 120000000000ull /* state files not taken back in 2 minutes go */

/* Fork snapshots nobody adopted within a minute are dropped. */
static void gc_pending(void)
{
	uint64_t now = fm_now_ns();
	struct fm_pending *old = NULL;
	pthread_mutex_lock(&D.lock);
	struct fm_pending **pp = &D.pending;
	while (*pp) {
		struct fm_pending *pd = *pp;
		if (now - pd->created_ns < 60000000000ull) {
			pp = &pd->next;
			continue;
		}
		*pp = pd->next;
		pd->next = old;
		old = pd;
	}
	pthread_mutex_unlock(&D.lock);
	while (old) { /* store I/O: not under D.lock */
		struct fm_pending *pd = old;
		old = pd->next;
		region_free(pd->region, worker_store()); /* takes its resident pages off the total */
		free(pd);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "local-memory", required_argument, NULL, 'm' },
		{ "store", required_argument, NULL, 'S' },
		{ "evict-batch", required_argument, NULL, 'b' },
		{ "socket-mode", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "metrics-listen", required_argument, NULL, 'L' },
		{ "poll-us", required_argument, NULL, 'P' },
		{ "prefetch", required_argument, NULL, 'F' },
		{ "no-zero-skip", no_argument, NULL, 'Z' },
		{ "no-prefetch-gate", no_argument, NULL, 'G' },
		{ "prefetch-install", required_argument, NULL, 'I' },
		{ "no-encrypt", no_argument, NULL, 'E' },
		{ "allow", required_argument, NULL, 'A' },
		{ "async-evict", required_argument, NULL, 'W' },
		{ "clean-tracking", optional_argument, NULL, 'K' },
		{ "affinity", required_argument, NULL, 'Y' },
		{ "no-placement", no_argument, NULL, 'N' },
		{ "no-evict-sweep", no_argument, NULL, 'X' },
		{ "fault-threads", required_argument, NULL, 'T' },
		{ "reserve", required_argument, NULL, 'R' },
		{ "store-cap", required_argument, NULL, 'C' },
		{ "state-dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t budget = 1ull << 30;
	D.opt.socket_path = fm_default_socket();
	D.opt.store_url = "local://";
	D.opt.evict_batch = 64;
	D.opt.socket_mode = 0666;
	D.opt.poll_us = 50;
	D.opt.prefetch_max = 64;
	D.opt.prefetch_gate = true;
	D.opt.zero_skip = true;
	D.opt.encrypt = true;
	D.opt.affinity_fault = D.opt.affinity_evict = -1;
	D.opt.fault_threads = 1;
	D.opt.placement = true;
	D.opt.evict_sweep = true;
	D.opt.clean_tracking = FM_CT_AUTO;
	int opt;
	/* The configuration file's settings go first: flags override them. */
	if (fm_config_argv(argc, argv, longopts, &argc, &argv) < 0)
		return 2;
	while ((opt = getopt_long(argc, argv, "c:s:m:S:b:vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': break; /* read by fm_config_argv */
		case 's': D.opt.socket_path = optarg; break;
		case 'm':
			if (fm_parse_size(optarg, &budget) < 0 || budget < 16 * PAGE) {
				fprintf(stderr, "fluidmemd: invalid --local-memory '%s' (e.g. 512M, 4G; at least 64K)\n", optarg);
				return 2;
			}
			break;
		case 'S': D.opt.store_url = optarg; break;
		case 'b': {
			char *end;
			unsigned long b = strtoul(optarg, &end, 10);
			if (*end || b < 1 || b > FM_BATCH_MAX) {
				fprintf(stderr, "fluidmemd: --evict-batch must be 1..%d\n", FM_BATCH_MAX);
				return 2;
			}
			D.opt.evict_batch = (unsigned)b;
			break;
		}
		case 'M': D.opt.socket_mode = (unsigned)strtoul(optarg, NULL, 8); break;
		case 'v': D.opt.verbose = true; break;
		case 'q': D.opt.quiet = true; break;
		case 'L': D.opt.metrics_listen = optarg; break;
		case 'P': {
			char *end;
			unsigned long us = strtoul(optarg, &end, 10);
			if (*end || us > 1000000) {
				fprintf(stderr, "fluidmemd: --poll-us must be 0..1000000\n");
				return 2;
			}
			D.opt.poll_us = (unsigned)us;
			break;
		}
		case 'F': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n > FM_BATCH_MAX) {
				fprintf(stderr, "fluidmemd: --prefetch must be 0..%d\n", FM_BATCH_MAX);
				return 2;
			}
			D.opt.prefetch_max = (unsigned)n;
			break;
		}
		case 'Z': D.opt.zero_skip = false; break;
		case 'G': D.opt.prefetch_gate = false; break;
		case 'I':
			if (!strcmp(optarg, "copy"))
				D.opt.prefetch_install = FM_PF_COPY;
			else if (!strcmp(optarg, "write"))
				D.opt.prefetch_install = FM_PF_WRITE;
			else if (!strcmp(optarg, "continue"))
				D.opt.prefetch_install = FM_PF_CONTINUE;
			else {
				fprintf(stderr, "fluidmemd: --prefetch-install must be copy, write or continue\n");
				return 2;
			}
			break;
		case 'E': D.opt.encrypt = false; break;
		case 'K':
			/* true/false too: a configuration file of the flag's days */
			if (!optarg || !strcmp(optarg, "always") || !strcmp(optarg, "true"))
				D.opt.clean_tracking = FM_CT_ALWAYS;
			else if (!strcmp(optarg, "auto"))
				D.opt.clean_tracking = FM_CT_AUTO;
			else if (!strcmp(optarg, "off") || !strcmp(optarg, "false"))
				D.opt.clean_tracking = FM_CT_OFF;
			else {
				fprintf(stderr, "fluidmemd: --clean-tracking must be auto, always or off\n");
				return 2;
			}
			break;
		case 'W': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n > (1ul << 30)) {
				fprintf(stderr, "fluidmemd: --async-evict takes a number of pages (0: off)\n");
				return 2;
			}
			D.opt.async_evict = (unsigned)n;
			break;
		}
		case 'T': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > FT_MAX) {
				fprintf(stderr, "fluidmemd: --fault-threads takes 1 to %d\n", FT_MAX);
				return 2;
			}
			D.opt.fault_threads = (unsigned)n;
			break;
		}
		case 'Y':
			if (sscanf(optarg, "%d,%d", &D.opt.affinity_fault, &D.opt.affinity_evict) != 2 ||
			    D.opt.affinity_fault < -1 || D.opt.affinity_evict < -1) {
				fprintf(stderr, "fluidmemd: --affinity FAULT_CPU,EVICT_CPU (-1: any), e.g. 1,0\n");
				return 2;
			}
			break;
		case 'N': D.opt.placement = false; break;
		case 'X': D.opt.evict_sweep = false; break;
		case 'A':
			if (tenant_allow(optarg) < 0) {
				fprintf(stderr, "fluidmemd: --allow '%s': not a user, uid, @group or @gid\n", optarg);
				return 2;
			}
			break;
		case 'D': D.opt.state_dir = optarg; break;
		case 'C':
			if (tenant_store_cap(optarg) < 0) {
				fprintf(stderr, "fluidmemd: --store-cap '%s': want USER=SIZE, e.g. alice=8G\n", optarg);
				return 2;
			}
			break;
		case 'R':
			if (tenant_reserve(optarg) < 0) {
				fprintf(stderr, "fluidmemd: --reserve '%s': want USER=SIZE, e.g. alice=256M\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fluidmemd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	atomic_store(&D.budget_pages, budget / PAGE);
	D.start_ns = fm_now_ns();

	/* The store must answer before we accept anyone. */
	char err[256];
	struct fm_store *probe;
	if (fm_store_open(D.opt.store_url, &probe, err, sizeof(err)) < 0) {
		fprintf(stderr, "fluidmemd: store %s: %s\n", D.opt.store_url, err);
		return 1;
	}
	/* A remote store outlives us: keep what a restarted monitor needs to
	 * take the clients back. The local store dies with us. */
	D.persist = strcmp(probe->ops->scheme, "local") != 0;
	fm_store_close(probe);
	static char state_default[4096];
	if (!D.opt.state_dir) {
		snprintf(state_default, sizeof(state_default), "%s", D.opt.socket_path);
		char *slash = strrchr(state_default, '/');
		if (slash)
			snprintf(slash + 1, sizeof(state_default) - (size_t)(slash + 1 - state_default), "state");
		else
			snprintf(state_default, sizeof(state_default), "state");
		D.opt.state_dir = state_default;
	}
	if (D.persist && mkdir(D.opt.state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "fluidmemd: --state-dir %s: %s\n", D.opt.state_dir, strerror(errno));
		return 1;
	}
	persist_scan(); /* the copies earlier monitors' forks left shared */

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* client threads inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	int lsock = listen_unix(D.opt.socket_path, D.opt.socket_mode);
	if (lsock < 0) {
		fprintf(stderr, "fluidmemd: cannot listen on %s: %s%s\n", D.opt.socket_path, strerror(-lsock),
			lsock == -EADDRINUSE ? " (another fluidmemd is running there)" :
			lsock == -ENOENT ? " (does its directory exist?)" : "");
		return 1;
	}
	if (D.opt.metrics_listen) {
		char why[256];
		if (metrics_start(D.opt.metrics_listen, why, sizeof(why)) < 0) {
			fprintf(stderr, "fluidmemd: --metrics-listen: %s\n", why);
			close(lsock);
			unlink(D.opt.socket_path);
			return 1;
		}
		fm_info("metrics at http://%s/metrics", D.opt.metrics_listen);
	}
	if (evictor_start() < 0)
		fm_log("cannot start the eviction thread; faults evict inline");
	fm_info("listening on %s, budget %llu MiB, store %s", D.opt.socket_path,
	       (unsigned long long)(budget >> 20), D.opt.store_url);

	struct pollfd pfd[2] = { { .fd = lsock, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
	bool gc_done = false;
	time_t started = time(NULL);
	for (;;) {
		int n = poll(pfd, 2, 5000);
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & POLLIN)
			accept_one(lsock);
		gc_pending();
		/* regions nobody took back after a restart: once, after the
		 * clients' re-attach window (60 s by default) */
		if (D.persist && !gc_done && fm_now_ns() - D.start_ns > STATE_GC_NS) {
			gc_done = true;
			persist_gc(started);
		}
	}
	fm_info("shutting down");
	/* Stopping with a remote store: leave each region's store data and
	 * state file for the next monitor, which takes the clients back. */
	atomic_store(&D.keep_state, D.persist);
	metrics_stop();
	close(lsock);
	unlink(D.opt.socket_path);
	for (int i = 0; i < 300 && atomic_load(&connecting); i++)
		usleep(10000); /* first messages still being read */
	evictor_stop();
	clients_stop_all();
	pthread_mutex_lock(&D.lock);
	while (D.pending) {
		struct fm_pending *pd = D.pending;
		D.pending = pd->next;
		region_free(pd->region, worker_store());
		free(pd);
	}
	while (D.tags) {
		struct fm_tag *t = D.tags;
		D.tags = t->next;
		free(t);
	}
	tenants_free();
	pthread_mutex_unlock(&D.lock);
	worker_release_current();
	share_free_all();
	close(sfd);
	if (D.persist)
		rmdir(D.opt.state_dir); /* when empty */
	return 0;
}
