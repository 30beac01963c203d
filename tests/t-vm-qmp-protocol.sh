#!/usr/bin/env bash
# t-vm-qmp-protocol.sh - 'fluidmem vm' against a scripted QMP server (no QEMU):
# answers split across writes, events and a stale answer before the real one,
# QEMU's errors passed on verbatim with the backend rolled back, a guest
# refusing an unplug (ACPI _OST 0x82), a peer that is not QMP, a silent one.
. "$(dirname "$0")/lib.sh"
[ -x "$FLUIDMEM" ] || skip "$FLUIDMEM not built"
"$FLUIDMEM" vm --help >/dev/null 2>&1 || skip "$FLUIDMEM has no 'vm' command"
command -v python3 >/dev/null || skip "no python3"

fake() { # fake MODE: start a fake QMP server on $Q, commands logged in $T/cmds
	Q=$T/fake-$1.qmp
	python3 "$FM_ROOT/tests/vm/fake-qmp.py" "$Q" "$T/cmds" "$1" &
	FM_PIDS+=($!)
	wait_for test -S "$Q" || fail "fake QMP server did not start"
}
expect() { # expect RC PATTERN CMD...: exit status and a line of its output
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/out"; fail "'$*' exited $rc, want $want"; }
	grep -qF -- "$pat" "$T/out" || { cat "$T/out"; fail "'$*' did not say: $pat"; }
}
VM=("$FLUIDMEM" vm)

fake qmp
expect 0 "fm0: 512 MiB pc-dimm, slot 0, node 0, guest-physical 0x100000000-0x11fffffff" \
	"${VM[@]}" hotplug --qmp "$Q" --size 512M --wait-guest 2
grep -qF "guest: acknowledged fm0" "$T/out" || { cat "$T/out"; fail "the queued ACPI_DEVICE_OST was lost"; }
grep -q '"qom-type": "memory-backend-memfd".*"execute": "object-add"' "$T/cmds" || fail "no object-add memory-backend-memfd sent"
grep -q '"size": 536870912' "$T/cmds" || fail "object-add without the size in bytes"

: >"$T/cmds"
expect 1 "fluidmem vm hotplug: device_add pc-dimm busy: Fake: slot 3 is busy" \
	"${VM[@]}" hotplug --qmp "$Q" --size 1G --id busy
grep -q '"execute": "object-del"' "$T/cmds" && grep -q '"id": "mem-busy"' "$T/cmds" ||
	fail "the backend was not rolled back after device_add failed"

expect 0 '"plugged_memory": 536870912' "${VM[@]}" list --qmp "$Q" --json
expect 1 "no memory device 'nope' in this VM" "${VM[@]}" unplug --qmp "$Q" --id nope
expect 0 "fm0: 512 MiB pc-dimm unplugged" "${VM[@]}" unplug --qmp "$Q" --id fm0
grep -q '"id": "mem-fm0"' "$T/cmds" || fail "no object-del of mem-fm0 after unplug"

# a guest that refuses: 0x84 (in progress) is not an error, 0x82 (busy) is
expect 0 "stuck: 512 MiB" "${VM[@]}" hotplug --qmp "$Q" --size 512M --id stuck --wait-guest 0
expect 1 "the guest refused to release stuck (ACPI _OST status 0x82, device busy)" \
	"${VM[@]}" unplug --qmp "$Q" --id stuck --timeout 5

expect 2 "--size: '5X' is not a size" "${VM[@]}" hotplug --qmp "$Q" --size 5X
expect 2 "--qmp PATH is required" "${VM[@]}" list
expect 2 "unknown command 'frob'" "${VM[@]}" frob
expect 0 "usage: fluidmem vm unplug" "${VM[@]}" unplug --help

fake noqmp
expect 1 "does not speak QMP" "${VM[@]}" list --qmp "$Q"
fake silent
expect 1 "no QMP greeting on $Q within 1 s" "${VM[@]}" list --qmp "$Q" --timeout 1
expect 1 "cannot connect to QMP socket $T/none.qmp: No such file or directory" "${VM[@]}" list --qmp "$T/none.qmp"
echo ok
