#!/usr/bin/env bash
# t-limits-regions: more large mappings than the 1024 region slots of a process
# (src/client/client.c MAX_REGIONS): all 1100 mmaps succeed, 1023 as regions
# (the heap holds one slot), the rest as plain memory (seen in /proc/self/maps:
# regions map "/memfd:fluidmem"), every page keeps its data at a 4M budget,
# and unmapped slots are used again. A fork with more regions than a snapshot
# carries (64 pieces) stops the child with exit 70 and a message, never wrong
# data. The monitor's own limits (a region over 64 TiB, overlaps) are in
# t-core-bad-input (tests/badinput.c).
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 64M
out=$(fmrun 4M "$T/s.json" "$FM_BUILD/tests/limits-regions" 1100 1 2>&1) || fail "limits-regions: $out"
note "$out"
line=$(echo "$out" | grep "^limits-regions ok") || fail "no verdict: $out"
get() { echo "$line" | sed "s/.* $1=\([0-9]*\).*/\1/"; }
[ "$(get mappings)" -eq 1100 ] || fail "not every mapping was made"
[ "$(get regions)" -eq 1023 ] || fail "$(get regions) regions, want 1023 (1024 slots, one for the heap)"
[ "$(get plain)" -eq 77 ] || fail "$(get plain) plain mappings, want 77"
[ "$(get remapped_regions)" -eq "$(get remapped)" ] || fail "freed region slots were not used again"
assert_paging "$T/s.json"
# fork: 50 regions fit in a snapshot, 100 do not
out=$(fmrun 8M "$T/f1.json" "$FM_BUILD/tests/limits-regions" 50 1 fork 2>&1) || fail "fork with 50 regions: $out"
echo "$out" | grep -q "child exit 0" || fail "fork with 50 regions: $out"
out=$(fmrun 8M "$T/f2.json" "$FM_BUILD/tests/limits-regions" 100 1 fork 2>&1) || fail "fork with 100 regions: $out"
note "$out"
if ! echo "$out" | grep -q "child exit 0"; then
	echo "$out" | grep -q "child exit 70" && echo "$out" | grep -q "too many regions to snapshot" ||
		fail "fork with 100 regions: neither success nor the defined stop: $out"
fi
# the monitor is still fine and holds nothing of them
out=$("$FM_BUILD/tests/rmw" --api 16 1 3) || fail "a client after the limits: $out"
stop_monitor
