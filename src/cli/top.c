/* top.c - `fluidmem top`: a live view of the monitor for a terminal.
 *
 * Every --delay seconds it asks fluidmemd for its status (the JSON of
 * `fluidmem status --json`), computes per-process rates from the previous
 * sample (faults and evictions per second) and redraws a table with plain
 * ANSI escape codes: no curses. `q` or Ctrl-C quits and gives the terminal
 * back as it was. `--once` prints one table without escape codes (two
 * samples --delay apart, so the rates mean something) for scripts and tests.
 * It only reads: it changes nothing in the monitor. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

int fm_cli_top(int argc, char **argv);

struct proc {
	int pid, uid;
	char tag[FM_TAG_MAX];
	uint64_t size, resident, stored, faults, wp, evictions;
	double p50, p99;
	double fault_rate, evict_rate; /* per second since the previous sample; <0: new */
};

struct sample {
	bool ok;
	char err[256];
	double t;               /* CLOCK_MONOTONIC seconds */
	uint64_t uptime, budget, resident, peak;
	bool have_budget;       /* root only: the daemon-wide numbers */
	char store[128];
	struct proc *p;
	size_t n;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t num(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static double dbl(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* One STATUS request (JSON) parsed into s. */
static void fetch(const char *sock, struct sample *s)
{
	static char buf[1 << 20];
	memset(s, 0, sizeof(*s));
	s->t = now_s();
	int fd = fm_connect_unix(sock);
	if (fd < 0) {
		snprintf(s->err, sizeof(s->err), "cannot reach fluidmemd at %s: %s", sock, strerror(-fd));
		return;
	}
	struct fm_status_req rq = { .flags = FM_STATUS_JSON };
	struct fm_msg_hdr h;
	int rc = fm_send(fd, FM_MSG_STATUS, 0, &rq, sizeof(rq), NULL, 0);
	if (rc == 0)
		rc = fm_recv(fd, &h, buf, sizeof(buf) - 1, NULL, NULL);
	close(fd);
	if (rc < 0 || h.status < 0) {
		snprintf(s->err, sizeof(s->err), "status request failed: %s", strerror(rc < 0 ? -rc : -h.status));
		return;
	}
	buf[h.len] = 0;
	struct json_object *root = json_tokener_parse(buf), *clients, *c;
	if (!root || !json_object_object_get_ex(root, "clients", &clients)) {
		snprintf(s->err, sizeof(s->err), "fluidmemd sent a status this version cannot read");
		json_object_put(root);
		return;
	}
	s->uptime = num(root, "uptime_s");
	s->have_budget = json_object_object_get_ex(root, "budget_bytes", &c);
	s->budget = num(root, "budget_bytes");
	s->resident = num(root, "resident_bytes");
	s->peak = num(root, "peak_resident_bytes");
	snprintf(s->store, sizeof(s->store), "%s", str(root, "store"));
	size_t n = json_object_array_length(clients);
	s->p = calloc(n ? n : 1, sizeof(*s->p));
	for (size_t i = 0; s->p && i < n; i++) {
		c = json_object_array_get_idx(clients, i);
		struct proc *p = &s->p[s->n++];
		p->pid = (int)num(c, "pid");
		p->uid = (int)num(c, "uid");
		snprintf(p->tag, sizeof(p->tag), "%s", str(c, "tag"));
		p->size = num(c, "size_bytes");
		p->resident = num(c, "resident_pages");
		p->stored = num(c, "stored_pages");
		p->faults = num(c, "faults_zero") + num(c, "faults_store");
		p->wp = num(c, "faults_wp");
		p->evictions = num(c, "evictions");
		p->p50 = dbl(c, "lat_p50_us");
		p->p99 = dbl(c, "lat_p99_us");
		p->fault_rate = p->evict_rate = -1;
	}
	json_object_put(root);
	s->ok = s->p != NULL;
}

/* Rates of cur's processes from prev's (matched by pid). */
static void rates(struct sample *cur, const struct sample *prev)
{
	double dt = cur->t - prev->t;
	for (size_t i = 0; i < cur->n && dt > 0; i++)
		for (size_t j = 0; j < prev->n; j++) {
			const struct proc *o = &prev->p[j];
			struct proc *p = &cur->p[i];
			if (o->pid != p->pid || strcmp(o->tag, p->tag) != 0)
				continue;
			p->fault_rate = p->faults >= o->faults ? (double)(p->faults - o->faults) / dt : 0;
			p->evict_rate = p->evictions >= o->evictions ? (double)(p->evictions - o->evictions) / dt : 0;
		}
}

static int by_activity(const void *x, const void *y)
{
	const struct proc *a = x, *b = y;
	double ka = a->fault_rate + a->evict_rate, kb = b->fault_rate + b->evict_rate;
	if (ka != kb)
		return ka < kb ? 1 : -1;
	return a->resident < b->resident ? 1 : a->resident > b->resident ? -1 : a->pid - b->pid;
}

static void mib(char *out, size_t cap, uint64_t bytes)
{
	snprintf(out, cap, "%.1f", (double)bytes / (1 << 20));
}

static void rate(char *out, size_t cap, double r)
{
	if (r < 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.0f", r);
}

/* One frame; rows: at most this many process lines (0: all). */
static void draw(FILE *f, const struct sample *s, const char *sock, bool ansi, int rows)
{
	char clock[16];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	if (ansi)
		fputs("\033[H\033[2J", f);
	if (!s->ok) {
		fprintf(f, "fluidmem top - %s - %s\n", clock, s->err);
		fflush(f);
		return;
	}
	double frate = 0, erate = 0;
	for (size_t i = 0; i < s->n; i++) {
		frate += s->p[i].fault_rate > 0 ? s->p[i].fault_rate : 0;
		erate += s->p[i].evict_rate > 0 ? s->p[i].evict_rate : 0;
	}
	fprintf(f, "fluidmem top - %s - up %lluh%02llum%02llus - %s - store %s\n", clock,
		(unsigned long long)(s->uptime / 3600), (unsigned long long)(s->uptime / 60 % 60),
		(unsigned long long)(s->uptime % 60), sock, s->store);
	if (s->have_budget)
		fprintf(f, "budget %.1f MiB, resident %.1f MiB (%.0f%%), peak %.1f MiB; ", (double)s->budget / (1 << 20),
			(double)s->resident / (1 << 20), s->budget ? 100.0 * (double)s->resident / (double)s->budget : 0,
			(double)s->peak / (1 << 20));
	fprintf(f, "%zu process%s, %.0f faults/s, %.0f evictions/s\n\n", s->n, s->n == 1 ? "" : "es", frate, erate);
	if (ansi)
		fputs("\033[7m", f);
	fprintf(f, "%8s %6s %-20s %9s %9s %9s %9s %9s %9s %9s", "PID", "UID", "TAG", "SIZE_MIB", "RES_MIB",
		"STORE_MIB", "FAULTS/S", "EVICT/S", "P50_US", "P99_US");
	fputs(ansi ? "\033[0m\n" : "\n", f);
	size_t shown = 0;
	for (size_t i = 0; i < s->n; i++, shown++) {
		if (rows > 0 && shown == (size_t)rows) {
			fprintf(f, "... %zu more\n", s->n - shown);
			break;
		}
		const struct proc *p = &s->p[i];
		char sz[24], res[24], st[24], fr[24], er[24];
		mib(sz, sizeof(sz), p->size);
		mib(res, sizeof(res), p->resident * 4096);
		mib(st, sizeof(st), p->stored * 4096);
		rate(fr, sizeof(fr), p->fault_rate);
		rate(er, sizeof(er), p->evict_rate);
		fprintf(f, "%8d %6d %-20.20s %9s %9s %9s %9s %9s %9.1f %9.1f\n", p->pid, p->uid, p->tag, sz, res, st, fr,
			er, p->p50, p->p99);
	}
	if (!s->n)
		fputs("(no processes)\n", f);
	if (ansi)
		fputs("\nq: quit", f);
	fflush(f);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fluidmem top [--delay SECONDS] [--once] [--socket PATH]\n"
		"A live view of the monitor: per process its tag, size, resident and stored\n"
		"memory, faults and evictions per second (since the previous refresh), and\n"
		"fault latency percentiles (since the process started). Most active first.\n"
		"Press q or Ctrl-C to quit.\n\n"
		"  -d, --delay SECONDS  time between refreshes (default 1, at least 0.1)\n"
		"  -1, --once           print one table (two samples SECONDS apart) and exit,\n"
		"                       without escape codes\n"
		"  -s, --socket PATH    the monitor's socket (default $FLUIDMEM_SOCKET or\n"
		"                       /run/fluidmem/fluidmemd.sock)\n"
		"  -h, --help           show this help\n");
}

int fm_cli_top(int argc, char **argv)
{
	static const struct option lo[] = { { "delay", required_argument, NULL, 'd' },
					    { "once", no_argument, NULL, '1' },
					    { "socket", required_argument, NULL, 's' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *sock = fm_default_socket();
	double delay = 1;
	bool once = false;
	int o;
	while ((o = getopt_long(argc, argv, "d:1s:h", lo, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'd':
			delay = strtod(optarg, &end);
			if (*end || !(delay >= 0.1 && delay <= 3600)) {
				fprintf(stderr, "fluidmem top: --delay must be 0.1 to 3600 seconds\n");
				return 2;
			}
			break;
		case '1': once = true; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fluidmem top: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	struct sample prev, cur;
	fetch(sock, &prev);
	if (!prev.ok) {
		fprintf(stderr, "fluidmem top: %s\n", prev.err);
		return 1;
	}
	if (once) {
		usleep((useconds_t)(delay * 1e6));
		fetch(sock, &cur);
		if (!cur.ok) {
			fprintf(stderr, "fluidmem top: %s\n", cur.err);
			free(prev.p);
			return 1;
		}
		rates(&cur, &prev);
		qsort(cur.p, cur.n, sizeof(*cur.p), by_activity);
		draw(stdout, &cur, sock, false, 0);
		free(prev.p);
		free(cur.p);
		return 0;
	}

	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: poll returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct termios saved, raw;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		raw = saved;
		raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	fputs("\033[?25l", stdout); /* hide the cursor */
	draw(stdout, &prev, sock, true, 0);
	while (!stop) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		double until = now_s() + delay;
		bool quit = false;
		while (!stop && !quit) {
			double left = until - now_s();
			if (left <= 0)
				break;
			int n = poll(&pfd, tty ? 1 : 0, (int)(left * 1000) + 1);
			if (n > 0 && (pfd.revents & POLLIN)) {
				char ch;
				if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q' || ch == 3))
					quit = true;
			}
		}
		if (stop || quit)
			break;
		fetch(sock, &cur);
		if (cur.ok && prev.ok)
			rates(&cur, &prev);
		if (cur.ok)
			qsort(cur.p, cur.n, sizeof(*cur.p), by_activity);
		struct winsize ws;
		int rows = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 8 ? ws.ws_row - 7 : 0;
		draw(stdout, &cur, sock, true, rows);
		if (cur.ok || !prev.ok) {
			free(prev.p);
			prev = cur;
		} else {
			free(cur.p); /* keep the last good sample for rates */
		}
	}
	free(prev.p);
	fputs("\033[?25h\n", stdout);
	fflush(stdout);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	return 0;
}
