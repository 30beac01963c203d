#!/usr/bin/env bash
# t-ops-top: `fluidmem top --once` lists every client with its tag and memory
# and, while one pages, a fault rate that matches its counters; the live view
# draws with escape codes and quits on `q`.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 256M

mkfifo "$T/hold.in"
"$FLUIDMEM" run --local-memory 128M -- "$FM_BUILD/tests/hold" 16 <"$T/hold.in" >"$T/hold.out" 2>&1 &
FM_PIDS+=("$!")
exec {hold}>"$T/hold.in"
wait_for grep -q ready "$T/hold.out" || fail "hold did not start"
"$FLUIDMEM" run --local-memory 8M -- "$FM_BUILD/tests/rmw" --malloc 64 400 >"$T/rmw.out" 2>&1 &
FM_PIDS+=("$!")
wait_for bash -c "[ \$('$FLUIDMEM' status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"clients\"]))') = 2 ]" ||
	fail "two clients expected"
sleep 1
f0=$(stat_of faults_store)
"$FLUIDMEM" top --once --delay 1 >"$T/top.out" || fail "top --once failed"
f1=$(stat_of faults_store)
cat "$T/top.out"
grep -q $'\033' "$T/top.out" && fail "--once printed escape codes"
python3 - "$T/top.out" "$f0" "$f1" <<'PY' || fail "top's table is wrong"
import sys, json, subprocess
lines = open(sys.argv[1]).read().splitlines()
f0, f1 = int(sys.argv[2]), int(sys.argv[3])
hdr = [i for i, l in enumerate(lines) if l.split()[:3] == ["PID", "UID", "TAG"]]
assert hdr, "no header"
cols = lines[hdr[0]].split()
assert cols == ["PID", "UID", "TAG", "SIZE_MIB", "RES_MIB", "STORE_MIB", "FAULTS/S", "EVICT/S", "P50_US", "P99_US"], cols
rows = [dict(zip(cols, l.split())) for l in lines[hdr[0] + 1:] if l.strip()]
assert len(rows) == 2, rows
busy, idle = rows  # most active first
assert int(busy["FAULTS/S"]) > 100 and int(busy["EVICT/S"]) > 100, busy
assert int(idle["FAULTS/S"]) == 0 and int(idle["EVICT/S"]) == 0, idle
assert abs(float(idle["RES_MIB"]) - 16) < 1, idle       # hold 16 MiB, all resident
assert float(busy["RES_MIB"]) <= 8.0, busy               # rmw under its 8M limit
assert float(busy["STORE_MIB"]) > 0 and float(busy["P99_US"]) >= float(busy["P50_US"]) > 0, busy
# the rate is the faults of a ~1 s window: within the counters' growth around it
rate = int(busy["FAULTS/S"])
assert rate <= (f1 - f0) * 1.5 + 100, (rate, f0, f1)
assert busy["TAG"].startswith("run-") and idle["TAG"].startswith("run-") and busy["TAG"] != idle["TAG"]
assert "processes" in lines[1] and "budget 256.0 MiB" in lines[1], lines[1]
print("# top: busy %s faults/s, %s evictions/s" % (busy["FAULTS/S"], busy["EVICT/S"]))
PY

# the live view: clear screen, redraw, `q` quits (a terminal from script(1))
if command -v script >/dev/null; then
	(sleep 3; printf q) | timeout 10 script -qfec "$FLUIDMEM top --delay 0.5" /dev/null >"$T/live.out" 2>&1 ||
		fail "live top did not quit on q (exit $?)"
	n=$(grep -o $'\033\\[H\033\\[2J' "$T/live.out" | wc -l)
	note "live view redrew $n times"
	[ "$n" -ge 2 ] || fail "live view drew $n times in 3 s at 0.5 s: no refresh"
	grep -q "FAULTS/S" "$T/live.out" || fail "live view has no table"
fi

rc=0; "$FLUIDMEM" top --once --socket "$T/nobody.sock" >"$T/err.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "cannot reach fluidmemd" "$T/err.out" || fail "top without a monitor: exit $rc"
echo >&"$hold"
exec {hold}>&-
echo "t-ops-top: ok"
