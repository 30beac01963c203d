# Bad input on the socket gets a clear error to that client only.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 16M
"$FM_BUILD/tests/badinput" "$FM_SOCK" || fail "bad input handling"
kill -0 "$FM_MON_PID" || fail "the daemon died"
# A peer dripping a message a byte at a time holds up nobody, and is cut off.
python3 - "$FM_SOCK" >"$T/drip.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
t0 = time.time(); sent = 0
try:
    for b in b"FMEM\x01\x00\x10\x00" + b"\x00" * 40:
        s.send(bytes([b])); sent += 1; time.sleep(0.2)
except OSError:
    pass
print("dripped", sent, "bytes in %.1f s" % (time.time() - t0))
PY
drip=$!
sleep 0.3
for i in 1 2 3; do
	timeout 2 "$FLUIDMEM" status >/dev/null || fail "status stalled behind a dripping peer"
done
wait $drip
cat "$T/drip.out"
n=$(awk '{print $2}' "$T/drip.out")
[ "${n:-99}" -lt 20 ] || fail "a dripping peer was not cut off ($n bytes accepted)"
out=$("$FM_BUILD/tests/rmw" --api 64 1 5) || fail "a client after bad input: $out"
stop_monitor
