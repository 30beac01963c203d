#!/usr/bin/env bash
# t-store-e2e-redis: an unmodified program under `fluidmem run --store
# redis://...` with a budget of a quarter of its memory reads every page back
# correct, the pages went through Redis, and its keys are gone after the run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"
[ -x "$FLUIDMEM" ] && [ -x "$FM_BUILD/fluidmemd" ] || skip "build/fluidmem and build/fluidmemd not built"
# not the sanitized build: an ASan program cannot run under the preload library
PROG=$(FM_NO_SAN=1 store_bin store-e2e-prog)
start_redis
"$FLUIDMEM" run --store "redis://127.0.0.1:$REDIS_PORT/3" --local-memory 16M --stats -- "$PROG" 64 >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the program failed under the redis store"; }
cat "$T/out"
grep -q "pages=16384 ok=16384 sigbus=0 wrong=0" "$T/out" || fail "pages lost or wrong"
sets=$(redis-cli -p "$REDIS_PORT" info commandstats | grep -o 'cmdstat_set:calls=[0-9]*' | cut -d= -f2)
note "redis saw ${sets:-0} SETs"
[ "${sets:-0}" -gt 10000 ] || fail "the pages did not go through redis"
left=$(redis-cli -p "$REDIS_PORT" -n 3 dbsize)
[ "$left" = 0 ] || fail "$left keys left in redis after the program exited"
exit 0
