#!/usr/bin/env bash
# t-app-redis.sh - redis-server loaded with 50k keys (~12 MiB) under fluidmem at a 4M budget,
# driven by redis-benchmark: DEBUG DIGEST identical to all in RAM, with evictions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
REDIS_KEYS=50000 REDIS_VSIZE=128 REDIS_REQS=10000 app_test redis redis --quick --budget 4M --modes "plain fluidmem"
