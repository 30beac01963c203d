#!/usr/bin/env bash
# t-limits-regions: more large mappings than the 1024 region slots of a process
# (src/client/client.c MAX_REGIONS): all 1100 mmaps succeed, 1023 as regions
# (the heap holds one slot), the rest as plain memory (seen in /proc/self/maps:
# regions map "/memfd:fluidmem"), every page keeps its data at a 4M budget,
# and unmapped slots are used again. A fork with 1024 regions works (the
# snapshot comes in parts). The monitor's own limits (a region over 64 TiB, overlaps) are in
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
# fork: the snapshot of 100, and of all 1024 regions (the heap's too), comes
# in parts of 64 maps; the child sees every page
for count in 100 1100; do
	out=$(fmrun 8M "$T/f$count.json" "$FM_BUILD/tests/limits-regions" $count 1 fork 2>&1) || fail "fork with $count mappings: $out"
	echo "$out" | grep -q "child exit 0" || fail "fork with $count mappings: $out"
done
# the monitor is still fine and holds nothing of them
out=$("$FM_BUILD/tests/rmw" --api 16 1 3) || fail "a client after the limits: $out"
stop_monitor
