# fluidmemd is killed (SIGKILL) while programs fault and evict at ~4x
# overcommit. With a remote store (memcached, Redis) a fluidmemd restarted on
# the same socket takes them back: every program finishes with its data
# verified and exit 0, and the new monitor serves faults and evictions for
# them. A remote-store client whose monitor never comes back stops after
# $FLUIDMEM_REATTACH_SECONDS with exit 70 and a message; with the local
# store a client stops at once (exit 70, the message), never reading zeros.
. "$(dirname "$0")/lib.sh"

totals() {
	"$FLUIDMEM" status --json | python3 -c "import json,sys; d=json.load(sys.stdin)['totals']; print(d['faults_store'], d['evictions'], d['clients'])"
}

# wait_faults N: until the monitor has served N faults from the store
wait_faults() {
	for _ in $(seq 1 200); do
		set -- "$1" $(totals 2>/dev/null || echo 0 0 0)
		[ "${2:-0}" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "the programs did not page (faults_store ${2:-0})"
}

restart_case() {
	local name=$1 url=$2
	note "$name: soak (4 threads, 64 MiB heap and maps) and threads (8 threads, 32 MiB api region) under a 24 MiB budget"
	start_monitor --local-memory 24M --store "$url"
	SOAK_MAPOPS=0 "$FLUIDMEM" run -- "$FM_BUILD/tests/soak" 64 4 8 7 >"$T/soak.out" 2>&1 & s=$!
	"$FM_BUILD/tests/threads" --api 32 30000 >"$T/threads.out" 2>&1 & t=$!
	wait_faults 3000
	set -- $(totals)
	note "$name: before the kill: faults_store=$1 evictions=$2 clients=$3"
	[ "$3" -ge 2 ] || fail "$name: want both programs connected, status says $3 client(s)"
	[ -n "$(ls "$T/state")" ] || fail "$name: no state files in $T/state"
	kill -9 "$FM_MON_PID"
	wait "$FM_MON_PID" 2>/dev/null
	mv "$FM_MON_LOG" "$T/mon-$name-1.log"
	rm -f "$FM_SOCK"
	sleep 2 # the programs fault meanwhile: those faults wait
	kill -0 $s 2>/dev/null || { cat "$T/soak.out"; fail "$name: soak stopped while no monitor ran"; }
	kill -0 $t 2>/dev/null || { cat "$T/threads.out"; fail "$name: threads stopped while no monitor ran"; }
	start_monitor --local-memory 24M --store "$url"
	local rc=0
	wait $s || rc=$?
	cat "$T/soak.out"
	[ $rc -eq 0 ] || { cat "$FM_MON_LOG"; fail "$name: soak exit status $rc, want 0"; }
	grep -q "^soak ok .* wrong=0" "$T/soak.out" || fail "$name: soak did not verify its data"
	grep -q "re-attached" "$T/soak.out" || fail "$name: soak never said it re-attached"
	rc=0
	wait $t || rc=$?
	cat "$T/threads.out"
	[ $rc -eq 0 ] || { cat "$FM_MON_LOG"; fail "$name: threads exit status $rc, want 0"; }
	grep -q "threads ok" "$T/threads.out" || fail "$name: threads lost increments"
	set -- $(totals)
	note "$name: the restarted monitor served faults_store=$1 evictions=$2"
	[ "$1" -gt 0 ] || fail "$name: no fault served from the store after the restart"
	[ "$2" -gt 0 ] || fail "$name: no eviction after the restart"
	[ "$(grep -c 're-attached with' "$FM_MON_LOG")" -eq 2 ] || { cat "$FM_MON_LOG"; fail "$name: want 2 clients re-attached"; }
	grep -q "threads ok" "$T/threads.out" && grep -q "re-attached" "$T/threads.out" || fail "$name: threads did not re-attach"
	stop_monitor
	[ -z "$(ls "$T/state" 2>/dev/null)" ] || fail "$name: state files left after every program exited: $(ls "$T/state")"
}

start_memcached
restart_case memcached "memcached://127.0.0.1:$MC_PORT?timeout_ms=3000"
if command -v redis-server >/dev/null; then
	start_redis
	restart_case redis "redis://127.0.0.1:$REDIS_PORT?timeout_ms=3000"
fi

# A remote store, but no monitor comes back: the client stops after the wait.
start_monitor --local-memory 8M --store "memcached://127.0.0.1:$MC_PORT?timeout_ms=3000"
FLUIDMEM_REATTACH_SECONDS=2 "$FM_BUILD/tests/rmw" --api 64 100 3 >"$T/gone.out" 2>&1 & c=$!
wait_faults 500
kill -9 "$FM_MON_PID"
rm -f "$FM_SOCK"
t0=$(date +%s)
rc=0
wait $c || rc=$?
cat "$T/gone.out"
[ $rc -eq 70 ] || fail "no monitor came back: client exit status $rc, want 70"
grep -q "went away and no monitor took this process back" "$T/gone.out" || fail "no clear message"
grep -q "wrong" "$T/gone.out" && fail "the client read wrong data"
[ $(($(date +%s) - t0)) -le 10 ] || fail "the client waited more than 10 s (FLUIDMEM_REATTACH_SECONDS=2)"

# The local store: nothing survives the monitor; stop at once, loudly.
rm -rf "$T/state"
start_monitor --local-memory 8M
"$FM_BUILD/tests/rmw" --api 64 100 3 >"$T/local.out" 2>&1 & c=$!
wait_faults 500
kill -9 "$FM_MON_PID"
rc=0
wait $c || rc=$?
cat "$T/local.out"
[ $rc -eq 70 ] || fail "local store: client exit status $rc, want 70"
grep -q "monitor (fluidmemd) went away; this process's memory in its store is unreachable" "$T/local.out" ||
	fail "local store: no clear message"
grep -q "wrong\|waiting for it" "$T/local.out" && fail "local store: the client read wrong data or waited"
[ ! -e "$T/state" ] || fail "the local store made a state directory"
exit 0
