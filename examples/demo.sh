#!/usr/bin/env bash
# demo.sh - what `make demo` runs: a program that uses 512 MiB runs with a
# 64 MiB local budget. fluidmem starts a private monitor with its embedded
# in-memory store, the program's heap pages beyond 64 MiB live in the store,
# and the program still verifies every page it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== build/tests/rmw --malloc 512: 512 MiB of malloc, sequential and random"
echo "   read-modify-write, every page verified; local budget 64 MiB"
./build/fluidmem run --local-memory 64M --stats -- ./build/tests/rmw --malloc 512 1
echo
echo "== the same with gawk building an associative array (about 300 MiB), budget 48 MiB"
./build/fluidmem run --local-memory 48M --stats -- \
	gawk 'BEGIN { for (i = 0; i < 1000000; i++) a[i] = i " x"; n = 0; for (k in a) n += length(a[k]); print "gawk:", length(a), "keys,", n, "bytes" }'
