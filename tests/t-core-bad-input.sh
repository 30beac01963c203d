# Bad input on the socket gets a clear error to that client only.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 16M
"$FM_BUILD/tests/badinput" "$FM_SOCK" || fail "bad input handling"
kill -0 "$FM_MON_PID" || fail "the daemon died"
out=$("$FM_BUILD/tests/rmw" --api 64 1 5) || fail "a client after bad input: $out"
stop_monitor
