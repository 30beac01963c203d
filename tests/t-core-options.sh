# The monitor's tuning options keep the data right: asynchronous eviction,
# thread affinity, no prefetch, no zero-page skipping, no busy polling, and a
# budget smaller than one eviction batch.
. "$(dirname "$0")/lib.sh"
for flags in "--async-evict 512 --affinity 1,0" "--prefetch 0 --no-zero-skip --poll-us 0" "--evict-batch 256"; do
	budget=16M
	[ "$flags" = "--evict-batch 256" ] && budget=256K
	start_monitor --local-memory $budget $flags
	out=$("$FM_BUILD/tests/rmw" --api 64 2 9) || fail "rmw with $flags: $out"
	out2=$("$FM_BUILD/tests/threads" --api 32 8000) || fail "threads with $flags: $out2"
	ev=$(stat_of evictions) fs=$(stat_of faults_store)
	note "$flags: $out, evictions $ev, store faults $fs"
	[ "$ev" -gt 0 ] && [ "$fs" -gt 0 ] || fail "no paging with $flags"
	stop_monitor
done
