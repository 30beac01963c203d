# lib.sh - sourced by every test script: a private monitor, free ports, real
# servers, and cleanup when the test exits. Tests call fail "why" on a wrong
# result and skip "reason" when the machine lacks something.
set -u
FM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FM_BUILD=${FM_BUILD:-$FM_ROOT/build}
FM_SAN_BUILD=${FM_SAN_BUILD:-$FM_ROOT/build-san}
FLUIDMEM=$FM_BUILD/fluidmem
FLUIDMEMD=$FM_BUILD/fluidmemd
# The monitor under test runs from the sanitized build when it exists.
[ -x "$FM_SAN_BUILD/fluidmemd" ] && [ -z "${FM_NO_SAN:-}" ] && FLUIDMEMD=$FM_SAN_BUILD/fluidmemd
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
T=$(mktemp -d /tmp/fmtest.XXXXXX)
FM_PIDS=()

# On failure the monitor's log goes with the test's, before cleanup removes it
# (a monitor that died mid-test says why only there).
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${FM_MON_LOG:-}" ] && [ -s "$FM_MON_LOG" ]; then
		echo "--- last lines of the monitor's log ($FM_MON_LOG):" >&2
		tail -n 40 "$FM_MON_LOG" >&2
	fi
	exit 1
}
skip() { echo "skipped: $*"; exit 77; }
note() { echo "# $*"; }

cleanup() {
	local p
	for p in "${FM_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${FM_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# free_port: a TCP port nobody listens on, on loopback.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for CMD...: retry for up to 10 s.
wait_for() {
	for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# start_monitor [fluidmemd flags...]: a private fluidmemd; sets FM_SOCK, FM_MON_PID, FM_MON_LOG.
start_monitor() {
	FM_SOCK=$T/fluidmemd.sock
	FM_MON_LOG=$T/fluidmemd.log
	"$FLUIDMEMD" --socket "$FM_SOCK" "$@" >"$FM_MON_LOG" 2>&1 &
	FM_MON_PID=$!
	FM_PIDS+=("$FM_MON_PID")
	export FLUIDMEM_SOCKET=$FM_SOCK
	wait_for test -S "$FM_SOCK" || { cat "$FM_MON_LOG"; fail "fluidmemd did not start"; }
}

# stop_monitor: SIGTERM and check it exited cleanly (sanitizers report at exit).
stop_monitor() {
	kill -TERM "$FM_MON_PID" 2>/dev/null
	local rc=0
	wait "$FM_MON_PID" || rc=$?
	if [ $rc -ne 0 ]; then cat "$FM_MON_LOG"; fail "fluidmemd exited with $rc"; fi
	grep -q "ERROR: \(AddressSanitizer\|LeakSanitizer\)\|runtime error:" "$FM_MON_LOG" && { cat "$FM_MON_LOG"; fail "sanitizer report from fluidmemd"; }
	return 0
}

# start_memcached: sets MC_PORT (and appends to MC_PORTS), MC_PID.
MC_PORTS=()
start_memcached() {
	command -v memcached >/dev/null || skip "memcached not installed"
	MC_PORT=$(free_port)
	memcached -u root -l 127.0.0.1 -p "$MC_PORT" -U 0 -m "${MC_MEM:-1024}" -t 2 &
	MC_PID=$!
	FM_PIDS+=("$MC_PID")
	MC_PORTS+=("$MC_PORT")
	wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$MC_PORT" || fail "memcached did not start"
}

# start_redis: sets REDIS_PORT, REDIS_PID.
start_redis() {
	command -v redis-server >/dev/null || skip "redis-server not installed"
	REDIS_PORT=$(free_port)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$T" --daemonize no >"$T/redis-$REDIS_PORT.log" 2>&1 &
	REDIS_PID=$!
	FM_PIDS+=("$REDIS_PID")
	wait_for redis-cli -p "$REDIS_PORT" ping || fail "redis-server did not start"
}

# stat_of NAME: a counter from `fluidmem status --json` of this monitor.
stat_of() {
	"$FLUIDMEM" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['$1'])"
}

# json_get FILE KEY: a top-level number from a --stats-json file.
json_get() {
	python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"
}

# assert_paging FILE: the run faulted pages back from the store and evicted.
assert_paging() {
	local ev fs
	ev=$(json_get "$1" evictions) fs=$(json_get "$1" faults_store)
	note "evictions=$ev faults_store=$fs"
	[ "$ev" -gt 0 ] || fail "no evictions: the budget was never exceeded"
	[ "$fs" -gt 0 ] || fail "no page came back from the store"
}

# fmrun BUDGET STATSFILE CMD...: run CMD under fluidmem (private monitor
# unless FLUIDMEM_SOCKET points at one) and keep its counters.
fmrun() {
	local budget=$1 stats=$2
	shift 2
	"$FLUIDMEM" run --local-memory "$budget" --stats-json "$stats" -- "$@"
}

# mc_items PORT: how many items the memcached server on PORT holds.
mc_items() {
	python3 - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
print(dict(l.split()[1:3] for l in buf.decode().splitlines() if l.startswith("STAT"))["curr_items"])
EOF
}
