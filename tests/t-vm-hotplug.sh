#!/usr/bin/env bash
# t-vm-hotplug.sh - a QEMU guest under 'fluidmem run --local-memory 128M' gets
# a 512 MiB DIMM by 'fluidmem vm hotplug', writes and verifies a pattern over
# 608 MiB (most of it in the store), and the region's faults and evictions
# show it; unplugging the DIMM drops the region and its stored pages.
. "$(dirname "$0")/lib.sh"
. "$FM_ROOT/tests/vm/lib-vm.sh"
vm_prereqs
[ -e "$FM_BUILD/libfluidmem-preload.so" ] || skip "no $FM_BUILD/libfluidmem-preload.so (preload library not built)"
vm_build_guest
start_monitor
MiB=$((1024 * 1024))

# qemu_region FIELD...: from 'fluidmem status --json', the QEMU client's
# counters plus "regions" (count), "region_bytes" (sum) and "dimm_stored"
# (stored_pages of the 512 MiB region, -1 when there is none).
qemu_region() {
	"$FLUIDMEM" status --json >"$T/status.json" 2>"$T/status.err" || { cat "$T/status.err"; fail "fluidmem status failed"; }
	python3 - "$T/status.json" "$QEMU_PID" "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); pid = int(sys.argv[2])
c = next((c for c in j["clients"] if c["pid"] == pid), None)
out = []
for f in sys.argv[3:]:
    if c is None: out.append("none"); continue
    rs = c.get("regions_detail", [])
    if f == "regions": out.append(len(rs))
    elif f == "region_bytes": out.append(sum(r["size_bytes"] for r in rs))
    elif f == "dimm_stored": out.append(next((r["stored_pages"] for r in rs if r["size_bytes"] == 512 << 20), -1))
    elif f == "faults": out.append(c["faults_zero"] + c["faults_store"])
    else: out.append(c[f])
print(*out)
PY
}

VM_WRAP="$FLUIDMEM run --socket $FM_SOCK --local-memory 128M ${FM_VM_RUN_OPTS:-} --"
vm_boot "memhp_default_state=online_movable fm.grow=400 fm.mib=608 fm.after=idle"
vm_wait "FMGUEST READY" 30
note "booted under fluidmem in $(($(date +%s%3N) - VM_BOOT_START)) ms"
QEMU_PID=$(pgrep -P "$VM_PID" -x qemu-system-x86 || pgrep -P "$VM_PID" | head -n 1)
[ -n "$QEMU_PID" ] || fail "no QEMU child of 'fluidmem run' ($VM_PID)"
read -r nreg bytes < <(qemu_region regions region_bytes)
note "before hotplug: QEMU client regions=$nreg bytes=$bytes"
# Only memory-backend-memfd memory becomes regions: not boot RAM, not TCG's
# code buffer, not QEMU's heap.
[ "$nreg" = none ] || [ "$bytes" = 0 ] || { cat "$T/status.json"; fail "QEMU's anonymous memory became regions ($nreg, $((bytes / MiB)) MiB) before any hotplug"; }

t0=$(date +%s%3N)
"$FLUIDMEM" vm hotplug --qmp "$VM_QMP" --size 512M --id fm0 >"$T/out" 2>&1 || { cat "$T/out"; fail "hotplug failed"; }
note "hotplug: $(($(date +%s%3N) - t0)) ms"; cat "$T/out"
grep -q "^fm0: 512 MiB pc-dimm" "$T/out" || fail "hotplug output lacks the DIMM"
grep -q "runs with the preload library" "$T/out" || fail "hotplug does not see the preload library in QEMU"

end=$((SECONDS + 5))
while [ $SECONDS -lt $end ]; do
	read -r nreg bytes < <(qemu_region regions region_bytes)
	[ "$bytes" = $((512 * MiB)) ] && break
	sleep 0.2
done
[ "$bytes" = $((512 * MiB)) ] ||
	{ cat "$T/status.json"; fail "QEMU's memory-backend-memfd did not become a 512 MiB region (QEMU client: regions=$nreg bytes=$bytes)"; }

vm_wait "FMTEST " 60
line=$(vm_line "FMTEST ")
note "guest: $(vm_line 'FMGUEST GREW')"
note "guest: $line"
case "$line" in "FMTEST PASS "*) ;; *) fail "guest: $line" ;; esac

read -r faults fstore evictions resident stored < <(qemu_region faults faults_store evictions resident_pages dimm_stored)
note "region: faults=$faults from_store=$fstore evictions=$evictions resident_pages=$resident stored_pages=$stored"
[ "$faults" -gt 0 ] || fail "no faults counted for the DIMM region"
[ "$evictions" -gt 0 ] || fail "no evictions: the 128M budget was not enforced"
[ "$fstore" -gt 0 ] || fail "no page came back from the store, yet the guest read 608 MiB"
[ "$stored" -gt 0 ] || fail "the DIMM region has no stored pages"
[ $((resident * 4096)) -le $((136 * MiB)) ] || fail "resident $((resident * 4096 / MiB)) MiB exceeds the 128 MiB budget"

# case 2: unplug releases the region and its stored pages
t0=$(date +%s%3N)
"$FLUIDMEM" vm unplug --qmp "$VM_QMP" --id fm0 >"$T/out" 2>&1 || { cat "$T/out"; fail "unplug failed"; }
note "unplug: $(($(date +%s%3N) - t0)) ms"; cat "$T/out"
end=$((SECONDS + 5))
while [ $SECONDS -lt $end ]; do
	read -r stored bytes < <(qemu_region dimm_stored region_bytes)
	[ "$stored" = -1 ] || [ "$stored" = none ] && break
	sleep 0.2
done
[ "$stored" = -1 ] || [ "$stored" = none ] || fail "the region is still there after unplug (stored_pages=$stored)"
read -r spages < <(qemu_region stored_pages)
[ "$spages" = none ] || [ "$spages" = 0 ] || fail "QEMU's client still has $spages stored pages after unplug"
# and the store itself let go of them (the local store reports what it holds)
held=$(python3 -c 'import json,re,sys; m = re.search(r"(\d+) pages held", json.load(open(sys.argv[1]))["store"]); print(m.group(1) if m else "-")' "$T/status.json")
note "store after unplug: ${held} pages held"
[ "$held" = - ] || [ "$held" = 0 ] || fail "the store still holds $held pages after unplug"

vm_stop
end=$((SECONDS + 5))
while [ $SECONDS -lt $end ] && [ "$(qemu_region regions)" != none ]; do sleep 0.2; done
[ "$(qemu_region regions)" = none ] || fail "QEMU's client outlived QEMU"
stop_monitor
echo "ok"
