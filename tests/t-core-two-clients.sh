# Two clients with different data at once, and a third SIGKILLed mid-run:
# the two finish with correct data, the daemon frees the dead one's pages
# and keeps serving.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 24M
"$FM_BUILD/tests/rmw" --api 96 3 11 >"$T/a.out" 2>&1 & a=$!
"$FM_BUILD/tests/rmw" --api 96 3 22 >"$T/b.out" 2>&1 & b=$!
"$FM_BUILD/tests/rmw" --api 256 50 33 >"$T/victim.out" 2>&1 & v=$!
# kill the victim once it is paging
for _ in $(seq 1 100); do
	n=$("$FLUIDMEM" status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(sum(c['faults_store'] for c in d['clients'] if c['pid']==$v))")
	[ "${n:-0}" -gt 1000 ] && break
	sleep 0.1
done
[ "${n:-0}" -gt 1000 ] || fail "the victim never paged"
kill -9 $v
wait $a || fail "client A: $(cat "$T/a.out")"
wait $b || fail "client B: $(cat "$T/b.out")"
grep -q "rmw ok" "$T/a.out" && grep -q "rmw ok" "$T/b.out" || fail "clients did not verify"
[ "$(cut -d' ' -f4 "$T/a.out")" != "$(cut -d' ' -f4 "$T/b.out")" ] || fail "different seeds gave the same data"
# everything of everyone is freed once they are gone
for _ in $(seq 1 50); do
	st=$("$FLUIDMEM" status --json)
	echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" && break
	sleep 0.1
done
echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" || fail "pages not freed: $st"
# and the daemon still serves a new client
out=$("$FM_BUILD/tests/rmw" --api 64 1 5) || fail "a new client after the kill: $out"
stop_monitor
