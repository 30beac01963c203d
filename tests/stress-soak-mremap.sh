# The mremap race cases of t-soak-mremap, more rounds of each (3 move-race,
# 5 grow-race): they catch an ordering bug between mremap and other threads'
# mappings, faults and evictions in some runs only.
export SOAK_RACES=1
. "$(dirname "$0")/t-soak-mremap.sh"
