#!/usr/bin/env bash
# t-store-memcached-replicas: replicas=2 over three memcached servers; one is
# killed (SIGKILL) in the middle of reading back and every page still reads
# correct from its other copy; writes with the server dead still succeed and
# a fresh handle (which finds the server dead at open) reads them all back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"

start_pool 3
URL="$POOL?replicas=2&timeout_ms=300&retry_ms=2000"
N=4000
"$CHECK" -n $N -r 3 "$URL" write || fail "write $N pages"
"$CHECK" -n $N -r 3 "$URL" keys >"$T/keys"
victim=${MC_PORTS[1]}
held=$($MCRAW "$victim" has "$T/keys" | wc -l)
note "the victim (port $victim) holds a copy of $held of $N pages"
[ "$held" -gt $((N / 3)) ] || fail "the victim holds only $held copies: the kill would prove little"

paused_verify "$T/verify.out" -n $N -r 3 "$URL"
kill -9 "${MC_PIDS[1]}"
wait "${MC_PIDS[1]}" 2>/dev/null
start=$(date +%s%N)
resume_verify || { cat "$T/verify.out"; fail "pages lost or wrong after one of three servers died (replicas=2)"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$T/verify.out"
grep -q "ok=$N .*wrong=0" "$T/verify.out" || fail "not every page verified"
grep -q "3 servers, 2 up" "$T/verify.out" || fail "describe() does not show the dead server"
note "second half read in $ms ms with one server dead"

# Writes while a server is down land on the surviving copy.
"$CHECK" -n $N -r 3 -g 2 "$URL" write || fail "writes with one server dead"
"$CHECK" -n $N -r 3 -g 2 "$URL" verify || fail "new generation not read back with one server dead"
# Only two servers remain: each page written now has a copy on them.
for p in "${MC_PORTS[0]}" "${MC_PORTS[2]}"; do $MCRAW "$p" has "$T/keys"; done | sort -nu | wc -l >"$T/n"
[ "$(cat "$T/n")" -eq $N ] || fail "only $(cat "$T/n") of $N pages have a surviving copy"
exit 0
