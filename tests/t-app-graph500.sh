#!/usr/bin/env bash
# t-app-graph500.sh - Graph500 BFS (scale 14, ~8.5 MiB of graph) under fluidmem at a 2M
# budget gives the same checksum as all in RAM, with evictions. Runs bench/apps/graph500.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
G500_SCALE=14 G500_ROOTS=4 app_test graph500 graph500 --quick --budget 2M --modes "plain fluidmem"
