#!/usr/bin/env bash
# t-store-e2e-memcached: an unmodified program under `fluidmem run --store
# memcached://...` with a budget of a quarter of its memory: with replicas=2,
# one of three servers killed between its write and read passes costs no page;
# with replicas=1, the pages that lived only on the killed server raise SIGBUS
# (the program catches it), no other page does, no page reads wrong, and the
# monitor logs the loss and keeps serving.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"
[ -x "$FLUIDMEM" ] && [ -x "$FM_BUILD/fluidmemd" ] || skip "build/fluidmem and build/fluidmemd not built"
# not the sanitized build: an ASan program cannot run under the preload library
PROG=$(FM_NO_SAN=1 store_bin store-e2e-prog)
MIB=64 BUDGET=16M
PAGES=$((MIB * 256)) RESIDENT=$((16 * 256))

# run_prog URL: runs the program, kills MC_PIDS[1] once it has written every page.
run_prog() {
	rm -f "$T/ready" "$T/go"
	FM_E2E_SIGBUS_LIST=$T/sigbus timeout -k 5 60 "$FLUIDMEM" run --store "$1" --local-memory $BUDGET --stats -- \
		"$PROG" $MIB "$T/ready" "$T/go" >"$T/out" 2>&1 &
	local pid=$!
	wait_for test -e "$T/ready" || { cat "$T/out"; fail "the program did not finish writing"; }
	# metadump URL-encodes the keys' colons
	$MCRAW "${MC_PORTS[1]}" dump | sed 's/%3A/:/g' >"$T/victim-keys" || fail "cannot list the victim's keys"
	kill -9 "${MC_PIDS[1]}"
	wait "${MC_PIDS[1]}" 2>/dev/null
	touch "$T/go"
	RC=0
	wait $pid || RC=$?
	cat "$T/out"
	[ $RC -ne 124 ] && [ $RC -ne 137 ] || fail "the program hung for 60 s after the store lost its pages (the monitor delivered neither the page nor SIGBUS)"
}

start_pool 3
run_prog "$POOL?replicas=2&timeout_ms=300&retry_ms=1000"
[ $RC -eq 0 ] || fail "replicas=2: the program failed ($RC)"
grep -q "pages=$PAGES ok=$PAGES sigbus=0 wrong=0" "$T/out" || fail "replicas=2: pages lost or wrong"
[ "$(wc -l <"$T/victim-keys")" -gt 1000 ] || fail "the victim held too few pages to prove anything"

# replicas=1 on a fresh pool.
for p in "${MC_PIDS[@]}"; do kill "$p" 2>/dev/null; done
MC_PIDS=() MC_PORTS=()
start_pool 3
run_prog "$POOL?timeout_ms=300&retry_ms=300"
[ $RC -eq 0 ] || fail "replicas=1: the program saw wrong data or died ($RC)"
grep -q "wrong=0" "$T/out" || fail "replicas=1: wrong data"
# The victim's keys, as page indexes of the program's region (fm:<region>:<hex page>).
awk -F: '{ print $2 }' "$T/victim-keys" | sort | uniq -c | sort -rn | head -1 | awk '{ print $2 }' >"$T/region"
region=$(cat "$T/region")
grep "^fm:$region:" "$T/victim-keys" | while IFS=: read -r _ _ hex; do echo $((16#$hex)); done | sort -n >"$T/victim-pages"
sort -n "$T/sigbus" >"$T/sigbus-sorted"
lost=$(wc -l <"$T/victim-pages")
bus=$(wc -l <"$T/sigbus-sorted")
note "the victim held $lost of $PAGES pages; $bus raised SIGBUS"
[ "$bus" -gt 0 ] || fail "no SIGBUS although a server with $lost pages died"
extra=$(comm -13 "$T/victim-pages" "$T/sigbus-sorted" | wc -l)
[ "$extra" -eq 0 ] || fail "$extra pages raised SIGBUS that did not live on the dead server"
[ "$bus" -ge $((lost - RESIDENT)) ] || fail "only $bus of the $lost pages on the dead server raised SIGBUS"
grep -q "delivering SIGBUS" "$T/out" || note "the monitor's log line about the lost page was not in the run's output"
exit 0
