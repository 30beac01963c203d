# common.sh - sourced by every bench/apps/*.sh: options, run modes, result lines.
#
# A run mode is how an application's memory is provided:
#   plain        all in RAM (in an uncapped cgroup when cgroups work, to measure peak)
#   swap         kernel swap: memory cgroup capped at the budget, zram (or swapfile) swap
#   noswap       the same cap, no swap: a program bigger than the budget is OOM-killed
#   fluidmem     `fluidmem run --local-memory BUDGET` with the monitor's local store
#   fluidmem-mc  the same with a memcached store on loopback
#
#   mode_ready MODE              0 if MODE can run here, else 1 with MODE_SKIP="reason"
#   mode_start MODE NAME         sets PREFIX (an array to put before the command, with
#                                /usr/bin/time inside it) and starts the clock
#   mode_end MODE NAME           stops the clock and fills RUN_SECS, RUN_MAXRSS_KB,
#                                RUN_CG_PEAK, RUN_SWAP_PEAK, RUN_OOM, FM_* counters
#   result NAME MODE STATUS [k=v...]  prints one RESULT line (and keeps it for summary)
#
# Scripts parse: --quick (seconds, for tests) | --bench (minutes; default), --budget SIZE,
# --modes "LIST", --keep (keep the work dir). Environment: FM_BUILD (default build/),
# FLUIDMEM (the fluidmem command), FM_MC_URL (use this memcached instead of starting one).
# shellcheck shell=bash
set -u
APPS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FM_ROOT=$(cd "$APPS_DIR/../.." && pwd)
FM_BUILD=${FM_BUILD:-$FM_ROOT/build}
FLUIDMEM=${FLUIDMEM:-$FM_BUILD/fluidmem}
# shellcheck source=../lib-swap.sh
. "$FM_ROOT/bench/lib-swap.sh"

VARIANT=bench
BUDGET=""
MODES=""
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) VARIANT=quick ;;
	--bench) VARIANT=bench ;;
	--budget) BUDGET=$2; shift ;;
	--modes) MODES=$2; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown option $1 (try --quick, --bench, --budget SIZE, --modes LIST, --keep)" >&2; exit 2 ;;
	esac
	shift
done

WORK=$(mktemp -d "${FM_APPS_TMP:-/var/tmp}/fmapp.XXXXXX")
APP_PIDS=()
APP_CLEAN_DIRS=() # more directories to remove at exit
RESULTS=()
MC_PID=""
FM_MC_URL=${FM_MC_URL:-}

# uffd_grant_group GROUP: let GROUP open /dev/userfaultfd (chgrp + mode 660) until the
# script exits, so a fluidmem monitor can run as an unprivileged user; returns 1 with
# MODE_SKIP when it cannot.
UFFD_RESTORE=""
uffd_grant_group() {
	local dev=/dev/userfaultfd
	[ -n "$UFFD_RESTORE" ] && return 0
	[ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ] && return 0
	[ -c "$dev" ] || { MODE_SKIP="no $dev and vm.unprivileged_userfaultfd=0: fluidmem cannot run as $1"; return 1; }
	# Already open to that user (someone set it up): leave it as it is.
	setpriv --reuid "$1" --regid "$1" --init-groups test -r "$dev" -a -w "$dev" 2>/dev/null && return 0
	UFFD_RESTORE=$(stat -c '%U:%G %a' "$dev")
	chgrp "$1" "$dev" && chmod 660 "$dev" || { MODE_SKIP="cannot chgrp $dev"; return 1; }
}

app_cleanup() {
	local p
	if [ -n "$UFFD_RESTORE" ]; then
		chown "${UFFD_RESTORE% *}" /dev/userfaultfd
		chmod "${UFFD_RESTORE#* }" /dev/userfaultfd
	fi
	for p in "${APP_PIDS[@]}" $MC_PID; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${APP_PIDS[@]}" $MC_PID; do kill -9 "$p" 2>/dev/null; done
	swap_teardown
	if [ "$KEEP" = 1 ]; then echo "# work dir kept: $WORK ${APP_CLEAN_DIRS[*]}"; else rm -rf "$WORK" "${APP_CLEAN_DIRS[@]}"; fi
}
trap app_cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "# $*"; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# fluidmem_probe: is the fluidmem command here and able to run a trivial program?
FM_PROBED=""
fluidmem_probe() {
	if [ -z "$FM_PROBED" ]; then
		if [ ! -x "$FLUIDMEM" ]; then
			FM_PROBED="$FLUIDMEM not built"
		else
			local out
			if out=$(timeout 30 "$FLUIDMEM" run --local-memory 16M --stats-json "$WORK/probe.json" -- /bin/true 2>&1); then
				FM_PROBED=ok
			else
				FM_PROBED="'fluidmem run -- /bin/true' failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
			fi
		fi
	fi
	[ "$FM_PROBED" = ok ] || { MODE_SKIP=$FM_PROBED; return 1; }
}

# start_memcached_store: a memcached for the fluidmem-mc mode; sets FM_MC_URL.
start_memcached_store() {
	[ -n "$FM_MC_URL" ] && return 0
	command -v memcached >/dev/null || { MODE_SKIP="memcached not installed"; return 1; }
	local port
	port=$(free_port)
	memcached -u root -l 127.0.0.1 -p "$port" -U 0 -m 8192 -t 2 >"$WORK/memcached.log" 2>&1 &
	MC_PID=$!
	disown "$MC_PID" 2>/dev/null # no "Killed" job notice at cleanup
	for _ in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { FM_MC_URL=memcached://127.0.0.1:$port; return 0; }
		sleep 0.1
	done
	MODE_SKIP="memcached did not start"
	return 1
}

mode_ready() {
	MODE_SKIP=""
	case $1 in
	plain) return 0 ;;
	swap) swap_setup "${SWAP_SIZE:-8G}" || { MODE_SKIP=$SWAP_SKIP; return 1; } ;;
	noswap) # needs the cgroup only, no swap device
		[ "$(id -u)" = 0 ] || { MODE_SKIP="needs root (cgroups)"; return 1; }
		[ -n "$SWAP_CG_KIND" ] || _swap_probe_cgroup || { MODE_SKIP=$SWAP_SKIP; return 1; }
		[ "$SWAP_NOSWAP_STRICT" = 1 ] || { MODE_SKIP="cgroup v1 without swap accounting (memory.memsw.*): cannot forbid swap"; return 1; } ;;
	fluidmem) fluidmem_probe ;;
	fluidmem-mc) fluidmem_probe && start_memcached_store ;;
	*) MODE_SKIP="unknown mode $1"; return 1 ;;
	esac
}

# mode_start MODE NAME: PREFIX=(...) to run the command with; /usr/bin/time writes
# $WORK/NAME.time. For a server, put PREFIX before the server command.
#
# With USER, the command runs as that user (setpriv): inside the cgroup for the
# kernel modes, and around `fluidmem run` for the fluidmem modes (so the monitor and
# the preloaded program start as USER, never changing uid under the preload library;
# see uffd_grant_group).
mode_start() {
	local mode=$1 name=$2 user=${3:-}
	local timecmd=(/usr/bin/time -f "%e %M" -o "$WORK/$name.time") asuser=()
	[ -n "$user" ] && asuser=(setpriv --reuid "$user" --regid "$user" --init-groups)
	RUN_CG=""
	FM_STATS=""
	case $mode in
	plain)
		PREFIX=("${timecmd[@]}" "${asuser[@]}")
		# An uncapped cgroup only to read the peak of the whole process tree.
		if [ "$(id -u)" = 0 ] && { [ -n "$SWAP_CG_KIND" ] || _swap_probe_cgroup 2>/dev/null; }; then
			swap_cg_create "$name" max swap && RUN_CG=$SWAP_CG && PREFIX=(swap_exec "$RUN_CG" "${timecmd[@]}" "${asuser[@]}")
		fi ;;
	swap|noswap)
		swap_cg_create "$name" "$BUDGET" "$mode" || return 1
		RUN_CG=$SWAP_CG
		PREFIX=(swap_exec "$RUN_CG" "${timecmd[@]}" "${asuser[@]}") ;;
	fluidmem|fluidmem-mc)
		local sdir=$WORK/stats-$name
		if [ -n "$user" ]; then
			# Written by `fluidmem run` as USER, who may not enter WORK.
			sdir=$(mktemp -d /var/tmp/fmstats.XXXXXX) && chmod 755 "$sdir" && chown "$user" "$sdir"
			APP_CLEAN_DIRS+=("$sdir")
		fi
		mkdir -p "$sdir"
		FM_STATS=$sdir/stats.json
		rm -f "$FM_STATS"
		# /usr/bin/time goes outside: inside, it would be one more fork+wait under
		# the preload library, and the command's own behaviour is what is measured.
		# Its maxrss is then the larger of the fluidmem command and CMD (wait4
		# folds reaped children in).
		PREFIX=("${timecmd[@]}" "${asuser[@]}" "$FLUIDMEM" run --local-memory "$BUDGET" --stats-json "$FM_STATS")
		[ "$mode" = fluidmem-mc ] && PREFIX+=(--store "$FM_MC_URL")
		PREFIX+=(--) ;;
	esac
	RUN_T0=$(date +%s.%N)
}

mode_end() {
	local mode=$1 name=$2
	RUN_SECS=$(awk -v a="$(date +%s.%N)" -v b="$RUN_T0" 'BEGIN {printf "%.2f", a - b}')
	RUN_MAXRSS_KB=$(awk 'END {print $2}' "$WORK/$name.time" 2>/dev/null)
	RUN_MAXRSS_KB=${RUN_MAXRSS_KB:-0}
	RUN_CG_PEAK=0 RUN_SWAP_PEAK=0 RUN_OOM=0
	if [ -n "$RUN_CG" ]; then
		swap_cg_report "$RUN_CG"
		RUN_CG_PEAK=$SWAP_PEAK_BYTES RUN_SWAP_PEAK=$SWAP_SWAP_PEAK_BYTES RUN_OOM=$SWAP_OOM_KILLS
		swap_cg_remove "$RUN_CG"
	fi
	FM_EVICTIONS="" FM_FAULTS_ZERO="" FM_FAULTS_STORE="" FM_PEAK_PAGES="" FM_SHARED_EVICTIONS="" FM_SHARED_FAULTS_STORE=""
	if [ -n "$FM_STATS" ] && [ -s "$FM_STATS" ]; then
		read -r FM_EVICTIONS FM_FAULTS_ZERO FM_FAULTS_STORE FM_PEAK_PAGES FM_SHARED_EVICTIONS FM_SHARED_FAULTS_STORE < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
def find(d, k):
    if isinstance(d, dict):
        if k in d: return d[k]
        for v in d.values():
            r = find(v, k)
            if r is not None: return r
    return None
print(*[find(d, k) for k in ("evictions", "faults_zero", "faults_store", "peak_resident_pages",
                             "shared_evictions", "shared_faults_store")])
' "$FM_STATS")
	fi
}

# mode_extra: the memory part of a result line for the mode just ended.
mode_extra() {
	local s="maxrss=$((RUN_MAXRSS_KB / 1024))MiB"
	[ -n "$RUN_CG" ] && s+=" cg_peak=$((RUN_CG_PEAK >> 20))MiB swap_peak=$((RUN_SWAP_PEAK >> 20))MiB oom_kills=$RUN_OOM"
	[ -n "$FM_STATS" ] && s+=" evictions=${FM_EVICTIONS:-?} faults_zero=${FM_FAULTS_ZERO:-?} faults_store=${FM_FAULTS_STORE:-?} peak_resident_pages=${FM_PEAK_PAGES:-?} shared_evictions=${FM_SHARED_EVICTIONS:-?} shared_faults_store=${FM_SHARED_FAULTS_STORE:-?}"
	echo "$s"
}

# result NAME MODE STATUS [key=value...]
result() {
	local line="RESULT $1 mode=$2 status=$3"
	shift 3
	[ $# -gt 0 ] && line+=" $*"
	echo "$line"
	RESULTS+=("$line")
}

_first_time() { grep -o ' time=[0-9.]*s' <<<"$1" | head -n 1 | tr -dc '0-9.'; }

# summary: times relative to plain for every mode that ran.
summary() {
	local app=$1 base="" l m t
	for l in "${RESULTS[@]}"; do
		case $l in *" mode=plain status=ok "*) base=$(_first_time "$l") ;; esac
	done
	[ -n "$base" ] || return 0
	for l in "${RESULTS[@]}"; do
		m=$(sed -n 's/.* mode=\([^ ]*\) .*/\1/p' <<<"$l")
		case $l in *" status=ok "*) t=$(_first_time "$l") ;; *) t="" ;; esac
		[ -n "$t" ] && printf '# %s %-12s %8.2fs  x%.2f of all-in-RAM\n' "$app" "$m" "$t" "$(awk -v a="$t" -v b="$base" 'BEGIN {print a / b}')"
	done
}
