# app-test.sh - sourced by tests/t-app-*.sh after tests/lib.sh: runs one bench/apps
# script in its small variant and checks its RESULT lines.
#
#   app_test SCRIPT LABEL ARGS...
#
# Runs bench/apps/SCRIPT.sh ARGS (environment passes through, so a test sets sizes
# with the script's variables) and then, for the RESULT lines named LABEL:
#   - mode=plain must be status=ok;
#   - mode=noswap, when present, must be status=oom-killed (a skipped one is noted);
#   - mode=fluidmem must be status=ok, identical=yes, evictions > 0. A skipped
#     fluidmem mode (fluidmem not built or not working at all) skips the test with
#     the script's reason. FM_APP_KNOWN_PROBLEM="text" (set by a test whose
#     application does not work under fluidmem yet) turns a fluidmem failure into a
#     skip that names the known problem and this run's failure.
# shellcheck shell=bash
app_test() {
	local script=$1 label=$2 rc=0 line status
	shift 2
	[ -x "$FLUIDMEM" ] || skip "fluidmem not built ($FLUIDMEM)"
	FM_BUILD=$FM_BUILD FLUIDMEM=$FLUIDMEM FM_APPS_TMP=$T \
		"$FM_ROOT/bench/apps/$script.sh" "$@" >"$T/app.out" 2>&1 || rc=$?
	cat "$T/app.out"
	[ $rc = 77 ] && skip "$(tail -n 1 "$T/app.out")"

	line=$(grep "^RESULT $label mode=plain " "$T/app.out")
	case $line in *" status=ok "*) ;; *) fail "all-in-RAM run did not complete: ${line:-no result line}" ;; esac

	line=$(grep "^RESULT $label mode=noswap " "$T/app.out")
	if [ -n "$line" ]; then
		case $line in
		*" status=oom-killed "*) note "no swap at the budget: OOM-killed, as expected" ;;
		*" status=skipped "*) note "no-swap check not run: ${line#* reason=}" ;;
		*) fail "in a memory cgroup at the budget without swap it was not OOM-killed: $line" ;;
		esac
	fi

	line=$(grep "^RESULT $label mode=fluidmem " "$T/app.out")
	[ -n "$line" ] || fail "no fluidmem result line"
	status=$(sed -n 's/.* status=\([^ ]*\).*/\1/p' <<<"$line")
	case $status in
	skipped) skip "fluidmem mode: ${line#* reason=}" ;;
	ok) ;;
	*)
		if [ -n "${FM_APP_KNOWN_PROBLEM:-}" ]; then
			skip "known problem under fluidmem: $FM_APP_KNOWN_PROBLEM; this run: $(grep -o 'reason="[^"]*"' <<<"$line" | head -n 1)"
		fi
		fail "fluidmem run did not complete: $line" ;;
	esac
	case $line in *" identical=yes "*) ;; *) fail "output under fluidmem differs from all in RAM: $line" ;; esac
	local ev
	ev=$(sed -n 's/.* evictions=\([0-9]*\).*/\1/p' <<<"$line")
	[ -n "$ev" ] && [ "$ev" -gt 0 ] || fail "no evictions under fluidmem (evictions=${ev:-missing}): the budget did not bite"
	note "identical under fluidmem, $ev evictions"
	# An application bench script exits non-zero on any mode failure or mismatch.
	[ $rc = 0 ] || fail "bench/apps/$script.sh exited $rc"
}
