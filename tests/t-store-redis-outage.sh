#!/usr/bin/env bash
# t-store-redis-outage: a Redis server that stops answering (SIGSTOP) for less
# than retry_ms delays reads and writes but loses nothing; one killed mid-run
# turns the remaining reads into UNAVAILABLE after at most about retry_ms,
# never into wrong data; a handle reconnects once the server is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"

start_redis
N=2000
"$CHECK" -n $N -r 4 "redis://127.0.0.1:$REDIS_PORT" write || fail "write $N pages"

URL="redis://127.0.0.1:$REDIS_PORT?timeout_ms=200&retry_ms=3000"
paused_verify "$T/stop.out" -n $N -r 4 "$URL"
kill -STOP "$REDIS_PID"
( sleep 1; kill -CONT "$REDIS_PID" ) &
cont=$!
start=$(date +%s%N)
resume_verify || { cat "$T/stop.out"; fail "a server paused for 1 s (retry_ms=3000) lost pages"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $cont
tail -n 1 "$T/stop.out"
note "second half read in $ms ms across a 1 s SIGSTOP"
[ "$ms" -ge 800 ] || fail "reads did not wait for the stopped server ($ms ms)"

# Killed for good: pages from the pause on are UNAVAILABLE, quickly.
URL="redis://127.0.0.1:$REDIS_PORT?timeout_ms=200&retry_ms=500"
half=$(( (N / 2 + 63) / 64 * 64 ))
seq $half $((N - 1)) >"$T/lost"
paused_verify "$T/kill.out" -n $N -r 4 -u "$T/lost" "$URL"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
start=$(date +%s%N)
resume_verify || { cat "$T/kill.out"; fail "with the server dead, statuses or bytes are wrong"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
tail -n 1 "$T/kill.out"
note "second half read in $ms ms with the server dead"
[ "$ms" -lt 4000 ] || fail "calls waited $ms ms for a dead server (retry_ms=500)"
grep -q "down" "$T/kill.out" || fail "describe() does not say the server is down"
exit 0
