# fork: children see a snapshot of their parent's memory (including pages in
# the store), neither side sees the other's later writes; system() and popen()
# work; a shell pipeline with many forks runs under fluidmem.
. "$(dirname "$0")/lib.sh"
out=$(fmrun 16M "$T/s.json" "$FM_BUILD/tests/forksnap" 64 3) || fail "$out"
note "$out"
assert_paging "$T/s.json"
got=$(fmrun 16M "$T/s2.json" bash -c 'x=$(seq 1 20000 | sort -n | tail -1); for i in 1 2 3; do y=$(echo $i); done; echo "$x$y"') || fail "bash under fluidmem failed"
[ "$got" = "200003" ] || fail "bash pipeline printed '$got'"
