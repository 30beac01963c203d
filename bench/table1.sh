#!/usr/bin/env bash
# table1.sh - our version of the paper's Table 1: fault latency of fluidmem under
# cumulative monitor configurations, for the local store and for memcached, each
# next to the floor (a bare userfaultfd round trip, bench/uffd-floor) measured in
# the same run.
#
# For each configuration (the table just below) and store, a fresh fluidmemd runs
# with those flags and build/bench/touch runs under `fluidmem run` over a region 4x
# the budget: the init pass takes the zero-page path, the read (read-only), seq
# and rand (read-modify-write) passes fault pages back from the store. Latency
# is measured client-side (touch's accesses over 1 us that took a page fault). A configuration whose
# flags fluidmemd does not know yet (see its --help) is skipped with that reason.
#
# Output: an aligned table on stdout; OUT/table1.csv (one row per configuration,
# store and pass; the floor rows have store "none"), OUT/table1-runs.csv (every run),
# OUT/table1-monitor.csv (the monitor's own counters per run),
# OUT/floor.txt and OUT/samples/*.txt (latency samples for bench/plot.sh).
# No timing assertions: read the ratios of one run.
#
# Usage: bench/table1.sh [--budget 32M] [--size SIZE (4x budget)] [--stores "local memcached"]
#          [--configs "name name..."] [--floor-pages 8192] [--threads N] [--repeat N]
#          [--out build/bench]
# --threads N runs touch with N threads (faults in flight together). --repeat N
# runs the floor and every configuration N times, interleaved; table1.csv is then
# the median of the runs (table1-runs.csv has each).
set -u

# Configurations, cumulative as in the paper: name, then fluidmemd flags (each row
# complete). Edit freely; `default` is whatever fluidmemd does with no flags (the
# rows before it add up to it; async-evict and affinity are the paper's, off), and
# default-no-encrypt shows what sealing pages for remote stores costs.
CONFIGS='
baseline          --no-zero-skip --prefetch 0 --evict-batch 1 --poll-us 0 --no-placement --no-evict-sweep --clean-tracking=off
+zero-skip        --prefetch 0 --evict-batch 1 --poll-us 0 --no-placement --no-evict-sweep --clean-tracking=off
+batch-evict      --prefetch 0 --evict-batch 64 --poll-us 0 --no-placement --no-evict-sweep --clean-tracking=off
+prefetch         --prefetch 64 --evict-batch 64 --poll-us 0 --no-placement --no-evict-sweep --clean-tracking=off
+poll             --prefetch 64 --evict-batch 64 --poll-us 50 --no-placement --no-evict-sweep --clean-tracking=off
+placement        --prefetch 64 --evict-batch 64 --poll-us 50 --no-evict-sweep --clean-tracking=off
+evict-sweep      --prefetch 64 --evict-batch 64 --poll-us 50 --clean-tracking=off
+clean-tracking   --prefetch 64 --evict-batch 64 --poll-us 50 --clean-tracking=auto
+async-evict      --prefetch 64 --evict-batch 64 --poll-us 50 --async-evict 256 --no-placement --no-evict-sweep --clean-tracking=off
+affinity         --prefetch 64 --evict-batch 64 --poll-us 50 --async-evict 256 --affinity 1,0 --no-evict-sweep --clean-tracking=off
default
default-no-encrypt  --no-encrypt
prefetch-write    --prefetch-install write
prefetch-continue --prefetch-install continue
no-prefetch-gate  --no-prefetch-gate
fault-threads-1   --fault-threads 1
fault-threads-2   --fault-threads 2
fault-threads-4   --fault-threads 4
'

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FM_BUILD:-$ROOT/build}
BUDGET=32M
SIZE=""
STORES="local memcached"
ONLY=""
FLOOR_PAGES=8192
OUT=$BUILD/bench
THREADS=1
REPEAT=1
while [ $# -gt 0 ]; do
	case $1 in
	--budget) BUDGET=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--stores) STORES=$2; shift 2 ;;
	--configs) ONLY=$2; shift 2 ;;
	--floor-pages) FLOOR_PAGES=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "table1: unknown option $1" >&2; exit 2 ;;
	esac
done
budget_bytes=$(numfmt --from=iec "${BUDGET%B}") || exit 2
[ -n "$SIZE" ] || SIZE=$((budget_bytes * 4 / 1048576))M
for b in fluidmemd fluidmem bench/touch bench/uffd-floor; do
	[ -x "$BUILD/$b" ] || { echo "table1: $BUILD/$b not built (make)" >&2; exit 2; }
done
mkdir -p "$OUT/samples" "$OUT/raw"
rm -f "$OUT"/samples/t1-*.txt "$OUT"/samples/floor-*.txt  # plot.sh plots what is there
T=$(mktemp -d /tmp/fm-table1.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# kv KEY LINE: the value of KEY=... in a key=value line.
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# --- the floor, in this run -------------------------------------------------
echo "table1: region $SIZE over a budget of $BUDGET, $THREADS touch thread(s), $REPEAT run(s); floor: $FLOOR_PAGES pages per case"
CSV=$OUT/table1.csv
RUNS=$OUT/table1-runs.csv
MCSV=$OUT/table1-monitor.csv
COLS="config,store,pass,faults,avg_us,median_us,p99_us,x_floor_median,x_floor_avg,pages_per_s,mb_per_s"
echo "$COLS,run" >"$RUNS"
echo "config,store,faults_zero,faults_store,faults_wp,evictions,pages_written,pages_zero_skipped,lat_p50_us,lat_p99_us,run" >"$MCSV"

# measure_floor: this run's floor into OUT/floor.txt (and raw/floor.RUN.txt) and RUNS.
measure_floor() {
	local line pat res pin
	"$BUILD/bench/uffd-floor" --pages "$FLOOR_PAGES" --samples "$OUT/samples" >"$OUT/floor.txt" ||
		{ echo "table1: uffd-floor failed" >&2; exit 1; }
	cp "$OUT/floor.txt" "$OUT/raw/floor.$RUN.txt"
	while read -r line; do
		pat=$(kv pattern "$line") res=$(kv resolve "$line") pin=$(kv pin "$line")
		[ -n "$(kv skipped "$line")" ] && continue
		echo "floor-$res-$pin,none,$pat,$(kv pages "$line"),$(kv avg_us "$line"),$(kv median_us "$line"),$(kv p99_us "$line"),,,,,$RUN" >>"$RUNS"
	done <"$OUT/floor.txt"
}
# floor_of RESOLVE PATTERN STAT: the best (lowest median) pinning's STAT, this run.
floor_of() {
	grep "resolve=$1 " "$OUT/floor.txt" | grep "pattern=$2 " | grep -v skipped |
		awk -v stat="$3" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
			if (best == "" || kv["median_us"] + 0 < best) { best = kv["median_us"] + 0; v = kv[stat] } }
			END { print v }'
}

# --- stores -------------------------------------------------------------------
declare -A STORE_URL STORE_SKIP STORE_PID
# start_store NAME: the store's server on a free loopback port (none for local).
start_store() {
	local s=$1 port
	case $s in
	local) STORE_URL[$s]=local:// ;;
	memcached)
		if ! command -v memcached >/dev/null; then STORE_SKIP[$s]="memcached not installed"; return; fi
		port=$(free_port)
		memcached -u root -l 127.0.0.1 -p "$port" -U 0 -m 2048 -t 2 &
		STORE_PID[$s]=$!
		PIDS+=($!)
		for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
		STORE_URL[$s]="memcached://127.0.0.1:$port" ;;
	redis)
		if ! command -v redis-server >/dev/null; then STORE_SKIP[$s]="redis-server not installed"; return; fi
		port=$(free_port)
		redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
		STORE_PID[$s]=$!
		PIDS+=($!)
		for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
		STORE_URL[$s]="redis://127.0.0.1:$port" ;;
	*) echo "table1: unknown store $s" >&2; exit 2 ;;
	esac
}
# store_alive NAME: restarts a store server that died (say, the machine's OOM
# killer took it), with a note; the run that saw it die is reported as failed.
store_alive() {
	local s=$1
	[ -z "${STORE_PID[$s]:-}" ] && return 0
	kill -0 "${STORE_PID[$s]}" 2>/dev/null && return 0
	ROWS_SKIPPED+=("store $s: its server (pid ${STORE_PID[$s]}) died; restarted")
	start_store "$s"
}
for s in $STORES; do start_store "$s"; done

HELP=$("$BUILD/fluidmemd" --help 2>&1)
# missing_flags FLAGS...: the flags fluidmemd's --help does not mention.
missing_flags() {
	local f name miss=""
	for f in "$@"; do
		case $f in --*) ;; *) continue ;; esac
		name=${f%%=*}
		grep -qE -- "(^|[ ,])$name([ =,[]|\$)" <<<"$HELP" || miss+="$name "
	done
	echo "${miss% }"
}

# not_under_fluidmem OUT JSON: true (printing why) when the program ran on plain
# memory: the preload library was not loaded (say, rebuilt under us) or the monitor
# saw no region and no fault.
not_under_fluidmem() {
	if grep -q "cannot be preloaded" "$1"; then
		grep -m1 "cannot be preloaded" "$1"
		return 0
	fi
	[ -s "$2" ] || { echo "no --stats-json from fluidmem run"; return 0; }
	python3 - "$2" <<-'EOF'
		import json, sys
		j = json.load(open(sys.argv[1]))
		faults = sum(v for k, v in j.items() if k.startswith("faults_") and isinstance(v, int))
		if not j.get("regions") or faults == 0:
		    print("the monitor saw %s region(s) and %d faults" % (j.get("regions"), faults))
		    sys.exit(0)
		sys.exit(1)
	EOF
}

# run_one NAME STORE FLAGS...: one monitor, one touch run; appends to the CSVs.
declare -a ROWS_SKIPPED=()
run_one() {
	local name=$1 store=$2 sock=$T/sock tag out json log mon rc
	shift 2
	tag=$(tr -c 'A-Za-z0-9_.+\n-' '_' <<<"$name-$store")
	out=$OUT/raw/table1-$tag.$RUN.txt json=$OUT/raw/table1-$tag.$RUN.json log=$OUT/raw/table1-$tag.$RUN.monitor.log
	rm -f "$sock" "$json"
	"$BUILD/fluidmemd" --socket "$sock" --local-memory "$BUDGET" --store "${STORE_URL[$store]}" --quiet "$@" >"$log" 2>&1 &
	mon=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; kill -0 $mon 2>/dev/null || break; sleep 0.1; done
	if [ ! -S "$sock" ]; then
		ROWS_SKIPPED+=("$name/$store: fluidmemd did not start ($(tail -n 1 "$log"))")
		kill $mon 2>/dev/null; wait $mon 2>/dev/null
		return
	fi
	"$BUILD/fluidmem" run --socket "$sock" --local-memory "$BUDGET" --stats-json "$json" -- \
		"$BUILD/bench/touch" --size "$SIZE" --passes init,read,seq,rand --threads "$THREADS" --label "$tag" \
		--samples "$OUT/samples/t1-$tag.txt" >"$out" 2>&1
	rc=$?
	local alive=1 mrc=0
	kill -0 $mon 2>/dev/null || alive=0
	kill -TERM $mon 2>/dev/null
	wait $mon 2>/dev/null || mrc=$?
	if [ $alive = 0 ]; then
		ROWS_SKIPPED+=("$name/$store: FAILED, fluidmemd died during the run (exit $mrc: $(head -c 200 "$log" | tr '\n' ' '))")
		return
	fi
	if [ $rc -ne 0 ]; then
		ROWS_SKIPPED+=("$name/$store: FAILED, touch exit $rc ($(tail -n 1 "$out"))")
		return
	fi
	local why
	if why=$(not_under_fluidmem "$out" "$json"); then
		ROWS_SKIPPED+=("$name/$store: FAILED, touch did not run under fluidmem: $why")
		return
	fi
	local line kind fl_med fl_avg
	while read -r line; do
		kind=$(kv kind "$line")
		case $kind in
		init) fl_med=$(floor_of zero seq median_us) fl_avg=$(floor_of zero seq avg_us) ;;
		seq|rand) fl_med=$(floor_of copy "$kind" median_us) fl_avg=$(floor_of copy "$kind" avg_us) ;;
		read) fl_med=$(floor_of copy seq median_us) fl_avg=$(floor_of copy seq avg_us) ;;
		verify) fl_med="" fl_avg="" ;;  # read-only re-read after the random pass: throughput only
		*) continue ;;
		esac
		awk -v c="$name" -v s="$store" -v k="$kind" -v f="$(kv faults "$line")" -v a="$(kv fault_avg_us "$line")" \
			-v m="$(kv fault_median_us "$line")" -v p="$(kv fault_p99_us "$line")" -v pps="$(kv pages_per_s "$line")" \
			-v fm="$fl_med" -v fa="$fl_avg" -v mbs="$(kv mb_per_s "$line")" 'BEGIN {
			printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", c, s, k, f, a, m, p,
				(fm > 0 && m != "" ? sprintf("%.2f", m / fm) : ""), (fa > 0 && a != "" ? sprintf("%.2f", a / fa) : ""), pps, mbs, run }' run="$RUN" >>"$RUNS"
	done < <(grep '^bench=touch .*kind=' "$out")
	if [ -s "$json" ]; then
		python3 - "$json" "$name" "$store" "$RUN" >>"$MCSV" <<-'EOF'
			import json, sys
			j = json.load(open(sys.argv[1]))
			keys = ["faults_zero", "faults_store", "faults_wp", "evictions", "pages_written",
			        "pages_zero_skipped", "lat_p50_us", "lat_p99_us"]
			print(",".join([sys.argv[2], sys.argv[3]] + [str(j.get(k, "")) for k in keys] + [sys.argv[4]]))
		EOF
	fi
}

for ((RUN = 1; RUN <= REPEAT; RUN++)); do
	measure_floor
	while read -r name flags; do
		[ -n "$name" ] || continue
		if [ -n "$ONLY" ] && ! grep -qwF -- "$name" <<<"$ONLY"; then continue; fi
		# shellcheck disable=SC2086 # flags are words on purpose
		miss=$(missing_flags $flags)
		if [ -n "$miss" ]; then
			[ $RUN = 1 ] && ROWS_SKIPPED+=("$name: skipped, fluidmemd has no $miss yet")
			continue
		fi
		for s in $STORES; do
			if [ -n "${STORE_SKIP[$s]:-}" ]; then continue; fi
			store_alive "$s"
			echo "  run $RUN: $name / $s ..."
			# shellcheck disable=SC2086
			run_one "$name" "$s" $flags
		done
	done <<<"$CONFIGS"
done
for s in $STORES; do [ -n "${STORE_SKIP[$s]:-}" ] && ROWS_SKIPPED+=("store $s: skipped, ${STORE_SKIP[$s]}"); done

# The summary: per configuration, store and pass, the median over runs of each column.
echo "$COLS,runs" >"$CSV"
awk -F, 'NR > 1 {
		key = $1 "," $2 "," $3
		if (!(key in cnt)) keys[++n] = key
		c = ++cnt[key]
		for (i = 4; i <= 11; i++) v[key, i, c] = $i
	}
	function median(key, col,   m, i, j, t, a, k) {
		m = 0
		for (i = 1; i <= cnt[key]; i++) if (v[key, col, i] != "") a[++m] = v[key, col, i] + 0
		if (m == 0) return ""
		for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		if (m % 2) return a[(m + 1) / 2]
		t = (a[m / 2] + a[m / 2 + 1]) / 2
		return t == int(t) ? t : sprintf("%.2f", t)
	}
	END {
		for (k = 1; k <= n; k++) {
			line = keys[k]
			for (i = 4; i <= 11; i++) line = line "," median(keys[k], i)
			print line "," cnt[keys[k]]
		}
	}' "$RUNS" >>"$CSV"

# --- the table ----------------------------------------------------------------
echo
[ "$REPEAT" -gt 1 ] && echo "(median of $REPEAT runs)"
echo "Table 1: fault latency in us, measured by the faulting program; x floor = median / the floor's median;"
echo "us/pg = wall time of the pass / pages (the amortized cost of a page, what prefetch lowers)"
echo "(floor: bare uffd COPY round trip between two processes, best of same-CPU / cross-CPU / unpinned;"
echo " init = first touch, zero-page path, compared with the ZEROPAGE floor; seq, rand = pages from the store)"
awk -F, 'NR > 1 {
		key = $1 "," $2
		if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
		avg[key "," $3] = $5; med[key "," $3] = $6; p99[key "," $3] = $7; x[key "," $3] = $8
		pp[key "," $3] = ($10 + 0 > 0) ? sprintf("%.1f", 1e6 / $10) : "-"
	}
	function cell(k, p) { return (k "," p) in med ? sprintf("%7s %7s %8s %6s %6s", avg[k "," p], med[k "," p], p99[k "," p], (x[k "," p] == "" ? "-" : x[k "," p]), pp[k "," p]) : sprintf("%7s %7s %8s %6s %6s", "-", "-", "-", "-", "-") }
	END {
		printf "%-21s %-9s | %-37s | %-37s | %-37s\n", "", "", "init (zero page)", "sequential", "random"
		printf "%-21s %-9s | %7s %7s %8s %6s %6s | %7s %7s %8s %6s %6s | %7s %7s %8s %6s %6s\n", "config", "store",
			"avg", "median", "p99", "xfloor", "us/pg", "avg", "median", "p99", "xfloor", "us/pg", "avg", "median", "p99", "xfloor", "us/pg"
		for (i = 1; i <= n; i++) {
			split(keys[i], kk, ",")
			if (kk[2] == "none") printf "%-21s %-9s | %37s | %s | %s\n", kk[1], "", "", cell(keys[i], "seq"), cell(keys[i], "rand")
			else printf "%-21s %-9s | %s | %s | %s\n", kk[1], kk[2], cell(keys[i], "init"), cell(keys[i], "seq"), cell(keys[i], "rand")
		}
		# The paper (Table 1, averages only; RAMCloud over InfiniBand, in-kernel timing).
		printf "%-21s %-9s | %37s | %7s %29s | %7s %29s\n", "paper: default", "ramcloud", "", "75.54", "", "69.79", ""
		printf "%-21s %-9s | %37s | %7s %29s | %7s %29s\n", "paper: all opts", "ramcloud", "", "34.94", "", "48.33", ""
	}' "$CSV"
echo
echo "throughput (whole pass, all accesses included; read = sequential read-only re-read of the region"
echo " evicted by init; seq = sequential read-modify-write; verify = sequential read-only re-read after rand):"
awk -F, 'NR > 1 && $2 != "none" { printf "  %-18s %-9s %-6s %9s pages/s %8s MB/s%s\n", $1, $2, $3, $10, $11, ($4 == "" ? "" : "  (" $4 " faults)") }' "$CSV"
for r in "${ROWS_SKIPPED[@]}"; do echo "  note: $r"; done
echo "(CSV: $CSV, every run: $RUNS, monitor counters: $MCSV)"
rc=0
for r in "${ROWS_SKIPPED[@]}"; do case $r in *FAILED*) rc=1 ;; esac; done
exit $rc
