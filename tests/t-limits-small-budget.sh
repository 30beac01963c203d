#!/usr/bin/env bash
# t-limits-small-budget: a budget smaller than one eviction batch (64K = 16
# pages, --evict-batch 256) still serves every page right: sequential and
# random read-modify-write through the API and the preloaded malloc, 8 threads
# incrementing under eviction, a multi-threaded soak client; a run's own
# --local-memory below 64K too. A budget under 64K is refused with a message.
# The resident peak: at most the budget plus one prefetch window (64 pages)
# (a few pages more while the soak's mapping operations are pending, the soak
# running beside two busy loops), and exactly the budget with --prefetch 0.
. "$(dirname "$0")/lib.sh"
out=$("$FLUIDMEMD" --socket "$T/x.sock" --local-memory 4K 2>&1) && fail "fluidmemd accepted --local-memory 4K"
echo "$out" | grep -q "at least 64K" || fail "no clear message for a 4K budget: $out"
start_monitor --local-memory 64K --evict-batch 256
want=$("$FM_BUILD/tests/rmw" --malloc 8 2 3 | cut -d' ' -f4) # without fluidmem
out=$("$FM_BUILD/tests/rmw" --api 8 2 3) || fail "rmw --api: $out"
[ "$(echo "$out" | cut -d' ' -f4)" = "$want" ] || fail "rmw --api checksum: $out, want $want"
out=$("$FM_BUILD/tests/threads" --api 4 20000) || fail "threads: $out"
out=$(fmrun 64K "$T/m.json" "$FM_BUILD/tests/rmw" --malloc 8 2 3) || fail "rmw --malloc: $out"
[ "$(echo "$out" | cut -d' ' -f4)" = "$want" ] || fail "rmw --malloc checksum: $out, want $want"
assert_paging "$T/m.json"
note "a run's limit of 16K (4 pages) under the 64K monitor"
out=$(fmrun 16K "$T/t.json" "$FM_BUILD/tests/rmw" --malloc 8 2 3 2>&1) || fail "rmw --malloc at 16K: $out"
[ "$(echo "$out" | cut -d' ' -f4)" = "$want" ] || fail "rmw --malloc at 16K checksum: $out, want $want"
note "run peak resident: $(json_get "$T/m.json" peak_resident_pages) pages at 64K, $(json_get "$T/t.json" peak_resident_pages) at 16K"
peak_of() { "$FLUIDMEM" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['peak_resident_bytes'])"; }
peak=$(peak_of)
# Prefetch installs its window (64 pages by default) on top of the budget.
[ "$peak" -le $((65536 + 64 * 4096)) ] || fail "peak resident $peak bytes: more than the budget plus one prefetch window"
# Under CPU load (two busy loops) the mapping events stay pending longer: an
# eviction that found nothing to take in the largest region went over the
# budget then (peaks of 87-145 pages in 6 of ~35 loaded runs).
for i in 1 2; do timeout 60 sh -c 'while :; do :; done' & FM_PIDS+=($!); done
out=$(fmrun 64K "$T/s.json" "$FM_BUILD/tests/soak" 12 3 4 11 2>&1) || fail "soak at 64K: $out"
kill "${FM_PIDS[@]: -2}" 2>/dev/null
note "$out"
st=$("$FLUIDMEM" status --json)
note "monitor: $(echo "$st" | python3 -c "import json,sys; d=json.load(sys.stdin); t=d['totals']; print('evictions', t['evictions'], 'faults_store', t['faults_store'], 'peak_resident_bytes', d['peak_resident_bytes'], 'budget', d['budget_bytes'])")"
[ "$(stat_of faults_poisoned)" -eq 0 ] || fail "pages delivered as SIGBUS"
peak=$(echo "$st" | python3 -c "import json,sys; print(json.load(sys.stdin)['peak_resident_bytes'])")
# The soak moves and unmaps regions: a page that eviction cannot write-protect
# while a mapping event is pending stays resident until a later eviction (a
# write to it would otherwise be lost), and eviction then takes from the
# client's other regions; the peak may pass the bound above by a few pages.
# (Since other regions are tried: 80 pages in every run checked, 30 soaks
# under load and 5 of this test; before, up to 145 under load.)
[ "$peak" -le $((65536 + (64 + 8) * 4096)) ] || fail "peak resident $peak bytes in the soak: more than the budget, one prefetch window and 8 pages"
stop_monitor
# Without prefetch the budget holds to the page.
start_monitor --local-memory 64K --evict-batch 256 --prefetch 0
out=$("$FM_BUILD/tests/rmw" --api 8 2 3) || fail "rmw --api without prefetch: $out"
[ "$(echo "$out" | cut -d' ' -f4)" = "$want" ] || fail "rmw --api checksum without prefetch: $out, want $want"
peak=$("$FLUIDMEM" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['peak_resident_bytes'])")
note "without prefetch: peak resident $peak bytes (budget 65536)"
[ "$peak" -le 65536 ] || fail "without prefetch the peak resident $peak bytes exceeds the 64K budget"
stop_monitor
