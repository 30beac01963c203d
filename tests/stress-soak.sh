#!/usr/bin/env bash
# stress-soak: several multi-threaded soak clients (tests/soak.c: verified random
# reads and writes, munmap/mmap, mremap grow/shrink/move, DONTNEED) at 4x
# overcommit against one monitor with a memcached pool (3 servers, replicas=2),
# while the script kills clients (kill -9) and starts new ones, kills one
# memcached server, and restarts fluidmemd once. With memcached the clients
# running then wait for the new monitor, re-attach and finish verified; with
# the local store they stop with exit 70 and "the monitor (fluidmemd) went
# away" (nothing survives that monitor), and new clients start against the
# new one. At the end: no page
# lost or wrong in any client that was not killed, the counters consistent, no
# client, nothing resident, and the daemon's anonymous memory did not grow.
#
# Settings (environment): SOAK_SECONDS (180), SOAK_STORE (memcached | local),
# SOAK_CLIENTS (3), SOAK_MIB per client (48), SOAK_THREADS (4),
# SOAK_RESTART_SIG (KILL; TERM checks the monitor's exit like stop_monitor),
# SOAK_SAN (1: the sanitized monitor when built, no memory-growth bound),
# SOAK_MONITOR_ARGS (more fluidmemd flags, e.g. --clean-tracking=always),
# SOAK_SEED (random); SOAK_NO_GROW=1 and SOAK_MAPOPS=0 pass to soak.c (leave
# out mremap grow, or every mapping operation: to tell a bug in them from
# others).
# tests/t-soak-short.sh runs the same script short, local, sanitized.
. "$(dirname "$0")/lib.sh"

SECS=${SOAK_SECONDS:-180}
STORE=${SOAK_STORE:-memcached}
NCL=${SOAK_CLIENTS:-3}
MIB=${SOAK_MIB:-48}
THR=${SOAK_THREADS:-4}
RESTART_SIG=${SOAK_RESTART_SIG:-KILL}
SEED=${SOAK_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
if [ -z "${SOAK_SAN:-}" ]; then
	# The memory-growth bound is for the plain build: ASan's quarantine and
	# shadow memory grow on their own.
	FM_NO_SAN=1
	FLUIDMEMD=$FM_BUILD/fluidmemd
fi
SOAK=$FM_BUILD/tests/soak
[ -x "$SOAK" ] || fail "build/tests/soak is not built (make)"
PER=$((MIB / 4))           # each client's budget: 4x overcommit
GLOBAL=$((NCL * MIB / 4))  # and the monitor's: 4x over all clients
note "seed $SEED: $NCL clients x $MIB MiB x $THR threads, ${PER}M each, monitor ${GLOBAL}M, store $STORE, $SECS s, monitor $FLUIDMEMD"

URL=local://
MC_PIDS=()
if [ "$STORE" = memcached ]; then
	hosts=""
	for _ in 1 2 3; do
		start_memcached
		MC_PIDS+=("$MC_PID")
		hosts="$hosts${hosts:+,}127.0.0.1:$MC_PORT"
	done
	URL="memcached://$hosts?replicas=2&timeout_ms=300&retry_ms=2000"
fi

EPOCH=1
start_monitor --local-memory "${GLOBAL}M" --store "$URL" ${SOAK_MONITOR_ARGS:-}
epoch_start=$(date +%s)

# status_json: the monitor's status, or nothing when it does not answer.
status_json() { "$FLUIDMEM" status --json 2>/dev/null; }

# Clients: one slot per concurrent client.
declare -a CPID COUT CKIND CNAME
n_started=0 n_ok=0 n_killed=0 n_restart70=0 n_reattached=0 pages_verified=0 writes=0 verifies=0 mapops=0
failures=()
problem() { echo "PROBLEM: $*" >&2; failures+=("$*"); }

start_client() {
	local slot=$1 left=$2 secs
	n_started=$((n_started + 1))
	secs=$((8 + RANDOM % 20))
	[ "$secs" -gt "$left" ] && secs=$left
	[ "$secs" -lt 2 ] && secs=2
	CNAME[$slot]="client $n_started (seed $((SEED * 1000 + n_started)), ${secs}s, epoch $EPOCH)"
	COUT[$slot]=$T/client-$n_started.out
	"$FLUIDMEM" run --local-memory "${PER}M" -- "$SOAK" "$MIB" "$THR" "$secs" $((SEED * 1000 + n_started)) \
		>"${COUT[$slot]}" 2>&1 &
	CPID[$slot]=$!
	CKIND[$slot]=normal
}

# The program under `fluidmem run` (a child of the wrapper).
child_of() { cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}'; }

# reap SLOT: if the client ended, judge its exit. Returns 0 when the slot is free.
reap() {
	local slot=$1 pid=${CPID[$1]:-} rc=0 out
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null && return 1
	wait "$pid" || rc=$?
	CPID[$slot]=
	out=${COUT[$slot]}
	if grep -q "WRONG\|SIGBUS" "$out"; then
		problem "${CNAME[$slot]} read wrong data or got SIGBUS (exit $rc): $(grep -m 5 'WRONG\|SIGBUS\|that is page\|fluidmemd:' "$out" | tr '\n' ' ')"
		return 0
	fi
	case "${CKIND[$slot]}:$rc" in
	killed:137) n_killed=$((n_killed + 1)); return 0 ;;
	killed:0) n_ok=$((n_ok + 1)); return 0 ;; # it finished before the kill landed
	restart:70)
		if [ "$STORE" != local ]; then
			problem "${CNAME[$slot]} stopped at the monitor restart (a remote store's clients re-attach): $(grep -m 3 fluidmem "$out" | tr '\n' ' ')"
		elif grep -q "monitor (fluidmemd) went away" "$out"; then
			n_restart70=$((n_restart70 + 1))
		else
			problem "${CNAME[$slot]} exit 70 without the message"
		fi
		return 0 ;;
	restart:0) # re-attached, or it was done before the restart landed
		grep -q "re-attached to the restarted monitor" "$out" && n_reattached=$((n_reattached + 1)) ;&
	*:0)
		if grep -q "^soak ok" "$out"; then
			n_ok=$((n_ok + 1))
			local l; l=$(grep "^soak ok" "$out")
			pages_verified=$((pages_verified + $(echo "$l" | sed 's/.* pages=\([0-9]*\).*/\1/')))
			writes=$((writes + $(echo "$l" | sed 's/.* writes=\([0-9]*\).*/\1/')))
			verifies=$((verifies + $(echo "$l" | sed 's/.* verifies=\([0-9]*\).*/\1/')))
			mapops=$((mapops + $(echo "$l" | awk '{for(i=1;i<=NF;i++) if ($i ~ /^(maps|grows|shrinks|moves|punches)=/) {split($i,a,"="); s+=a[2]}} END {print s+0}')))
		else
			problem "${CNAME[$slot]} exit 0 without 'soak ok'"
		fi
		return 0 ;;
	esac
	problem "${CNAME[$slot]} (${CKIND[$slot]}) exit $rc: $(tail -n 6 "$out" | tr '\n' ' ')"
	return 0
}

# sample: the daemon's memory and counters, one line each.
sample() {
	local now st
	now=$(( $(date +%s) - epoch_start ))
	if [ -r "/proc/$FM_MON_PID/status" ]; then
		awk -v e=$EPOCH -v t=$now '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} END {print e, t, r, a}' \
			"/proc/$FM_MON_PID/status" >>"$T/rss"
	fi
	st=$(status_json) && echo "$EPOCH $st" >>"$T/status.log"
}

kill_times=" $((SECS * 15 / 100)) $((SECS * 30 / 100)) $((SECS * 55 / 100)) $((SECS * 70 / 100)) $((SECS * 85 / 100)) "
mc_kill_at=$((SECS * 25 / 100))
restart_at=$((SECS * 40 / 100))
restarted=0 mc_killed=0
t0=$(date +%s)
for slot in $(seq 1 "$NCL"); do start_client "$slot" "$SECS"; done
tick=0
while :; do
	el=$(( $(date +%s) - t0 ))
	[ "$el" -ge "$SECS" ] && break
	tick=$((tick + 1))
	[ $((tick % 2)) -eq 0 ] && sample
	# a client kill (-9) at the scheduled times, on a random running client
	case "$kill_times" in *" $el "*)
		kill_times=${kill_times/ $el / }
		c=
		first=$((RANDOM % NCL))
		for k in $(seq 0 $((NCL - 1))); do # a random running client
			slot=$((1 + (first + k) % NCL))
			[ -n "${CPID[$slot]:-}" ] && [ "${CKIND[$slot]}" = normal ] || continue
			c=$(child_of "${CPID[$slot]}")
			[ -n "$c" ] && break
		done
		if [ -n "$c" ]; then
			kill -9 "$c"
			CKIND[$slot]=killed
			note "t=$el s: kill -9 ${CNAME[$slot]} (pid $c)"
		fi ;;
	esac
	if [ "$STORE" = memcached ] && [ $mc_killed = 0 ] && [ "$el" -ge $mc_kill_at ]; then
		kill -9 "${MC_PIDS[1]}"
		wait "${MC_PIDS[1]}" 2>/dev/null
		mc_killed=1
		note "t=$el s: kill -9 memcached on port ${MC_PORTS[1]} (replicas=2 keeps every page)"
	fi
	if [ $restarted = 0 ] && [ "$el" -ge $restart_at ]; then
		restarted=1
		status_json >"$T/final-1.json" || problem "status of monitor 1 before its restart failed"
		for slot in $(seq 1 "$NCL"); do [ -n "${CPID[$slot]:-}" ] && [ "${CKIND[$slot]}" = normal ] && CKIND[$slot]=restart; done
		note "t=$el s: restarting fluidmemd (SIG$RESTART_SIG)"
		if [ "$RESTART_SIG" = TERM ]; then
			stop_monitor
		else
			kill -9 "$FM_MON_PID"
			wait "$FM_MON_PID" 2>/dev/null
		fi
		mv "$FM_MON_LOG" "$T/fluidmemd-1.log"
		# local store: the clients of the old monitor stop (exit 70) before
		# new ones start; a remote store's wait for the new monitor
		busy=0
		[ "$STORE" = local ] && for _ in $(seq 1 100); do
			busy=0
			for slot in $(seq 1 "$NCL"); do reap "$slot" || busy=1; done
			[ $busy = 0 ] && break
			sleep 0.1
		done
		[ $busy = 0 ] || problem "clients of the old monitor still running 10 s after its restart"
		EPOCH=2
		start_monitor --local-memory "${GLOBAL}M" --store "$URL" ${SOAK_MONITOR_ARGS:-}
		epoch_start=$(date +%s)
	fi
	for slot in $(seq 1 "$NCL"); do
		if reap "$slot"; then
			left=$((SECS - el))
			[ "$left" -ge 3 ] && start_client "$slot" "$left"
		fi
	done
	sleep 1
done
# Let the last clients finish (their run time ends by SECS, then the final verify).
for _ in $(seq 1 600); do
	busy=0
	for slot in $(seq 1 "$NCL"); do reap "$slot" || busy=1; done
	[ $busy = 0 ] && break
	sleep 0.2
done
if [ $busy = 1 ]; then
	for slot in $(seq 1 "$NCL"); do
		[ -n "${CPID[$slot]:-}" ] || continue
		problem "${CNAME[$slot]} still running 120 s after the end: $(tail -n 3 "${COUT[$slot]}" | tr '\n' ' ')"
		kill -9 "$(child_of "${CPID[$slot]}")" "${CPID[$slot]}" 2>/dev/null
	done
fi

# Everything of everyone is freed once they are gone.
for _ in $(seq 1 100); do
	st=$(status_json)
	echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and d['totals']['resident_pages']==0 and d['totals']['stored_pages']==0 else 1)" 2>/dev/null && break
	sleep 0.1
done
echo "$st" >"$T/final-2.json"
echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and d['totals']['resident_pages']==0 and d['totals']['stored_pages']==0 else 1)" ||
	problem "after every client exited the monitor still holds something: $(echo "$st" | head -c 600)"
if [ "$STORE" = local ]; then
	echo "$st" | grep -q ' 0 pages held' || problem "the local store still holds pages: $(echo "$st" | python3 -c "import json,sys; print(json.load(sys.stdin)['store'])")"
fi

# Counters: per monitor epoch, consistent at the end and never going backwards.
python3 - "$T" "$SECS" "${SOAK_SAN:-}" >"$T/checks.out" 2>&1 <<'EOF' || problem "$(cat "$T/checks.out")"
import json, sys
T, secs, san = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bad = []
cum = ["faults_zero", "faults_store", "faults_wp", "evictions", "pages_written", "pages_zero_skipped",
       "pages_clean_skipped", "bytes_in", "bytes_out", "pages_prefetched"]
fig = {k: 0 for k in cum + ["faults_poisoned", "store_errors"]}
for e in (1, 2):
    try:
        t = json.load(open(f"{T}/final-{e}.json"))["totals"]
    except Exception:
        continue
    for k in fig:
        fig[k] += t[k]
    if t["faults_poisoned"]:
        bad.append(f"monitor {e}: {t['faults_poisoned']} pages delivered as SIGBUS")
    clean = t["pages_clean_skipped"]  # clean tracking (auto by default)
    if t["pages_written"] + t["pages_zero_skipped"] + clean > t["evictions"]:
        bad.append(f"monitor {e}: pages written {t['pages_written']} + zero-skipped {t['pages_zero_skipped']} + clean {clean} > evictions {t['evictions']}")
    if t["bytes_out"] != 4096 * t["pages_written"]:
        bad.append(f"monitor {e}: bytes_out {t['bytes_out']} != 4096 x pages_written {t['pages_written']}")
    # every page read from the store was written there first, and reading it
    # makes it resident: a page is read once per write (or per clean eviction)
    # after a restart with a remote store, the new monitor may read once each
    # page the old one left stored (its log: "re-attached: N resident, M stored")
    inherited = 0
    if e == 2:
        import re
        try:
            for m in re.finditer(r"re-attached: \d+ resident, (\d+) stored", open(f"{T}/fluidmemd.log").read()):
                inherited += int(m.group(1))
        except OSError:
            pass
    clean += inherited
    if t["faults_store"] * 4096 > t["bytes_in"] or t["bytes_in"] > t["bytes_out"] + 4096 * clean:
        bad.append(f"monitor {e}: faults_store {t['faults_store']} x 4096 <= bytes_in {t['bytes_in']} <= bytes_out {t['bytes_out']} + 4096 x clean-skipped {clean} does not hold")
prev = {}
for line in open(f"{T}/status.log"):
    e, js = line.split(" ", 1)
    t = json.loads(js)["totals"]
    if e in prev:
        for k in cum:
            if t[k] < prev[e][k]:
                bad.append(f"monitor {e}: {k} went backwards {prev[e][k]} -> {t[k]}")
    prev[e] = t
print("figures: faults served %d (zero %d, from store %d, write-protect %d), prefetched %d, evictions %d, pages written %d, zero-skipped %d, clean-skipped %d, store errors %d, SIGBUS %d" % (
    fig["faults_zero"] + fig["faults_store"] + fig["faults_wp"], fig["faults_zero"], fig["faults_store"],
    fig["faults_wp"], fig["pages_prefetched"], fig["evictions"], fig["pages_written"], fig["pages_zero_skipped"],
    fig["pages_clean_skipped"], fig["store_errors"], fig["faults_poisoned"]))
# Memory growth: the anonymous memory (heap; the memfd pages the monitor
# touches count as shared, not here) of the longer-lived monitor.
try:
    rows = [l.split() for l in open(f"{T}/rss")]
except OSError:
    rows = []
for e in ("1", "2"):
    s = [(int(r[1]), int(r[2]), int(r[3])) for r in rows if r[0] == e]
    if len(s) < 6:
        continue
    k = len(s) // 3
    first = sum(x[2] for x in s[:k]) / k
    last = sum(x[2] for x in s[-k:]) / k
    print(f"monitor {e}: RssAnon first third {first/1024:.1f} MiB, last third {last/1024:.1f} MiB, VmRSS max {max(x[1] for x in s)/1024:.1f} MiB ({len(s)} samples over {s[-1][0]} s)")
    if not san and last > 1.5 * first + 16 * 1024:
        bad.append(f"monitor {e}: anonymous memory grew from {first/1024:.1f} MiB to {last/1024:.1f} MiB")
for b in bad:
    print("BAD:", b)
sys.exit(1 if bad else 0)
EOF
cat "$T/checks.out"
note "clients: $n_started started, $n_ok finished verified, $n_killed killed (-9) and survived by the monitor, $n_restart70 stopped with exit 70 at the monitor restart, $n_reattached re-attached to the new monitor and finished verified"
note "verified pages at exit: $pages_verified, writes $writes, verified reads $verifies, mapping operations $mapops"
[ "$restarted" = 1 ] || problem "the monitor restart never happened"
[ "$STORE" = local ] || [ "$n_reattached" -ge 1 ] || problem "no client lived through the monitor restart"
[ "$n_killed" -ge 1 ] || problem "no client was killed: the run proved less than it should"
[ "$n_ok" -ge 1 ] || problem "no client finished"
if [ "$RESTART_SIG" = TERM ] || [ -n "${SOAK_SAN:-}" ]; then
	stop_monitor
else
	kill -TERM "$FM_MON_PID"; wait "$FM_MON_PID" || problem "fluidmemd exited with $? at the end"
fi
grep -h "fluidmemd:" "$T"/fluidmemd-1.log "$FM_MON_LOG" 2>/dev/null | grep -v "listening\|shutting down" | sed 's/pid [0-9]*/pid N/; s/0x[0-9a-f]*/ADDR/g; s/^[0-9:.]* //' | sort | uniq -c | sort -rn | head -n 12 | sed 's/^/# monitor log: /'
if [ ${#failures[@]} -gt 0 ]; then
	echo "the first problems (all are above, as PROBLEM lines):" >&2
	for f in "${failures[@]:0:4}"; do echo "  $f" | cut -c1-400 >&2; done
	fail "${#failures[@]} problem(s) in the soak (seed $SEED); clients: $n_ok verified of $n_started"
fi
note "soak passed: 0 pages lost or wrong"
exit 0
