#!/usr/bin/env bash
# t-rel-store-stop: one memcached server of three is frozen (SIGSTOP: its
# socket stays open and nothing answers) for 4 s under load. Client A pages
# through the store (32 MiB at 8M) and waits on that server; client B (its
# pages stay resident) keeps faulting. The monitor must keep serving B and
# answer `fluidmem status` within a bound the whole time (a status that
# waited for A's lock while holding the daemon lock froze the whole monitor
# once); after SIGCONT A's faults complete (replicas=1, retry_ms longer than
# the stop: they wait, never zeros), and both verify every page.
. "$(dirname "$0")/lib.sh"

SOAK=$FM_BUILD/tests/soak
[ -x "$SOAK" ] || fail "build/tests/soak is not built (make)"
hosts=""
MCP=()
for _ in 1 2 3; do
	start_memcached
	MCP+=("$MC_PID")
	hosts="$hosts${hosts:+,}127.0.0.1:$MC_PORT"
done
start_monitor --local-memory 32M --store "memcached://$hosts?replicas=1&timeout_ms=300&retry_ms=9000"

"$FLUIDMEM" run --local-memory 8M --stats-json "$T/a.json" -- "$SOAK" 32 2 14 71 >"$T/a.out" 2>&1 &
A=$!
"$FLUIDMEM" run --local-memory 16M --stats-json "$T/b.json" -- "$SOAK" 8 2 14 72 >"$T/b.out" 2>&1 &
B=$!

# b_faults: B's faults now (its row in the status), or nothing.
b_faults() {
	python3 -c "
import json, sys
d = json.load(open('$1'))
for c in d['clients']:
    if c['tag'].startswith('run-$B-'):
        print(c['faults_zero'] + c['faults_store'] + c['faults_wp'])
"
}

sleep 4
kill -STOP "${MCP[0]}"
note "memcached ${MCP[0]} stopped"
worst=0 polls=0 first= last= down=0
end=$(( $(date +%s%N) + 4000000000 ))
while [ "$(date +%s%N)" -lt $end ]; do
	s=$(date +%s%N)
	timeout 5 "$FLUIDMEM" status --json >"$T/st.json" 2>"$T/st.err" ||
		{ kill -CONT "${MCP[0]}"; fail "fluidmem status failed or hung with a store server stopped: $(cat "$T/st.err")"; }
	ms=$(( ($(date +%s%N) - s) / 1000000 ))
	[ $ms -gt $worst ] && worst=$ms
	polls=$((polls + 1))
	f=$(b_faults "$T/st.json")
	[ -n "$f" ] && { [ -z "$first" ] && first=$f; last=$f; }
	grep -q '"store":"[^"]*down' "$T/st.json" && down=$((down + 1))
	sleep 0.3
done
kill -CONT "${MCP[0]}"
t_cont=$(date +%s)
note "during the stop: $polls status answers, slowest $worst ms; B's faults $first -> $last; store shown down in $down"
[ "$polls" -ge 2 ] || fail "only $polls status answers in 4 s"
[ "$worst" -lt 3000 ] || fail "a status took $worst ms with one store server stopped"
[ -n "$first" ] && [ "$last" -gt "$first" ] || fail "client B (run $B) was not served while a store server was stopped ($first -> $last): $(python3 -c "import json; print([(c['pid'], c['tag'], c['busy']) for c in json.load(open('$T/st.json'))['clients']])")"
[ "$down" -gt 0 ] || fail "status never showed the stopped server as down: the stop proved nothing"

ra=0 rb=0
wait $A || ra=$?
wait $B || rb=$?
note "clients done $(( $(date +%s) - t_cont )) s after SIGCONT"
tail -n 2 "$T/a.out" "$T/b.out"
[ $ra -eq 0 ] && grep -q "^soak ok .* wrong=0" "$T/a.out" || fail "client A (exit $ra) did not verify: $(tail -n 3 "$T/a.out")"
[ $rb -eq 0 ] && grep -q "^soak ok .* wrong=0" "$T/b.out" || fail "client B (exit $rb) did not verify: $(tail -n 3 "$T/b.out")"
assert_paging "$T/a.json"
poisoned=$(json_get "$T/a.json" faults_poisoned)
[ "$poisoned" -eq 0 ] || fail "client A got $poisoned SIGBUS: a stop shorter than retry_ms lost pages"
grep -q "store unavailable" "$FM_MON_LOG" && { cat "$FM_MON_LOG"; fail "the monitor reported pages unavailable"; }
stop_monitor
exit 0
