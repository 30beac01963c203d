#!/usr/bin/env bash
# t-store-redis: the store contract on redis-server (default database, a
# numbered one, and with AUTH); values tampered with on the server (garbage,
# a changed byte, another page's value) read back CORRUPT; a missing or wrong
# password, a bad database and a dead server are one-line errors at open.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"

start_redis
R="redis://127.0.0.1:$REDIS_PORT"
"$CONTRACT" "$R" || fail "contract on redis"
"$CONTRACT" "$R/4" || fail "contract on redis database 4"
[ "$(redis-cli -p "$REDIS_PORT" -n 4 dbsize)" = 0 ] || fail "contract left keys behind in database 4"

N=3000
"$CHECK" -n $N -r 9 "$R/2" write || fail "write $N pages"
[ "$(redis-cli -p "$REDIS_PORT" -n 2 dbsize)" = $N ] || fail "database 2 does not hold $N keys"
[ "$(redis-cli -p "$REDIS_PORT" -n 0 dbsize)" = 0 ] || fail "keys leaked into database 0"
"$CHECK" -n $N -r 9 "$R/2" keys >"$T/keys"
key() { awk -v i="$1" '$1 == i { print $2 }' "$T/keys"; }
rc() { redis-cli -p "$REDIS_PORT" -n 2 "$@"; }
head -c 4128 /dev/urandom >"$T/garbage"
rc -x SET "$(key 10)" <"$T/garbage" >/dev/null || fail "tamper 10"
b=$(rc GETRANGE "$(key 11)" 100 100)
[ "$b" = "Z" ] && nb=Y || nb=Z
[ "$(rc SETRANGE "$(key 11)" 100 "$nb")" = 4128 ] || fail "tamper 11"
[ "$(rc COPY "$(key 13)" "$(key 12)" REPLACE)" = 1 ] || fail "tamper 12"
rc SET "$(key 14)" short >/dev/null
printf '10\n11\n12\n14\n' >"$T/corrupt"
"$CHECK" -n $N -r 9 -c "$T/corrupt" "$R/2" verify || fail "tampered values not reported CORRUPT (or others wrong)"
"$CHECK" -n $N -r 9 "$R/2" remove || fail "remove"
[ "$(rc dbsize)" = 0 ] || fail "remove left $(rc dbsize) keys"
"$CHECK" -n $N -r 9 -m "$R/2" verify || fail "removed pages are not MISSING"

# A server with a password (with an '@' in it, percent-encoded in the URL).
PW_PORT=$(free_port)
redis-server --port "$PW_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
	--requirepass 'p@ss:w0rd' --daemonize no >"$T/redis-pw.log" 2>&1 &
FM_PIDS+=($!)
wait_for redis-cli -p "$PW_PORT" -a 'p@ss:w0rd' --no-auth-warning ping || fail "redis with a password did not start"
"$CONTRACT" "redis://:p%40ss:w0rd@127.0.0.1:$PW_PORT/1" || fail "contract with AUTH"
"$CONTRACT" "redis://default:p%40ss:w0rd@127.0.0.1:$PW_PORT" 500 || fail "contract with an ACL user"

expect_open_error() { # URL WORDS
	local out rc=0
	out=$("$CHECK" "$1" open) || rc=$?
	note "$out"
	[ $rc -eq 2 ] || fail "open '$1' exited $rc"
	echo "$out" | grep -q "$2" || fail "open '$1': error lacks '$2': $out"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "multi-line error"
	echo "$out" | grep -q "w0rd" && fail "the error shows the password"
	return 0
}
expect_open_error "redis://127.0.0.1:$PW_PORT" "NOAUTH"
expect_open_error "redis://:wrong@127.0.0.1:$PW_PORT" "AUTH refused"
expect_open_error "redis://:p%40ss:w0rd@127.0.0.1:$PW_PORT/100000" "SELECT refused"
expect_open_error "redis://127.0.0.1:$(free_port)?timeout_ms=200" "Connection refused"
expect_open_error "redis://127.0.0.1:$REDIS_PORT/x" "must be a number"
exit 0
