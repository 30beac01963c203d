#!/usr/bin/env bash
# t-store-local: the in-memory store passes the same contract as the remote ones.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"
"$CONTRACT" local:// 5000 || fail "contract on local://"
