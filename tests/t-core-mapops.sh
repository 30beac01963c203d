# munmap, mremap (move, grow, shrink), madvise(DONTNEED) and MAP_FIXED on
# regions: the program sees exactly what it sees without fluidmem.
. "$(dirname "$0")/lib.sh"
"$FM_BUILD/tests/mapops" >"$T/plain.txt" || fail "mapops failed without fluidmem"
fmrun 4M "$T/s.json" "$FM_BUILD/tests/mapops" >"$T/fm.txt" || fail "mapops failed under fluidmem"
diff -u "$T/plain.txt" "$T/fm.txt" || fail "transcripts differ"
assert_paging "$T/s.json"
# A program that closes every descriptor (the library's socket among them)
# keeps its memory.
out=$(fmrun 8M "$T/c.json" "$FM_BUILD/tests/closefds" 64) || fail "closefds: $out"
assert_paging "$T/c.json"
# A region unmapped with the raw system call while a thread faults it back:
# the answer to the fault in flight fails (ENOENT); the process goes on
# being served (it was dropped as if dead before) and its memory verifies.
out=$(fmrun 4M "$T/r.json" "$FM_BUILD/tests/rawunmap" 60 8) || fail "rawunmap: $out"
note "$out"
[ "$(json_get "$T/r.json" faults_store)" -gt 1000 ] || fail "rawunmap: few store faults ($(json_get "$T/r.json" faults_store))"
