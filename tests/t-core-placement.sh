# Placement: while one program thread faults at random, its handler thread
# runs on that thread's CPU as SCHED_IDLE (seen in /proc while it runs), the
# thread is pinned there, and both go back to the scheduler for streams; a
# sequential program is never placed; --no-placement never places; beside two
# busy loops placing is given up. Eviction by address (the default):
# random passes evict mostly by address, sequential ones never, and none
# with --no-evict-sweep. The data is right every time.
. "$(dirname "$0")/lib.sh"
[ "$(nproc)" -ge 2 ] || skip "one CPU: nothing to place"

# run_touch FLAGS PASSES: touch over 64M at a 16M budget; sets moves, and
# with_cpu (samples of the handler as SCHED_IDLE on the program's CPU).
run_touch() {
	start_monitor --local-memory 16M $1
	"$FLUIDMEM" run -s "$FM_SOCK" -m 16M -- "$FM_BUILD/bench/touch" --size 64M --passes "$2" >"$T/out" 2>&1 &
	local run=$! prog="" pid tid pol psr
	with_cpu=0
	while kill -0 $run 2>/dev/null; do
		[ -n "$prog" ] || prog=$(pgrep -f "^$FM_BUILD/bench/touch" | head -1)
		if [ -n "$prog" ] && [ -r "/proc/$prog/stat" ]; then
			psr=$(awk '{print $39}' "/proc/$prog/stat" 2>/dev/null)
			# the client's thread is named fm-pidPID
			while read -r tid pol cpu; do
				[ "$pol" = IDL ] && [ "$cpu" = "$psr" ] && with_cpu=$((with_cpu + 1))
			done < <(ps -L -o tid=,policy=,psr=,comm= -p "$FM_MON_PID" | awk -v n="fm-pid$prog" '$4 == n {print $1, $2, $3}')
		fi
		sleep 0.01
	done
	wait $run || fail "touch $2 ($1): $(tail -3 "$T/out")"
	grep -q "kind=verify .*result=ok" "$T/out" || fail "touch $2 ($1): $(tail -3 "$T/out")"
	moves=$(stat_of placement_moves) swept=$(stat_of evictions_by_address) evictions=$(stat_of evictions)
	stop_monitor
}

run_touch "" init,rand,rand,rand,rand
note "random passes: $moves moves, $with_cpu samples of the handler on the program's CPU; $swept of $evictions evictions by address"
# random faults: victims by address (evict.c), and every page still checks out
[ "$swept" -gt $((evictions / 3)) ] || fail "random passes: only $swept of $evictions evictions by address"
[ "$moves" -ge 2 ] || fail "random faults moved the handler $moves times (onto the CPU, then off for the verify stream)"
[ "$with_cpu" -ge 1 ] || fail "the handler was never seen SCHED_IDLE on the program's CPU"

# The program thread is pinned to that CPU too while it faults at random; a
# child it forks gets the program's CPUs back, and so does the program after
# 50 ms without a fault.
start_monitor --local-memory 16M
out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 16M -- "$FM_BUILD/tests/pinfork" 64 2>&1) || fail "pinfork: $out"
note "$out"
stop_monitor

# Beside two busy loops the SCHED_IDLE handler hardly gets its CPU: the
# program waits far longer for its faults than placed faults take, so placing
# is given up, for longer at each failure in a row (it was kept, every fault
# starved: random passes 3-10x slower than not placed).
hogs=()
for i in 1 2; do
	sh -c 'while :; do :; done' &
	hogs+=($!)
	FM_PIDS+=($!)
done
run_touch "" init,rand,rand
kill "${hogs[@]}"
note "beside two busy loops: $moves moves"
[ "$moves" -ge 8 ] || fail "beside two busy loops the handler stayed placed ($moves moves)"

run_touch "" init,seq,seq
note "sequential passes: $moves moves, $swept of $evictions evictions by address"
[ "$moves" -eq 0 ] || fail "a sequential program's handler was moved $moves times"
[ "$swept" -eq 0 ] || fail "sequential passes evicted $swept pages by address (first-in first-out expected)"

run_touch "--no-placement --no-evict-sweep" init,rand
note "--no-placement --no-evict-sweep: $moves moves, $with_cpu samples, $swept evictions by address"
[ "$moves" -eq 0 ] && [ "$with_cpu" -eq 0 ] || fail "--no-placement placed the handler ($moves moves)"
[ "$swept" -eq 0 ] || fail "with --no-evict-sweep $swept pages were evicted by address"
