#!/usr/bin/env bash
# install-deps.sh - everything fluidmem needs on Debian 12, to build, test and
# benchmark. Run as root (apt-get). Idempotent. README explains each package.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (sudo)" >&2; exit 1; }

build=(build-essential pkg-config python3
       libmimalloc-dev libmemcached-dev libhiredis-dev libsodium-dev libxxhash-dev
       libjson-c-dev liburing-dev libmicrohttpd-dev clang libclang-rt-14-dev)
servers=(memcached redis-server redis-tools)
programs=(xz-utils gawk time procps util-linux)
vm=(qemu-system-x86 busybox-static cpio)
apps=(velvet soapdenovo2 art-nextgen-simulation-tools postgresql postgresql-contrib kmod)
bench=(gnuplot-nox)

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${build[@]}" "${servers[@]}" "${programs[@]}" \
	"${vm[@]}" "${apps[@]}" "${bench[@]}" >/dev/null
# The packaged services start on their default ports; tests start their own.
for svc in memcached redis-server postgresql; do
	systemctl stop "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
	systemctl disable "$svc" >/dev/null 2>&1 || true
done
echo "install-deps.sh: done"
