#!/usr/bin/env bash
# t-vm-qmp.sh - 'fluidmem vm' against plain QEMU (no fluidmem): hotplug a DIMM
# the guest onlines and fills with a verified pattern, list it, unplug it and
# its backend, and show QEMU's errors verbatim (no slot, bad node, no virtio-mem).
. "$(dirname "$0")/lib.sh"
. "$FM_ROOT/tests/vm/lib-vm.sh"
vm_prereqs
vm_build_guest
VM=("$FLUIDMEM" vm)

vm_boot "memhp_default_state=online_movable fm.grow=400 fm.mib=608 fm.after=idle"
vm_wait "FMGUEST READY" 30
note "booted in $(($(date +%s%3N) - VM_BOOT_START)) ms"

# errors: QEMU's own text, and the backend rolled back
"${VM[@]}" hotplug --qmp "$VM_QMP" --size 512M --node 7 --wait-guest 0 >"$T/out" 2>"$T/err" && fail "hotplug to node 7 succeeded"
grep -q "device_add pc-dimm fm0: 'DIMM property node has value 7' which exceeds the number of numa nodes: 1" "$T/err" || { cat "$T/err"; fail "QEMU's node error not passed on verbatim"; }
"${VM[@]}" resize --qmp "$VM_QMP" --size 1G >"$T/out" 2>"$T/err" && fail "resize without virtio-mem succeeded"
grep -q "no virtio-mem device" "$T/err" || { cat "$T/err"; fail "resize error unclear"; }
rc=0; "${VM[@]}" hotplug --qmp "$VM_QMP" --size 12Q 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "bad size: exit $rc, want 2"

t0=$(date +%s%3N)
"${VM[@]}" hotplug --qmp "$VM_QMP" --size 512M --id fm0 >"$T/out" 2>&1 || { cat "$T/out"; fail "hotplug failed"; }
note "hotplug: $(($(date +%s%3N) - t0)) ms"; cat "$T/out"
grep -q "^fm0: 512 MiB pc-dimm" "$T/out" || fail "hotplug output lacks the DIMM"
grep -q "guest: acknowledged fm0" "$T/out" || fail "the guest did not acknowledge the DIMM"
grep -q "256 MiB boot + 512 MiB hotplugged" "$T/out" || fail "hotplug output lacks the guest's memory"

"${VM[@]}" list --qmp "$VM_QMP" --json >"$T/list.json" || fail "list failed"
python3 - "$T/list.json" <<'PY' || fail "list --json is wrong: $(cat "$T/list.json")"
import json, sys
j = json.load(open(sys.argv[1]))
d = [x for x in j["devices"] if x["id"] == "fm0"]
assert d and d[0]["type"] == "pc-dimm" and d[0]["size"] == 512 << 20 and d[0]["backend"] == "mem-fm0", d
b = [x for x in j["backends"] if x["id"] == "mem-fm0"]
assert b and b[0]["type"] == "memory-backend-memfd" and b[0]["share"] and b[0]["used_by"] == "fm0", b
assert j["plugged_memory"] == 512 << 20
PY

vm_wait "FMTEST " 60
line=$(vm_line "FMTEST ")
note "guest: $(vm_line FMGUEST\ GREW)"
note "guest: $line"
case "$line" in "FMTEST PASS "*) ;; *) fail "guest: $line" ;; esac

t0=$(date +%s%3N)
"${VM[@]}" unplug --qmp "$VM_QMP" --id fm0 >"$T/out" 2>&1 || { cat "$T/out"; fail "unplug failed"; }
note "unplug: $(($(date +%s%3N) - t0)) ms"; cat "$T/out"
"${VM[@]}" list --qmp "$VM_QMP" --json >"$T/list.json" || fail "list failed"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert not j["devices"] and all(b["id"] != "mem-fm0" for b in j["backends"]) and j["plugged_memory"] == 0' "$T/list.json" ||
	fail "device or backend still there after unplug: $(cat "$T/list.json")"
vm_stop
echo "ok"
