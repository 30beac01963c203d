#!/usr/bin/env bash
# postgres.sh - PostgreSQL with shared_buffers larger than the budget, in each run
# mode: a fresh cluster (initdb in the work dir, run as the postgres user on a private
# Unix socket), pgbench -i, the table pulled into shared_buffers with pg_prewarm, a
# deterministic UPDATE and a checksum of the table (must be the same in every mode),
# then pgbench select-only and TPC-B-like runs for throughput and latency.
#
# PostgreSQL is the hard case for fluidmem: shared_buffers is one MAP_SHARED anonymous
# mapping made by the postmaster and shared by every backend, and each connection is a
# fork of the postmaster.
#
# Usage: bench/apps/postgres.sh [--quick|--bench] [--budget SIZE] [--modes LIST] [--keep]
#   --quick: pgbench scale 4 (~60 MiB of accounts), shared_buffers 96MB, 24M budget,
#            5 s per pgbench run
#   --bench: pgbench scale 30 (~450 MiB), shared_buffers 512MB, 128M budget, 30 s runs
# Modes default to "plain swap fluidmem fluidmem-mc". Exits 1 if the checksum differs
# or a mode that must complete did not.
. "$(dirname "$0")/common.sh"

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/postgres" ] || { echo "skipped: PostgreSQL server not installed (apt-get install postgresql postgresql-contrib)"; exit 77; }
id postgres >/dev/null 2>&1 || { echo "skipped: no postgres user"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skipped: needs root to run the server as the postgres user"; exit 77; }

if [ "$VARIANT" = quick ]; then
	SCALE=${PG_SCALE:-4} SHBUF=${PG_SHARED_BUFFERS:-96MB} SECS=${PG_SECS:-5} BUDGET=${BUDGET:-24M}
else
	SCALE=${PG_SCALE:-30} SHBUF=${PG_SHARED_BUFFERS:-512MB} SECS=${PG_SECS:-30} BUDGET=${BUDGET:-128M}
fi
MODES=${MODES:-plain swap fluidmem fluidmem-mc}
note "postgres: $("$PGBIN/postgres" --version), pgbench scale $SCALE, shared_buffers $SHBUF, budget $BUDGET, modes: $MODES"

asuser() { setpriv --reuid postgres --regid postgres --init-groups "$@"; }

# The cluster lives where the postgres user can reach it: WORK may be inside a
# directory only root can enter (the test suite's).
PGROOT=$(mktemp -d /var/tmp/fmpg.XXXXXX)
chmod 755 "$PGROOT"
APP_CLEAN_DIRS+=("$PGROOT")

REF="" bad=0
for mode in $MODES; do
	# The server runs as the postgres user; under fluidmem, `fluidmem run` itself is
	# started as postgres (a uid change under the preload library aborts: see
	# docs/apps.md), so that user needs /dev/userfaultfd.
	if ! { mode_ready "$mode" && case $mode in fluidmem*) uffd_grant_group postgres ;; esac; }; then
		result postgres "$mode" skipped "reason=\"$MODE_SKIP\""
		continue
	fi
	pgdata=$PGROOT/pg-$mode sock=$PGROOT/sock-$mode
	rm -rf "$pgdata" "$sock"
	mkdir -p "$pgdata" "$sock"
	chown postgres: "$pgdata" "$sock"
	chmod 700 "$pgdata"
	asuser "$PGBIN/initdb" -D "$pgdata" -A trust -U postgres --no-sync >"$WORK/initdb-$mode.log" 2>&1 ||
		{ tail -n 5 "$WORK/initdb-$mode.log"; result postgres "$mode" failed "reason=\"initdb failed\""; bad=1; continue; }
	port=$(free_port)
	mode_start "$mode" "pg-$mode" postgres || { result postgres "$mode" failed "reason=\"cannot set up $mode\""; bad=1; continue; }
	"${PREFIX[@]}" "$PGBIN/postgres" -D "$pgdata" -p "$port" -k "$sock" -c listen_addresses='' \
		-c shared_buffers="$SHBUF" -c huge_pages=off -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c max_wal_size=4GB -c checkpoint_timeout=1h \
		-c shared_preload_libraries=pg_prewarm -c pg_prewarm.autoprewarm=off \
		>"$WORK/postgres-$mode.log" 2>&1 &
	pid=$!
	APP_PIDS+=("$pid")
	psql=(timeout 600 "$PGBIN/psql" -h "$sock" -p "$port" -U postgres -d postgres -X -q -t -A -v ON_ERROR_STOP=1)
	pgb=(timeout $((SECS + 300)) "$PGBIN/pgbench" -h "$sock" -p "$port" -U postgres)
	up=0
	for _ in $(seq 1 300); do
		"$PGBIN/pg_isready" -q -h "$sock" -p "$port" && { up=1; break; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail_reason=""
	[ $up = 1 ] || fail_reason="postgres did not start: $(grep -m 1 -E 'terminated by signal|FATAL|PANIC|killed by' "$WORK/postgres-$mode.log" | sed 's/.*\] //' | tr -d '"')"
	t0=$(date +%s.%N)
	if [ -z "$fail_reason" ]; then
		"${pgb[@]}" -i -q -s "$SCALE" postgres >"$WORK/pginit-$mode.log" 2>&1 || fail_reason="pgbench -i failed"
	fi
	t1=$(date +%s.%N)
	init_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.2f", a - b}')
	sum="" ro="" rw="" diag=""
	if [ -z "$fail_reason" ]; then
		sum=$("${psql[@]}" 2>"$WORK/psql-$mode.err" <<'EOF'
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT 'prewarm ' || pg_prewarm('pgbench_accounts');
UPDATE pgbench_accounts SET abalance = (aid::bigint * 7919) % 100003 - 50000;
SELECT md5(string_agg(aid::text || ':' || bid || ':' || abalance, ',' ORDER BY aid)) || ' rows=' || count(*) FROM pgbench_accounts;
SELECT 'wrong_rows=' || count(*) FILTER (WHERE abalance <> (aid::bigint * 7919) % 100003 - 50000 OR bid <> (aid - 1) / 100000 + 1)
       || ' distinct_aids=' || count(DISTINCT aid) || ' aid_sum=' || sum(aid) FROM pgbench_accounts;
SELECT 'first_wrong: ' || string_agg(aid || '/' || bid || '/' || abalance, ' ') FROM (SELECT aid, bid, abalance FROM pgbench_accounts
       WHERE abalance <> (aid::bigint * 7919) % 100003 - 50000 OR bid <> (aid - 1) / 100000 + 1 ORDER BY aid LIMIT 5) w;
EOF
)
		diag=$(grep -E '^(wrong_rows|first_wrong)' <<<"$sum" | tr '\n' ' ')
		sum=$(grep ' rows=' <<<"$sum")
		[ -n "$sum" ] || fail_reason="checksum query failed: $(head -c 300 "$WORK/psql-$mode.err" | tr '\n' ' ')"
	fi
	if [ -z "$fail_reason" ]; then
		ro=$("${pgb[@]}" -S -n -c 4 -j 2 -T "$SECS" postgres 2>&1) || fail_reason="pgbench -S failed: $(tail -n 2 <<<"$ro" | tr '\n' ' ')"
	fi
	if [ -z "$fail_reason" ]; then
		rw=$("${pgb[@]}" -n -c 4 -j 2 -T "$SECS" postgres 2>&1) || fail_reason="pgbench TPC-B failed: $(tail -n 2 <<<"$rw" | tr '\n' ' ')"
	fi
	# pgbench 15 counts transactions that failed (serialization, deadlock) apart
	for out in "$ro" "$rw"; do
		nf=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
		[ -z "$fail_reason" ] && [ "${nf:-0}" != 0 ] && fail_reason="pgbench: $nf failed transactions"
	done
	shm=$("${psql[@]}" -c "SELECT pg_size_pretty(sum(allocated_size)) FROM pg_shmem_allocations" 2>/dev/null)
	# Fast shutdown: the postmaster stops its backends and exits.
	kill -INT "$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)" 2>/dev/null || kill "$pid" 2>/dev/null
	rc=0
	wait "$pid" || rc=$?
	mode_end "$mode" "pg-$mode"
	ro_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$ro")
	ro_lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$ro")
	rw_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$rw")
	rw_lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$rw")
	if [ -z "$fail_reason" ] && { [ -z "$ro_tps" ] || [ -z "$rw_tps" ]; }; then
		fail_reason="pgbench printed no tps: $(grep -v '^ *[0-9]' <<<"$ro$rw" | tail -n 4 | tr '\n' ' ')"
	fi
	line="time=${RUN_SECS}s budget=$BUDGET shared_buffers=$SHBUF shmem=${shm:-?} init=${init_s}s select_tps=${ro_tps:-0} select_lat_ms=${ro_lat:-?} tpcb_tps=${rw_tps:-0} tpcb_lat_ms=${rw_lat:-?} checksum=\"${sum}\""
	if [ -n "$fail_reason" ]; then
		if [ "$mode" = swap ] && [ "$RUN_OOM" -gt 0 ]; then
			result postgres "$mode" oom-killed "reason=\"$fail_reason\" $line $(mode_extra)"
		else
			result postgres "$mode" failed "reason=\"$fail_reason\" exit=$rc $line $(mode_extra)"
			bad=1
		fi
		tail -n 8 "$WORK/postgres-$mode.log" | sed 's/^/#   /'
		continue
	fi
	identical=yes
	if [ -z "$REF" ]; then REF=$sum; elif [ "$sum" != "$REF" ]; then identical=no bad=1; fi
	case $diag in wrong_rows=0\ *) ;; *) identical=no bad=1; note "postgres $mode: $diag" ;; esac
	result postgres "$mode" ok "$line identical=$identical $(mode_extra)"
done
summary postgres
exit $bad
