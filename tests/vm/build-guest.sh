#!/usr/bin/env bash
# build-guest.sh - builds the tiny test guest for the VM tests: a Debian cloud
# kernel (apt-get download + dpkg -x, cached under build/vm-cache/) and a
# busybox-static initramfs holding tests/vm/init, guest-memtest, guest-readbench
# and the virtio modules. Idempotent: with a warm cache it only checks
# timestamps. Prints the two paths as shell assignments on stdout:
#     FM_VM_KERNEL=/.../vmlinuz
#     FM_VM_INITRD=/.../initramfs.cpio
# Exit 77 (with a reason) when the machine cannot build a guest.
# Environment: FM_BUILD (build dir), FM_VM_KERNEL (use this vmlinuz instead;
# the virtio modules then come from FM_VM_MODULES, a lib/modules/<ver> dir).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FM_BUILD:-$root/build}
cache=$build/vm-cache
out=$build/vm
mkdir -p "$cache" "$out"
say() { echo "build-guest: $*" >&2; }
skip77() { echo "skipped: $*"; exit 77; }

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || skip77 "no busybox (apt-get install busybox-static)"
# ldd fails on a static executable, which is what the initramfs needs
ldd "$busybox" >/dev/null 2>&1 && skip77 "$busybox is dynamically linked (apt-get install busybox-static)"

# --- kernel --------------------------------------------------------------
kernel=${FM_VM_KERNEL:-}
moddir=${FM_VM_MODULES:-}
if [ -z "$kernel" ]; then
	deb=$(ls "$cache"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$deb" ]; then
		command -v apt-get >/dev/null || skip77 "no apt-get to fetch a Debian cloud kernel (set FM_VM_KERNEL)"
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-.*-cloud-amd64/ { print $2; exit }')
		[ -n "$pkg" ] || skip77 "apt-cache knows no linux-image-cloud-amd64 (apt-get update?)"
		say "downloading $pkg"
		(cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) ||
			skip77 "apt-get download $pkg failed (no network?)"
		deb=$(ls "$cache"/linux-image-*-cloud-amd64_*.deb | sort -V | tail -n 1)
	fi
	x=$cache/$(basename "$deb" .deb)
	if [ ! -e "$x/.done" ]; then
		say "extracting $(basename "$deb")"
		rm -rf "$x"
		dpkg -x "$deb" "$x"
		touch "$x/.done"
	fi
	kernel=$(ls "$x"/boot/vmlinuz-* | head -n 1)
	moddir=$(ls -d "$x"/lib/modules/* | head -n 1)
fi
[ -r "$kernel" ] || skip77 "kernel $kernel not readable"

# --- guest programs ------------------------------------------------------
cc=${CC:-cc}
for prog in guest-memtest guest-readbench; do
	src=$here/$prog.c bin=$out/$prog
	[ -e "$src" ] || continue
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		say "building $prog (static)"
		"$cc" -static -O2 -Wall -Wextra -Werror -o "$bin.tmp" "$src" ||
			skip77 "cannot link a static program (libc6-dev with libc.a needed)"
		mv "$bin.tmp" "$bin"
	fi
done

# --- initramfs -----------------------------------------------------------
initrd=$out/initramfs.cpio
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mem virtio_blk"
stale=0
[ -e "$initrd" ] || stale=1
for f in "$here/init" "$here/build-guest.sh" "$out"/guest-* "$kernel"; do
	[ -e "$f" ] && [ "$f" -nt "$initrd" ] && stale=1
done
if [ $stale = 1 ]; then
	say "building initramfs"
	stage=$out/initramfs.d
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,dev,proc,sys,tmp,lib/modules}
	cp "$busybox" "$stage/bin/busybox"
	for app in $("$busybox" --list); do
		[ "$app" = busybox ] || ln -sf busybox "$stage/bin/$app"
	done
	cp "$here/init" "$stage/init"
	chmod 755 "$stage/init"
	for prog in "$out"/guest-*; do
		[ -x "$prog" ] && case "$prog" in *.tmp) ;; *) cp "$prog" "$stage/bin/" ;; esac
	done
	if [ -n "$moddir" ]; then
		for m in $mods; do
			ko=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" | head -n 1)
			[ -n "$ko" ] && cp "$ko" "$stage/lib/modules/$m.ko"
		done
	fi
	# /dev/console must exist before devtmpfs is mounted, for init's stdio
	command -v cpio >/dev/null || skip77 "no cpio (apt-get install cpio)"
	(cd "$stage" && mknod -m 600 dev/console c 5 1 && find . -print0 | sort -z |
		cpio --null -o -H newc --quiet --owner=0:0 >"$initrd.tmp")
	mv "$initrd.tmp" "$initrd"
	rm -rf "$stage"
fi
if [ ! -e "$out/vmlinuz" ] || ! cmp -s "$kernel" "$out/vmlinuz"; then
	cp "$kernel" "$out/vmlinuz"
fi
echo "FM_VM_KERNEL=$out/vmlinuz"
echo "FM_VM_INITRD=$initrd"
