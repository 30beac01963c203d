#!/usr/bin/env bash
# t-store-memcached-replicas: replicas=2 over three memcached servers; one is
# killed (SIGKILL) in the middle of reading back and every page still reads
# correct from its other copy; writes with the server dead still succeed and
# a fresh handle (which finds the server dead at open) reads them all back;
# once the server is restarted empty, a running handle takes it back (its
# missing copies fall back to the other one) and new writes reach it; a
# server that misses writes while stopped (SIGSTOP) keeps stale copies, which
# reads reject in favour of the current copy (by the version asked for, or
# without one by the newest of all copies).
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
# Restart the victim, empty, on its port while a verify run is paused.
paused_verify "$T/back.out" -n $N -r 3 -g 2 "$URL"
memcached -u root -l 127.0.0.1 -p "$victim" -U 0 -m 1024 -t 2 &
MC_PIDS[1]=$!
FM_PIDS+=($!)
wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$victim" || fail "the victim did not restart"
sleep 2.2 # longer than the largest backoff: the handle must have retried it
resume_verify || { cat "$T/back.out"; fail "reads wrong after the dead server came back empty"; }
cat "$T/back.out"
grep -q "3 servers, 3 up" "$T/back.out" || fail "the running handle did not take the restarted server back"
"$CHECK" -n $N -r 3 -g 3 "$URL" write || fail "writes after the restart"
back=$($MCRAW "$victim" has "$T/keys" | wc -l)
note "after the restart the victim holds $back copies again"
[ "$back" -gt $((N / 3)) ] || fail "new writes do not reach the restarted server ($back copies)"
"$CHECK" -n $N -r 3 -g 3 "$URL" verify || fail "generation 3 not read back"
# Stale copies: version 5 everywhere, then version 6 written while server 0
# is stopped, so its copies stay at version 5. Reads that ask for version 6
# must skip them.
"$CHECK" -n $N -r 4 -g 5 -V 5 "$URL" write || fail "write version 5"
kill -STOP "${MC_PIDS[0]}"
"$CHECK" -n $N -r 4 -g 6 -V 6 "$URL" write >"$T/v6.out" || { kill -CONT "${MC_PIDS[0]}"; cat "$T/v6.out"; fail "write version 6 with a server stopped"; }
kill -CONT "${MC_PIDS[0]}"
tail -n 1 "$T/v6.out"
# The setup must really leave stale copies: read server 0 alone for version 5.
"$CHECK" -n $N -r 4 -g 5 -V 5 "memcached://127.0.0.1:${MC_PORTS[0]}" verify >"$T/v5.out"
stale=$(grep -o ' ok=[0-9]*' "$T/v5.out" | cut -d= -f2)
note "server ${MC_PORTS[0]} holds $stale stale (version 5) copies"
[ "${stale:-0}" -gt 0 ] || fail "no stale copies were left: the reads below would prove nothing"
"$CHECK" -n $N -r 4 -g 6 -V 6 "$URL" verify || fail "a versioned read returned a stale copy"
"$CHECK" -n $N -r 4 -g 6 "$URL" verify || fail "an unversioned read returned a stale copy"
exit 0
