#!/usr/bin/env bash
# vm-hotplug.sh - worked example: boot a small QEMU guest under fluidmem, hotplug
# remote memory into it, watch the guest use it, and take it back.
#
#   examples/vm-hotplug.sh [DIMM-SIZE] [LOCAL-MEMORY]      (default 512M 128M)
#
# Uses the test guest of tests/vm/build-guest.sh (Debian cloud kernel + busybox
# initramfs; downloaded once into build/vm-cache). Runs with TCG, so no KVM is
# needed; set ACCEL=kvm where KVM works. Every step prints the command it runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-512M}
local_mem=${2:-128M}
FLUIDMEM=${FLUIDMEM:-$root/build/fluidmem}
work=$(mktemp -d /tmp/fm-vm-example.XXXXXX)
qmp=$work/vm.qmp
serial=$work/serial.log
step() { printf '\n$ %s\n' "$*"; "$@"; }

eval "$("$root/tests/vm/build-guest.sh")"

# 1. a private monitor, so the example does not touch a host-wide one
export FLUIDMEM_SOCKET=$work/fluidmemd.sock
"$root/build/fluidmemd" --socket "$FLUIDMEM_SOCKET" --local-memory 1G >"$work/fluidmemd.log" 2>&1 &
mon=$!
qemu=
cleanup() {
	[ -n "$qemu" ] && kill "$qemu" 2>/dev/null && wait "$qemu" 2>/dev/null
	kill "$mon" 2>/dev/null && wait "$mon" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$FLUIDMEM_SOCKET" ] && break; sleep 0.1; done

# 2. QEMU under fluidmem: 256 MiB boot RAM (ordinary), room for 4 DIMMs.
#    The guest onlines hotplugged memory movable, waits for it, then writes and
#    verifies a pattern over 608 MiB and stays up.
echo "\$ $FLUIDMEM run --local-memory $local_mem -- qemu-system-x86_64 -m 256M,slots=4,maxmem=4G -qmp unix:$qmp,server=on,wait=off ..."
"$FLUIDMEM" run --local-memory "$local_mem" -- \
	qemu-system-x86_64 -accel "${ACCEL:-tcg}" -machine pc -smp 1 -m 256M,slots=4,maxmem=4G \
	-nographic -no-reboot -nic none -monitor none -display none \
	-kernel "$FM_VM_KERNEL" -initrd "$FM_VM_INITRD" \
	-append "console=ttyS0 quiet panic=-1 memhp_default_state=online_movable fm.grow=400 fm.mib=608 fm.after=idle" \
	-serial "file:$serial" -qmp "unix:$qmp,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qemu=$!
until grep -aq "FMGUEST READY" "$serial" 2>/dev/null; do
	kill -0 "$qemu" 2>/dev/null || { cat "$work/qemu.log"; exit 1; }
	sleep 0.2
done
echo "guest booted: $(grep -a 'FMGUEST READY' "$serial" | tr -d '\r')"

# 3. hotplug, and what the VM looks like now
step "$FLUIDMEM" vm hotplug --qmp "$qmp" --size "$size" --id fm0
step "$FLUIDMEM" vm list --qmp "$qmp"

# 4. the guest fills the new memory; fluidmem keeps $local_mem of it resident
until grep -aq "FMTEST" "$serial"; do sleep 0.5; done
grep -a "FMGUEST GREW\|FMTEST" "$serial" | tr -d '\r'
step "$FLUIDMEM" status

# 5. take the memory back: the guest offlines it, QEMU unmaps it, fluidmem
#    drops the region and its stored pages
step "$FLUIDMEM" vm unplug --qmp "$qmp" --id fm0
sleep 1 # QEMU unmaps the backend from its RCU thread, a moment after object-del
step "$FLUIDMEM" status
