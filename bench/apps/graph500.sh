#!/usr/bin/env bash
# graph500.sh - build/bench/graph500 (Kronecker graph, BFS, validation) in each run
# mode at one local-memory budget; compares the checksums and reports TEPS.
#
# Usage: bench/apps/graph500.sh [--quick|--bench] [--budget SIZE] [--modes "plain swap
#        noswap fluidmem fluidmem-mc"] [--keep]
#   --quick: scale 16 (34 MiB of graph) at a 12M budget, seconds
#   --bench: scale 20 (544 MiB of graph) at a 128M budget, minutes
# Prints one RESULT line per mode; exits 1 if a checksum differs or a mode that should
# have completed did not.
. "$(dirname "$0")/common.sh"

if [ "$VARIANT" = quick ]; then
	SCALE=${G500_SCALE:-16} ROOTS=${G500_ROOTS:-4} BUDGET=${BUDGET:-12M}
else
	SCALE=${G500_SCALE:-20} ROOTS=${G500_ROOTS:-8} BUDGET=${BUDGET:-128M}
fi
MODES=${MODES:-plain swap fluidmem fluidmem-mc}
G500=$FM_BUILD/bench/graph500
if [ ! -x "$G500" ]; then
	make -C "$FM_ROOT" -s "build/bench/graph500" >/dev/null || { echo "graph500: cannot build $G500" >&2; exit 1; }
fi

note "graph500: scale $SCALE, edgefactor 16, $ROOTS roots, budget $BUDGET, modes: $MODES"
ref="" bad=0
for mode in $MODES; do
	if ! mode_ready "$mode"; then
		result graph500 "$mode" skipped "reason=\"$MODE_SKIP\""
		continue
	fi
	mode_start "$mode" "g500-$mode" || { result graph500 "$mode" failed "reason=\"cannot set up $mode\""; bad=1; continue; }
	rc=0
	"${PREFIX[@]}" "$G500" -s "$SCALE" -e 16 -r "$ROOTS" >"$WORK/$mode.out" 2>"$WORK/$mode.err" || rc=$?
	mode_end "$mode" "g500-$mode"
	sum=$(sed -n 's/^checksum: //p' "$WORK/$mode.out")
	teps=$(sed -n 's/^harmonic_mean_TEPS: //p' "$WORK/$mode.out")
	if [ "$rc" != 0 ] || [ -z "$sum" ]; then
		if [ "$RUN_OOM" -gt 0 ]; then
			# Kernel modes: being OOM-killed at the budget is a result, not a script
			# failure (noswap: expected; swap: the memcg reclaim gave up, see docs/apps.md).
			result graph500 "$mode" oom-killed "time=${RUN_SECS}s budget=$BUDGET exit=$rc $(mode_extra)"
		else
			result graph500 "$mode" failed "time=${RUN_SECS}s budget=$BUDGET exit=$rc $(mode_extra)"
			sed 's/^/#   /' "$WORK/$mode.err" | tail -n 20
			bad=1
		fi
		continue
	fi
	identical=yes
	if [ -z "$ref" ]; then
		ref=$sum
	elif [ "$sum" != "$ref" ]; then
		identical=no
		bad=1
	fi
	result graph500 "$mode" ok "time=${RUN_SECS}s budget=$BUDGET teps=$teps checksum=$sum identical=$identical $(mode_extra)"
done
summary graph500
exit $bad
