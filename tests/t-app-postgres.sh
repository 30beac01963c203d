#!/usr/bin/env bash
# t-app-postgres.sh - PostgreSQL (shared_buffers 32MB, MAP_SHARED, forked backends) under
# fluidmem at an 8M budget: pgbench runs and a table checksum is identical to all in RAM,
# with evictions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
FM_APP_KNOWN_PROBLEM="forked backends crash under the preload library (checkpointer terminated by signal 11 at startup)" PG_SCALE=1 PG_SHARED_BUFFERS=32MB PG_SECS=2 app_test postgres postgres --quick --budget 8M --modes "plain fluidmem"
