#!/usr/bin/env bash
# t-app-redis.sh - redis-server loaded with 30k keys (~8 MiB) under fluidmem at a 3M budget,
# driven by redis-benchmark: DEBUG DIGEST identical to all in RAM, with evictions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
REDIS_KEYS=30000 REDIS_VSIZE=128 REDIS_REQS=5000 app_test redis redis --quick --budget 3M --modes "plain fluidmem"
