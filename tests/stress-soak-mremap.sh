# The mremap race cases of t-soak-mremap, which still fail in some runs
# (known bug: mremap moves and grows racing other threads' mmap/munmap).
export SOAK_RACES=1
. "$(dirname "$0")/t-soak-mremap.sh"
