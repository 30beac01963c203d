#!/usr/bin/env bash
# t-rel-restart-mremap: fluidmemd is killed (SIGKILL) four times while a
# program's threads mremap (move, grow, shrink) their regions under load,
# with each mremap's BEGIN..END window widened to 2 x 30 ms
# ($FLUIDMEM_TEST_MREMAP_PAUSE_MS), so kills land inside it. A re-attach
# in the window gives the new monitor the layout the mremap produced (after
# its system call) or announces it again (still in it), so its END is never
# refused and no page is lost: the program verifies every page and exits 0,
# and the monitors' logs show no refused request.
. "$(dirname "$0")/lib.sh"

SOAK=$FM_BUILD/tests/soak
[ -x "$SOAK" ] || fail "build/tests/soak is not built (make)"
start_memcached
URL="memcached://127.0.0.1:$MC_PORT?timeout_ms=1000"
start_monitor --local-memory 16M --store "$URL"
FLUIDMEM_TEST_MREMAP_PAUSE_MS=30 FLUIDMEM_REATTACH_SECONDS=30 \
	"$FLUIDMEM" run --local-memory 8M -- "$SOAK" 24 3 16 91 >"$T/soak.out" 2>&1 &
S=$!
for k in 1 2 3 4; do
	sleep 2.5
	kill -0 $S 2>/dev/null || break
	kill -9 "$FM_MON_PID"
	wait "$FM_MON_PID" 2>/dev/null
	mv "$FM_MON_LOG" "$T/mon-$k.log"
	rm -f "$FM_SOCK"
	sleep 0.5
	start_monitor --local-memory 16M --store "$URL"
done
rc=0
wait $S || rc=$?
cat "$T/soak.out"
[ $rc -eq 0 ] || { tail -n 20 "$FM_MON_LOG"; fail "soak exit status $rc, want 0"; }
grep -q "^soak ok .* wrong=0" "$T/soak.out" || fail "soak did not verify its data"
n=$(grep -c "re-attached to the restarted monitor" "$T/soak.out")
before=$(grep -c "an mremap in its system call" "$T/soak.out")
after=$(grep -c "an mremap done" "$T/soak.out")
moves=$(sed -n 's/.* moves=\([0-9]*\).*/\1/p' "$T/soak.out")
note "$n re-attaches: $before inside an mremap's system call, $after after it (before END); $moves moves"
[ "$n" -ge 3 ] || fail "only $n re-attaches of 4 restarts"
[ $((before + after)) -ge 1 ] || fail "no restart landed inside an mremap's BEGIN..END: the test proved nothing"
if grep -h "refused" "$T"/mon-*.log "$FM_MON_LOG"; then fail "a monitor refused a request of the re-attached program"; fi
grep -h "SIGBUS" "$T"/mon-*.log "$FM_MON_LOG" && fail "a monitor delivered SIGBUS"
stop_monitor
exit 0
