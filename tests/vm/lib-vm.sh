# lib-vm.sh - sourced by tests/t-vm-*.sh after tests/lib.sh: builds the test
# guest, boots it in QEMU (TCG) with a QMP socket and a serial log, waits for
# lines on the serial console, and stops QEMU. The guest's /init
# (tests/vm/init) is steered by fm.* words on the kernel command line.

# vm_prereqs: skip unless QEMU and a 'fluidmem vm' command are available.
vm_prereqs() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	[ -x "$FLUIDMEM" ] || skip "$FLUIDMEM not built"
	"$FLUIDMEM" vm --help >/dev/null 2>&1 || skip "$FLUIDMEM has no 'vm' command (src/cli/main.c does not dispatch to fm_cli_vm yet)"
}

# vm_build_guest: sets FM_VM_KERNEL, FM_VM_INITRD (skips when it cannot).
vm_build_guest() {
	local out rc=0
	out=$("$FM_ROOT/tests/vm/build-guest.sh") || rc=$?
	[ $rc = 77 ] && skip "${out#skipped: }"
	[ $rc = 0 ] || fail "tests/vm/build-guest.sh failed ($rc)"
	eval "$out"
}

# vm_boot CMDLINE-EXTRA [QEMU-ARGS...]: boots the guest in the background with
# the command prefix in VM_WRAP (e.g. "$FLUIDMEM run --"), 256 MiB boot RAM,
# 4 DIMM slots. Sets VM_PID, VM_QMP, VM_SERIAL, VM_BOOT_START (ms).
vm_boot() {
	local extra=$1
	shift
	VM_QMP=$T/qmp.sock
	VM_SERIAL=$T/serial.log
	VM_LOG=$T/qemu.log
	: >"$VM_SERIAL"
	VM_BOOT_START=$(date +%s%3N)
	${VM_WRAP:-} qemu-system-x86_64 -accel tcg -machine pc -smp 1 \
		-m "${VM_MEM:-256M,slots=4,maxmem=4G}" \
		-nographic -no-reboot -nic none -monitor none -display none \
		-kernel "$FM_VM_KERNEL" -initrd "$FM_VM_INITRD" \
		-append "console=ttyS0 panic=-1 quiet $extra" \
		-serial "file:$VM_SERIAL" -qmp "unix:$VM_QMP,server=on,wait=off" \
		"$@" >"$VM_LOG" 2>&1 &
	VM_PID=$!
	FM_PIDS+=("$VM_PID")
}

# vm_wait PATTERN SECONDS: wait for an extended regex on the serial console.
vm_wait() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		grep -aqE "$1" "$VM_SERIAL" && return 0
		kill -0 "$VM_PID" 2>/dev/null || { grep -aqE "$1" "$VM_SERIAL" && return 0; vm_dump; fail "QEMU exited while waiting for '$1'"; }
		sleep 0.1
	done
	vm_dump
	fail "no '$1' on the guest's console within $2 s"
}

# vm_line PATTERN: the first serial line matching PATTERN, without the CR.
vm_line() { grep -aE "$1" "$VM_SERIAL" | head -n 1 | tr -d '\r'; }

vm_dump() {
	echo "--- guest console:" >&2
	tail -n 20 "$VM_SERIAL" | tr -d '\r' >&2
	echo "--- qemu:" >&2
	tail -n 20 "$VM_LOG" >&2
}

# vm_qmp COMMAND [ARGUMENTS-JSON]: one raw QMP command (for quit and the like).
vm_qmp() {
	python3 - "$VM_QMP" "$1" "${2:-}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
def cmd(c, a=None):
    m = {"execute": c}
    if a: m["arguments"] = json.loads(a)
    f.write(json.dumps(m) + "\n"); f.flush()
    while True:
        try: r = json.loads(f.readline())
        except Exception: return None
        if "return" in r or "error" in r: return r
cmd("qmp_capabilities")
print(json.dumps(cmd(sys.argv[2], sys.argv[3] or None)))
PY
}

# vm_stop: quit QEMU (QMP quit, then SIGTERM) and wait for it.
vm_stop() {
	vm_qmp quit >/dev/null 2>&1
	local i
	for i in $(seq 1 50); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.1; done
	kill "$VM_PID" 2>/dev/null
	wait "$VM_PID" 2>/dev/null
	return 0
}
