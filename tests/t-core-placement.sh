# Placement: while one program thread faults at random, its handler thread
# runs on that thread's CPU as SCHED_IDLE (seen in /proc while it runs) and
# goes back to the scheduler for streams; a sequential program is never
# placed; --no-placement never places. The data is right every time.
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
		sleep 0.02
	done
	wait $run || fail "touch $2 ($1): $(tail -3 "$T/out")"
	grep -q "kind=verify .*result=ok" "$T/out" || fail "touch $2 ($1): $(tail -3 "$T/out")"
	moves=$(stat_of placement_moves)
	stop_monitor
}

run_touch "" init,rand,rand,rand
note "random passes: $moves moves, $with_cpu samples of the handler on the program's CPU"
[ "$moves" -ge 2 ] || fail "random faults moved the handler $moves times (onto the CPU, then off for the verify stream)"
[ "$with_cpu" -ge 1 ] || fail "the handler was never seen SCHED_IDLE on the program's CPU"

run_touch "" init,seq,seq
note "sequential passes: $moves moves"
[ "$moves" -eq 0 ] || fail "a sequential program's handler was moved $moves times"

run_touch --no-placement init,rand
note "--no-placement: $moves moves, $with_cpu samples"
[ "$moves" -eq 0 ] && [ "$with_cpu" -eq 0 ] || fail "--no-placement placed the handler ($moves moves)"
