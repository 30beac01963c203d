#!/usr/bin/env bash
# run-all.sh - every application benchmark in sequence (graph500, redis, postgres,
# genome), same options for each (e.g. --bench, --modes "plain swap fluidmem"); the
# RESULT lines are also collected in $FM_BUILD/bench/apps-results.txt. Exit 1 if any
# application's script failed (a mismatch, or a mode that must complete did not).
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
OUT=${FM_BUILD:-$DIR/../../build}/bench
mkdir -p "$OUT"
: >"$OUT/apps-results.txt"
rc=0
for app in graph500 redis postgres genome; do
	echo "=== $app ($(date -u +%H:%M:%S) UTC)"
	"$DIR/$app.sh" "$@" | tee -a "$OUT/apps-results.txt.tmp"
	r=${PIPESTATUS[0]}
	grep '^RESULT' "$OUT/apps-results.txt.tmp" >>"$OUT/apps-results.txt"
	rm -f "$OUT/apps-results.txt.tmp"
	case $r in 0) ;; 77) echo "=== $app: skipped" ;; *) echo "=== $app: FAILED (exit $r)"; rc=1 ;; esac
done
exit $rc
