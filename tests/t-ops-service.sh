#!/usr/bin/env bash
# t-ops-service: etc/fluidmemd.service passes systemd-analyze verify, and its
# hardening holds for a real run: fluidmemd without any capability and with
# no_new_privs serves a paging client, metrics and evict, and every system
# call it makes (strace) is in the unit's SystemCallFilter=@system-service.
. "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
command -v setpriv >/dev/null || skip "no setpriv"
[ "$(id -u)" = 0 ] || skip "needs root (to drop root's capabilities)"
unit=$FM_ROOT/etc/fluidmemd.service

# verify, with the binaries of this build in place of the installed ones
sed "s|/usr/local/bin|$FM_BUILD|g" "$unit" >"$T/fluidmemd.service"
systemd-analyze verify "$T/fluidmemd.service" >"$T/verify.out" 2>&1
grep -v "Command 'man fluidmem" "$T/verify.out" | grep . && fail "systemd-analyze verify complained"
for d in NoNewPrivileges=yes CapabilityBoundingSet= ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	PrivateDevices=yes "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" MemoryDenyWriteExecute=yes \
	SystemCallFilter=@system-service RuntimeDirectory=fluidmem; do
	grep -qx "$d" "$unit" || fail "the unit lacks $d"
done
grep -q "^ExecStart=/usr/local/bin/fluidmemd --socket /run/fluidmem/fluidmemd.sock" "$unit" || fail "ExecStart"

# a run as the unit confines it: no capabilities, no new privileges, under strace
FLUIDMEMD=$FM_BUILD/fluidmemd # not the sanitized one: strace sees only fluidmemd's calls
port=$(free_port)
FM_SOCK=$T/fluidmemd.sock
export FLUIDMEM_SOCKET=$FM_SOCK
setpriv --no-new-privs --bounding-set=-all --inh-caps=-all \
	strace -f -qq -o "$T/strace.out" \
	"$FLUIDMEMD" --config /dev/null --socket "$FM_SOCK" --local-memory 256M --metrics-listen "127.0.0.1:$port" \
	>"$T/mon.log" 2>&1 &
FM_MON_PID=$!
FM_PIDS+=("$FM_MON_PID")
wait_for test -S "$FM_SOCK" || { cat "$T/mon.log"; fail "fluidmemd did not start without capabilities"; }
dpid=
for p in $(pgrep -x fluidmemd); do tr '\0' ' ' </proc/"$p"/cmdline | grep -qF -- "--socket $FM_SOCK " && dpid=$p; done
[ -n "$dpid" ] || fail "cannot find the daemon's process"
grep -q "^CapEff:[[:space:]]*0*$" /proc/"$dpid"/status || fail "the daemon has capabilities: $(grep ^Cap /proc/"$dpid"/status)"
grep -q "^NoNewPrivs:[[:space:]]*1$" /proc/"$dpid"/status || fail "the daemon lacks no_new_privs"
"$FLUIDMEM" run --local-memory 8M -- "$FM_BUILD/tests/rmw" --malloc 32 2 >"$T/rmw.out" 2>&1 ||
	{ cat "$T/rmw.out" "$T/mon.log"; fail "a paging client failed under the unit's confinement"; }
python3 -c "import urllib.request; assert b'fluidmem_evictions_total' in urllib.request.urlopen('http://127.0.0.1:$port/metrics').read()" ||
	fail "metrics not served"
"$FLUIDMEM" evict >/dev/null || fail "evict failed"
"$FLUIDMEM" stop || fail "stop failed"
wait "$FM_MON_PID" || fail "fluidmemd exited with $?"

# every system call made is allowed by @system-service
used=$(sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$T/strace.out" | sort -u)
[ -n "$used" ] || fail "strace saw no system calls"
allowed=$(systemd-analyze syscall-filter 2>/dev/null | python3 -c '
import sys
groups, cur = {}, None
for line in sys.stdin:
    if line.startswith("@"):
        cur = line.strip(); groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith("#"):
        groups[cur].append(line.strip())
def expand(g):
    r = set()
    for x in groups.get(g, []):
        r |= expand(x) if x.startswith("@") else {x}
    return r
print("\n".join(sorted(expand("@system-service"))))')
missing=$(comm -23 <(echo "$used") <(echo "$allowed"))
note "$(echo "$used" | wc -l) distinct system calls, all in @system-service unless listed: ${missing:-none}"
# execve is strace starting the daemon (systemd execs it before the filter applies)
missing=$(echo "$missing" | grep -vx "execve" || true)
[ -z "$missing" ] || fail "system calls outside @system-service: $missing"
echo "t-ops-service: ok"
