/* main.c - the fluidmem command: run a program under fluidmem, look at and
 * steer the monitor. Subcommands live in their own files where they grow
 * (vm.c); this file parses the command line and speaks the control protocol. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "size.h"

int fm_cli_vm(int argc, char **argv) __attribute__((weak));
int fm_cli_top(int argc, char **argv);

static const char *opt_socket;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fluidmem COMMAND [OPTION]...\n"
		"Memory as a Service: run programs with more memory than the local budget.\n\n"
		"Commands:\n"
		"  run [OPTION]... -- PROGRAM [ARG]...   run PROGRAM with its memory served by fluidmemd\n"
		"  status [--json]                       regions, clients and counters of the monitor\n"
		"  top [--once] [--delay SECONDS]        live view: per process memory, faults/s, evictions/s\n"
		"  resize --local-memory SIZE [--tag T]  change the global budget, or one tag's limit\n"
		"  evict [--tag TAG]                     evict resident pages to the store now\n"
		"  stop                                  stop the monitor\n"
		"  drop REGION                           drop a region (root): its process gets SIGBUS\n"
		"  tenant --user U [--reserve S] [--store-cap S]  change a tenant's quota (root)\n"
		"  vm hotplug|resize|list|unplug ...     remote memory for QEMU virtual machines\n"
		"  bench                                 run the benchmarks (see docs/benchmarks.md)\n\n"
		"Common option:\n"
		"  -s, --socket PATH   the monitor's socket (default $FLUIDMEM_SOCKET or\n"
		"                      /run/fluidmem/fluidmemd.sock)\n\n"
		"Run `fluidmem COMMAND --help` for a command's options.\n");
}

static void usage_run(FILE *f)
{
	fprintf(f,
		"Usage: fluidmem run [OPTION]... -- PROGRAM [ARG]...\n"
		"Run PROGRAM unmodified; its heap and large anonymous mappings become fluidmem\n"
		"regions: at most --local-memory of them resident, the rest in the page store.\n"
		"When no monitor answers on the socket (or --store is given), a private monitor\n"
		"is started for this run and stopped after it.\n\n"
		"  -m, --local-memory SIZE  resident limit for this program (e.g. 64M, 2G; default 1G)\n"
		"  -S, --store URL          page store of a private monitor (default local://)\n"
		"  -s, --socket PATH        use the monitor on PATH\n"
		"      --stats              print counters and fault latency when PROGRAM exits\n"
		"      --stats-json FILE    write the same counters as JSON to FILE\n"
		"      --heap-size SIZE     address space reserved for the heap (default 64G)\n"
		"      --mmap-threshold SIZE  anonymous mmaps this large or larger become regions\n"
		"                           (default 1M)\n"
		"      --no-heap            leave malloc alone; only large mmaps become regions\n"
		"  -h, --help               show this help\n\n"
		"The exit status is PROGRAM's (128+N when killed by signal N).\n");
}

static const char *socket_path(void)
{
	return opt_socket ? opt_socket : fm_default_socket();
}

/* One control request; the reply payload (text or struct) into buf. */
static int control(uint16_t type, const void *p, uint32_t len, char *buf, uint32_t cap, uint32_t *got)
{
	int s = fm_connect_unix(socket_path());
	if (s < 0) {
		fprintf(stderr, "fluidmem: cannot reach fluidmemd at %s: %s\n", socket_path(), strerror(-s));
		return s;
	}
	int rc = fm_send(s, type, 0, p, len, NULL, 0);
	struct fm_msg_hdr h;
	if (rc == 0)
		rc = fm_recv(s, &h, buf, cap, NULL, NULL);
	close(s);
	if (rc < 0) {
		fprintf(stderr, "fluidmem: talking to fluidmemd: %s\n", strerror(-rc));
		return rc;
	}
	if (h.status < 0) {
		fprintf(stderr, "fluidmem: %s\n", h.len && buf[h.len - 1] == 0 ? buf : strerror(-h.status));
		return h.status;
	}
	if (got)
		*got = h.len;
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { "socket", required_argument, NULL, 's' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	struct fm_status_req rq = { 0 };
	int o;
	while ((o = getopt_long(argc, argv, "js:h", lo, NULL)) != -1) {
		if (o == 'j')
			rq.flags |= FM_STATUS_JSON;
		else if (o == 's')
			opt_socket = optarg;
		else {
			fprintf(o == 'h' ? stdout : stderr,
				"Usage: fluidmem status [--json] [--socket PATH]\n"
				"The monitor's budget, what is resident, its store, and one line per client\n"
				"process. Root sees every process; another user sees only their own.\n\n"
				"  -j, --json         every counter, each region, and the totals, as JSON\n"
				"  -s, --socket PATH  the monitor's socket (default $FLUIDMEM_SOCKET or\n"
				"                     /run/fluidmem/fluidmemd.sock)\n"
				"  -h, --help         show this help\n\n"
				"Columns: PID, UID, TAG (its `fluidmem run`), REGIONS, SIZE_MIB (address space\n"
				"of its regions), RES_MIB (resident now), STORE_MIB (in the store now), FAULTS\n"
				"(zero pages and pages from the store), EVICTIONS (pages), P50_US and P99_US\n"
				"(fault latency percentiles since the process started). docs/operations.md\n"
				"says more.\n");
			return o == 'h' ? 0 : 2;
		}
	}
	static char buf[1 << 20];
	uint32_t n = 0;
	if (control(FM_MSG_STATUS, &rq, sizeof(rq), buf, sizeof(buf) - 1, &n) < 0)
		return 1;
	fwrite(buf, 1, n, stdout);
	return 0;
}

static void usage_resize(FILE *f)
{
	fprintf(f,
		"Usage: fluidmem resize --local-memory SIZE [--tag TAG] [--socket PATH]\n"
		"Change the monitor's global budget of resident pages, or with --tag one tag's\n"
		"limit (the processes of one `fluidmem run`, see TAG in fluidmem status). Pages\n"
		"over the new limit are evicted before the command returns.\n\n"
		"  -m, --local-memory SIZE  the new budget or limit, e.g. 512M, 4G (at least 64K;\n"
		"                           with --tag, 0 removes the tag's own limit)\n"
		"  -t, --tag TAG            resize this tag's limit instead of the global budget\n"
		"  -s, --socket PATH        the monitor's socket\n"
		"  -h, --help               show this help\n\n"
		"The global budget is root's (or the daemon user's) to change; a user may resize\n"
		"a tag whose processes are all theirs.\n");
}

static int cmd_resize(int argc, char **argv)
{
	static const struct option lo[] = { { "local-memory", required_argument, NULL, 'm' },
					    { "tag", required_argument, NULL, 't' },
					    { "socket", required_argument, NULL, 's' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	struct fm_set_tag_limit rq = { 0 };
	const char *tag = NULL;
	bool have = false;
	int o;
	while ((o = getopt_long(argc, argv, "m:t:s:h", lo, NULL)) != -1) {
		if (o == 'm') {
			if (fm_parse_size(optarg, &rq.bytes) < 0) {
				fprintf(stderr, "fluidmem resize: invalid size '%s' (e.g. 512M, 4G)\n", optarg);
				return 2;
			}
			have = true;
		} else if (o == 't') {
			tag = optarg;
		} else if (o == 's') {
			opt_socket = optarg;
		} else {
			usage_resize(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fluidmem resize: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!have || (!tag && !rq.bytes)) {
		fprintf(stderr, "fluidmem resize: --local-memory SIZE is required\n");
		return 2;
	}
	char buf[256];
	if (!tag) {
		struct fm_set_budget b = { rq.bytes };
		return control(FM_MSG_SET_BUDGET, &b, sizeof(b), buf, sizeof(buf), NULL) < 0;
	}
	if (strlen(tag) >= sizeof(rq.tag)) {
		fprintf(stderr, "fluidmem resize: tag '%s' is longer than %d bytes\n", tag, FM_TAG_MAX - 1);
		return 2;
	}
	snprintf(rq.tag, sizeof(rq.tag), "%s", tag);
	struct fm_evict_reply r = { 0 };
	uint32_t n = 0;
	if (control(FM_MSG_SET_TAG_LIMIT, &rq, sizeof(rq), buf, sizeof(buf), &n) < 0)
		return 1;
	if (n == sizeof(r))
		memcpy(&r, buf, sizeof(r));
	if (r.pages)
		printf("tag %s: evicted %llu pages (%llu MiB) to meet the new limit\n", tag,
		       (unsigned long long)r.pages, (unsigned long long)(r.pages * 4096 >> 20));
	return 0;
}

static void usage_evict(FILE *f)
{
	fprintf(f,
		"Usage: fluidmem evict [--tag TAG] [--socket PATH]\n"
		"Evict resident pages to the store now: of every process (root sees all, a user\n"
		"their own), or of one tag's. Processes fault back what they touch next.\n\n"
		"  -t, --tag TAG      only the processes of this tag (see TAG in fluidmem status)\n"
		"  -s, --socket PATH  the monitor's socket\n"
		"  -q, --quiet        print nothing on success\n"
		"  -h, --help         show this help\n");
}

static int cmd_evict(int argc, char **argv)
{
	static const struct option lo[] = { { "tag", required_argument, NULL, 't' },
					    { "socket", required_argument, NULL, 's' },
					    { "quiet", no_argument, NULL, 'q' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	struct fm_tag_req rq = { { 0 } };
	bool quiet = false;
	int o;
	while ((o = getopt_long(argc, argv, "t:s:qh", lo, NULL)) != -1) {
		if (o == 't') {
			if (strlen(optarg) >= sizeof(rq.tag) || !*optarg) {
				fprintf(stderr, "fluidmem evict: a tag is 1 to %d bytes\n", FM_TAG_MAX - 1);
				return 2;
			}
			snprintf(rq.tag, sizeof(rq.tag), "%s", optarg);
		} else if (o == 's') {
			opt_socket = optarg;
		} else if (o == 'q') {
			quiet = true;
		} else {
			usage_evict(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fluidmem evict: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	struct fm_evict_reply r = { 0 };
	char buf[256]; /* a reply, or an error's text */
	uint32_t n = 0;
	if (control(FM_MSG_EVICT, &rq, sizeof(rq), buf, sizeof(buf), &n) < 0)
		return 1;
	if (n == sizeof(r))
		memcpy(&r, buf, sizeof(r));
	if (!quiet)
		printf("evicted %llu pages (%llu MiB) from %llu process%s\n", (unsigned long long)r.pages,
		       (unsigned long long)(r.pages * 4096 >> 20), (unsigned long long)r.clients,
		       r.clients == 1 ? "" : "es");
	return 0;
}

/* fluidmem tenant --user USER [--reserve SIZE] [--store-cap SIZE] */
static int cmd_tenant(int argc, char **argv)
{
	static const struct option lo[] = { { "user", required_argument, NULL, 'u' },
					    { "reserve", required_argument, NULL, 'r' },
					    { "store-cap", required_argument, NULL, 'c' },
					    { "socket", required_argument, NULL, 's' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	struct fm_set_tenant rq = { 0 };
	const char *user = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "u:r:c:s:h", lo, NULL)) != -1) {
		if (o == 'u') {
			user = optarg;
		} else if (o == 'r' || o == 'c') {
			uint64_t *v = o == 'r' ? &rq.reserve_bytes : &rq.store_cap_bytes;
			if (fm_parse_size(optarg, v) < 0) {
				fprintf(stderr, "fluidmem tenant: invalid size '%s' (e.g. 512M, 4G)\n", optarg);
				return 2;
			}
			rq.set |= o == 'r' ? FM_TENANT_RESERVE : FM_TENANT_STORE_CAP;
		} else if (o == 's') {
			opt_socket = optarg;
		} else {
			fprintf(o == 'h' ? stdout : stderr,
				"Usage: fluidmem tenant --user USER [--reserve SIZE] [--store-cap SIZE] [--socket PATH]\n"
				"Change a tenant's quota while the monitor runs (root): --reserve, the local\n"
				"memory USER keeps however hard others page; --store-cap, the most of USER's\n"
				"pages the store may hold (0: no cap). USER is a name or a uid.\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (!user || !rq.set) {
		fprintf(stderr, "fluidmem tenant: --user and --reserve and/or --store-cap are required\n");
		return 2;
	}
	char *end;
	unsigned long id = strtoul(user, &end, 10);
	if (*end) {
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			fprintf(stderr, "fluidmem tenant: no such user '%s'\n", user);
			return 2;
		}
		id = pw->pw_uid;
	}
	rq.uid = (uint32_t)id;
	char buf[256];
	return control(FM_MSG_SET_TENANT, &rq, sizeof(rq), buf, sizeof(buf), NULL) < 0;
}

/* fluidmem drop REGION: the 32 hex digits `fluidmem status --json` shows. */
static int cmd_drop(int argc, char **argv)
{
	struct fm_drop rq;
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "--socket") == 0) {
		opt_socket = argv[2];
		i = 3;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strlen(argv[i]) != 32 ||
	    sscanf(argv[i], "%16llx%16llx", (unsigned long long *)&rq.region[0],
		   (unsigned long long *)&rq.region[1]) != 2) {
		fprintf(i < argc && strcmp(argv[i], "--help") == 0 ? stdout : stderr,
			"Usage: fluidmem drop [--socket PATH] REGION\n"
			"Drop a region (root): its pages and store data are freed, and its process\n"
			"gets SIGBUS wherever it touches it. REGION is the 32-hex-digit id that\n"
			"`fluidmem status --json` lists under regions_detail.\n");
		return i < argc && strcmp(argv[i], "--help") == 0 ? 0 : 2;
	}
	char buf[256];
	return control(FM_MSG_DROP, &rq, sizeof(rq), buf, sizeof(buf), NULL) < 0;
}

static int cmd_stop(int argc, char **argv)
{
	static const struct option lo[] = { { "socket", required_argument, NULL, 's' },
					    { "help", no_argument, NULL, 'h' }, { 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		if (o == 's') {
			opt_socket = optarg;
		} else {
			fprintf(o == 'h' ? stdout : stderr,
				"Usage: fluidmem stop [--socket PATH]\n"
				"Stop the monitor (root or the daemon's user only). Its clients lose their\n"
				"pager: each stops with \"monitor (fluidmemd) went away\" (exit status 70)\n"
				"rather than read a zero page in place of its data.\n\n"
				"  -s, --socket PATH  the monitor's socket\n"
				"  -h, --help         show this help\n");
			return o == 'h' ? 0 : 2;
		}
	}
	char buf[256];
	return control(FM_MSG_SHUTDOWN, NULL, 0, buf, sizeof(buf), NULL) < 0;
}

/* A file next to this executable, or in ../lib for an installed tree. */
static int sibling(const char *name, char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = 0;
	char *dir = dirname(exe);
	const char *tries[] = { "%s/%s", "%s/../lib/%s", "%s/../lib/fluidmem/%s" };
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		snprintf(out, cap, tries[i], dir, name);
		if (access(out, F_OK) == 0)
			return 0;
	}
	return -1;
}

static pid_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* Start a private fluidmemd on a socket in a fresh directory. */
static pid_t start_private_monitor(const char *budget, const char *store, char *sock, size_t cap)
{
	char daemon[PATH_MAX], dir[] = "/tmp/fluidmem-run.XXXXXX";
	if (sibling("fluidmemd", daemon, sizeof(daemon)) < 0)
		snprintf(daemon, sizeof(daemon), "fluidmemd");
	if (!mkdtemp(dir)) {
		perror("fluidmem: mkdtemp");
		return -1;
	}
	/* a program that drops privileges (su, setpriv) still reaches its monitor */
	chmod(dir, 0711);
	snprintf(sock, cap, "%s/fluidmemd.sock", dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0); /* a ^C in the terminal reaches the program, not the monitor */
		/* not the host's configuration: its socket, metrics port or allow-list are not ours */
		execlp(daemon, "fluidmemd", "--config", "/dev/null", "--socket", sock, "--local-memory", budget, "--store", store,
		       "--quiet", (char *)NULL);
		fprintf(stderr, "fluidmem: cannot run %s: %s\n", daemon, strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int s = fm_connect_unix(sock);
		if (s >= 0) {
			close(s);
			return pid;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "fluidmem: the private monitor failed to start\n");
			return -1;
		}
		usleep(25000);
	}
	fprintf(stderr, "fluidmem: the private monitor did not come up on %s\n", sock);
	kill(pid, SIGKILL);
	return -1;
}

static void stop_private_monitor(pid_t pid, const char *sock)
{
	kill(pid, SIGTERM);
	int st;
	for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) != pid; i++)
		usleep(25000);
	kill(pid, SIGKILL);
	waitpid(pid, &st, WNOHANG);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", sock);
	unlink(sock);
	rmdir(dirname(dir));
}

static void print_stats(const struct fm_stats *s, FILE *f)
{
	char in[32], out[32], peak[32];
	fm_format_size(s->bytes_in, in, sizeof(in));
	fm_format_size(s->bytes_out, out, sizeof(out));
	fm_format_size(s->peak_resident_pages * 4096, peak, sizeof(peak));
	fprintf(f, "fluidmem: faults %llu (zero %llu, from store %llu), write-protect %llu, SIGBUS %llu\n",
		(unsigned long long)(s->faults_zero + s->faults_store), (unsigned long long)s->faults_zero,
		(unsigned long long)s->faults_store, (unsigned long long)s->faults_wp,
		(unsigned long long)s->faults_poisoned);
	fprintf(f, "fluidmem: evictions %llu: written %llu, all-zero avoided %llu, clean avoided %llu; "
		"store errors %llu\n",
		(unsigned long long)s->evictions, (unsigned long long)s->pages_written,
		(unsigned long long)s->pages_zero_skipped, (unsigned long long)s->pages_clean_skipped,
		(unsigned long long)s->store_errors);
	fprintf(f, "fluidmem: prefetched %llu pages\n", (unsigned long long)s->pages_prefetched);
	fprintf(f, "fluidmem: moved in %s, out %s; peak resident %s\n", in, out, peak);
	fprintf(f, "fluidmem: fault latency median %.1f us, p99 %.1f us\n", fm_lat_percentile(s->lat, 0.5) / 1e3,
		fm_lat_percentile(s->lat, 0.99) / 1e3);
}

static int write_stats_json(const struct fm_stats *s, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "fluidmem: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{");
#define X(name) fprintf(f, "\"" #name "\":%llu,", (unsigned long long)s->name);
	FM_STATS_FIELDS(X)
#undef X
	fprintf(f, "\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f}\n", fm_lat_percentile(s->lat, 0.5) / 1e3,
		fm_lat_percentile(s->lat, 0.99) / 1e3);
	return fclose(f);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "local-memory", required_argument, NULL, 'm' }, { "store", required_argument, NULL, 'S' },
		{ "socket", required_argument, NULL, 's' },       { "stats", no_argument, NULL, 'x' },
		{ "stats-json", required_argument, NULL, 'j' },   { "heap-size", required_argument, NULL, 'H' },
		{ "mmap-threshold", required_argument, NULL, 'T' }, { "no-heap", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },               { 0 },
	};
	const char *budget = "1G", *store = NULL, *stats_json = NULL, *heap = NULL, *threshold = NULL;
	bool stats = false, no_heap = false;
	uint64_t v;
	int o;
	while ((o = getopt_long(argc, argv, "+m:S:s:h", lo, NULL)) != -1) {
		switch (o) {
		case 'm': budget = optarg; break;
		case 'S': store = optarg; break;
		case 's': opt_socket = optarg; break;
		case 'x': stats = true; break;
		case 'j': stats_json = optarg; break;
		case 'H': heap = optarg; break;
		case 'T': threshold = optarg; break;
		case 'N': no_heap = true; break;
		case 'h': usage_run(stdout); return 0;
		default: usage_run(stderr); return 2;
		}
	}
	const char *sizes[] = { budget, heap, threshold };
	for (int i = 0; i < 3; i++)
		if (sizes[i] && fm_parse_size(sizes[i], &v) < 0) {
			fprintf(stderr, "fluidmem run: invalid size '%s' (e.g. 64M, 2G)\n", sizes[i]);
			return 2;
		}
	if (optind >= argc) {
		fprintf(stderr, "fluidmem run: no program given (fluidmem run [OPTION]... -- PROGRAM [ARG]...)\n");
		return 2;
	}
	char preload[PATH_MAX];
	if (sibling("libfluidmem-preload.so", preload, sizeof(preload)) < 0) {
		fprintf(stderr, "fluidmem: cannot find libfluidmem-preload.so next to this program\n");
		return 1;
	}

	/* The host's monitor if one answers (and no private store was asked for). */
	char sock[PATH_MAX];
	pid_t monitor = 0;
	snprintf(sock, sizeof(sock), "%s", socket_path());
	int probe = store ? -1 : fm_connect_unix(sock);
	if (probe >= 0) {
		close(probe);
	} else {
		if (opt_socket) {
			fprintf(stderr, "fluidmem: no fluidmemd answers on %s\n", opt_socket);
			return 1;
		}
		monitor = start_private_monitor(budget, store ? store : "local://", sock, sizeof(sock));
		if (monitor < 0)
			return 1;
	}

	char tag[FM_TAG_MAX];
	unsigned rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = (unsigned)time(NULL);
	snprintf(tag, sizeof(tag), "run-%d-%08x", (int)getpid(), rnd);
	char ld[PATH_MAX * 2];
	const char *old = getenv("LD_PRELOAD");
	snprintf(ld, sizeof(ld), "%s%s%s", preload, old && *old ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", ld, 1);
	setenv("FLUIDMEM_SOCKET", sock, 1);
	setenv("FLUIDMEM_TAG", tag, 1);
	setenv("FLUIDMEM_LOCAL_MEMORY", budget, 1);
	setenv("FLUIDMEM_REQUIRED", "1", 1);
	if (heap)
		setenv("FLUIDMEM_HEAP_SIZE", heap, 1);
	if (threshold)
		setenv("FLUIDMEM_MMAP_THRESHOLD", threshold, 1);
	/* QEMU: its guest RAM backends are what we serve, not its own heap. */
	const char *base = strrchr(argv[optind], '/');
	base = base ? base + 1 : argv[optind];
	if (no_heap || strncmp(base, "qemu-system-", 12) == 0)
		setenv("FLUIDMEM_HEAP", "0", 1);
	if (strncmp(base, "qemu-system-", 12) == 0)
		setenv("FLUIDMEM_ANON", "0", 1);

	signal(SIGINT, forward_signal);
	signal(SIGTERM, forward_signal);
	signal(SIGHUP, forward_signal);
	signal(SIGQUIT, forward_signal);
	child_pid = fork();
	if (child_pid < 0) {
		perror("fluidmem: fork");
		return 1;
	}
	if (child_pid == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "fluidmem: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (waitpid(child_pid, &st, 0) < 0 && errno == EINTR)
		;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (WIFSIGNALED(st))
		fprintf(stderr, "fluidmem: %s killed by signal %d (%s)\n", argv[optind], WTERMSIG(st),
			strsignal(WTERMSIG(st)));

	{
		/* The monitor folds a client's counters into its tag when it sees
		 * the process gone; give it a moment to notice. */
		struct fm_tag_req rq = { 0 };
		struct fm_stats s = { 0 };
		int got = -1;
		snprintf(rq.tag, sizeof(rq.tag), "%s", tag);
		opt_socket = sock;
		for (int i = 0; i < 100; i++) {
			if ((got = control(FM_MSG_TAG_STATS, &rq, sizeof(rq), (char *)&s, sizeof(s), NULL)) < 0)
				break;
			if (s.clients == 0) /* TAG_STATS counts live clients here */
				break;
			usleep(20000);
		}
		/* A static binary, or a loader that refused the library: the
		 * program ran, but not on fluidmem memory. Say so. */
		bool heap_expected = !no_heap && strncmp(base, "qemu-system-", 12) != 0;
		if (heap_expected && got == 0 && !s.faults_zero && !s.faults_store && !s.regions && !s.evictions)
			fprintf(stderr, "fluidmem: warning: %s never used fluidmem memory (a static binary, or "
				"the preload library was not loaded)\n", argv[optind]);
	}
	if (stats || stats_json) {
		struct fm_tag_req rq = { 0 };
		struct fm_stats s = { 0 };
		snprintf(rq.tag, sizeof(rq.tag), "%s", tag);
		/* No counters from a monitor that is gone: an error reply's text
		 * lands in the same buffer and must not be printed as numbers. */
		if (control(FM_MSG_TAG_STATS, &rq, sizeof(rq), (char *)&s, sizeof(s), NULL) < 0) {
			fprintf(stderr, "fluidmem: no counters for this run: the monitor did not give them\n");
			if (code == 0)
				code = 1;
		} else {
			if (stats)
				print_stats(&s, stderr);
			if (stats_json && write_stats_json(&s, stats_json) < 0 && code == 0)
				code = 1;
		}
	}
	if (monitor > 0)
		stop_private_monitor(monitor, sock);
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "resize") == 0)
		return cmd_resize(argc, argv);
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop(argc, argv);
	if (strcmp(cmd, "drop") == 0)
		return cmd_drop(argc, argv);
	if (strcmp(cmd, "tenant") == 0)
		return cmd_tenant(argc, argv);
	if (strcmp(cmd, "evict") == 0)
		return cmd_evict(argc, argv);
	if (strcmp(cmd, "top") == 0)
		return fm_cli_top(argc, argv);
	if (strcmp(cmd, "vm") == 0) {
		if (!fm_cli_vm) {
			fprintf(stderr, "fluidmem: this build has no vm support\n");
			return 1;
		}
		return fm_cli_vm(argc, argv);
	}
	if (strcmp(cmd, "bench") == 0) {
		char script[PATH_MAX];
		if (sibling("../bench/run.sh", script, sizeof(script)) < 0) {
			fprintf(stderr, "fluidmem bench: bench/run.sh not found (run it from the source tree)\n");
			return 1;
		}
		execv(script, argv);
		perror("fluidmem bench");
		return 1;
	}
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("fluidmem 0.1\n");
		return 0;
	}
	fprintf(stderr, "fluidmem: unknown command '%s' (try fluidmem --help)\n", cmd);
	return 2;
}
