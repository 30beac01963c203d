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
