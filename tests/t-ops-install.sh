#!/usr/bin/env bash
# t-ops-install: `make install DESTDIR PREFIX` lays out binaries, libraries,
# headers, man pages, the unit and the example configuration, and the
# installed tree runs a program; every subcommand has --help, and every
# option a --help lists is in the man pages (and, for fluidmemd, in
# docs/configuration.md), so the documentation cannot fall behind.
. "$(dirname "$0")/lib.sh"
root=$T/root
make -s -C "$FM_ROOT" install DESTDIR="$root" PREFIX=/usr >"$T/install.log" 2>&1 ||
	{ tail -20 "$T/install.log"; fail "make install failed"; }
for f in usr/bin/fluidmemd usr/bin/fluidmem usr/lib/libfluidmem.so usr/lib/libfluidmem-preload.so \
	usr/lib/libfluidmem.a usr/include/fluidmem/fluidmem.h usr/include/fluidmem/store.h \
	usr/share/man/man1/fluidmem.1 usr/share/man/man8/fluidmemd.8 usr/lib/systemd/system/fluidmemd.service \
	etc/fluidmem/fluidmemd.conf; do
	[ -f "$root/$f" ] || fail "make install did not install /$f"
done
grep -q "^ExecStart=/usr/bin/fluidmemd " "$root/usr/lib/systemd/system/fluidmemd.service" ||
	fail "the installed unit does not start /usr/bin/fluidmemd"
# an operator's configuration survives a reinstall
echo "local-memory = 2G" >"$root/etc/fluidmem/fluidmemd.conf"
make -s -C "$FM_ROOT" install DESTDIR="$root" PREFIX=/usr >>"$T/install.log" 2>&1 || fail "second make install failed"
[ "$(cat "$root/etc/fluidmem/fluidmemd.conf")" = "local-memory = 2G" ] || fail "make install overwrote the configuration"

# the installed command finds its preload library and a private monitor
if [ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ]; then
	env -u FLUIDMEM_SOCKET "$root/usr/bin/fluidmem" run --socket "$T/none.sock" -- true 2>/dev/null &&
		fail "run with a dead --socket succeeded"
	env -u FLUIDMEM_SOCKET "$root/usr/bin/fluidmem" run --store local:// --local-memory 8M --stats-json "$T/s.json" -- \
		"$FM_BUILD/tests/rmw" --malloc 16 1 >"$T/run.out" 2>&1 || { cat "$T/run.out"; fail "the installed fluidmem run failed"; }
	[ "$(json_get "$T/s.json" evictions)" -gt 0 ] || fail "the installed tree did not page"
fi

# man pages: no groff warnings but line adjustment
for m in "$FM_ROOT/man/fluidmem.1" "$FM_ROOT/man/fluidmemd.8"; do
	w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null | grep -v "cannot adjust line" || true)
	[ -z "$w" ] || fail "$(basename "$m"): $w"
done

# help of every subcommand, and every option it lists documented
plain() { sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1"; }   # roff source, readable
opts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
check() { # check DOC-TEXT-FILE WHAT HELP-TEXT
	local o missing=
	for o in $(echo "$3" | opts); do
		grep -qF -- "$o" "$1" || missing="$missing $o"
	done
	[ -z "$missing" ] || fail "$2: documented nowhere in $(basename "$1"):$missing"
}
plain "$FM_ROOT/man/fluidmemd.8" >"$T/fluidmemd.8.txt"
plain "$FM_ROOT/man/fluidmem.1" >"$T/fluidmem.1.txt"
help=$("$FLUIDMEMD" --help) || fail "fluidmemd --help failed"
check "$T/fluidmemd.8.txt" "fluidmemd --help" "$help"
for o in $(echo "$help" | opts); do
	case $o in --help|--config) continue ;; esac
	grep -qF -- "| \`${o#--}\` |" "$FM_ROOT/docs/configuration.md" || fail "docs/configuration.md has no row for ${o#--}"
done
for c in run status top resize evict stop "vm hotplug" "vm resize" "vm list" "vm unplug" bench; do
	# shellcheck disable=SC2086
	h=$("$FLUIDMEM" $c --help) || fail "fluidmem $c --help failed"
	echo "$h" | head -1 | grep -qi "^usage: fluidmem $c" || fail "fluidmem $c --help: '$(echo "$h" | head -1)'"
	check "$T/fluidmem.1.txt" "fluidmem $c --help" "$h"
	grep -qF ".SS ${c%% *}" "$FM_ROOT/man/fluidmem.1" || fail "fluidmem.1 has no section for ${c%% *}"
done
"$FLUIDMEM" --help | grep -q "evict \[--tag TAG\]" || fail "fluidmem --help does not list evict"
# bench takes no arguments: a wrong one is an error, not a 10-minute run
"$FLUIDMEM" bench --bogus 2>"$T/bench.err" && fail "fluidmem bench --bogus ran"
grep -q "unknown argument" "$T/bench.err" || fail "fluidmem bench --bogus: $(cat "$T/bench.err")"
echo "t-ops-install: ok"
