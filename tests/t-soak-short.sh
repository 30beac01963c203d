#!/usr/bin/env bash
# t-soak-short: tests/stress-soak.sh for 24 s with the sanitized monitor and
# the local store: clients killed and restarted, the monitor restarted once
# (SIGTERM, so LeakSanitizer runs and its report fails the test), munmap and
# mremap under load; no page lost or wrong, counters consistent, nothing left.
export SOAK_SECONDS=${SOAK_SECONDS:-24} SOAK_STORE=local SOAK_SAN=1 SOAK_RESTART_SIG=TERM
export SOAK_CLIENTS=${SOAK_CLIENTS:-3} SOAK_MIB=${SOAK_MIB:-32} SOAK_THREADS=${SOAK_THREADS:-3}
exec bash "$(dirname "$0")/stress-soak.sh"
