# Programs that change their user under fluidmem (setpriv, su): the library's
# watcher is not a glibc thread, so the setuid broadcast does not trip on it.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root"
command -v setpriv >/dev/null || skip "no setpriv"
mode=$(stat -c %a /dev/userfaultfd)
chmod 666 /dev/userfaultfd # the program continues as nobody and needs it too
trap 'chmod "$mode" /dev/userfaultfd; cleanup' EXIT
out=$("$FLUIDMEM" run -m 16M --stats-json "$T/s.json" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
	sh -c 'x=$(seq 1 50000 | sort -rn | head -1); echo "$(id -u) $x"' 2>&1) || fail "setpriv under fluidmem: $out"
[ "$out" = "65534 50000" ] || fail "setpriv printed '$out'"
[ "$(json_get "$T/s.json" faults_zero)" -gt 0 ] || fail "no fluidmem memory was used"
if command -v su >/dev/null; then
	out=$("$FLUIDMEM" run -m 16M -- su nobody -s /bin/sh -c 'id -u' 2>&1) || fail "su under fluidmem: $out"
	[ "$out" = "65534" ] || fail "su printed '$out'"
fi
