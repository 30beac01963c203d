#!/usr/bin/env bash
# t-store-unit: the store URL parser (good URLs parse, bad ones give one clear
# line) and the integrity seal (wrong key, version or any flipped bit is CORRUPT).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store-lib.sh"
"$(store_bin store-url)" || fail "URL parser"
"$(store_bin store-seal)" || fail "seal"
