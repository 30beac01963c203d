# Clean-page tracking (always) with a remote store: pages fetched and never written are
# evicted without a write, written ones are written back; the data stays right.
. "$(dirname "$0")/lib.sh"
start_memcached
start_monitor --local-memory 16M --store "memcached://127.0.0.1:$MC_PORT" --clean-tracking
out=$("$FM_BUILD/tests/rmw" --api 64 0 5) || fail "read-mostly run: $out"
out=$("$FM_BUILD/tests/rmw" --api 64 2 6) || fail "read-modify-write run: $out"
out=$("$FM_BUILD/tests/threads" --api 32 8000) || fail "threads: $out"
skipped=$(stat_of pages_clean_skipped) wp=$(stat_of faults_wp) written=$(stat_of pages_written)
note "clean evictions skipped $skipped, write-protect faults $wp, pages written $written"
[ "$skipped" -gt 0 ] || fail "no clean page was evicted without a write"
[ "$wp" -gt 0 ] || fail "no write-protect fault: pages were not fetched protected"
stop_monitor

# The default, --clean-tracking=auto, with the local store (which then keeps
# a copy of each page fetched clean): two read passes evict their pages
# without a write; the write pass that follows turns it off after a few
# write-protect faults, not one per page; the data stays right. With off,
# none of it.
n=8192 # pages of the 32M region
for mode in auto off; do
	start_monitor --local-memory 8M --clean-tracking=$mode
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/bench/touch" --size 32M --passes init,read,read,seq) ||
		fail "touch ($mode): $out"
	echo "$out" | grep -q "kind=verify .*result=ok" || fail "touch ($mode): $out"
	eval "skipped_$mode=$(stat_of pages_clean_skipped) wp_$mode=$(stat_of faults_wp)"
	stop_monitor
done
note "auto: $skipped_auto clean evictions, $wp_auto write-protect faults; off: $skipped_off, $wp_off"
# two read passes and the verify: 10,989-16,449 clean evictions measured
[ "$skipped_auto" -gt "$n" ] || fail "auto: only $skipped_auto clean evictions over two read passes of $n pages"
# the write pass: with protection on every fetch it would be n faults
[ "$wp_auto" -lt $((n / 32)) ] || fail "auto: $wp_auto write-protect faults"
[ "$skipped_off" -eq 0 ] && [ "$wp_off" -eq 0 ] || fail "off: $skipped_off clean evictions, $wp_off write-protect faults"

# A program that closes its fluidmem socket is probed for liveness on the first
# page of its first map; a probe that lifted a clean page's protection hid the
# next write to it, which a clean eviction then dropped.
start_monitor --local-memory 4M
out=$("$FM_BUILD/tests/cleanprobe" 32 2>&1) || fail "cleanprobe: $out"
grep -q "closed its fluidmem socket" "$FM_MON_LOG" || fail "cleanprobe: the monitor did not see the socket close"
[ "$(stat_of pages_clean_skipped)" -gt 0 ] || fail "cleanprobe: no clean eviction"
stop_monitor
