#!/usr/bin/env bash
# t-store-memcached-down: replicas=1 over three memcached servers and one is
# killed mid-run: exactly the pages that lived only there read UNAVAILABLE
# (never zeros, never stale), without waiting longer than retry_ms, and every
# other page verifies; a fresh handle sees the same; a server that stops
# answering (SIGSTOP) for less than retry_ms delays reads but loses nothing;
# with every server dead, open fails with one clear line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"

start_pool 3
URL="$POOL?timeout_ms=200&retry_ms=400"
N=3000
"$CHECK" -n $N -r 5 "$URL" write || fail "write $N pages"
"$CHECK" -n $N -r 5 "$URL" keys >"$T/keys"

# SIGSTOP for 1 s with retry_ms=3000: reads wait and then succeed.
paused_verify "$T/stop.out" -n $N -r 5 "$POOL?timeout_ms=200&retry_ms=3000"
kill -STOP "${MC_PIDS[0]}"
( sleep 1; kill -CONT "${MC_PIDS[0]}" ) &
cont=$!
start=$(date +%s%N)
resume_verify || { cat "$T/stop.out"; fail "a server paused for 1 s (retry_ms=3000) lost pages"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $cont
tail -n 1 "$T/stop.out"
note "second half read in $ms ms across a 1 s SIGSTOP"
[ "$ms" -ge 800 ] || fail "reads did not wait for the stopped server ($ms ms): the test proved nothing"

victim=${MC_PORTS[2]}
$MCRAW "$victim" has "$T/keys" >"$T/lost"
lost=$(wc -l <"$T/lost")
note "the victim (port $victim) alone holds $lost of $N pages"
[ "$lost" -gt $((N / 5)) ] || fail "the victim holds only $lost pages"

paused_verify "$T/verify.out" -n $N -r 5 -u "$T/lost" "$URL"
kill -9 "${MC_PIDS[2]}"
wait "${MC_PIDS[2]}" 2>/dev/null
start=$(date +%s%N)
resume_verify || { cat "$T/verify.out"; fail "with one server dead, statuses or bytes are wrong"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$T/verify.out"
# The pause sits at the first batch at or after N/2 (batches of 64): the lost
# pages from there on must all have been reported, and no others.
half=$(( (N / 2 + 63) / 64 * 64 ))
want=$(awk -v h=$half '$1 >= h' "$T/lost" | wc -l)
unav=$(grep -o 'unavailable=[0-9]*' "$T/verify.out" | cut -d= -f2)
[ "$unav" -eq "$want" ] && [ "$want" -gt 0 ] || fail "expected $want UNAVAILABLE pages, got $unav"
[ "$ms" -lt 5000 ] || fail "reading the second half took $ms ms: calls wait for a dead server longer than retry_ms"
note "second half (with $lost lost pages) read in $ms ms"

"$CHECK" -n $N -r 5 -u "$T/lost" "$URL" verify >"$T/fresh.out" || { cat "$T/fresh.out"; fail "a fresh handle reads wrong statuses or bytes"; }
cat "$T/fresh.out"
grep -q "3 servers, 2 up, replicas=1; 127.0.0.1:$victim down" "$T/fresh.out" || fail "describe() does not name the dead server"

kill -9 "${MC_PIDS[0]}" "${MC_PIDS[1]}"
wait "${MC_PIDS[0]}" "${MC_PIDS[1]}" 2>/dev/null
out=$("$CHECK" "$URL" open)
rc=$?
note "$out"
[ $rc -eq 2 ] && echo "$out" | grep -q "no server reachable" || fail "open with every server dead: exit $rc, '$out'"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "the error is not one line"
exit 0
