# munmap, mremap (move, grow, shrink), madvise(DONTNEED) and MAP_FIXED on
# regions: the program sees exactly what it sees without fluidmem.
. "$(dirname "$0")/lib.sh"
"$FM_BUILD/tests/mapops" >"$T/plain.txt" || fail "mapops failed without fluidmem"
fmrun 4M "$T/s.json" "$FM_BUILD/tests/mapops" >"$T/fm.txt" || fail "mapops failed under fluidmem"
diff -u "$T/plain.txt" "$T/fm.txt" || fail "transcripts differ"
assert_paging "$T/s.json"
# A program that closes every descriptor (the library's socket among them)
# keeps its memory: the monitor sees the socket close and goes on serving it.
start_monitor --local-memory 8M
out=$("$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/tests/closefds" 64 2>&1) || fail "closefds: $out"
grep -q "closed its fluidmem socket" "$FM_MON_LOG" || fail "closefds: the monitor did not see the socket close"
# its 16,384 pages come back from the store only in the pass after the close
back=$(( $(stat_of bytes_in) / 4096 ))
[ "$back" -gt 8192 ] || fail "closefds: only $back pages came back from the store"
stop_monitor
# Such a program has no libfluidmem watcher to follow a monitor that stops:
# the monitor stops it with SIGBUS (it read its stored pages as zeros before).
start_monitor --local-memory 8M
"$FLUIDMEM" run -s "$FM_SOCK" -m 8M -- "$FM_BUILD/tests/closefds" 64 5000 >"$T/orphan.txt" 2>&1 &
run=$!
wait_for grep -q "closed its fluidmem socket" "$FM_MON_LOG" || fail "closefds: the monitor did not see the socket close"
stop_monitor
rc=0
wait $run || rc=$?
[ $rc -eq 135 ] || fail "closefds after the monitor stopped: exit $rc, wanted SIGBUS (135): $(cat "$T/orphan.txt")"
# A region unmapped with the raw system call while a thread faults it back:
# the answer to the fault in flight fails (ENOENT); the process goes on
# being served (it was dropped as if dead before) and its memory verifies.
out=$(fmrun 4M "$T/r.json" "$FM_BUILD/tests/rawunmap" 60 8) || fail "rawunmap: $out"
note "$out"
[ "$(json_get "$T/r.json" faults_store)" -gt 1000 ] || fail "rawunmap: few store faults ($(json_get "$T/r.json" faults_store))"
