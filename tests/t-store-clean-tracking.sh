# Clean-page tracking with a remote store: pages fetched and never written are
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
