#!/usr/bin/env bash
# t-app-postgres.sh - PostgreSQL (shared_buffers 32MB: MAP_SHARED, forked backends) under
# fluidmem at a 12M budget: pgbench runs and every row of pgbench_accounts is right and
# identical to all in RAM, with evictions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
PG_SCALE=1 PG_SHARED_BUFFERS=32MB PG_SECS=1 app_test postgres postgres --quick --budget 12M --modes "plain fluidmem"
