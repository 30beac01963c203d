# The prefetcher follows forward streams, backward walks and strides: the
# same program faults far fewer pages in from the store with it, and its data
# is right either way.
. "$(dirname "$0")/lib.sh"
for pf in 0 64; do
	start_monitor --local-memory 16M --prefetch $pf
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 16M -- "$FM_BUILD/tests/strides" 64) || fail "--prefetch $pf: $out"
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 16M -- "$FM_BUILD/tests/rmw" --mmap 64 1 3) || fail "--prefetch $pf rmw: $out"
	eval "fs_$pf=$(stat_of faults_store) pre_$pf=$(stat_of pages_prefetched)"
	stop_monitor
done
note "store faults: $fs_0 without prefetch, $fs_64 with ($pre_64 pages prefetched)"
[ "$pre_0" -eq 0 ] || fail "pages prefetched with --prefetch 0"
[ "$pre_64" -gt 0 ] || fail "nothing prefetched"
[ $((fs_64 * 2)) -lt "$fs_0" ] || fail "prefetch did not halve the store faults ($fs_64 vs $fs_0)"
