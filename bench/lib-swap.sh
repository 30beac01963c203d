# lib-swap.sh - sourced by the application scripts: run a command under the kernel's
# own answer to "more memory than the budget", a memory cgroup capped at the budget
# with swap behind it, so fluidmem has something honest to be compared with.
#
#   swap_setup [SWAP_SIZE]     probe, then make a swap device (zram, else a swapfile)
#                              and turn it on; returns 1 with SWAP_SKIP="reason" if this
#                              machine cannot (not root, no memory cgroup, no swap)
#   swap_cg_create NAME BUDGET|max swap|noswap
#                              a memory cgroup; "swap": capped at BUDGET, swap
#                              unlimited; "noswap": capped at BUDGET, no swap at all
#                              (a program bigger than BUDGET is OOM-killed); sets SWAP_CG
#                              to its path (not printed: a $(...) subshell would lose it)
#   swap_exec CGPATH CMD...    run CMD inside the cgroup (the shell enters it, then execs)
#   swap_cg_report CGPATH      sets SWAP_PEAK_BYTES, SWAP_SWAP_PEAK_BYTES, SWAP_OOM_KILLS
#   swap_cg_remove CGPATH      remove one cgroup (its processes must have exited)
#   swap_teardown              swapoff and remove everything swap_setup and
#                              swap_cg_create made; safe to call twice, meant for a trap
#
# Works with cgroup v2 (memory.max, memory.swap.max) when a cgroup2 hierarchy has the
# memory controller, else with cgroup v1 (memory.limit_in_bytes and, for the swap
# budget, memory.memsw.limit_in_bytes, which needs swap accounting). Swap is a zram
# device (built in or `modprobe zram`, set up with zramctl), else a swapfile
# (fallocate, mkswap, swapon) under $SWAP_FILE_DIR (default /var/tmp). The swap device
# is global while it is on: any process on the machine may use it, which on an idle
# 24 GiB machine means only the capped cgroups do.
#
# What it does not do: touch swap devices or cgroups it did not create, or pin CPUs.
# shellcheck shell=bash

SWAP_CG_KIND=""      # v1 | v2
SWAP_CG_PARENT=""    # where our cgroups are created
SWAP_DEV=""          # the swap device or file we turned on
SWAP_DEV_KIND=""     # zram | file
SWAP_SKIP=""         # why swap_setup failed
SWAP_CGS=()          # cgroups we created
SWAP_CG=""           # the one swap_cg_create made last
SWAP_NOSWAP_STRICT=1 # 0 when v1 lacks memsw: "noswap" then only sets swappiness 0

# _swap_probe_cgroup: sets SWAP_CG_KIND and SWAP_CG_PARENT, or SWAP_SKIP and returns 1.
_swap_probe_cgroup() {
	local mnt
	# cgroup v2 with the memory controller available.
	while read -r _ mnt fstype _; do
		[ "$fstype" = cgroup2 ] || continue
		if grep -qw memory "$mnt/cgroup.controllers" 2>/dev/null; then
			grep -qw memory "$mnt/cgroup.subtree_control" 2>/dev/null ||
				echo +memory >"$mnt/cgroup.subtree_control" 2>/dev/null || continue
			SWAP_CG_KIND=v2
			SWAP_CG_PARENT=$mnt
			return 0
		fi
	done </proc/mounts
	# cgroup v1 memory hierarchy: create under our own memory cgroup, so limits set
	# above us (a container's) still hold.
	while read -r _ mnt fstype opts _; do
		[ "$fstype" = cgroup ] || continue
		case ",$opts," in *,memory,*) ;; *) continue ;; esac
		local own
		own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
		SWAP_CG_KIND=v1
		SWAP_CG_PARENT=$mnt${own%/}
		[ -f "$SWAP_CG_PARENT/memory.memsw.limit_in_bytes" ] || SWAP_NOSWAP_STRICT=0
		return 0
	done </proc/mounts
	SWAP_SKIP="no memory cgroup controller (neither cgroup2 with memory nor a v1 memory hierarchy is mounted)"
	return 1
}

# _swap_try_zram SIZE: a zram swap device, or return 1 with the reason in SWAP_SKIP.
_swap_try_zram() {
	local size=$1 dev
	command -v zramctl >/dev/null || { SWAP_SKIP="zramctl not installed (util-linux)"; return 1; }
	if [ ! -e /sys/class/zram-control ] && [ ! -e /sys/block/zram0 ]; then
		modprobe zram 2>/dev/null || { SWAP_SKIP="no zram in this kernel (modprobe zram failed)"; return 1; }
	fi
	dev=$(zramctl --find --size "$size" 2>&1) || { SWAP_SKIP="zramctl --find failed: $dev"; return 1; }
	if ! mkswap "$dev" >/dev/null 2>&1 || ! swapon -p 32767 "$dev" 2>/dev/null; then
		zramctl --reset "$dev" 2>/dev/null
		SWAP_SKIP="swapon on zram device $dev failed"
		return 1
	fi
	SWAP_DEV=$dev
	SWAP_DEV_KIND=zram
}

# _swap_try_file SIZE: a swapfile, or return 1 with the reason in SWAP_SKIP.
_swap_try_file() {
	local size=$1 dir=${SWAP_FILE_DIR:-/var/tmp} f
	f=$dir/fluidmem-swap.$$
	if ! fallocate -l "$size" "$f" 2>/dev/null; then
		rm -f "$f"
		SWAP_SKIP="${SWAP_SKIP:+$SWAP_SKIP; }fallocate of a swapfile in $dir failed"
		return 1
	fi
	chmod 600 "$f"
	if ! mkswap "$f" >/dev/null 2>&1 || ! swapon -p 32767 "$f" 2>/dev/null; then
		rm -f "$f"
		SWAP_SKIP="${SWAP_SKIP:+$SWAP_SKIP; }swapon on a file in $dir failed ($(stat -f -c %T "$dir") does not support swapfiles?)"
		return 1
	fi
	SWAP_DEV=$f
	SWAP_DEV_KIND=file
}

# swap_setup [SIZE]: SIZE as zramctl/fallocate take it (default 4G; zram only uses
# memory for what is swapped out). SWAP_KIND=zram|file forces one kind.
swap_setup() {
	local size=${1:-4G}
	SWAP_SKIP=""
	[ "$(id -u)" = 0 ] || { SWAP_SKIP="needs root (cgroups and swapon)"; return 1; }
	command -v swapon >/dev/null || { SWAP_SKIP="swapon not installed"; return 1; }
	_swap_probe_cgroup || return 1
	[ -n "$SWAP_DEV" ] && return 0
	case ${SWAP_KIND:-any} in
	zram) _swap_try_zram "$size" ;;
	file) _swap_try_file "$size" ;;
	*) _swap_try_zram "$size" || _swap_try_file "$size" ;;
	esac
}

# swap_cg_create NAME BUDGET swap|noswap: sets SWAP_CG to the new cgroup's path.
swap_cg_create() {
	local name=$1 budget=$2 mode=$3 cg bytes
	if [ "$budget" = max ]; then
		bytes=max
		[ "$SWAP_CG_KIND" = v1 ] && bytes=-1
	else
		bytes=$(numfmt --from=iec "${budget%B}") || return 1
	fi
	cg=$SWAP_CG_PARENT/fluidmem-bench-$$-$name
	[ -d "$cg" ] && swap_cg_remove "$cg"
	mkdir -p "$cg" || return 1
	SWAP_CGS+=("$cg")
	if [ "$SWAP_CG_KIND" = v2 ]; then
		echo "$bytes" >"$cg/memory.max" || return 1
		if [ "$mode" = noswap ]; then echo 0 >"$cg/memory.swap.max"; else echo max >"$cg/memory.swap.max"; fi || return 1
	else
		echo "$bytes" >"$cg/memory.limit_in_bytes" || return 1
		if [ "$mode" = noswap ]; then
			if [ "$SWAP_NOSWAP_STRICT" = 1 ]; then
				echo "$bytes" >"$cg/memory.memsw.limit_in_bytes" || return 1
			fi
			echo 0 >"$cg/memory.swappiness" 2>/dev/null
		else
			[ "$SWAP_NOSWAP_STRICT" = 1 ] && { echo -1 >"$cg/memory.memsw.limit_in_bytes" || return 1; }
			echo "${SWAP_SWAPPINESS:-100}" >"$cg/memory.swappiness" 2>/dev/null
		fi
	fi
	SWAP_CG=$cg
}

# swap_exec CGPATH CMD...: CMD runs in the cgroup (and so do its children).
swap_exec() {
	local cg=$1
	shift
	bash -c 'echo $$ >"$1/cgroup.procs" || exit 125; shift; exec "$@"' swap_exec "$cg" "$@"
}

# swap_cg_report CGPATH: peak memory and swap of the cgroup so far, OOM kills.
swap_cg_report() {
	local cg=$1
	SWAP_PEAK_BYTES=0 SWAP_SWAP_PEAK_BYTES=0 SWAP_OOM_KILLS=0
	if [ "$SWAP_CG_KIND" = v2 ]; then
		SWAP_PEAK_BYTES=$(cat "$cg/memory.peak" 2>/dev/null || echo 0)
		SWAP_SWAP_PEAK_BYTES=$(cat "$cg/memory.swap.peak" 2>/dev/null || echo 0)
		SWAP_OOM_KILLS=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.events" 2>/dev/null)
	else
		SWAP_PEAK_BYTES=$(cat "$cg/memory.max_usage_in_bytes")
		if [ -f "$cg/memory.memsw.max_usage_in_bytes" ]; then
			SWAP_SWAP_PEAK_BYTES=$(( $(cat "$cg/memory.memsw.max_usage_in_bytes") - SWAP_PEAK_BYTES ))
		fi
		SWAP_OOM_KILLS=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.oom_control" 2>/dev/null)
	fi
	SWAP_OOM_KILLS=${SWAP_OOM_KILLS:-0}
}

# swap_cg_remove CGPATH: waits a little for exiting processes.
swap_cg_remove() {
	local cg=$1 i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ -d "$cg" ] || return 0
		rmdir "$cg" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "lib-swap: could not remove $cg (processes left: $(cat "$cg/cgroup.procs" | tr '\n' ' '))" >&2
	return 1
}

swap_teardown() {
	local cg
	for cg in "${SWAP_CGS[@]}"; do
		[ -d "$cg" ] || continue
		# Anything left (a daemon a script forgot) is killed so the group can go.
		while read -r p; do kill -9 "$p" 2>/dev/null; done <"$cg/cgroup.procs"
		swap_cg_remove "$cg"
	done
	SWAP_CGS=()
	if [ -n "$SWAP_DEV" ]; then
		swapoff "$SWAP_DEV" 2>/dev/null
		if [ "$SWAP_DEV_KIND" = zram ]; then zramctl --reset "$SWAP_DEV" 2>/dev/null; else rm -f "$SWAP_DEV"; fi
		SWAP_DEV=""
	fi
}

# swap_describe: one line for the reports.
swap_describe() {
	echo "cgroup $SWAP_CG_KIND under $SWAP_CG_PARENT, swap on $SWAP_DEV_KIND $SWAP_DEV"
}
