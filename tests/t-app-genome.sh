#!/usr/bin/env bash
# t-app-genome.sh - Velvet assembles ART reads of a 30 kbp genome (velveth peaks ~100 MiB)
# under fluidmem at a 16M budget with contigs byte-identical to all in RAM, with evictions;
# in a memory cgroup at 16M with no swap it is OOM-killed (when this machine has cgroups).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../bench/apps/app-test.sh"
GENOME_BP=30000 COVERAGE=10 GENOME_TOOLS=velvet app_test genome genome-velvet --quick --budget 16M --modes "plain noswap fluidmem"
