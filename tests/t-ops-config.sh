#!/usr/bin/env bash
# t-ops-config: fluidmemd --config FILE applies the file's settings, flags
# override them, lists add up, the shipped example parses, and a bad file
# stops the daemon with FILE:LINE and a reason.
. "$(dirname "$0")/lib.sh"

budget_of() { "$FLUIDMEM" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['budget_bytes'])"; }

# every kind of line: comments, blanks, quotes, trailing comments, underscores, flags
port=$(free_port)
cat >"$T/good.conf" <<CONF
# a comment

   # an indented comment
socket = $T/from-file.sock
local-memory = 64M   # a trailing comment
store = "local://"
evict_batch=32
socket-mode = 0600
metrics-listen = 127.0.0.1:$port
verbose = yes
quiet = false
CONF
"$FLUIDMEMD" --config "$T/good.conf" >"$T/good.log" 2>&1 &
FM_PIDS+=("$!")
export FLUIDMEM_SOCKET=$T/from-file.sock
wait_for test -S "$T/from-file.sock" || { cat "$T/good.log"; fail "no socket where the file put it"; }
[ "$(budget_of)" = $((64 << 20)) ] || fail "budget $(budget_of), want 64M from the file"
[ "$(stat -c %a "$T/from-file.sock")" = 600 ] || fail "socket mode $(stat -c %a "$T/from-file.sock"), want 600"
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/metrics')" ||
	fail "metrics-listen from the file not served"
"$FLUIDMEM" run --local-memory 8M -- "$FM_BUILD/tests/rmw" --malloc 16 1 >/dev/null || fail "a client failed"
wait_for grep -q "connected" "$T/good.log" || { cat "$T/good.log"; fail "verbose = yes did not log the client"; }
"$FLUIDMEM" stop || fail "stop failed"
wait_for bash -c "! test -S '$T/from-file.sock'" || fail "the daemon did not stop"

# flags override the file: socket and budget from the command line
start_monitor --config "$T/good.conf" --local-memory 32M
[ "$(budget_of)" = $((32 << 20)) ] || fail "budget $(budget_of), want the flag's 32M"
[ -e "$T/from-file.sock" ] && fail "the file's socket was used despite --socket"
stop_monitor

# the shipped example (all defaults, commented out) and an empty file start the daemon
for f in "$FM_ROOT/etc/fluidmemd.conf" /dev/null; do
	start_monitor --config "$f" --local-memory 16M
	[ "$(budget_of)" = $((16 << 20)) ] || fail "$f: budget $(budget_of)"
	stop_monitor
done

# lists add up: allow may repeat
printf 'allow = root\nallow = 0\n' >"$T/lists.conf"
start_monitor --config "$T/lists.conf"
stop_monitor

# bad files: exit status 2, FILE:LINE: reason, nothing listening
bad() { # bad NAME EXPECTED-MESSAGE < file contents
	cat >"$T/$1.conf"
	rc=0
	"$FLUIDMEMD" --config "$T/$1.conf" --socket "$T/bad.sock" >"$T/$1.log" 2>&1 || rc=$?
	[ $rc = 2 ] || { cat "$T/$1.log"; fail "$1: exit $rc, want 2"; }
	grep -qF -- "fluidmemd: $T/$1.conf:$2" "$T/$1.log" || { cat "$T/$1.log"; fail "$1: want '$T/$1.conf:$2'"; }
	[ -e "$T/bad.sock" ] && fail "$1: the daemon listened anyway"
	return 0
}
printf '# ok\nsocket = /tmp/x\nbogus = 1\n' | bad unknown "3: unknown key 'bogus'"
printf 'local-memory = 12Q\n' | bad size "1: local-memory: invalid size '12Q'"
printf 'local-memory = 4K\n' | bad small "1: local-memory: invalid size '4K' (e.g. 512M, 4G; at least 64K)"
printf 'evict-batch = 0\n' | bad batch "1: evict-batch: '0' is not a number from 1 to"
printf 'socket-mode = 0999\n' | bad mode "1: socket-mode: '0999' is not an octal mode"
printf 'metrics-listen = 9464\n' | bad addr "1: metrics-listen: '9464' is not ADDRESS:PORT"
printf 'verbose = maybe\n' | bad bool "1: verbose: 'maybe' is not true or false"
printf 'verbose\n' | bad noeq "1: expected \`=\` after 'verbose'"
printf 'store = "local://\n' | bad quote "1: unterminated quoted value of 'store'"
printf 'store =\n' | bad empty "1: store: empty value"
printf 'socket = /a\n\nsocket = /b\n' | bad dup "3: 'socket' is already set on line 1"
printf 'config = /etc/x\n' | bad nested "1: 'config' cannot be set in the configuration file"
printf '= 1\n' | bad nokey "1: expected \`key = value\`"
rc=0; "$FLUIDMEMD" --config "$T/missing.conf" --socket "$T/bad.sock" >"$T/missing.log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "cannot read configuration $T/missing.conf: No such file" "$T/missing.log" ||
	{ cat "$T/missing.log"; fail "a missing --config file: exit $rc"; }
echo "t-ops-config: ok"
