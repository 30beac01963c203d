# store-lib.sh - sourced by the t-store-*.sh scripts after lib.sh: where the
# store test programs are, a memcached pool, and a paused verify run.

# store_bin NAME: the sanitized build of tests/NAME.c if it is newer than its
# sources, else the plain one (rebuilt when older than its sources).
store_bin() {
	local name=$1 f newest
	newest=$FM_ROOT/tests/$name.c
	for f in "$FM_ROOT"/src/store/*.[ch] "$FM_ROOT"/include/fluidmem/store.h; do
		[ "$f" -nt "$newest" ] && newest=$f
	done
	if [ -z "${FM_NO_SAN:-}" ] && [ "$FM_SAN_BUILD/tests/$name" -nt "$newest" ]; then
		echo "$FM_SAN_BUILD/tests/$name"
		return
	fi
	if ! [ "$FM_BUILD/tests/$name" -nt "$newest" ]; then
		make -C "$FM_ROOT" -s "build/tests/$name" >&2 || fail "cannot build tests/$name"
	fi
	echo "$FM_BUILD/tests/$name"
}
CHECK=$(store_bin store-check)
CONTRACT=$(store_bin store-contract)
MCRAW="python3 $FM_ROOT/tests/store-mcraw.py"

# start_pool N: N memcached servers; sets POOL (the server list) and MC_PIDS.
MC_PIDS=()
start_pool() {
	local i hosts=""
	for i in $(seq 1 "$1"); do
		start_memcached
		MC_PIDS+=("$MC_PID")
		hosts="$hosts${hosts:+,}127.0.0.1:$MC_PORT"
	done
	POOL="memcached://$hosts"
}

# paused_verify OUT CHECK-ARGS...: start a verify run that stops half way;
# returns once it printed "paused". resume_verify lets it finish and returns
# its exit status.
paused_verify() {
	local out=$1; shift
	mkfifo "$T/ctl"
	"$CHECK" -p "$@" verify <"$T/ctl" >"$out" 2>&1 &
	PV_PID=$!
	exec 3>"$T/ctl"
	wait_for grep -q paused "$out" || { cat "$out"; fail "verify run did not reach its pause"; }
}
resume_verify() {
	echo go >&3
	exec 3>&-
	rm -f "$T/ctl"
	local rc=0
	wait "$PV_PID" || rc=$?
	return $rc
}
