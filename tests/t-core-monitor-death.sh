# The monitor dies (SIGKILL) while a client pages: the client stops with a
# clear message and never reads a zero page in place of its data.
. "$(dirname "$0")/lib.sh"
FM_NO_SAN=1
FLUIDMEMD=$FM_BUILD/fluidmemd
start_monitor --local-memory 8M
"$FM_BUILD/tests/rmw" --api 128 100 3 >"$T/out" 2>&1 & c=$!
for _ in $(seq 1 100); do
	n=$("$FLUIDMEM" status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['totals']['faults_store'])")
	[ "${n:-0}" -gt 2000 ] && break
	sleep 0.1
done
kill -9 "$FM_MON_PID"
rc=0
wait $c || rc=$?
cat "$T/out"
[ $rc -eq 70 ] || fail "client exit status $rc, want 70"
grep -q "monitor (fluidmemd) went away" "$T/out" || fail "no clear message"
grep -q "wrong" "$T/out" && fail "the client read wrong data"
exit 0
