#!/usr/bin/env bash
# vm-pagecache.sh - the paper's MongoDB experiment in miniature: a guest whose
# boot RAM is smaller than a file reads the file (a raw virtual disk) again and
# again. Without more memory every pass comes from the disk; with a hotplugged
# DIMM the guest's page cache holds the file and later passes are memory reads.
# Three runs, same guest and disk:
#   base       256 MiB boot RAM, nothing hotplugged
#   dimm-host  + a 512 MiB DIMM of ordinary host memory (plain QEMU)
#   fluidmem   + a 512 MiB DIMM of fluidmem memory (QEMU under 'fluidmem run
#              --local-memory LOCAL', most of the cache in fluidmem's store)
# Prints one line per run: pass-1 (disk) and later-pass (cache) throughput in
# MiB/s as the guest measured it; writes the same as TSV to $OUT.
# Environment: FILE_MIB (384), PASSES (4), LOCAL (128M), DISK_BPS (e.g. 200M:
# throttle the virtual disk like a network volume; default unthrottled,
# cache=none so pass 1 reads the host's storage), RUNS ("base dimm-host fluidmem").
# FM_VM_RUN_OPTS: more options for "fluidmem run".
. "$(dirname "$0")/../tests/lib.sh"
. "$FM_ROOT/tests/vm/lib-vm.sh"
FILE_MIB=${FILE_MIB:-384}
PASSES=${PASSES:-4}
LOCAL=${LOCAL:-128M}
RUNS=${RUNS:-base dimm-host fluidmem}
OUT=${OUT:-$FM_BUILD/bench/vm-pagecache.tsv}
vm_prereqs
vm_build_guest
mkdir -p "$(dirname "$OUT")"

img=$T/disk.img
dd if=/dev/urandom of="$img" bs=1M count="$FILE_MIB" status=none
drive="file=$img,format=raw,if=virtio,cache=none,aio=threads"
[ -n "${DISK_BPS:-}" ] && drive+=",throttling.bps-read=$(numfmt --from=iec "$DISK_BPS")"

printf 'run\tfile_mib\tpass1_mibps\tcached_mibps\tfaults\tevictions\n' >"$OUT"
printf '%-10s %8s %14s %16s %10s %10s\n' RUN FILE_MIB "PASS1 MiB/s" "PASS2+ MiB/s" FAULTS EVICTIONS
for run in $RUNS; do
	VM_WRAP= grow=400 faults=- evictions=-
	case $run in
	base) grow=0 ;;
	dimm-host) ;;
	fluidmem)
		[ -e "$FM_BUILD/libfluidmem-preload.so" ] || { note "fluidmem: no preload library, skipped"; continue; }
		[ -n "${FM_SOCK:-}" ] || start_monitor
		VM_WRAP="$FLUIDMEM run --socket $FM_SOCK --local-memory $LOCAL ${FM_VM_RUN_OPTS:-} --" ;;
	*) fail "unknown run '$run'" ;;
	esac
	# online, not online_movable: a block device's page cache is not movable
	vm_boot "memhp_default_state=online fm.mode=pagecache fm.passes=$PASSES fm.grow=$grow fm.after=idle" \
		-drive "$drive"
	vm_wait "FMGUEST READY" 60
	if [ $grow -gt 0 ]; then
		"$FLUIDMEM" vm hotplug --qmp "$VM_QMP" --size 512M --id fm0 --wait-guest 0 >"$T/hp.out" 2>&1 ||
			{ cat "$T/hp.out"; fail "$run: hotplug failed"; }
	fi
	vm_wait "FMBENCH (done|FAIL)" $((60 + PASSES * 60))
	grep -aq "FMBENCH FAIL" "$VM_SERIAL" && fail "$run: $(vm_line 'FMBENCH FAIL')"
	if [ "$run" = fluidmem ]; then
		qpid=$(pgrep -P "$VM_PID" | head -n 1)
		read -r faults evictions < <("$FLUIDMEM" status --json | python3 -c '
import json, sys
c = next(c for c in json.load(sys.stdin)["clients"] if c["pid"] == int(sys.argv[1]))
print(c["faults_zero"] + c["faults_store"], c["evictions"])' "$qpid")
	fi
	vm_stop
	p1=$(grep -a "FMBENCH pass=1 " "$VM_SERIAL" | sed 's/.*mibps=\([0-9.]*\).*/\1/')
	rest=$(grep -a "FMBENCH pass=" "$VM_SERIAL" | grep -av "pass=1 " | sed 's/.*mibps=\([0-9.]*\).*/\1/' |
		awk '{ s += $1; n++ } END { if (n) printf "%.1f", s / n; else print "-" }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$FILE_MIB" "$p1" "$rest" "$faults" "$evictions" >>"$OUT"
	printf '%-10s %8s %14s %16s %10s %10s\n' "$run" "$FILE_MIB" "$p1" "$rest" "$faults" "$evictions"
	grep -a "FMGUEST free\|FMBENCH pass" "$VM_SERIAL" | tr -d '\r' | sed 's/^/#   /'
done
[ -n "${FM_SOCK:-}" ] && stop_monitor
note "results in $OUT"
