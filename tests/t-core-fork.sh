# fork: children see a snapshot of their parent's memory (including pages in
# the store), neither side sees the other's later writes; system() and popen()
# work; a shell pipeline with many forks runs under fluidmem.
. "$(dirname "$0")/lib.sh"
out=$(fmrun 16M "$T/s.json" "$FM_BUILD/tests/forksnap" 64 3) || fail "$out"
note "$out"
assert_paging "$T/s.json"
# the run's peak is the process tree's, not the sum of its 4 processes'
# peaks (12,754 pages before; a fork's copy may overshoot a while)
peak=$(json_get "$T/s.json" peak_resident_pages)
[ "$peak" -le $((2 * 16 * 256)) ] || fail "peak resident $peak pages over twice the 16M budget"
got=$(fmrun 16M "$T/s2.json" bash -c 'x=$(seq 1 20000 | sort -n | tail -1); for i in 1 2 3; do y=$(echo $i); done; echo "$x$y"') || fail "bash under fluidmem failed"
[ "$got" = "200003" ] || fail "bash pipeline printed '$got'"
