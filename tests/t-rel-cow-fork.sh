#!/usr/bin/env bash
# t-rel-cow-fork: fork at 4x overcommit shares stored pages copy-on-write: a
# 32 MiB program over an 8 MiB budget forks 3 children that verify their
# fork-time snapshot while the parent rewrites its memory (and the parent
# never sees their writes; a quarter the parent drops with MADV_DONTNEED
# after each fork stays in the children's snapshots); no fork adds pages to the store (the monitor
# counts them as shared); when all have exited the store holds nothing. With
# the local store, and with memcached (16 MiB over 4 MiB: every page is a
# round trip there; pages sealed with each region's key; each child first
# forks a grandchild that verifies the same snapshot from the same copies).
. "$(dirname "$0")/lib.sh"
[ -x "$FM_BUILD/libfluidmem-preload.so" ] || skip "build/ not built"
CHILDREN=3

status_get() { # KEY: a top-level number of the status JSON
	"$FLUIDMEM" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
# Pages the store holds now: the local store says so in its health line,
# memcached in its stats.
store_pages() {
	if [ -z "${MC_PORT:-}" ]; then
		"$FLUIDMEM" status --json | python3 -c "
import json,sys,re; print(re.match(r'local: (\d+) pages held', json.load(sys.stdin)['store']).group(1))"
	else
		mc_items "$MC_PORT"
	fi
}
# wait_out TEXT: the program printed a line starting with TEXT.
wait_out() {
	for _ in $(seq 1 600); do grep -q "^$1" "$T/out" && return 0; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
	cat "$T/out" "$T/err"
	fail "$NAME: the program never printed '$1'"
}

run_case() {
	NAME=$1
	shift
	start_monitor --local-memory $BUDGET "$@"
	rm -f "$T/in" "$T/out"
	mkfifo "$T/in"
	"$FLUIDMEM" run --local-memory $BUDGET -- "$FM_BUILD/tests/cowfork" $MIB $CHILDREN --step ${NESTED:-} <"$T/in" >"$T/out" 2>"$T/err" &
	PID=$!
	exec 3>"$T/in"
	local shared_total=0 grew_max=0
	for c in $(seq 0 $((CHILDREN - 1))); do
		wait_out "before $c"
		local held0 shared0 held1 shared1
		held0=$(store_pages) shared0=$(status_get fork_pages_shared)
		echo go >&3
		wait_out "forked $c"
		held1=$(store_pages) shared1=$(status_get fork_pages_shared)
		echo go >&3
		note "$NAME: fork $c: $(grep "^forked $c" "$T/out" | cut -d' ' -f3) ms, store pages $held0 -> $held1, shared $((shared1 - shared0)) pages"
		# 3/4 of the pages were in the store: an eager copy adds as many
		[ $((held1 - held0)) -lt $((MIB * 16)) ] || fail "$NAME: fork $c added $((held1 - held0)) pages to the store"
		[ $((shared1 - shared0)) -gt $((MIB * 128)) ] || fail "$NAME: fork $c shared only $((shared1 - shared0)) stored pages"
	done
	exec 3>&-
	local rc=0
	wait $PID || rc=$?
	cat "$T/out"
	[ $rc -eq 0 ] || { cat "$T/err"; fail "$NAME: cowfork exited $rc"; }
	grep -q "^cowfork ok" "$T/out" || fail "$NAME: no verdict"
	# Every process has exited: nothing may stay behind in the store.
	for _ in $(seq 1 50); do [ "$(store_pages)" -eq 0 ] && break; sleep 0.1; done
	local left shared_left
	left=$(store_pages) shared_left=$(status_get store_shared_pages)
	note "$NAME: at the end the store holds $left pages, $shared_left shared"
	[ "$left" -eq 0 ] || fail "$NAME: $left pages leaked in the store"
	[ "$shared_left" -eq 0 ] || fail "$NAME: $shared_left shared pages still counted"
	"$FLUIDMEM" status --json | python3 -c "
import json,sys
d = json.load(sys.stdin)
bad = [t for t in d['tenants'] if t['stored_bytes'] or t['resident_bytes']]
sys.exit('tenant counters not back to 0: %s' % bad if bad else 0)" || fail "$NAME: counters"
	stop_monitor
}

MIB=32 BUDGET=8M
SECONDS=0; run_case local; note "local: ${SECONDS}s"
start_memcached
MIB=16 BUDGET=4M NESTED=--nested
SECONDS=0; run_case memcached --store "memcached://127.0.0.1:$MC_PORT"; note "memcached: ${SECONDS}s"
