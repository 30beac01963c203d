# --prefetch-install write / continue: prefetched pages are written into the
# region's memfd (continue: and mapped with UFFDIO_CONTINUE) instead of
# UFFDIO_COPY. The data is right, also with two threads running into windows
# while they are written, and the pages really took that path: written pages
# are mapped by the program's own minor faults (one per page, at least: the
# WP registration turns fault-around off), continued ones are not.
. "$(dirname "$0")/lib.sh"
n=8192 # pages of the 32M region
for mode in write continue; do
	start_monitor --local-memory 8M --prefetch-install $mode
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/bench/touch" --size 32M --passes init,seq,rand) ||
		fail "touch ($mode): $out"
	echo "$out" | grep -q "kind=verify .*result=ok" || fail "touch ($mode): $out"
	seqflt=$(echo "$out" | sed -n 's/.*kind=seq .* minflt=\([0-9]*\).*/\1/p')
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/bench/touch" --size 32M --passes init,seq,seq --threads 2) ||
		fail "touch --threads 2 ($mode): $out"
	echo "$out" | grep -q "kind=verify .*result=ok" || fail "touch --threads 2 ($mode): $out"
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/tests/strides" 64) || fail "strides ($mode): $out"
	out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/tests/rmw" --mmap 64 1 3) || fail "rmw ($mode): $out"
	pre=$(stat_of pages_prefetched) hit=$(stat_of prefetch_hits)
	stop_monitor
	note "$mode: sequential pass minflt=$seqflt over $n pages; $pre pages prefetched, $hit hits"
	[ "$pre" -gt "$n" ] || fail "$mode: only $pre pages prefetched"
	[ -n "$seqflt" ] || fail "$mode: no sequential pass"
	if [ $mode = write ]; then
		[ "$seqflt" -ge "$n" ] || fail "write: the sequential pass took $seqflt minor faults over $n pages: the pages were not written into the memfd"
	else
		# fewer than one per page (write mode takes one or two each); the
		# program catching up with a window between its write and its
		# CONTINUE takes one on those pages (255-587 quiet, 6,923 in a
		# loaded CI run)
		[ "$seqflt" -lt "$n" ] || fail "continue: the sequential pass took $seqflt minor faults over $n pages: UFFDIO_CONTINUE did not map them"
	fi
done
