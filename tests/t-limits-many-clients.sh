#!/usr/bin/env bash
# t-limits-many-clients: clients registering faster than the monitor serves
# them: 50 processes start at once under one monitor (6x overcommit in all),
# each allocating through the API and verifying every page, then 20 more
# through `fluidmem run` (preloaded malloc, a shared tag each) at once. All
# succeed with their own data; afterwards nothing is left in the monitor.
. "$(dirname "$0")/lib.sh"
N=${MANY_CLIENTS:-50}
start_monitor --local-memory 32M
pids=()
for i in $(seq 1 "$N"); do
	"$FM_BUILD/tests/rmw" --api 4 1 "$i" >"$T/c$i.out" 2>&1 &
	pids+=($!)
done
bad=0
for i in $(seq 1 "$N"); do
	wait "${pids[$((i - 1))]}" || { echo "client $i: exit $?: $(cat "$T/c$i.out")"; bad=$((bad + 1)); continue; }
	want=$("$FM_BUILD/tests/rmw" --malloc 4 1 "$i" | cut -d' ' -f4) # the same without fluidmem
	[ "$(cut -d' ' -f4 "$T/c$i.out")" = "$want" ] || { echo "client $i: $(cat "$T/c$i.out"), want $want"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || fail "$bad of $N clients started at once failed"
note "$N API clients at once: all verified; monitor: $("$FLUIDMEM" status --json | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print('evictions', t['evictions'], 'faults_store', t['faults_store'], 'faults_zero', t['faults_zero'])")"
pids=()
for i in $(seq 1 20); do
	"$FLUIDMEM" run --local-memory 2M -- "$FM_BUILD/tests/rmw" --malloc 6 1 "$((100 + i))" >"$T/r$i.out" 2>&1 &
	pids+=($!)
done
for i in $(seq 1 20); do
	wait "${pids[$((i - 1))]}" || { echo "run $i: exit $?: $(cat "$T/r$i.out")"; bad=$((bad + 1)); continue; }
	want=$("$FM_BUILD/tests/rmw" --malloc 6 1 "$((100 + i))" | cut -d' ' -f4)
	[ "$(cut -d' ' -f4 "$T/r$i.out")" = "$want" ] || { echo "run $i: $(cat "$T/r$i.out"), want $want"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || fail "$bad of 20 'fluidmem run' clients started at once failed"
for _ in $(seq 1 50); do
	st=$("$FLUIDMEM" status --json)
	echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" && break
	sleep 0.1
done
echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" || fail "pages not freed: $(echo "$st" | head -c 500)"
note "20 runs at once: all verified; everything freed"
stop_monitor
