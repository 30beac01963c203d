# 8 threads increment counters in pages while eviction runs: none is lost.
. "$(dirname "$0")/lib.sh"
out=$(fmrun 8M "$T/s.json" "$FM_BUILD/tests/threads" --malloc 48 40000) || fail "$out"
note "$out"
assert_paging "$T/s.json"
