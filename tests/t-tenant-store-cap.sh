# A tenant's store cap: within budget + cap a program runs; past both, a new
# page is a SIGBUS (out of memory) for that program only, never a silent
# zero, and the daemon goes on serving.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 16M --store-cap root=8M
out=$("$FM_BUILD/tests/rmw" --api 20 1 3) || fail "within budget + cap: $out"
ev=$(stat_of evictions)
[ "$ev" -gt 0 ] || fail "no eviction within the cap"
rc=0
"$FM_BUILD/tests/rmw" --api 64 1 3 >"$T/over.out" 2>&1 || rc=$?
cat "$T/over.out"
[ $rc -eq 135 ] || fail "past budget + cap: exit $rc, want 135 (SIGBUS)"
grep -q "store cap" "$FM_MON_LOG" || fail "no log line about the store cap"
grep -q "rmw ok" "$T/over.out" && fail "the program finished past its cap"
out=$("$FM_BUILD/tests/rmw" --api 8 1 3) || fail "the daemon after a capped client: $out"
# the operator raises the cap while the daemon runs: the same program fits now
"$FLUIDMEM" tenant --user root --store-cap 96M || fail "fluidmem tenant refused"
cap=$("$FLUIDMEM" status --json | python3 -c "import json,sys; print([t['store_cap_bytes'] for t in json.load(sys.stdin)['tenants'] if t['uid'] == 0][0])")
[ "$cap" -eq $((96 << 20)) ] || fail "status shows store cap $cap"
out=$("$FM_BUILD/tests/rmw" --api 64 1 3) || fail "after raising the cap: $out"
stop_monitor
