# An operator drops a region: its pages and store data are freed at once,
# its process gets SIGBUS on its next touch of it, other clients go on.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 16M
"$FM_BUILD/tests/rmw" --api 64 100000 5 >"$T/victim.out" 2>&1 & v=$!
"$FM_BUILD/tests/rmw" --api 32 4 6 >"$T/other.out" 2>&1 & o=$!
for _ in $(seq 1 100); do
	id=$("$FLUIDMEM" status --json | python3 -c "
import json,sys
for c in json.load(sys.stdin)['clients']:
    if c['pid'] == $v and c['regions_detail'] and c['faults_store'] > 500: print(c['regions_detail'][0]['id'])")
	[ -n "$id" ] && break
	sleep 0.1
done
[ -n "$id" ] || fail "the victim never paged"
out=$("$FLUIDMEM" drop "$id" 2>&1) || fail "drop: $out"
rc=0
wait $v || rc=$?
[ $rc -eq 135 ] || fail "the process of a dropped region exited $rc, want 135 (SIGBUS)"
wait $o || fail "another client: $(cat "$T/other.out")"
grep -q "rmw ok" "$T/other.out" || fail "the other client did not verify"
out=$("$FLUIDMEM" drop 0123456789abcdef0123456789abcdef 2>&1) && fail "dropping an unknown region succeeded"
echo "$out" | grep -q "no such region" || fail "unclear error: $out"
grep -q "dropped by the operator" "$FM_MON_LOG" || fail "no log line"
stop_monitor
