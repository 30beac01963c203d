# Sequential and random read-modify-write over a region 8x the budget, every
# page verified; through the API, the preloaded malloc and a large mmap.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 16M
for mode in --api --malloc --mmap; do
	if [ $mode = --api ]; then
		out=$("$FM_BUILD/tests/rmw" --api 128 2 7) || fail "rmw $mode: $out"
	else
		out=$(FLUIDMEM_SOCKET= fmrun 16M "$T/stats$mode.json" "$FM_BUILD/tests/rmw" $mode 128 2 7) || fail "rmw $mode: $out"
		assert_paging "$T/stats$mode.json"
	fi
	note "$mode: $out"
	want=$("$FM_BUILD/tests/rmw" --malloc 128 2 7 | cut -d' ' -f4) # the same program without fluidmem
	[ "$(echo "$out" | cut -d' ' -f4)" = "$want" ] || fail "checksum differs from a plain run: $out vs $want"
done
ev=$(stat_of evictions); fz=$(stat_of faults_store)
[ "$ev" -gt 0 ] && [ "$fz" -gt 0 ] || fail "the API run did not page: evictions=$ev faults_store=$fz"
stop_monitor
