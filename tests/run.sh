#!/usr/bin/env bash
# run.sh - runs every tests/t-*.sh (or the stress-*.sh with --stress), each with a
# timeout, and prints one line per test and the closing "N passed, N failed".
# A test exits 0 (pass), 77 (skip, with a reason on its last output line) or
# anything else (fail). Usage: tests/run.sh [--stress] [name-filter...]
set -u
cd "$(dirname "$0")/.."
pattern='t-*.sh'
if [ "${1:-}" = "--stress" ]; then pattern='stress-*.sh'; shift; fi
timeout_s=${FM_TEST_TIMEOUT:-300}
logdir=${FM_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"
pass=0 fail=0 skip=0 failed=()
for t in tests/$pattern; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	if [ $# -gt 0 ]; then
		keep=0; for f in "$@"; do case "$name" in *"$f"*) keep=1;; esac; done
		[ $keep = 1 ] || continue
	fi
	start=$(date +%s)
	timeout -k 10 "$timeout_s" bash "$t" >"$logdir/$name.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS  %-36s %4ss\n' "$name" "$secs" ;;
	77) skip=$((skip + 1)); printf 'SKIP  %-36s %4ss  %s\n' "$name" "$secs" "$(tail -n 1 "$logdir/$name.log")" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   printf 'FAIL  %-36s %4ss  (exit %s, log %s)\n' "$name" "$secs" "$rc" "$logdir/$name.log"
	   tail -n 15 "$logdir/$name.log" | sed 's/^/      | /' ;;
	esac
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
