#!/usr/bin/env bash
# t-store-encrypt: with a region's secret, what memcached and redis-server hold
# is ciphertext (the raw values, read past fluidmem, show no plaintext, while
# checksum-only values of the same pages do); a flipped byte, page A's value at
# page B's key, an older version put back, a wrong or missing secret all read
# CORRUPT; end to end, an unmodified program under the monitor runs, its
# stored pages are ciphertext (and plaintext with --no-encrypt), and a value
# tampered with during the run becomes SIGBUS for that page only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"
ENC=$(store_bin store-encrypt)
"$ENC" unit || fail "AEAD unit checks"

# raw.py: the servers' bytes, bypassing fluidmem (memcached text protocol).
cat >"$T/raw.py" <<'EOF'
import os, socket, sys

def mc(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    return s, s.makefile("rb")

def mc_get(port, keys):
    s, f = mc(port)
    out = {}
    for i in range(0, len(keys), 100):
        s.sendall(b"get " + b" ".join(k.encode() for k in keys[i:i + 100]) + b"\r\n")
        while True:
            line = f.readline()
            if line == b"END\r\n":
                break
            parts = line.split()
            if not parts or parts[0] != b"VALUE":
                sys.exit("unexpected: %r" % line)
            n = int(parts[3])
            out[parts[1].decode()] = f.read(n + 2)[:n]
    s.close()
    return out

def mc_put(port, key, value):
    s, f = mc(port)
    s.sendall(b"set %s 0 0 %d\r\n" % (key.encode(), len(value)) + value + b"\r\n")
    if f.readline() != b"STORED\r\n":
        sys.exit("set %s failed" % key)
    s.close()

# The words of store-e2e-prog's page p.
def e2e_word(p, j):
    m = (1 << 64) - 1
    x = (p * 0x9E3779B97F4A7C15 + j + 1) & m
    x ^= x >> 31
    return ((x * 0xBF58476D1CE4E5B9) & m).to_bytes(8, "little")

def check(name, v, clear_marks, want):
    """want "cipher": the AEAD layout and none of clear_marks; "plain": some mark."""
    found = any(mark in v for mark in clear_marks)
    if want == "plain":
        return found or print("%s: plaintext not found in a checksum-only value" % name)
    if found:
        return print("%s: PLAINTEXT in the stored value" % name)
    if len(v) != 4152 or v[4096:4102] != b"FMPG\x01\x02":
        return print("%s: not the AEAD layout (%d bytes, %r)" % (name, len(v), v[4096:4102]))
    if bytes(32) in v:
        return print("%s: a run of 32 zero bytes (the page's second half is zeros)" % name)
    return True

cmd = sys.argv[1]
if cmd == "get":      # PORT KEY FILE
    v = mc_get(sys.argv[2], [sys.argv[3]]).get(sys.argv[3])
    if v is None:
        sys.exit("no value under " + sys.argv[3])
    open(sys.argv[4], "wb").write(v)
elif cmd == "put":    # PORT KEY FILE
    mc_put(sys.argv[2], sys.argv[3], open(sys.argv[4], "rb").read())
elif cmd == "getall": # PORT KEYSFILE DIR: "index key" lines, each value to DIR/index
    pairs = [l.split() for l in open(sys.argv[3]) if l.strip()]
    vals = mc_get(sys.argv[2], [k for _, k in pairs])
    for i, k in pairs:
        if k not in vals:
            sys.exit("no value under " + k)
        open(os.path.join(sys.argv[4], i), "wb").write(vals[k])
elif cmd == "scan":   # DIR cipher|plain: the files store-encrypt's pages were saved to
    names = sorted(os.listdir(sys.argv[2]))
    ok = sum(bool(check(n, open(os.path.join(sys.argv[2], n), "rb").read(), [b"plaintext"], sys.argv[3]))
             for n in names)
    print("scan %s: %d of %d values pass as %s" % (sys.argv[2], ok, len(names), sys.argv[3]))
    sys.exit(0 if names and ok == len(names) else 1)
elif cmd == "e2e":    # PORT KEYSFILE REGION cipher|plain: store-e2e-prog's pages on a server
    keys = [k.strip() for k in open(sys.argv[3]) if k.startswith("fm:" + sys.argv[4] + ":")]
    vals = mc_get(sys.argv[2], keys)
    ok = 0
    for k, v in vals.items():
        p = int(k.split(":")[2], 16)
        ok += bool(check(k, v, [e2e_word(p, j) for j in (0, 1, 2, 255, 511)], sys.argv[5]))
    print("e2e scan: %d of %d stored pages pass as %s" % (ok, len(vals), sys.argv[5]))
    sys.exit(0 if len(vals) > 100 and ok == len(vals) else 1)
else:
    sys.exit("raw.py: unknown command " + cmd)
EOF
RAW="python3 $T/raw.py"

N=256
# flip FILE OFFSET: one bit, in place.
flip() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1") || return 1
	printf "$(printf '\\%03o' $((b ^ 4)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# rawall KEYSFILE DIR: every "index key" value to DIR/index.
rawall() {
	case $BACKEND in
	memcached) $RAW getall "$MC_PORT" "$1" "$2" ;;
	redis) local i k; while read -r i k; do rawget "$k" "$2/$i" || return 1; done <"$1" ;;
	esac
}
# rawget KEY FILE / rawput KEY FILE on the server of $BACKEND.
rawget() {
	case $BACKEND in
	memcached) $RAW get "$MC_PORT" "$1" "$2" ;;
	redis) redis-cli -p "$REDIS_PORT" GET "$1" >"$T/nl" && head -c -1 "$T/nl" >"$2" && [ -s "$2" ] ;;
	esac
}
rawput() {
	case $BACKEND in
	memcached) $RAW put "$MC_PORT" "$1" "$2" ;;
	redis) [ "$(redis-cli -p "$REDIS_PORT" -x SET "$1" <"$2")" = OK ] ;;
	esac
}

# suite URL: everything on one server through the store API.
suite() {
	local url=$1 d=$T/$BACKEND
	mkdir -p "$d/enc" "$d/clear"
	note "$BACKEND: $url"
	"$ENC" -n $N -r 1 -s 1 "$url" write || fail "$BACKEND: write encrypted pages"
	"$ENC" -n $N -r 2 -s 0 "$url" write || fail "$BACKEND: write checksum-only pages"
	"$ENC" -n $N -r 1 keys >"$d/keys1"
	"$ENC" -n $N -r 2 keys >"$d/keys2"
	key() { awk -v i="$1" '$1 == i { print $2 }' "$d/keys1"; }
	rawall "$d/keys1" "$d/enc" || fail "$BACKEND: raw read of the encrypted pages"
	rawall "$d/keys2" "$d/clear" || fail "$BACKEND: raw read of the checksum-only pages"
	$RAW scan "$d/enc" cipher || fail "$BACKEND: the server holds plaintext of encrypted pages"
	$RAW scan "$d/clear" plain || fail "$BACKEND: the plaintext search finds nothing even in checksum-only values"

	seq 0 $((N - 1)) >"$d/all"
	"$ENC" -n $N -r 1 -s 1 "$url" verify || fail "$BACKEND: encrypted pages do not read back"
	"$ENC" -n $N -r 2 -s 0 "$url" verify || fail "$BACKEND: checksum-only pages do not read back"
	"$ENC" -n $N -r 1 -s 99 -c "$d/all" "$url" verify || fail "$BACKEND: a wrong secret is not CORRUPT"
	"$ENC" -n $N -r 1 -s 0 -c "$d/all" "$url" verify || fail "$BACKEND: encrypted pages read without secret are not CORRUPT"
	"$ENC" -n $N -r 2 -s 1 -c "$d/all" "$url" verify || fail "$BACKEND: checksum-only pages read with a secret are not CORRUPT"

	# A fresh nonce per write: the same page, version and secret store other bytes.
	cp "$d/enc/0" "$d/first"
	"$ENC" -n $N -r 1 -s 1 "$url" write || fail "$BACKEND: rewrite"
	rawget "$(key 0)" "$d/second" || fail "$BACKEND: raw read"
	cmp -s "$d/first" "$d/second" && fail "$BACKEND: rewriting a page stored the same bytes (nonce reused)"

	# Replay: keep page 20's value of version 1, write version 2 everywhere, put the old one back.
	rawget "$(key 20)" "$d/v1-20" || fail "$BACKEND: raw read"
	"$ENC" -n $N -r 1 -s 1 -g 2 -V 2 "$url" write || fail "$BACKEND: write version 2"
	rawput "$(key 20)" "$d/v1-20" || fail "$BACKEND: put back version 1"
	# A flipped bit in the ciphertext, in the nonce, in the tag; page 13's value under page 12's key.
	for at in 10:2000 11:4120 14:4140; do
		rawget "$(key "${at%:*}")" "$d/t" && flip "$d/t" "${at#*:}" && rawput "$(key "${at%:*}")" "$d/t" ||
			fail "$BACKEND: tamper ${at%:*}"
	done
	rawget "$(key 13)" "$d/t" && rawput "$(key 12)" "$d/t" || fail "$BACKEND: copy 13 to 12"
	printf '10\n11\n12\n14\n20\n' >"$d/corrupt"
	"$ENC" -n $N -r 1 -s 1 -g 2 -V 2 -c "$d/corrupt" "$url" verify ||
		fail "$BACKEND: tampered, moved or replayed values not CORRUPT (or others wrong)"
}

start_memcached
BACKEND=memcached suite "memcached://127.0.0.1:$MC_PORT"
if command -v redis-server >/dev/null; then
	start_redis
	BACKEND=redis suite "redis://127.0.0.1:$REDIS_PORT"
else
	note "redis-server not installed: redis part skipped"
fi

# Two copies, reads that ask every copy (no expected version, so the copies' stamps decide).
POOL1=$MC_PORT
start_memcached
R2="memcached://127.0.0.1:$POOL1,127.0.0.1:$MC_PORT?replicas=2"
"$ENC" -n $N -r 3 -s 5 -V 0 "$R2" write || fail "replicas=2: write"
"$ENC" -n $N -r 3 -s 5 -V 0 "$R2" verify || fail "replicas=2: read of every copy"
"$ENC" -n $N -r 3 -s 6 -V 0 -c "$T/memcached/all" "$R2" verify || fail "replicas=2: a wrong secret is not CORRUPT"

# ---- end to end, through the monitor ----
[ -x "$FLUIDMEM" ] && [ -x "$FM_BUILD/fluidmemd" ] || { note "no build/fluidmem: end-to-end part skipped"; exit 0; }
out=$(timeout -k 5 120 "$FLUIDMEM" run --store "memcached://127.0.0.1:$MC_PORT" --local-memory 8M -- \
	"$FM_BUILD/tests/rmw" --malloc 64 1 2>&1) || { echo "$out"; fail "rmw under an encrypting monitor failed"; }
echo "$out" | grep -q "rmw ok" || { echo "$out"; fail "rmw did not verify"; }

# not the sanitized build: an ASan program cannot run under the preload library
PROG=$(FM_NO_SAN=1 store_bin store-e2e-prog)
# paused_run NAME [fluidmemd flags]: a monitor on a fresh memcached, and the
# program paused after writing its 32 MiB with 8 MiB resident; the store's
# keys in $T/NAME-keys, the region's id in $T/NAME-region.
paused_run() {
	local name=$1
	shift
	start_memcached
	start_monitor --store "memcached://127.0.0.1:$MC_PORT" "$@"
	rm -f "$T/ready" "$T/go"
	FM_E2E_SIGBUS_LIST=$T/$name-sigbus timeout -k 5 60 "$FLUIDMEM" run -s "$FM_SOCK" --local-memory 8M -- \
		"$PROG" 32 "$T/ready" "$T/go" >"$T/$name-out" 2>&1 &
	RUN_PID=$!
	wait_for test -e "$T/ready" || { cat "$T/$name-out"; fail "$name: the program did not finish writing"; }
	$MCRAW "$MC_PORT" dump | sed 's/%3A/:/g' >"$T/$name-keys" || fail "$name: cannot list the keys"
	awk -F: '{ print $2 }' "$T/$name-keys" | sort | uniq -c | sort -rn | head -1 | awk '{ print $2 }' >"$T/$name-region"
}
finish_run() {
	touch "$T/go"
	RC=0
	wait "$RUN_PID" || RC=$?
	cat "$T/$1-out"
	stop_monitor
}

paused_run clear --no-encrypt
$RAW e2e "$MC_PORT" "$T/clear-keys" "$(cat "$T/clear-region")" plain ||
	fail "--no-encrypt: the search finds no plaintext in the stored pages"
finish_run clear
[ $RC -eq 0 ] && grep -q "sigbus=0 wrong=0" "$T/clear-out" || fail "--no-encrypt run failed ($RC)"

paused_run enc
region=$(cat "$T/enc-region")
$RAW e2e "$MC_PORT" "$T/enc-keys" "$region" cipher || fail "the store holds plaintext of a running program's pages"
# Tamper with three stored pages: flip a bit of one, put one's value under another's key.
grep "^fm:$region:" "$T/enc-keys" | sort -t: -k3,3 | sed -n '100p;200p;300p' >"$T/victims"
mapfile -t V <"$T/victims"
[ ${#V[@]} -eq 3 ] || fail "too few stored pages to tamper with"
$RAW get "$MC_PORT" "${V[0]}" "$T/v" && flip "$T/v" 1000 && $RAW put "$MC_PORT" "${V[0]}" "$T/v" || fail "flip"
$RAW get "$MC_PORT" "${V[1]}" "$T/v" && $RAW put "$MC_PORT" "${V[2]}" "$T/v" || fail "move"
for k in "${V[0]}" "${V[2]}"; do echo $((16#${k##*:})); done | sort -n >"$T/want-sigbus"
finish_run enc
[ $RC -eq 0 ] || fail "the program saw wrong data or died ($RC)"
grep -q "wrong=0" "$T/enc-out" || fail "wrong data"
sort -n "$T/enc-sigbus" >"$T/got-sigbus"
cmp -s "$T/want-sigbus" "$T/got-sigbus" ||
	fail "SIGBUS pages $(tr '\n' ' ' <"$T/got-sigbus"), expected the tampered $(tr '\n' ' ' <"$T/want-sigbus")"
note "tampered pages $(tr '\n' ' ' <"$T/want-sigbus")raised SIGBUS, no other page did"
exit 0
