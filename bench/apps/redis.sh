#!/usr/bin/env bash
# redis.sh - a database with a working set beyond local memory: redis-server runs in
# each run mode, is loaded beyond the budget with DEBUG POPULATE, checked with DEBUG
# DIGEST (a hash of the whole dataset, which also reads every value), then driven by
# redis-benchmark: random GETs over the whole keyspace in db 0 and SETs in db 1 (flushed
# afterwards, so db 0's digest must not change). Reports throughput and latency.
#
# Usage: bench/apps/redis.sh [--quick|--bench] [--budget SIZE] [--modes LIST] [--keep]
#   --quick: 200k keys x 128 B (~45 MiB used_memory) at a 16M budget, 50k requests
#   --bench: 2M keys x 256 B (~640 MiB) at a 128M budget, 1M requests per test
# Modes default to "plain swap fluidmem fluidmem-mc". The digest must be the same in
# every mode; exits 1 otherwise or when a mode that must complete did not.
. "$(dirname "$0")/common.sh"

if [ "$VARIANT" = quick ]; then
	KEYS=${REDIS_KEYS:-200000} VSIZE=${REDIS_VSIZE:-128} REQS=${REDIS_REQS:-50000} BUDGET=${BUDGET:-16M}
else
	KEYS=${REDIS_KEYS:-2000000} VSIZE=${REDIS_VSIZE:-256} REQS=${REDIS_REQS:-1000000} BUDGET=${BUDGET:-128M}
fi
MODES=${MODES:-plain swap fluidmem fluidmem-mc}
for t in redis-server redis-cli redis-benchmark; do
	command -v "$t" >/dev/null || { echo "skipped: $t not installed (apt-get install redis-server redis-tools)"; exit 77; }
done
note "redis: $KEYS keys x $VSIZE B, $REQS requests per test, budget $BUDGET, modes: $MODES"

# bench_csv TEST...: redis-benchmark's CSV line -> "rps p50_ms p99_ms"
bench_csv() {
	awk -F, 'NR > 1 {gsub(/"/, ""); print $2, $5, $7; exit}'
}

REF="" bad=0
for mode in $MODES; do
	if ! mode_ready "$mode"; then
		result redis "$mode" skipped "reason=\"$MODE_SKIP\""
		continue
	fi
	port=$(free_port)
	mode_start "$mode" "redis-$mode" || { result redis "$mode" failed "reason=\"cannot set up $mode\""; bad=1; continue; }
	"${PREFIX[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--enable-debug-command yes --dir "$WORK" --daemonize no >"$WORK/redis-$mode.log" 2>&1 &
	pid=$!
	APP_PIDS+=("$pid")
	cli=(timeout 300 redis-cli -p "$port")
	rb=(timeout "$((60 + REQS / 500))" redis-benchmark -p "$port")
	up=0
	for _ in $(seq 1 300); do
		"${cli[@]}" ping 2>/dev/null | grep -q PONG && { up=1; break; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ $up = 0 ]; then
		wait "$pid"; rc=$?
		mode_end "$mode" "redis-$mode"
		result redis "$mode" failed "reason=\"redis-server did not start\" exit=$rc $(mode_extra)"
		tail -n 5 "$WORK/redis-$mode.log" | sed 's/^/#   /'
		bad=1
		continue
	fi
	fail_reason=""
	t0=$(date +%s.%N)
	"${cli[@]}" debug populate "$KEYS" key "$VSIZE" >/dev/null 2>&1 || fail_reason="DEBUG POPULATE failed"
	t1=$(date +%s.%N)
	load_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.2f", a - b}')
	digest1=$("${cli[@]}" debug digest 2>/dev/null)
	used=$("${cli[@]}" info memory 2>/dev/null | tr -d '\r' | sed -n 's/^used_memory_human://p')
	alive() { kill -0 "$pid" 2>/dev/null && "${cli[@]}" ping >/dev/null 2>&1; }
	get="" set=""
	alive && get=$("${rb[@]}" -t get -n "$REQS" -r "$KEYS" -d "$VSIZE" -c 20 -P 1 --csv 2>/dev/null | bench_csv)
	kill -0 "$pid" 2>/dev/null || get=""
	alive && set=$("${rb[@]}" --dbnum 1 -t set -n "$REQS" -r "$KEYS" -d "$VSIZE" -c 20 --csv 2>/dev/null | bench_csv)
	kill -0 "$pid" 2>/dev/null || set=""
	"${cli[@]}" -n 1 flushdb >/dev/null 2>&1
	digest2=$("${cli[@]}" debug digest 2>/dev/null)
	dbsize=$("${cli[@]}" dbsize 2>/dev/null)
	"${cli[@]}" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	rc=0
	wait "$pid" || rc=$?
	mode_end "$mode" "redis-$mode"
	[ -n "$get" ] && [ -n "$set" ] || fail_reason=${fail_reason:-"redis-benchmark failed"}
	[ -n "$digest1" ] && [ "$digest1" = "$digest2" ] || fail_reason=${fail_reason:-"digest changed during the benchmark ($digest1 -> $digest2)"}
	[ "$dbsize" = "$KEYS" ] || fail_reason=${fail_reason:-"dbsize $dbsize, expected $KEYS"}
	read -r get_rps get_p50 get_p99 <<<"${get:-0 0 0}"
	read -r set_rps set_p50 set_p99 <<<"${set:-0 0 0}"
	line="time=${RUN_SECS}s budget=$BUDGET used_memory=$used load=${load_s}s get_rps=$get_rps get_p50_ms=$get_p50 get_p99_ms=$get_p99 set_rps=$set_rps set_p50_ms=$set_p50 set_p99_ms=$set_p99 digest=$digest2"
	if [ -n "$fail_reason" ]; then
		if [ "$mode" = swap ] && [ "$RUN_OOM" -gt 0 ]; then
			result redis "$mode" oom-killed "$line $(mode_extra)"
		else
			result redis "$mode" failed "reason=\"$fail_reason\" exit=$rc $line $(mode_extra)"
			tail -n 5 "$WORK/redis-$mode.log" | sed 's/^/#   /'
			bad=1
		fi
		continue
	fi
	identical=yes
	if [ -z "$REF" ]; then REF=$digest2; elif [ "$digest2" != "$REF" ]; then identical=no bad=1; fi
	result redis "$mode" ok "$line identical=$identical $(mode_extra)"
done
summary redis
exit $bad
