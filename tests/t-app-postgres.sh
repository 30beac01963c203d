#!/usr/bin/env bash
# t-app-postgres.sh - PostgreSQL (shared_buffers 48MB: MAP_SHARED, forked backends) under
# fluidmem at a 16M budget: pgbench runs with no failed transaction, every row of
# pgbench_accounts is right and identical to all in RAM, with evictions, and the shared
# memory itself (a shared region joined by every backend) was paged out and back in.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
PG_SCALE=1 PG_SHARED_BUFFERS=48MB PG_SECS=3 app_test postgres postgres --quick --budget 16M --modes "plain fluidmem"
line=$(grep "^RESULT postgres mode=fluidmem " "$T/app.out")
sev=$(sed -n 's/.* shared_evictions=\([0-9]*\).*/\1/p' <<<"$line")
sfs=$(sed -n 's/.* shared_faults_store=\([0-9]*\).*/\1/p' <<<"$line")
[ "${sev:-0}" -gt 0 ] || fail "shared_buffers was not paged out (shared_evictions=${sev:-missing})"
[ "${sfs:-0}" -gt 0 ] || fail "no shared_buffers page came back from the store (shared_faults_store=${sfs:-missing})"
note "shared memory paged: shared_evictions=$sev shared_faults_store=$sfs"
