#!/usr/bin/env bash
# t-store-memcached: the store contract on one memcached and on a pool of three;
# the pool spreads pages over all servers with exactly `replicas` copies each;
# a value tampered with on the server (garbage, a flipped bit, another page's
# value) reads back CORRUPT; an unreachable pool is a one-line error at open.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"

start_pool 3
P=("${MC_PORTS[@]}")
"$CONTRACT" "memcached://127.0.0.1:${P[0]}" || fail "contract on one server"
"$CONTRACT" "$POOL" || fail "contract on a pool of three"
"$CONTRACT" "$POOL?replicas=3" || fail "contract on a pool of three with replicas=3"

N=3000
"$CHECK" -n $N -r 7 "$POOL" write || fail "write $N pages"
"$CHECK" -n $N -r 7 "$POOL" keys >"$T/keys"
total=0
for p in "${P[@]}"; do
	$MCRAW "$p" has "$T/keys" >"$T/on-$p" || fail "raw read of port $p"
	c=$(wc -l <"$T/on-$p")
	note "server $p holds $c of $N pages"
	[ "$c" -gt $((N / 5)) ] || fail "server $p holds only $c of $N pages: placement is not spread"
	total=$((total + c))
done
[ $total -eq $N ] || fail "replicas=1 but $total copies of $N pages"

"$CHECK" -n $N -r 8 "$POOL?replicas=2" write || fail "write with replicas=2"
"$CHECK" -n $N -r 8 "$POOL?replicas=2" keys >"$T/keys2"
for p in "${P[@]}"; do $MCRAW "$p" has "$T/keys2"; done | sort -n | uniq -c >"$T/copies2"
bad=$(awk '$1 != 2' "$T/copies2" | wc -l)
[ "$(wc -l <"$T/copies2")" -eq $N ] && [ "$bad" -eq 0 ] || fail "replicas=2: $bad pages without exactly 2 copies on distinct servers"

# Tamper with pages 10, 11 and 12 directly on the server that holds them.
holder() { for p in "${P[@]}"; do grep -qx "$1" "$T/on-$p" && { echo "$p"; return; }; done; fail "nobody holds page $1"; }
key() { awk -v i="$1" '$1 == i { print $2 }' "$T/keys"; }
$MCRAW "$(holder 10)" garbage "$(key 10)" || fail "tamper 10"
$MCRAW "$(holder 11)" flip "$(key 11)" || fail "tamper 11"
# page 13's value under page 12's key (on page 12's server)
$MCRAW "$(holder 13)" copy "$(key 13)" "$(holder 12)" "$(key 12)" || fail "tamper 12"
printf '10\n11\n12\n' >"$T/corrupt"
"$CHECK" -n $N -r 7 -c "$T/corrupt" "$POOL" verify || fail "tampered values not reported CORRUPT (or others wrong)"

# replicas=2: one damaged copy is outvoted by the good one (with and without a
# version asked for); both copies damaged is CORRUPT.
for p in "${P[@]}"; do $MCRAW "$p" has "$T/keys2" >"$T/on2-$p"; done
holders2() { for p in "${P[@]}"; do grep -qx "$1" "$T/on2-$p" && echo "$p"; done; }
key2() { awk -v i="$1" '$1 == i { print $2 }' "$T/keys2"; }
h=($(holders2 20))
[ ${#h[@]} -eq 2 ] || fail "page 20 has ${#h[@]} copies"
$MCRAW "${h[0]}" garbage "$(key2 20)" || fail "tamper one copy of 20"
h=($(holders2 21))
$MCRAW "${h[1]}" flip "$(key2 21)" || fail "tamper one copy of 21"
h=($(holders2 22))
$MCRAW "${h[0]}" garbage "$(key2 22)" && $MCRAW "${h[1]}" flip "$(key2 22)" || fail "tamper both copies of 22"
echo 22 >"$T/corrupt2"
"$CHECK" -n $N -r 8 -c "$T/corrupt2" "$POOL?replicas=2" verify || fail "replicas=2: a single bad copy was not outvoted, or two were not CORRUPT"

# Nobody listening: a clear one-line error and a distinct exit code.
dead=$(free_port)
out=$("$CHECK" "memcached://127.0.0.1:$dead?timeout_ms=200" open)
rc=$?
note "$out"
[ $rc -eq 2 ] || fail "open of a dead pool exited $rc"
echo "$out" | grep -q "no server reachable (127.0.0.1:$dead: " || fail "unclear error: $out"
exit 0
