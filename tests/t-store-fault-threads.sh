#!/usr/bin/env bash
# t-store-fault-threads: with 4 handler threads per client (--fault-threads 4)
# and memcached as the store, 4 program threads doing random read-modify-write
# over a region 4x the budget keep every page right while their store faults
# are served concurrently (faults_concurrent > 0, inflight_max > 1 in the
# status); munmap / mremap / madvise and many faulting threads under the same
# monitor read exactly as without fluidmem.
. "$(dirname "$0")/lib.sh"
start_memcached
start_monitor --local-memory 12M --store "memcached://127.0.0.1:$MC_PORT" --fault-threads 4
"$FLUIDMEM" run --local-memory 12M --stats-json "$T/s.json" -- "$FM_BUILD/bench/touch" --size 48M \
	--threads 4 --passes init,rand,rand --seed 3 >"$T/out" 2>&1 &
pid=$!
max=0
while kill -0 $pid 2>/dev/null; do
	m=$("$FLUIDMEM" status --json 2>/dev/null | python3 -c 'import json,sys
try: print(max([c.get("inflight_max", 0) for c in json.load(sys.stdin)["clients"]] + [0]))
except Exception: print(0)')
	[ "$m" -gt "$max" ] && max=$m
	sleep 0.2
done
wait $pid || { cat "$T/out"; fail "touch failed under --fault-threads 4"; }
grep -q "kind=verify .*result=ok" "$T/out" || { cat "$T/out"; fail "pages read back wrong"; }
assert_paging "$T/s.json"
conc=$(json_get "$T/s.json" faults_concurrent)
note "faults_concurrent=$conc inflight_max=$max"
[ "$conc" -gt 0 ] || fail "no store fault was served while another was in flight"
[ "$max" -gt 1 ] || fail "status never showed more than one fault in flight"

"$FM_BUILD/tests/mapops" >"$T/plain.txt" || fail "mapops failed without fluidmem"
fmrun 4M "$T/m.json" "$FM_BUILD/tests/mapops" >"$T/fm.txt" || fail "mapops failed under --fault-threads 4"
diff -u "$T/plain.txt" "$T/fm.txt" || fail "mapops transcripts differ"
out=$(fmrun 8M "$T/t.json" "$FM_BUILD/tests/threads" --malloc 24 20000) || fail "threads: $out"
note "$out"
assert_paging "$T/t.json"
stop_monitor
