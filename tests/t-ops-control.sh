#!/usr/bin/env bash
# t-ops-control: `fluidmem evict` empties resident memory (all, or one tag's
# only), `fluidmem resize --tag` holds a tag under its new limit while it
# faults everything back, data stays right, tenants act on their own
# processes only, and wrong requests get clear errors.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (a second uid for the tenant checks)"
chmod 711 "$T" # the tenant (nobody) reaches the socket in it
start_monitor --local-memory 256M

# client_field TAG FIELD: a field of the client with that tag in status --json
client_field() {
	"$FLUIDMEM" status --json | python3 -c "
import json,sys
c=[c for c in json.load(sys.stdin)['clients'] if c['tag']=='$1']
print(c[0]['$2'] if c else 'none')"
}
# holder NAME MIB: a `hold` program under fluidmem run, stdin from a fifo (fd saved in HOLD_FD_NAME)
holder() {
	mkfifo "$T/$1.in"
	"$FLUIDMEM" run --local-memory 128M -- "$FM_BUILD/tests/hold" "$2" <"$T/$1.in" >"$T/$1.out" 2>&1 &
	FM_PIDS+=("$!")
	eval "exec {fd_$1}>\"$T/$1.in\""
	wait_for grep -q ready "$T/$1.out" || { cat "$T/$1.out"; fail "$1 did not fill its memory"; }
}
tags() { "$FLUIDMEM" status --json | python3 -c "import json,sys; print(' '.join(c['tag'] for c in json.load(sys.stdin)['clients']))"; }

holder a 32
TA=$(tags)
holder b 32
TB=$(tags | tr ' ' '\n' | grep -vx "$TA")
[ -n "$TA" ] && [ -n "$TB" ] || fail "two tags expected, got '$(tags)'"
ra=$(client_field "$TA" resident_pages) rb=$(client_field "$TB" resident_pages)
note "resident before: a=$ra b=$rb"
[ "$ra" -ge 8192 ] && [ "$rb" -ge 8192 ] || fail "holders not resident: a=$ra b=$rb"

# one tag: a drops to (almost) nothing, b keeps everything
out=$("$FLUIDMEM" evict --tag "$TA") || fail "evict --tag failed: $out"
note "$out"
n=$(echo "$out" | sed -n 's/^evicted \([0-9]*\) pages.*from 1 process$/\1/p')
[ -n "$n" ] && [ "$n" -ge 8192 ] || fail "evict --tag reported '$out'"
ra=$(client_field "$TA" resident_pages) rb=$(client_field "$TB" resident_pages) sa=$(client_field "$TA" stored_pages)
note "after evict --tag a: a=$ra (stored $sa) b=$rb"
[ "$ra" -le 16 ] || fail "a still has $ra resident pages after evict"
[ "$sa" -ge 8192 ] || fail "a's pages are not in the store ($sa)"
[ "$rb" -ge 8192 ] || fail "evicting a's tag took b's pages (b=$rb)"

# a tenant (nobody) sees neither tag and evicts nothing of root's
nob() { setpriv --reuid=65534 --regid=65534 --clear-groups env FLUIDMEM_SOCKET="$FM_SOCK" "$FLUIDMEM" "$@"; }
out=$(nob evict 2>&1) || fail "tenant evict failed: $out"
[ "$out" = "evicted 0 pages (0 MiB) from 0 processes" ] || fail "tenant evict: '$out'"
[ "$(client_field "$TB" resident_pages)" -ge 8192 ] || fail "a tenant evicted root's pages"
out=$(nob evict --tag "$TB" 2>&1) && fail "tenant evict of root's tag succeeded: $out"
echo "$out" | grep -q "no such tag" || fail "tenant evict --tag: '$out'"
out=$(nob resize --tag "$TB" --local-memory 8M 2>&1) && fail "tenant resize of root's tag succeeded"
echo "$out" | grep -q "no such tag" || fail "tenant resize --tag: '$out'"
[ "$(client_field "$TB" resident_pages)" -ge 8192 ] || fail "a tenant shrank root's tag"

# b's tag limited to 8M: down to it now, and kept there while b reads all 32M back
out=$("$FLUIDMEM" resize --tag "$TB" --local-memory 8M) || fail "resize --tag failed: $out"
note "$out"
rb=$(client_field "$TB" resident_pages)
[ "$rb" -le 2048 ] || fail "b has $rb resident pages over its new 2048-page limit"
echo >&"$fd_b"
wait_for grep -q "hold ok" "$T/b.out" || { cat "$T/b.out"; fail "b did not verify"; }
rb=$(client_field "$TB" resident_pages) sb=$(client_field "$TB" stored_pages)
note "b after reading 32M under an 8M limit: resident $rb stored $sb"
[ "$rb" -le 2048 ] || fail "b read back over its limit: $rb resident pages"
[ "$rb" -ge 1024 ] || fail "b's limit is not what keeps it small: only $rb resident"

# a reads everything back from the store, right
echo >&"$fd_a"
wait_for grep -q "hold ok" "$T/a.out" || { cat "$T/a.out"; fail "a's data did not survive evict"; }

# evict all: b too
out=$("$FLUIDMEM" evict) || fail "evict failed: $out"
note "$out"
echo "$out" | grep -q "from 2 processes" || fail "evict all: '$out'"
[ "$(client_field "$TB" resident_pages)" -le 16 ] || fail "b kept pages after evict"
[ "$(client_field "$TA" resident_pages)" -le 16 ] || fail "a kept pages after evict"

# clear errors
out=$("$FLUIDMEM" evict --tag no-such-tag 2>&1) && fail "evict of an unknown tag succeeded"
[ "$out" = "fluidmem: no such tag (see fluidmem status)" ] || fail "unknown tag: '$out'"
out=$("$FLUIDMEM" resize --tag "$TA" --local-memory 8K 2>&1) && fail "8K limit accepted"
echo "$out" | grep -q "at least 64K" || fail "small limit: '$out'"
rc=0; "$FLUIDMEM" resize --tag "$TA" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "resize without a size: exit $rc, want 2"
out=$("$FLUIDMEM" resize --tag "$TA" --local-memory 0) || fail "removing a tag's limit failed: $out"

exec {fd_a}>&- {fd_b}>&-
wait_for bash -c "[ \"\$('$FLUIDMEM' status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"clients\"]))')\" = 0 ]" ||
	fail "holders did not exit"
stop_monitor
echo "t-ops-control: ok"
