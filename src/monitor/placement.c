/* placement.c - on which CPU a client's fault thread runs (--no-placement).
 *
 * On these VMs a halted vCPU takes ~20-30 us to wake. A fault served from the
 * other vCPU pays that for the faulting thread's wake-up even when the monitor
 * busy-polls (bench/uffd-floor: COPY round trip ~20 us "poll" against ~12 us
 * "same", where both run on one CPU and a fault is two context switches).
 *
 * So while one program thread faults at random (it waits for each fault) its
 * handler thread moves onto that thread's CPU (WITH) and sleeps between
 * faults there instead of busy-polling, which would take the CPU from the
 * program. It also becomes SCHED_IDLE: the scheduler wakes a task on an idle
 * CPU rather than a busy one, and a CPU that runs only SCHED_IDLE tasks counts
 * as idle (sched_idle_cpu()), so the program is woken where it faulted, next
 * to its handler, instead of on the halted vCPU; and it preempts the handler
 * at once. The program thread is pinned to that CPU too: its CPU always has
 * two runnable tasks, it and the pinned handler, so the load balancer of the
 * idle CPU, failing to move either, pushed the running program over every
 * ~10 ms (80-90 moves in three random passes of 16,384 faults), and each
 * fault until the handler followed was served across CPUs: random passes
 * went ~17% faster pinned (docs/benchmarks.md, eighth round). Its own mask
 * comes back when placement ends (a stream, another thread, another client,
 * 50 ms without a fault, the handler's end) unless someone changed it
 * meanwhile; children it forks meanwhile inherit the pin and get the mask
 * back within a window (their own children forked before that keep it: a
 * known limit). While it streams, or faults from several threads, the
 * handler is FREE again: a prefetch window is best installed from the other
 * CPU while the program runs through the pages already in, and the scheduler
 * does that. (Pinning the handler away from the program's CPU for streams was
 * tried: no difference in 4 interleaved runs.)
 *
 * Only while the monitor serves one process, and that process has one
 * thread (besides libfluidmem's watcher): otherwise a SCHED_IDLE handler
 * holding its client's lock was preempted by other work, and eviction went
 * over the budget meanwhile (t-limits-small-budget's soak: peaks of up to 145
 * pages at a 16-page budget, against 80 every time without placement).
 *
 * The program thread's CPU is field 39 of /proc/PID/task/TID/stat, read once
 * per PLACE_WINDOW faults, so a thread the scheduler moves is followed. A
 * SCHED_IDLE handler yields to any other task, so placing has failed when,
 * over a window (32 faults or 5 ms), the program thread waited to run for a
 * quarter of it, or was blocked (waiting for its faults) 100 us a fault or
 * more where a placed fault takes ~10 (its schedstat: run and wait times; a
 * busy task on that CPU starves the handler). Both are then left FREE for 8
 * windows, twice as many at each failure in a row, up to 1,024. (The
 * handler's own wait says nothing: it is preempted by the program it wakes,
 * and waits, runnable, until the next fault.) Leaving SCHED_IDLE
 * needs CAP_SYS_NICE, so unprivileged monitors (say, the private one of
 * `fluidmem run` for a user) do not place at all. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluidmemd.h"

#define PLACE_WINDOW 32 /* faults between decisions */
#define PLACE_CALM 8    /* windows left FREE after placing failed, at first */
#define PLACE_CALM_MAX 1024
#define STARVED_NS 100000 /* a placed fault blocks its thread ~10 us; 100 on average: starved */
#define PLACE_WINDOW_NS 5000000
#define PIN_QUIET_MS 50 /* no fault for this long: the program thread is unpinned */

enum place { FREE, WITH };

static __thread struct {
	bool ready, off;     /* off: nothing to choose (one CPU, no privilege) */
	cpu_set_t allowed;   /* the thread's own CPUs: FREE */
	enum place mode;
	int cpu;             /* WITH: the program thread's CPU */
	unsigned n, streamed;
	pid_t tid;           /* the one thread that faulted this window, -1: several */
	pid_t stat_tid;      /* whose stat and schedstat the fds read */
	int stat_fd, sched_fd;
	uint64_t ran, delay, at; /* its run time and run-queue wait so far, when read */
	bool sampled;        /* ran and delay are from an earlier read of the same thread */
	unsigned calm;       /* windows left FREE */
	unsigned calm_len;   /* windows the next calm lasts: doubles while WITH keeps failing */
	pid_t pin_tid;       /* WITH: the program thread we pinned to pin_cpu, 0: none */
	int pin_cpu, kids_fd; /* kids_fd: its /proc children */
	cpu_set_t pin_saved; /* its own mask, given back when WITH ends */
} P;

static bool placement_on(void)
{
	return D.opt.placement && D.opt.affinity_fault < 0 && D.opt.fault_threads == 1 &&
	       atomic_load(&D.nclients) == 1;
}

static int read_proc(int fd, char *buf, size_t size)
{
	ssize_t n = fd >= 0 ? pread(fd, buf, size - 1, 0) : -1;
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? 0 : -1;
}

/* The CPU thread tid of process pid last ran on, -1 if unknown or if the
 * process has other threads than it and libfluidmem's watcher (they would
 * compete with a SCHED_IDLE handler on that CPU), and how long it has run and
 * waited on a run queue (ns, schedstat's first two fields). */
static int cpu_of(pid_t pid, pid_t tid, uint64_t *ran, uint64_t *delay)
{
	char buf[1024];
	if (P.stat_tid != tid) {
		if (P.stat_fd >= 0)
			close(P.stat_fd);
		if (P.sched_fd >= 0)
			close(P.sched_fd);
		snprintf(buf, sizeof(buf), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
		P.stat_fd = open(buf, O_RDONLY | O_CLOEXEC);
		snprintf(buf, sizeof(buf), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
		P.sched_fd = open(buf, O_RDONLY | O_CLOEXEC);
		P.stat_tid = tid;
		P.sampled = false;
	}
	*ran = *delay = 0;
	if (read_proc(P.sched_fd, buf, sizeof(buf)) == 0)
		sscanf(buf, "%" SCNu64 " %" SCNu64, ran, delay);
	if (read_proc(P.stat_fd, buf, sizeof(buf)) < 0)
		return -1;
	char *s = strrchr(buf, ')'); /* the command name may hold spaces */
	for (int field = 2; field < 39 && s; field++) {
		s = strchr(s + 1, ' ');
		if (field == 19 && s && atoi(s + 1) > 2)
			return -1; /* field 20, num_threads: its one and our watcher */
	}
	return s ? atoi(s + 1) : -1;
}

static bool pinned_to(pid_t tid, int cpu)
{
	cpu_set_t cur;
	return sched_getaffinity(tid, sizeof(cur), &cur) == 0 && CPU_COUNT(&cur) == 1 && CPU_ISSET(cpu, &cur);
}

/* A child the pinned thread forked inherited the pin: give it the mask
 * the thread had before (once it is given, the child no longer matches). */
static void unpin_children(void)
{
	char buf[4096];
	if (read_proc(P.kids_fd, buf, sizeof(buf)) < 0)
		return;
	char *s = buf, *end;
	for (long kid; (kid = strtol(s, &end, 10)) > 0; s = end)
		if (pinned_to((pid_t)kid, P.pin_cpu))
			sched_setaffinity((pid_t)kid, sizeof(P.pin_saved), &P.pin_saved);
}

static void unpin(void)
{
	if (!P.pin_tid)
		return;
	unpin_children();
	if (pinned_to(P.pin_tid, P.pin_cpu)) /* else someone set another mask meanwhile: keep it */
		sched_setaffinity(P.pin_tid, sizeof(P.pin_saved), &P.pin_saved);
	if (P.kids_fd >= 0)
		close(P.kids_fd);
	P.pin_tid = 0;
}

/* Pin the program thread to the CPU its handler now shares with it (see
 * the top of this file); each window after, look for children. */
static void pin(pid_t pid, pid_t tid, int cpu)
{
	if (P.pin_tid == tid && P.pin_cpu == cpu) {
		unpin_children();
		return;
	}
	unpin();
	cpu_set_t saved, one;
	if (tid <= 0 || sched_getaffinity(tid, sizeof(saved), &saved) < 0 || !CPU_ISSET(cpu, &saved) ||
	    CPU_COUNT(&saved) < 2)
		return; /* gone, or pinned by its owner already */
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(tid, sizeof(one), &one) < 0)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tid);
	P.kids_fd = open(path, O_RDONLY | O_CLOEXEC);
	P.pin_tid = tid;
	P.pin_cpu = cpu;
	P.pin_saved = saved;
}

static void place(struct fm_client *c, enum place mode, int cpu)
{
	if (mode == WITH && (cpu < 0 || !CPU_ISSET(cpu, &P.allowed)))
		mode = FREE; /* unknown, or not ours to run on (taskset, cpuset) */
	if (mode == FREE)
		unpin();
	if (mode == P.mode && (mode == FREE || cpu == P.cpu))
		return;
	cpu_set_t set = P.allowed;
	if (mode == WITH) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	struct sched_param sp = { 0 };
	if (sched_setscheduler(0, mode == WITH ? SCHED_IDLE : SCHED_OTHER, &sp) < 0) {
		P.off = mode == FREE; /* stuck in SCHED_IDLE would be worse: stop */
		fm_log("placement: sched_setscheduler: %s%s", strerror(errno), P.off ? "; placement off" : "");
		return;
	}
	sched_setaffinity(0, sizeof(set), &set);
	P.mode = mode;
	P.cpu = cpu;
	c->st.placement_moves++;
}

/* After each fault the thread served: tid faulted (0: unknown), streamed when
 * the fault brought in a prefetch window. Client lock held. */
void placement_note(struct fm_client *c, pid_t tid, bool streamed)
{
	if (!placement_on()) {
		if (P.ready && P.mode == WITH)
			place(c, FREE, -1); /* another process came */
		return;
	}
	if (!P.ready) {
		memset(&P, 0, sizeof(P));
		P.ready = true;
		P.mode = FREE;
		P.cpu = P.stat_fd = P.sched_fd = P.kids_fd = -1;
		P.calm_len = PLACE_CALM;
		P.off = geteuid() != 0 || sched_getaffinity(0, sizeof(P.allowed), &P.allowed) < 0 ||
			CPU_COUNT(&P.allowed) < 2;
	}
	if (P.off)
		return;
	if (!tid)
		tid = c->pid;
	if (P.n == 0)
		P.tid = tid;
	else if (P.tid != tid)
		P.tid = -1;
	P.n++;
	P.streamed += streamed;
	/* a placed window also ends after PLACE_WINDOW_NS: starved, its 32
	 * faults could take a second */
	if (P.n < PLACE_WINDOW && !(P.mode == WITH && P.sampled && fm_now_ns() - P.at > PLACE_WINDOW_NS))
		return;
	uint64_t now = fm_now_ns();
	unsigned n = P.n;
	bool random = P.tid > 0 && P.streamed * 4 < P.n;
	P.n = P.streamed = 0;
	if (!random) {
		place(c, FREE, -1);
		return;
	}
	uint64_t ran, delay;
	int cpu = cpu_of(c->pid, P.tid, &ran, &delay);
	if (P.mode == WITH && P.sampled) {
		/* Placing failed if the program thread waited to run (another task
		 * wants its CPU) or waited for its faults far longer than a placed
		 * fault takes (the SCHED_IDLE handler hardly gets the CPU: a busy
		 * task there; two busy loops made random passes 10x slower placed
		 * than not). Each failure in a row doubles the calm. */
		uint64_t wall = now - P.at, waited = delay - P.delay, busy = ran - P.ran + waited;
		if (waited > wall / 4 || (wall > busy && wall - busy > n * STARVED_NS)) {
			P.calm = P.calm_len;
			if (P.calm_len < PLACE_CALM_MAX)
				P.calm_len *= 2;
		} else {
			P.calm_len = PLACE_CALM;
		}
	}
	P.ran = ran;
	P.delay = delay;
	P.at = now;
	P.sampled = true;
	if (P.calm) {
		P.calm--;
		place(c, FREE, -1);
	} else {
		place(c, WITH, cpu);
		if (P.mode == WITH)
			pin(c->pid, P.tid, P.cpu);
	}
}

/* Busy-polling is for a thread on a CPU of its own. */
bool placement_may_spin(void)
{
	return !P.ready || P.mode != WITH;
}

/* How long the thread may sleep in poll: a pinned program thread gets its
 * own CPUs back after PIN_QUIET_MS without a fault (it may compute on
 * resident memory for hours, where a pin would only keep it from a free
 * CPU). */
int placement_wait_ms(void)
{
	return P.ready && P.pin_tid ? PIN_QUIET_MS : -1;
}

/* No fault for PIN_QUIET_MS. Client lock held. */
void placement_quiet(struct fm_client *c)
{
	if (P.ready && P.mode == WITH)
		place(c, FREE, -1);
}

/* The thread is done with its client. */
void placement_end(void)
{
	if (!P.ready)
		return;
	unpin();
	if (P.stat_fd >= 0)
		close(P.stat_fd);
	if (P.sched_fd >= 0)
		close(P.sched_fd);
	P.ready = false;
}
