#!/usr/bin/env bash
# t-app-redis-bgsave: Redis BGSAVE under fluidmem at a 4 MiB budget (~10 MiB of
# data): the forked child writes the snapshot of the moment of fork while the
# parent keeps taking writes; the RDB loaded into a plain redis-server has the
# DEBUG DIGEST the dataset had at BGSAVE. (jemalloc's fork handler touches its
# arenas, in regions: libfluidmem's child handler must run first.)
. "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || skip "redis not installed"
[ -x "$FM_BUILD/libfluidmem-preload.so" ] || skip "build/ not built"
P=$(free_port)
"$FLUIDMEM" run --local-memory 4M --stats-json "$T/s.json" -- redis-server --port "$P" --bind 127.0.0.1 \
	--save '' --appendonly no --dir "$T" --dbfilename dump.rdb --enable-debug-command yes >"$T/redis.log" 2>&1 &
FM_PIDS+=($!)
wait_for redis-cli -p "$P" ping || { cat "$T/redis.log"; fail "redis-server did not start under fluidmem"; }
redis-benchmark -p "$P" -t set -n 40000 -r 40000 -d 256 -q >/dev/null 2>&1 || fail "loading failed"
d1=$(redis-cli -p "$P" debug digest)
redis-cli -p "$P" bgsave | grep -q "started" || fail "BGSAVE did not start"
redis-benchmark -p "$P" -t set -n 20000 -r 40000 -d 256 -q >/dev/null 2>&1 # the parent moves on
for _ in $(seq 1 300); do redis-cli -p "$P" info persistence | grep -q "rdb_bgsave_in_progress:0" && break; sleep 0.1; done
redis-cli -p "$P" info persistence | grep -q "rdb_last_bgsave_status:ok" ||
	{ grep -i "saving\|signal" "$T/redis.log"; fail "BGSAVE failed"; }
[ "$(redis-cli -p "$P" debug digest)" != "$d1" ] || fail "the writes after BGSAVE changed nothing: the test proves nothing"
redis-cli -p "$P" shutdown nosave >/dev/null 2>&1
P2=$(free_port)
redis-server --port "$P2" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" --dbfilename dump.rdb \
	--enable-debug-command yes >"$T/plain.log" 2>&1 &
FM_PIDS+=($!)
wait_for redis-cli -p "$P2" ping || fail "plain redis-server did not load the RDB"
for _ in $(seq 1 100); do redis-cli -p "$P2" info persistence | grep -q "loading:0" && break; sleep 0.1; done
d2=$(redis-cli -p "$P2" debug digest)
note "digest at BGSAVE $d1, of the RDB $d2, keys $(redis-cli -p "$P2" dbsize)"
[ "$d1" = "$d2" ] || fail "the RDB is not the dataset of the moment of BGSAVE"
redis-cli -p "$P2" shutdown nosave >/dev/null 2>&1
wait_for test -s "$T/s.json" || true
ev=$(json_get "$T/s.json" evictions 2>/dev/null || echo 0)
note "evictions=$ev"
[ "$ev" -gt 1000 ] || fail "redis was not paged (evictions=$ev)"
