#!/usr/bin/env bash
# t-soak-mremap: the four mremap cases the soak test found, each on its own,
# deterministic enough to name: (1) growing a shrunk mapping past its neighbour
# (the kernel moves it) must not take the neighbour's pages away; (2) mremap
# moves in one thread racing mmap/munmap in another must not lose the moved
# mapping; (3) after mremap(MREMAP_FIXED) of a mapping onto another one, a
# shrink then a grow must work, and madvise(DONTNEED) of plain memory made in
# the tail the shrink freed must too; (4) a grow in place while another thread
# moves the neighbouring mapping away must leave the grown part served
# (tests/soak.c: neighbour, move-race, move-onto, grow-race). The races catch
# an ordering bug in some runs only: here once each, `make stress` runs them
# more (stress-soak-mremap.sh sets SOAK_RACES=1).
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 64M
bad=0
out=$(fmrun 64M "$T/n.json" "$FM_BUILD/tests/soak" neighbour 2>&1); rc=$?
echo "$out"
if [ $rc -eq 77 ]; then note "neighbour case could not be set up"; elif [ $rc -ne 0 ]; then
	echo "FAIL: growing a mapping past its neighbour lost the neighbour (exit $rc)"; bad=1
fi
out=$(fmrun 64M "$T/o.json" "$FM_BUILD/tests/soak" move-onto 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
	echo "FAIL: after moving a mapping onto another, shrink + grow or madvise in the freed tail misbehave (exit $rc)"; bad=1
fi
# race MODE ROUNDS WHAT: one round (ROUNDS with SOAK_RACES=1) of `soak MODE`.
race() {
	local rounds=1 i rc
	[ "${SOAK_RACES:-0}" = 1 ] && rounds=$2
	for i in $(seq 1 $rounds); do
		out=$(fmrun 64M "$T/$1-$i.json" "$FM_BUILD/tests/soak" "$1" 2>&1); rc=$?
		echo "$out" | sed 's/^[0-9:.]* //' | sort | uniq -c
		if [ $rc -ne 0 ]; then
			echo "FAIL: $3: exit $rc in round $i"; bad=1; return
		fi
	done
}
race move-race 3 "mremap moves racing mmap/munmap"
race grow-race 5 "mremap grow in place racing a neighbour that moves away"
stop_monitor
[ $bad = 0 ] || fail "mremap handling loses mappings (see above)"
