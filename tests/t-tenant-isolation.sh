# Tenants are uids: each sees and steers only its own processes, an
# allow-list decides who may register memory, and a tenant's --reserve keeps
# its pages resident while another tenant pages heavily.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to create the test users"
command -v useradd >/dev/null && command -v runuser >/dev/null || skip "no useradd/runuser"
users=(fmtest_a fmtest_b fmtest_c)
for u in "${users[@]}"; do id "$u" >/dev/null 2>&1 || useradd -M -r -s /bin/sh "$u" || skip "cannot create users"; done
uffd_mode=$(stat -c %a /dev/userfaultfd)
chmod 666 /dev/userfaultfd
trap 'chmod "$uffd_mode" /dev/userfaultfd; for u in "${users[@]}"; do userdel "$u" 2>/dev/null; done; cleanup' EXIT
chmod 1777 "$T" # the tenants write their stats here
as() { local u=$1; shift; runuser -u "$u" -- env FLUIDMEM_SOCKET="$FM_SOCK" "$@"; }
uid_a=$(id -u fmtest_a) uid_b=$(id -u fmtest_b)

run_pair() { # $1: fluidmemd flags; sets A_STATS, B_STATS
	start_monitor --local-memory 48M --allow fmtest_a --allow fmtest_b $1
	as fmtest_a "$FLUIDMEM" run -m 40M --stats-json "$T/a.json" -- "$FM_BUILD/tests/rmw" --malloc 28 20000 >"$T/a.out" 2>&1 &
	local a=$!
	for _ in $(seq 1 100); do
		r=$(as fmtest_a "$FLUIDMEM" status --json | python3 -c "import json,sys; print(sum(c['resident_pages'] for c in json.load(sys.stdin)['clients']))")
		[ "${r:-0}" -gt 6000 ] && break
		sleep 0.1
	done
	[ "${r:-0}" -gt 6000 ] || fail "tenant A never got its pages resident ($r)"
	# what each tenant sees while both run
	as fmtest_b "$FLUIDMEM" run -m 48M --stats-json "$T/b.json" -- "$FM_BUILD/tests/rmw" --malloc 160 1 >"$T/b.out" 2>&1 &
	local b=$!
	sleep 0.5
	as fmtest_b "$FLUIDMEM" status --json >"$T/b-view.json"
	as fmtest_a "$FLUIDMEM" status --json >"$T/a-view.json"
	wait $b || fail "tenant B's program: $(cat "$T/b.out")"
	wait $a || fail "tenant A's program: $(cat "$T/a.out")"
	stop_monitor
}

run_pair "--reserve fmtest_a=36M"
python3 - "$T/a-view.json" "$T/b-view.json" "$uid_a" "$uid_b" <<'PY' || fail "a tenant saw another's processes or the store"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ua, ub = int(sys.argv[3]), int(sys.argv[4])
assert a["clients"] and all(c["uid"] == ua for c in a["clients"]), a["clients"]
assert b["clients"] and all(c["uid"] == ub for c in b["clients"]), b["clients"]
for v in (a, b):
    assert "store_url" not in v and "budget_bytes" not in v, v.keys()
assert [t["uid"] for t in a["tenants"]] == [ua], a["tenants"]
assert [t["uid"] for t in b["tenants"]] == [ub], b["tenants"]
assert a["tenants"][0]["reserve_bytes"] == 36 << 20 and a["tenants"][0]["resident_bytes"] > 0, a["tenants"]
PY
a_fs=$(json_get "$T/a.json" faults_store) b_ev=$(json_get "$T/b.json" evictions)
note "with --reserve: A faults from store $a_fs, B evictions $b_ev"
[ "$b_ev" -gt 0 ] || fail "tenant B did not page"
[ "$a_fs" -eq 0 ] || fail "tenant A lost resident pages to B's storm despite its reserve ($a_fs store faults)"
# the control: without the reserve the same storm takes A's pages
run_pair ""
a_fs=$(json_get "$T/a.json" faults_store)
note "without --reserve: A faults from store $a_fs"
[ "$a_fs" -gt 0 ] || fail "the control run did not evict A: the test proves nothing"

# who may register, who may steer
start_monitor --local-memory 48M --allow fmtest_a
out=$(as fmtest_c "$FLUIDMEM" run -m 8M -- "$FM_BUILD/tests/rmw" --malloc 8 1 2>&1) && fail "a user outside --allow registered memory"
echo "$out" | grep -q "not allowed to register memory" || fail "no clear refusal: $out"
out=$(as fmtest_a "$FLUIDMEM" resize --local-memory 1G 2>&1) && fail "a tenant resized the global budget"
echo "$out" | grep -qi "root" || fail "no clear refusal of resize: $out"
out=$(as fmtest_a "$FLUIDMEM" stop 2>&1) && fail "a tenant stopped the daemon"
kill -0 "$FM_MON_PID" || fail "the daemon died"
stop_monitor
