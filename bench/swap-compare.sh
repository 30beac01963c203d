#!/usr/bin/env bash
# swap-compare.sh - fluidmem side by side with the kernel's own swap, in one run.
#
# The same program (build/bench/touch: an init pass, a sequential read-only
# re-read, then sequential and random read-modify-write passes over a region 4x
# the budget, every page verified at the end) runs three ways:
#   fluidmem  under `fluidmem run --local-memory BUDGET` (private monitor, local store)
#   zram      in a memory cgroup capped at BUDGET, swapping to a zram device
#   swapfile  in a memory cgroup capped at BUDGET, swapping to a file on this disk
# Swap and cgroups are set up and torn down by bench/lib-swap.sh (root needed); a
# way this machine cannot do is skipped with the reason, the others still run.
# Prints pages/s and fault latency per pass and system, and the ratios
# fluidmem / kernel; writes OUT/swap-compare.csv and the raw outputs and latency
# samples (OUT/samples/swap-SYSTEM.txt) for bench/plot.sh.
#
# It does not start or judge anything else: no timing assertions (numbers on a
# shared 2-core machine are noisy; read the ratios of one run).
#
# Usage: bench/swap-compare.sh [--budget 64M] [--size SIZE (default 4x budget)]
#          [--passes init,read,seq,rand] [--fill sparse|full] [--systems "fluidmem zram swapfile"]
#          [--repeat 1] [--threads N] [--out build/bench]
# With --repeat N the systems run N times, interleaved, and the summary is the median
# of the runs (OUT/swap-compare-summary.csv); OUT/swap-compare.csv has every run.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FM_BUILD:-$ROOT/build}
BUDGET=64M
SIZE=""
PASSES=init,read,seq,rand
FILL=sparse
SYSTEMS="fluidmem zram swapfile"
OUT=$BUILD/bench
THREADS=1
REPEAT=1
while [ $# -gt 0 ]; do
	case $1 in
	--budget) BUDGET=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--passes) PASSES=$2; shift 2 ;;
	--fill) FILL=$2; shift 2 ;;
	--systems) SYSTEMS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "swap-compare: unknown option $1" >&2; exit 2 ;;
	esac
done
budget_bytes=$(numfmt --from=iec "${BUDGET%B}") || exit 2
[ -n "$SIZE" ] || SIZE=$((budget_bytes * 4 / 1048576))M
size_bytes=$(numfmt --from=iec "${SIZE%B}") || exit 2
TOUCH=$BUILD/bench/touch
[ -x "$TOUCH" ] || { echo "swap-compare: $TOUCH not built (make $TOUCH)" >&2; exit 2; }
mkdir -p "$OUT/samples" "$OUT/raw"
CSV=$OUT/swap-compare.csv
SUMMARY=$OUT/swap-compare-summary.csv

# shellcheck source=bench/lib-swap.sh
source "$ROOT/bench/lib-swap.sh"
trap swap_teardown EXIT
trap 'exit 130' INT TERM

declare -A STATUS  # system -> ok | skipped: why | failed: why (the worst of its runs)
COLS="system,kind,pages,faults,fault_avg_us,fault_median_us,fault_p99_us,access_avg_us,secs,pages_per_s,mb_per_s,majflt"
echo "$COLS,run" >"$CSV"
RUN=1

# to_csv SYSTEM FILE: the pass lines of one touch output, as CSV rows.
to_csv() {
	awk -v sys="$1" '
	/^bench=touch / && / kind=/ {
		delete kv
		for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
		printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", sys, kv["kind"], kv["pages"],
			kv["faults"], kv["fault_avg_us"], kv["fault_median_us"], kv["fault_p99_us"],
			kv["access_avg_us"], kv["secs"], kv["pages_per_s"], kv["mb_per_s"], kv["majflt"], run
	}' run="$RUN" "$2" >>"$CSV"
}

# other_swap: swap devices on this machine that are not ours (they share our priority
# and would take part of our swap traffic).
other_swap() {
	awk -v mine="${SWAP_DEV:-}" 'NR > 1 && $1 != mine { printf "%s%s(prio %s, %s KiB used)", sep, $1, $5, $4; sep = ", " }' /proc/swaps
}

# wait_other_swap: give a swap device of someone else's run up to SWAP_WAIT seconds
# (default 60, spent once per invocation) to go away: the kernel would spread our
# swap-outs over it (equal priority), and the "swapfile" numbers would be partly zram.
SWAP_WAIT_LEFT=${SWAP_WAIT:-60}
wait_other_swap() {
	[ -z "$(other_swap)" ] || [ "$SWAP_WAIT_LEFT" -le 0 ] && return 0
	echo "  waiting up to ${SWAP_WAIT_LEFT}s for other swap to go: $(other_swap)"
	while [ "$SWAP_WAIT_LEFT" -gt 0 ] && [ -n "$(other_swap)" ]; do
		sleep 1
		SWAP_WAIT_LEFT=$((SWAP_WAIT_LEFT - 1))
	done
}

# set_status SYSTEM STATUS: keep the worst of a system's runs (failed > skipped > ok).
set_status() {
	case ${STATUS[$1]:-} in
	failed*) return ;;
	skipped*) case $2 in failed*) STATUS[$1]=$2 ;; esac; return ;;
	esac
	STATUS[$1]=$2
}

touch_args=(--size "$SIZE" --passes "$PASSES" --fill "$FILL" --threads "$THREADS")

run_fluidmem() {
	local fm=$BUILD/fluidmem out=$OUT/raw/swap-fluidmem.$RUN.txt
	[ -x "$fm" ] && [ -x "$BUILD/fluidmemd" ] || { set_status fluidmem "skipped: $fm or fluidmemd not built"; return; }
	# --store forces a private monitor, whatever else listens on the default socket.
	local json=$OUT/raw/swap-fluidmem-stats.$RUN.json regions
	rm -f "$json"
	if "$fm" run --local-memory "$BUDGET" --store local:// --stats-json "$json" -- \
		"$TOUCH" "${touch_args[@]}" --label fluidmem --samples "$OUT/samples/swap-fluidmem.txt" >"$out" 2>&1; then
		set_status fluidmem ok
	else
		set_status fluidmem "failed: exit $? ($(tail -n 1 "$out"))"
	fi
	# Plain memory is not fluidmem: the preload library must have loaded (a rebuild
	# under us makes ld.so skip it) and the monitor must have seen the region.
	regions=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("regions", 0))' "$json" 2>/dev/null)
	if grep -q "cannot be preloaded" "$out" || [ "${regions:-0}" = 0 ]; then
		set_status fluidmem "failed: run $RUN did not run under fluidmem ($(grep -m1 "cannot be preloaded" "$out" || echo "no region in $json"))"
		return
	fi
	to_csv fluidmem "$out"
}

# run_kernel SYSTEM zram|file
run_kernel() {
	local sys=$1 kind=$2 out=$OUT/raw/swap-$1.$RUN.txt others
	swap_teardown
	wait_other_swap
	if ! SWAP_KIND=$kind swap_setup $((size_bytes * 2 / 1048576))M; then
		set_status "$sys" "skipped: $SWAP_SKIP"
		return
	fi
	if [ "$SWAP_DEV_KIND" != "$kind" ]; then
		set_status "$sys" "skipped: got $SWAP_DEV_KIND swap, wanted $kind"
		return
	fi
	others=$(other_swap)
	swap_cg_create "$sys" "$BUDGET" swap || { set_status "$sys" "failed: could not create the cgroup"; return; }
	# How much of the swap our own device took: sampled, since it is freed at exit.
	local peakf=$OUT/raw/swap-$sys.$RUN.devpeak sampler
	echo 0 >"$peakf"
	(
		peak=0
		while :; do
			used=$(awk -v d="$SWAP_DEV" '$1 == d { print $4 }' /proc/swaps)
			[ "${used:-0}" -gt "$peak" ] && { peak=$used; echo "$peak" >"$peakf"; }
			sleep 0.2
		done
	) &
	sampler=$!
	if swap_exec "$SWAP_CG" "$TOUCH" "${touch_args[@]}" --label "$sys" --samples "$OUT/samples/swap-$sys.txt" >"$out" 2>&1; then
		set_status "$sys" ok
	else
		set_status "$sys" "failed: exit $? ($(tail -n 1 "$out"))"
	fi
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	swap_cg_report "$SWAP_CG"
	local devpeak
	devpeak=$(($(cat "$peakf") / 1024))
	echo "# $sys: $(swap_describe); cgroup peak $((SWAP_PEAK_BYTES / 1048576)) MiB, swap peak $((SWAP_SWAP_PEAK_BYTES / 1048576)) MiB (of it on our $SWAP_DEV_KIND device: ~$devpeak MiB), OOM kills $SWAP_OOM_KILLS" >>"$out"
	[ "$SWAP_OOM_KILLS" = 0 ] || set_status "$sys" "failed: OOM-killed in the cgroup"
	[ -n "$others" ] && WARN[$sys]+="run $RUN: other swap was on too ($others); our device held ~$devpeak MiB of the cgroup's $((SWAP_SWAP_PEAK_BYTES / 1048576)) MiB swap peak. "
	to_csv "$sys" "$out"
	swap_teardown
}

declare -A WARN
echo "swap-compare: region $SIZE over a budget of $BUDGET, passes $PASSES + verify, fill $FILL, $THREADS thread(s), $REPEAT run(s)"
for sys in $SYSTEMS; do
	case $sys in fluidmem|zram|swapfile) rm -f "$OUT/samples/swap-$sys.txt" ;; *) echo "swap-compare: unknown system $sys" >&2; exit 2 ;; esac
done
for ((RUN = 1; RUN <= REPEAT; RUN++)); do
	for sys in $SYSTEMS; do
		case $sys in
		fluidmem) run_fluidmem ;;
		zram) run_kernel zram zram ;;
		swapfile) run_kernel swapfile file ;;
		esac
		echo "  run $RUN $sys: ${STATUS[$sys]}"
	done
done
for sys in $SYSTEMS; do [ -n "${WARN[$sys]:-}" ] && echo "  WARNING $sys: ${WARN[$sys]}"; done

# The summary: per system and pass, the median over runs of each column.
echo "$COLS,runs" >"$SUMMARY"
awk -F, 'NR > 1 {
		key = $1 "," $2
		if (!(key in cnt)) keys[++n] = key
		c = ++cnt[key]
		for (i = 3; i <= 12; i++) v[key, i, c] = $i
	}
	function median(key, col,   m, i, j, t, a) {
		m = cnt[key]
		for (i = 1; i <= m; i++) a[i] = v[key, col, i]
		for (i = 2; i <= m; i++) for (j = i; j > 1 && (a[j - 1] == "" ? -1 : a[j - 1] + 0) > (a[j] == "" ? -1 : a[j] + 0); j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return a[int((m + 1) / 2)]
	}
	END {
		for (k = 1; k <= n; k++) {
			line = keys[k]
			for (i = 3; i <= 12; i++) line = line "," median(keys[k], i)
			print line "," cnt[keys[k]]
		}
	}' "$CSV" >>"$SUMMARY"

echo
[ "$REPEAT" -gt 1 ] && echo "median of $REPEAT runs:"
printf '%-9s %-6s %10s %8s %8s %9s %9s %9s\n' system pass pages/s MB/s faults avg_us med_us p99_us
tail -n +2 "$SUMMARY" | awk -F, '{ printf "%-9s %-6s %10s %8s %8s %9s %9s %9s\n", $1, $2, $10, $11, ($4 == "" ? "-" : $4), ($5 == "" ? "-" : $5), ($6 == "" ? "-" : $6), ($7 == "" ? "-" : $7) }'

echo
echo "ratios, fluidmem / kernel (pages/s: >1 means fluidmem is faster; median fault: <1 means fluidmem is faster)"
printf '%-6s %14s %14s %14s %14s\n' pass pps/zram pps/swapfile med/zram med/swapfile
awk -F, 'NR > 1 { pps[$1 "," $2] = $10; med[$1 "," $2] = $6; if (!seen[$2]++) order[++n] = $2 }
	function r(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]
			printf "%-6s %14s %14s %14s %14s\n", k,
				r(pps["fluidmem," k], pps["zram," k]), r(pps["fluidmem," k], pps["swapfile," k]),
				r(med["fluidmem," k], med["zram," k]), r(med["fluidmem," k], med["swapfile," k])
		}
	}' "$SUMMARY"
echo "(verify = a sequential read-only re-read of the whole region; CSV: $SUMMARY, every run: $CSV)"

rc=0
for sys in $SYSTEMS; do case ${STATUS[$sys]} in failed*) rc=1 ;; esac; done
exit $rc
