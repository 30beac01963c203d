#!/usr/bin/env bash
# t-ops-metrics: /metrics (--metrics-listen) after a paging workload shows the
# same counters as `fluidmem status --json`, per tag too, and a well-formed
# fault latency histogram; a bad listen address is a clear startup error.
. "$(dirname "$0")/lib.sh"
[ -e /dev/userfaultfd ] || [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ] || [ "$(id -u)" = 0 ] ||
	skip "no userfaultfd access"

port=$(free_port)
start_monitor --local-memory 256M --metrics-listen "127.0.0.1:$port"
wait_for python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/metrics')" ||
	fail "no answer on 127.0.0.1:$port/metrics"

"$FLUIDMEM" run --local-memory 8M -- "$FM_BUILD/tests/rmw" --malloc 64 1 >"$T/rmw.out" 2>&1 ||
	{ cat "$T/rmw.out"; fail "rmw under fluidmem run failed"; }
# the client is folded into the totals when the monitor sees it exit
wait_for bash -c "[ \"\$('$FLUIDMEM' status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"clients\"]))')\" = 0 ]" ||
	fail "the client did not go away"

"$FLUIDMEM" status --json >"$T/status.json" || fail "status --json failed"
python3 - "$port" "$T/status.json" <<'PY' || fail "metrics disagree with status"
import json, re, sys, urllib.request
port, status = sys.argv[1], json.load(open(sys.argv[2]))
resp = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port)
ctype = resp.headers["Content-Type"]
assert ctype.startswith("text/plain; version=0.0.4"), ctype
text = resp.read().decode()
m = {}
for line in text.splitlines():
    if not line or line.startswith("#"):
        continue
    mt = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? (\S+)', line)
    assert mt, "bad sample line: %r" % line
    m[mt.group(1) + (mt.group(2) or "")] = float(mt.group(3))
t = status["totals"]
want = {
    'fluidmem_faults_total{kind="zero"}': t["faults_zero"],
    'fluidmem_faults_total{kind="store"}': t["faults_store"],
    'fluidmem_faults_total{kind="wp"}': t["faults_wp"],
    'fluidmem_faults_total{kind="spurious"}': t["faults_spurious"],
    'fluidmem_faults_total{kind="poisoned"}': t["faults_poisoned"],
    "fluidmem_evictions_total": t["evictions"],
    "fluidmem_pages_written_total": t["pages_written"],
    "fluidmem_pages_zero_skipped_total": t["pages_zero_skipped"],
    "fluidmem_store_read_bytes_total": t["bytes_in"],
    "fluidmem_store_written_bytes_total": t["bytes_out"],
    "fluidmem_store_errors_total": t["store_errors"],
    "fluidmem_budget_bytes": status["budget_bytes"],
    "fluidmem_resident_bytes": status["resident_bytes"],
    "fluidmem_peak_resident_bytes": status["peak_resident_bytes"],
    "fluidmem_store_shared_bytes": status["store_shared_pages"] * 4096,
    "fluidmem_fork_shared_pages_total": status["fork_pages_shared"],
    "fluidmem_fork_copied_pages_total": status["fork_pages_copied"],
    "fluidmem_clients": 0,
}
for k, v in want.items():
    assert m.get(k) == v, "%s: metrics %s, status %s" % (k, m.get(k), v)
assert t["evictions"] > 0 and t["faults_store"] > 0, "the workload did not page: %s" % t
# one run, so its tag holds everything
tags = {re.search(r'tag="([^"]*)"', k).group(1) for k in m if k.startswith("fluidmem_tag_")}
assert len(tags) == 1, tags
tag = tags.pop()
assert tag.startswith("run-"), tag
for k in ("evictions_total", "pages_written_total", "store_read_bytes_total", "store_written_bytes_total"):
    assert m['fluidmem_tag_%s{tag="%s"}' % (k, tag)] == m["fluidmem_" + k], k
assert m['fluidmem_tag_faults_total{tag="%s",kind="store"}' % tag] == t["faults_store"]
assert m['fluidmem_tag_limit_bytes{tag="%s"}' % tag] == 8 << 20
# histogram: cumulative, +Inf == _count == faults timed (zero + store)
for pre in ("fluidmem_fault_latency_seconds", 'fluidmem_tag_fault_latency_seconds'):
    lab = "" if pre == "fluidmem_fault_latency_seconds" else 'tag="%s",' % tag
    b = [(float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in m.items()
         if k.startswith(pre + "_bucket{" + lab + "le=")]
    b.sort()
    assert len(b) > 10 and b[-1][0] == float("inf"), b
    assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), "not cumulative: %s" % b
    count = m[pre + "_count" + ("{%s}" % lab[:-1] if lab else "")]
    assert b[-1][1] == count == t["faults_zero"] + t["faults_store"], (b[-1], count)
    assert m[pre + "_sum" + ("{%s}" % lab[:-1] if lab else "")] > 0
print("# metrics agree: evictions=%d faults_store=%d latency count=%d" % (t["evictions"], t["faults_store"], count))
PY
code=$(python3 -c "
import urllib.request, urllib.error
try: urllib.request.urlopen('http://127.0.0.1:$port/nope')
except urllib.error.HTTPError as e: print(e.code)")
[ "$code" = 404 ] || fail "unknown path answered $code, not 404"
stop_monitor

# a port already taken, and a malformed address, stop the daemon at startup with a reason
busy=$(free_port)
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$busy)); s.listen(); time.sleep(60)" &
FM_PIDS+=("$!")
wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$busy" || fail "the port-holder did not start"
rc=0; timeout 10 "$FLUIDMEMD" --socket "$T/c.sock" --metrics-listen "127.0.0.1:$busy" >"$T/bad2.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "metrics-listen: cannot listen on 127.0.0.1:$busy" "$T/bad2.log" ||
	{ cat "$T/bad2.log"; fail "a busy metrics port did not stop the daemon (rc $rc)"; }
[ -e "$T/c.sock" ] && fail "the daemon left its socket behind"
rc=0; timeout 10 "$FLUIDMEMD" --socket "$T/d.sock" --metrics-listen "nocolon" >"$T/bad3.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "is not ADDRESS:PORT" "$T/bad3.log" || { cat "$T/bad3.log"; fail "bad address accepted (rc $rc)"; }
echo "t-ops-metrics: ok"
