#!/usr/bin/env bash
# t-vm-virtio-mem.sh - 'fluidmem vm resize' grows a guest through virtio-mem
# (a memory-backend-memfd given at start-up, requested-size 0): the guest's
# driver plugs 512 MiB, the guest fills and verifies 608 MiB, and a resize
# back down is followed by the guest. Plain QEMU; refusals are checked too.
. "$(dirname "$0")/lib.sh"
. "$FM_ROOT/tests/vm/lib-vm.sh"
vm_prereqs
vm_build_guest

VM_MEM=256M,maxmem=4G
vm_boot "memhp_default_state=online_movable fm.mode=virtio-mem fm.grow=400 fm.mib=608 fm.after=idle" \
	-object memory-backend-memfd,id=vmem0,size=1G \
	-device virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=0
vm_wait "FMGUEST READY" 30

rc=0; "$FLUIDMEM" vm resize --qmp "$VM_QMP" --size 2G >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "larger than vm0's maximum 1 GiB" "$T/out" || { cat "$T/out"; fail "resize beyond max-size not refused clearly"; }
rc=0; "$FLUIDMEM" vm resize --qmp "$VM_QMP" --size 512M --id nope >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "no virtio-mem device 'nope' (this VM has: vm0)" "$T/out" || { cat "$T/out"; fail "unknown --id not refused clearly"; }
rc=0; "$FLUIDMEM" vm hotplug --qmp "$VM_QMP" --size 128M >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "device_add pc-dimm fm0: no slots where allocated" "$T/out" || { cat "$T/out"; fail "QEMU's slots error not passed on"; }

t0=$(date +%s%3N)
"$FLUIDMEM" vm resize --qmp "$VM_QMP" --size 512M --wait-guest 20 >"$T/out" 2>&1 || { cat "$T/out"; fail "resize failed"; }
note "resize to 512M: $(($(date +%s%3N) - t0)) ms"; cat "$T/out"
grep -q "^vm0: virtio-mem now 512 MiB" "$T/out" || fail "the guest did not plug 512 MiB"
vm_wait "FMTEST " 60
line=$(vm_line "FMTEST ")
note "guest: $line"
case "$line" in "FMTEST PASS "*) ;; *) fail "guest: $line" ;; esac

"$FLUIDMEM" vm resize --qmp "$VM_QMP" --size 256M --wait-guest 20 >"$T/out" 2>&1 || { cat "$T/out"; fail "resize down failed"; }
cat "$T/out"
grep -q "^vm0: virtio-mem now 256 MiB" "$T/out" || fail "the guest did not unplug down to 256 MiB"
"$FLUIDMEM" vm list --qmp "$VM_QMP" --json | python3 -c '
import json, sys
j = json.load(sys.stdin); d = j["devices"][0]
assert d["type"] == "virtio-mem" and d["size"] == 256 << 20 and d["requested_size"] == 256 << 20 and d["max_size"] == 1 << 30, d' ||
	fail "list --json does not show the virtio-mem device at 256 MiB"
"$FLUIDMEM" vm resize --qmp "$VM_QMP" --size 0 --wait-guest 20 >"$T/out" 2>&1 || { cat "$T/out"; fail "resize to 0 failed"; }
grep -q "^vm0: virtio-mem now 0 B" "$T/out" || { cat "$T/out"; fail "the guest did not unplug everything"; }
vm_stop
echo ok
