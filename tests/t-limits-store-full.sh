#!/usr/bin/env bash
# t-limits-store-full: a store smaller than the data. memcached -m 8 holds
# far less than the 32 MiB a program pages out through it:
#  - without -M memcached evicts our keys: those pages must come back as
#    SIGBUS (the program catches and counts them), never as zeros or stale
#    data; memcached must really have evicted (its stats say so);
#  - with -M memcached refuses writes when full; the backend cannot see
#    those errors (quiet sets), so the pages are lost: SIGBUS, no wrong data;
#  - Redis with maxmemory 8mb: noeviction refuses writes, which the monitor
#    must see and keep those pages resident ("could not be written to the
#    store; kept resident"), the program completing with every page right;
#    allkeys-lru evicts our keys: SIGBUS, never wrong data.
. "$(dirname "$0")/lib.sh"
command -v memcached >/dev/null || skip "memcached not installed"

# mc_start FLAGS...: one small memcached; sets PORT, PID.
mc_start() {
	PORT=$(free_port)
	memcached -u root -l 127.0.0.1 -p "$PORT" -U 0 -t 2 "$@" &
	PID=$!
	FM_PIDS+=("$PID")
	wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "memcached did not start"
}
mc_stat() { # mc_stat PORT NAME
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
for l in buf.decode().split("\r\n"):
    p = l.split()
    if len(p) == 3 and p[1] == sys.argv[2]:
        print(p[2])
PY
}

# 1. memcached evicts (no -M)
mc_start -m 8
start_monitor --local-memory 4M --store "memcached://127.0.0.1:$PORT?timeout_ms=500&retry_ms=500"
out=$("$FM_BUILD/tests/limits-sigbus" --api 32 2 2>&1); rc=$?
note "evicting memcached: $out (exit $rc)"
echo "$out" | grep -q "WRONG" && fail "pages evicted by memcached read back wrong: $out"
[ $rc -eq 0 ] || fail "limits-sigbus exit $rc: $out"
ev=$(mc_stat "$PORT" evictions)
sb=$(echo "$out" | sed -n 's/.*sigbus=\([0-9]*\).*/\1/p')
pz=$(stat_of faults_poisoned)
note "memcached evictions=$ev, SIGBUS caught=$sb, monitor faults_poisoned=$pz"
[ "${ev:-0}" -gt 0 ] || fail "memcached evicted nothing: the test proved nothing"
[ "${sb:-0}" -gt 0 ] || fail "memcached evicted $ev items but no page came back as SIGBUS"
[ "$pz" -ge "$sb" ] || fail "the program caught $sb SIGBUS, the monitor counted $pz poisoned faults"
grep -q "delivering SIGBUS" "$FM_MON_LOG" || fail "the monitor did not log the lost pages"
stop_monitor
kill "$PID"

# 2. memcached refuses (-M). The memcached backend sends quiet sets whose
# errors libmemcached drops (src/store/memcached.c, "Known limit"), so the
# refused pages are not kept resident but lost: they must come back as SIGBUS.
mc_start -m 8 -M
start_monitor --local-memory 4M --store "memcached://127.0.0.1:$PORT?timeout_ms=500&retry_ms=500"
out=$(timeout 120 "$FM_BUILD/tests/limits-sigbus" --api 32 2 2>&1); rc=$?
note "memcached -M: $out (exit $rc)"
echo "$out" | grep -q "WRONG" && fail "pages read back wrong with a full memcached (-M): $out"
[ $rc -eq 0 ] || fail "limits-sigbus exit $rc with a full memcached (-M): $out"
kept=$(grep -c "kept resident" "$FM_MON_LOG")
sb=$(echo "$out" | sed -n 's/.*sigbus=\([0-9]*\).*/\1/p')
note "memcached -M: 'kept resident' logged $kept times, $sb pages lost as SIGBUS, memcached evictions $(mc_stat "$PORT" evictions)"
[ "$sb" -gt 0 ] && note "NOTE: a full memcached -M loses pages (SIGBUS) instead of the monitor keeping them resident"
stop_monitor
kill "$PID"

# 3. and 4. Redis, full: with noeviction it refuses writes (OOM errors the
# backend sees): the monitor must keep those pages resident and the program
# complete with every page right; with allkeys-lru it evicts our keys:
# SIGBUS, never wrong data.
command -v redis-server >/dev/null || { note "redis-server not installed: Redis cases skipped"; exit 0; }
for policy in noeviction allkeys-lru; do
	RPORT=$(free_port)
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" --daemonize no \
		--maxmemory 8mb --maxmemory-policy $policy >"$T/redis-$policy.log" 2>&1 &
	RPID=$!
	FM_PIDS+=("$RPID")
	wait_for redis-cli -p "$RPORT" ping || fail "redis-server did not start"
	start_monitor --local-memory 4M --store "redis://127.0.0.1:$RPORT?timeout_ms=500"
	out=$(timeout 120 "$FM_BUILD/tests/limits-sigbus" --api 32 2 2>&1); rc=$?
	kept=$(grep -c "kept resident" "$FM_MON_LOG")
	peak=$(stat_of peak_resident_pages)
	note "redis $policy: $out (exit $rc); 'kept resident' logged $kept times, peak resident $peak pages (budget 1024, data 8192), evicted_keys $(redis-cli -p "$RPORT" info stats | tr -d '\r' | sed -n 's/^evicted_keys://p')"
	echo "$out" | grep -q "WRONG" && fail "pages read back wrong with a full Redis ($policy): $out"
	[ $rc -eq 0 ] || fail "limits-sigbus exit $rc with a full Redis ($policy): $out"
	sb=$(echo "$out" | sed -n 's/.*sigbus=\([0-9]*\).*/\1/p')
	if [ $policy = noeviction ]; then
		[ "$kept" -gt 0 ] || fail "Redis refused writes (noeviction) but the monitor never logged 'kept resident'"
		[ "$sb" -eq 0 ] || fail "Redis refused writes (noeviction): $sb pages lost, want them kept resident"
	else
		[ "$sb" -gt 0 ] || note "Redis (allkeys-lru) evicted nothing we read back"
	fi
	stop_monitor
	kill "$RPID"
done
exit 0
