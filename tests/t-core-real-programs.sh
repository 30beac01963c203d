# Unmodified programs from Debian packages produce the same output under
# fluidmem with a budget well below their peak memory.
. "$(dirname "$0")/lib.sh"
command -v xz >/dev/null || skip "xz not installed"
command -v gawk >/dev/null || skip "gawk not installed"
seq 1 150000 | gawk '{print $1*7919 % 1000003, $1}' >"$T/in.txt"
want=$(xz -9 -T1 -c "$T/in.txt" | sha256sum)
got=$(fmrun 12M "$T/xz.json" xz -9 -T1 -c "$T/in.txt" | sha256sum)
[ "$got" = "$want" ] || fail "xz output differs under fluidmem"
assert_paging "$T/xz.json"
prog='BEGIN { for (i = 0; i < 600000; i++) a[i] = i * 7 " x"; s = 0; for (k in a) s += length(a[k]); print s, length(a) }'
want=$(gawk "$prog")
got=$(fmrun 48M "$T/awk.json" gawk "$prog") || fail "gawk failed under fluidmem"
[ "$got" = "$want" ] || fail "gawk printed '$got', want '$want'"
assert_paging "$T/awk.json"
peak=$(json_get "$T/awk.json" peak_resident_pages)
[ "$peak" -le $((48 * 256 + 256)) ] || fail "resident pages $peak exceeded the 48M budget"
