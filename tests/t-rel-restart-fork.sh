# fluidmemd is killed (SIGKILL) under process trees and restarted, with
# memcached: what a fork shares in the store and what processes share in
# memory is taken back too.
# 1. cowfork at 4x overcommit (16 MiB over 4 MiB): the parent forks 3
#    children (each forks a grandchild) after its pages are in the store;
#    they wait 2 s, verify their snapshot (most of it shared copies in the
#    store) and rewrite their own memory while the parent rewrites its own. The monitor dies once every child exists and
#    a new one takes every process back: all verify (exit 0), the new
#    monitor serves faults from the store, and once all have exited the
#    store holds nothing (the shared copies' counts were rebuilt right).
# 2. shared (64 MiB MAP_SHARED|MAP_ANONYMOUS over 16 MiB, a parent and two
#    children writing, reading and counting in the same pages): the
#    monitor dies mid-run; the result matches kernel shared memory.
# 3. a fork snapshot the child has not adopted yet: the child waits in its
#    fork handler (FLUIDMEM_TEST_FORK_DELAY_MS) while the monitor is killed
#    and restarted, then takes the snapshot back from its state file.
# 4. versions: a page whose store copy was removed before the kill is
#    written after the restart with a version above every version the
#    region used (its file's high-water mark), never 1 again.
. "$(dirname "$0")/lib.sh"
[ -x "$FM_BUILD/libfluidmem-preload.so" ] || skip "build/ not built"

totals() {
	"$FLUIDMEM" status --json | python3 -c "import json,sys; d=json.load(sys.stdin); t=d['totals']; print(t['faults_store'], t['evictions'], t['clients'], d['store_shared_pages'])"
}
# mc_version KEY...: the highest page version (sealed trailer, offset 4104) of these keys
mc_version() {
	python3 - "$MC_PORT" "$@" <<'EOF'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
best = 0
keys = sys.argv[2:]
for i in range(0, len(keys), 100):
    s.sendall(b"get " + " ".join(keys[i:i + 100]).encode() + b"\r\n")
    while True:
        line = f.readline()
        if line == b"END\r\n":
            break
        n = int(line.split()[3])
        v = f.read(n + 2)[:n]
        best = max(best, struct.unpack_from("<Q", v, 4104)[0])
print(best)
EOF
}
# cowfork_verdict CASE PREFIX: cowfork ($pid, output in PREFIX.out/.err)
# exited 0 with its verdict; sets back to how many of its processes said
# they re-attached.
cowfork_verdict() {
	local rc=0
	wait $pid || rc=$?
	cat "$2.out"
	[ $rc -eq 0 ] || { cat "$2.err" "$FM_MON_LOG"; fail "$1: cowfork exited $rc"; }
	grep -q "^cowfork ok" "$2.out" || fail "$1: no verdict"
	back=$(grep -c "re-attached to the restarted monitor" "$2.err")
}
# wait_faults N: until the monitor has served N faults from the store
wait_faults() {
	for _ in $(seq 1 300); do
		set -- "$1" $(totals 2>/dev/null || echo 0 0 0 0)
		[ "${2:-0}" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "the programs did not page (faults_store ${2:-0})"
}
# kill_restart NAME BUDGET URL: SIGKILL the monitor, 1 s without one, a new one
kill_restart() {
	set -- "$1" "$2" "$3" $(totals)
	note "$1: before the kill: faults_store=$4 evictions=$5 clients=$6 store_shared_pages=$7"
	kill -9 "$FM_MON_PID"
	wait "$FM_MON_PID" 2>/dev/null
	cp "$FM_MON_LOG" "$T/mon-$1-1.log"
	rm -f "$FM_SOCK"
	sleep 1
	start_monitor --local-memory "$2" --store "$3"
}

start_memcached
URL="memcached://127.0.0.1:$MC_PORT?timeout_ms=3000"

# 1. fork tree
SECONDS=0
start_monitor --local-memory 4M --store "$URL"
FLUIDMEM_REATTACH_SECONDS=30 "$FLUIDMEM" run --local-memory 4M -- "$FM_BUILD/tests/cowfork" 16 3 --nested --passes 4 --pause 2000 \
	>"$T/fork.out" 2>"$T/fork.err" & pid=$!
for _ in $(seq 1 600); do grep -q "^forks done" "$T/fork.out" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
grep -q "^forks done" "$T/fork.out" || { cat "$T/fork.out" "$T/fork.err"; fail "fork: the forks never finished"; }
note "fork: forks done after ${SECONDS}s"
for _ in $(seq 1 50); do [ "$(totals | cut -d' ' -f3)" -ge 7 ] && break; sleep 0.1; done # grandchildren
[ "$(totals | cut -d' ' -f3)" -ge 7 ] || fail "fork: want 7 processes connected, status says $(totals)"
# the children sleep 2 s before reading their snapshot: it is still shared
[ "$(totals | cut -d' ' -f4)" -gt 1000 ] || fail "fork: few store copies shared when the monitor dies: $(totals)"
kill_restart fork 4M "$URL"
cowfork_verdict fork "$T/fork"
note "fork: $back process(es) re-attached: $(grep -c 're-attached with' "$FM_MON_LOG") by the new monitor's count"
[ "$back" -ge 7 ] || { cat "$T/fork.err"; fail "fork: want all 7 processes re-attached, $back did"; }
set -- $(totals)
note "fork: the restarted monitor served faults_store=$1 evictions=$2"
[ "$1" -gt 0 ] || fail "fork: no fault served from the store after the restart"
for _ in $(seq 1 50); do [ "$(mc_items "$MC_PORT")" -eq 0 ] && break; sleep 0.1; done
left=$(mc_items "$MC_PORT")
note "fork: the store holds $left pages at the end, $(totals | cut -d' ' -f4) counted shared"
[ "$(totals | cut -d' ' -f4)" -eq 0 ] || fail "fork: shared pages still counted"
# Every count came back to 0 (checked above). A removal the dead monitor was
# making when it died (its records changed first) is lost: those copies stay
# behind, named by no record, never read; a batch (64) per busy thread at
# most. A rebuilt count that is wrong would leave thousands.
[ "$left" -le 512 ] || fail "fork: $left pages leaked in the store"
stop_monitor; note "${SECONDS}s so far"
[ -z "$(ls "$T/state" 2>/dev/null)" ] || fail "fork: state files left: $(ls "$T/state")"

# 3. an unadopted snapshot (before 2: the fork tree's store is empty again)
wait_out() { # FILE TEXT
	for _ in $(seq 1 600); do grep -q "^$2" "$1" && return 0; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	cat "$1"
	fail "the program never printed '$2'"
}
start_monitor --local-memory 4M --store "$URL"
rm -f "$T/in"
mkfifo "$T/in"
FLUIDMEM_TEST_FORK_DELAY_MS=3000 FLUIDMEM_REATTACH_SECONDS=30 "$FLUIDMEM" run --local-memory 4M -- \
	"$FM_BUILD/tests/cowfork" 16 2 --step <"$T/in" >"$T/u.out" 2>"$T/u.err" & pid=$!
exec 3>"$T/in"
wait_out "$T/u.out" "before 0"
echo go >&3
wait_out "$T/u.out" "forked 0"
kill_restart unadopted 4M "$URL" # child 0 is still in its fork handler
echo go >&3
wait_out "$T/u.out" "before 1"
echo go >&3
wait_out "$T/u.out" "forked 1"
echo go >&3
exec 3>&-
cowfork_verdict unadopted "$T/u"
note "unadopted: $back process(es) re-attached (the parent and the child that had not adopted its snapshot)"
[ "$back" -eq 2 ] || { cat "$T/u.err"; fail "unadopted: want 2 re-attached, $back did"; }
[ "$(stat_of faults_store)" -gt 0 ] || fail "unadopted: no fault served from the store after the restart"
for _ in $(seq 1 50); do [ "$(mc_items "$MC_PORT")" -eq "$left" ] && break; sleep 0.1; done
[ "$(mc_items "$MC_PORT")" -eq "$left" ] || fail "unadopted: $(($(mc_items "$MC_PORT") - left)) pages leaked in the store"
stop_monitor; note "${SECONDS}s so far"
[ -z "$(ls "$T/state" 2>/dev/null)" ] || fail "unadopted: state files left: $(ls "$T/state")"

# 4. versions after a restart
start_monitor --local-memory 1M --store "$URL"
rm -f "$T/in"
mkfifo "$T/in"
FLUIDMEM_REATTACH_SECONDS=30 "$FM_BUILD/tests/epoch" 1024 4 <"$T/in" >"$T/e.out" 2>"$T/e.err" & pid=$!
exec 3>"$T/in"
wait_out "$T/e.out" "dropped"
id=$(ls "$T/state")
id=${id%.pages}
[ ${#id} -eq 32 ] || fail "epoch: want one state file, have '$(ls "$T/state")'"
maxv=$(mc_version $(for p in $(seq 1 1023); do printf 'fm:%s:%x ' "$id" "$p"; done))
[ "$(mc_version "fm:$id:0")" -eq 0 ] || fail "epoch: page 0 still in the store after MADV_REMOVE"
kill_restart epoch 1M "$URL"
echo go >&3
wait_out "$T/e.out" "evicted"
v0=$(mc_version "fm:$id:0")
note "epoch: versions up to $maxv before the restart; page 0 (no copy then) written after it as version $v0"
[ "$v0" -gt "$maxv" ] || fail "epoch: page 0 written with version $v0 after the restart, not above $maxv"
echo go >&3
exec 3>&-
rc=0
wait $pid || rc=$?
[ $rc -eq 0 ] && grep -q "^epoch ok" "$T/e.out" || { cat "$T/e.out" "$T/e.err"; fail "epoch: exit $rc"; }
for _ in $(seq 1 50); do # its exit seen
	"$FLUIDMEM" status --json | python3 -c "import json,sys; sys.exit(1 if json.load(sys.stdin)['clients'] else 0)" && break
	sleep 0.1
done
stop_monitor; note "${SECONDS}s so far"
[ -z "$(ls "$T/state" 2>/dev/null)" ] || fail "epoch: state files left: $(ls "$T/state")"

# 2. shared memory of a process tree
ref=$(FLUIDMEM_SHARED=0 "$FM_BUILD/tests/shared" 64 2>&1) || fail "kernel shared memory: $ref"
left=$(mc_items "$MC_PORT")
start_monitor --local-memory 16M --store "$URL"
SHARED_NO_EXEC=1 FLUIDMEM_REATTACH_SECONDS=30 fmrun 16M "$T/s.json" "$FM_BUILD/tests/shared" 64 >"$T/s.out" 2>"$T/s.err" & pid=$!
wait_faults 4000
kill_restart shared 16M "$URL"
rc=0
wait $pid || rc=$?
cat "$T/s.out"
[ $rc -eq 0 ] || { cat "$T/s.err" "$FM_MON_LOG"; fail "shared: exit $rc"; }
[ "$(cat "$T/s.out")" = "$ref" ] || fail "shared: '$(cat "$T/s.out")' vs kernel shared memory '$ref'"
back=$(grep -c "re-attached to the restarted monitor" "$T/s.err")
note "shared: $back process(es) re-attached"
[ "$back" -ge 3 ] || { cat "$T/s.err"; fail "shared: want the 3 processes re-attached, $back did"; }
set -- $(totals)
sfs=$(json_get "$T/s.json" shared_faults_store)
note "shared: the restarted monitor served faults_store=$1 evictions=$2 (shared_faults_store=$sfs)"
[ "$sfs" -gt 0 ] || fail "shared: no shared page came back from the store after the restart"
[ "$2" -gt 0 ] || fail "shared: no eviction after the restart"
for _ in $(seq 1 50); do [ "$(mc_items "$MC_PORT")" -le "$left" ] && break; sleep 0.1; done
note "shared: the store holds $(($(mc_items "$MC_PORT") - left)) pages at the end"
[ "$(mc_items "$MC_PORT")" -le $((left + 512)) ] || fail "shared: $(($(mc_items "$MC_PORT") - left)) pages leaked in the store"
stop_monitor; note "${SECONDS}s so far"
[ -z "$(ls "$T/state" 2>/dev/null)" ] || fail "shared: state files left: $(ls "$T/state")"
exit 0
