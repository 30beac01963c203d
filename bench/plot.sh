#!/usr/bin/env bash
# plot.sh - pictures of what table1.sh and swap-compare.sh measured, with gnuplot.
#
# Reads OUT/table1.csv, OUT/swap-compare.csv and the latency samples in OUT/samples
# (written by uffd-floor --samples and touch --samples) and writes PNGs to OUT:
#   latency-box.png      fault latency distribution per code path and configuration,
#                        boxplots like the paper's Figure 4 (box p25-p75, line at the
#                        median, whiskers p1-p99), the uffd floor first
#   latency-cdf.png      the same samples as CDFs, one panel per path
#   swap-latency-box.png fault latency per pass: fluidmem, zram, swapfile
#   swap-throughput.png  pages/s per pass: fluidmem, zram, swapfile (bars)
# Plots whose inputs are missing are skipped with a note. It measures nothing.
#
# Usage: bench/plot.sh [OUT (default build/bench)]
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-${FM_BUILD:-$ROOT/build}/bench}
S=$OUT/samples
D=$OUT/plot-data
command -v gnuplot >/dev/null || { echo "plot: gnuplot not installed (apt-get install gnuplot-nox), no pictures"; exit 0; }
mkdir -p "$D"

# quantiles NAME < ns-per-line: one row "NAME p1 p25 p50 p75 p99 n" in us.
quantiles() {
	sort -n | awk -v name="$1" '{ v[NR] = $1 }
		function q(p,  i) { i = int(NR * p); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000 }
		END { if (NR > 0) printf "%s %.2f %.2f %.2f %.2f %.2f %d\n", name, q(0.01), q(0.25), q(0.5), q(0.75), q(0.99), NR }'
}

# cdf FILE < ns-per-line: "us fraction" rows, at most ~400 of them.
cdf() {
	sort -n | awk '{ v[NR] = $1 } END { step = NR > 400 ? NR / 400 : 1
		for (i = step; i <= NR + 0.5; i += step) printf "%.3f %.4f\n", v[int(i)] / 1000, int(i) / NR }' >"$1"
}

# --- Table 1 samples: floor and each configuration/store, per path ----------
box=$D/latency-box.dat
: >"$box"
cdf_plots=()   # "path|file|title" entries
for f in "$S"/floor-copy-same-seq.txt "$S"/floor-copy-cross-seq.txt "$S"/floor-zero-same-seq.txt "$S"/floor-prefill-wp-same-seq.txt; do
	[ -s "$f" ] || continue
	n=$(basename "$f" .txt)
	quantiles "$n" <"$f" >>"$box"
	path=seq
	case $n in floor-zero*) path=init ;; esac
	cdf "$D/cdf-$n.dat" <"$f"
	cdf_plots+=("$path|$D/cdf-$n.dat|$n")
	[ $path = seq ] && { cdf_plots+=("rand|$D/cdf-$n.dat|$n"); }
done
for f in "$S"/t1-*.txt; do
	[ -s "$f" ] || continue
	label=$(basename "$f" .txt)
	label=${label#t1-}
	for path in init seq rand; do
		awk -v k=$path '$2 == k { print $3 }' "$f" >"$D/tmp.ns"
		[ -s "$D/tmp.ns" ] || continue
		quantiles "$label:$path" <"$D/tmp.ns" >>"$box"
		cdf "$D/cdf-$label-$path.dat" <"$D/tmp.ns"
		cdf_plots+=("$path|$D/cdf-$label-$path.dat|$label")
	done
done
rm -f "$D/tmp.ns"

if [ -s "$box" ]; then
	n=$(wc -l <"$box")
	gnuplot <<-EOF
		set terminal pngcairo size $((400 + n * 45)),600 font "sans,9"
		set output "$OUT/latency-box.png"
		set title "fluidmem fault latency per configuration and path (box p25-p75, median, whiskers p1-p99)"
		set ylabel "fault latency (us, log scale)"
		set logscale y
		set grid ytics
		set xtics rotate by -40 left noenhanced
		set boxwidth 0.5
		set xrange [-1:$n]
		set bmargin 10
		plot "$box" using 0:3:2:6:5:xtic(1) with candlesticks whiskerbars 0.5 lw 1.5 lc rgb "#3060a0" title "p1/p25/p75/p99", \
		     "" using 0:4:4:4:4 with candlesticks lw 2.5 lc rgb "#c03020" title "median"
	EOF
	echo "plot: $OUT/latency-box.png"
else
	echo "plot: no Table 1 samples in $S, no latency-box.png"
fi

# series_style TITLE: floors black/grey; one colour per configuration, solid for
# the local store, dashed for memcached, dotted for redis.
declare -A CFG_COLOUR
PALETTE=("#1f77b4" "#ff7f0e" "#2ca02c" "#d62728" "#9467bd" "#8c564b" "#e377c2" "#17becf" "#bcbd22" "#7f7f7f")
series_style() {
	local t=$1 cfg dt=1
	case $t in
	floor-copy-same*|floor-zero-same*) echo 'lw 3 lc rgb "#000000"'; return ;;
	floor-prefill*) echo 'lw 3 dt 3 lc rgb "#000000"'; return ;;
	floor-*) echo 'lw 3 lc rgb "#999999"'; return ;;
	esac
	cfg=${t%-*}
	case $t in *-memcached) dt=2 ;; *-redis) dt=3 ;; esac
	echo "lw 2 dt $dt lc rgb \"${CFG_COLOUR[$cfg]:-#7f7f7f}\""
}
# Colours are given out here, in the main shell (series_style runs in $(...)).
ncolour=0
for e in "${cdf_plots[@]}"; do
	IFS='|' read -r _ _ title <<<"$e"
	case $title in floor-*) continue ;; esac
	cfg=${title%-*}
	[ -n "${CFG_COLOUR[$cfg]:-}" ] && continue
	CFG_COLOUR[$cfg]=${PALETTE[$((ncolour % ${#PALETTE[@]}))]}
	ncolour=$((ncolour + 1))
done

if [ ${#cdf_plots[@]} -gt 0 ]; then
	{
		echo 'set terminal pngcairo size 1800,650 font "sans,9"'
		echo "set output \"$OUT/latency-cdf.png\""
		echo 'set multiplot layout 1,3 title "fault latency CDF per path (client-side)"'
		echo 'set logscale x; set grid; set key bottom right noenhanced; set yrange [0:1]'
		echo 'set xlabel "latency (us, log)"; set ylabel "fraction of faults"'
		for path in init seq rand; do
			case $path in init) t="first touch (zero page)" ;; seq) t="sequential, from the store" ;; rand) t="random, from the store" ;; esac
			line=""
			for e in "${cdf_plots[@]}"; do
				IFS='|' read -r p file title <<<"$e"
				[ "$p" = "$path" ] || continue
				line+="${line:+, }\"$file\" using 1:2 with lines $(series_style "$title") title \"$title\""
			done
			echo "set title \"$t\""
			if [ -n "$line" ]; then echo "plot $line"; else echo 'set label 1 "no data" at graph 0.5,0.5 center; plot NaN notitle; unset label 1'; fi
		done
		echo 'unset multiplot'
	} | gnuplot && echo "plot: $OUT/latency-cdf.png"
fi

# --- swap-compare -------------------------------------------------------------
sbox=$D/swap-latency-box.dat
: >"$sbox"
for sys in fluidmem zram swapfile; do
	f=$S/swap-$sys.txt
	[ -s "$f" ] || continue
	for path in init seq rand; do
		awk -v k=$path '$2 == k { print $3 }' "$f" | quantiles "$sys:$path" >>"$sbox"
	done
done
if [ -s "$sbox" ]; then
	n=$(wc -l <"$sbox")
	gnuplot <<-EOF
		set terminal pngcairo size $((400 + n * 50)),550 font "sans,9"
		set output "$OUT/swap-latency-box.png"
		set title "fault latency: fluidmem vs kernel swap (box p25-p75, median, whiskers p1-p99)"
		set ylabel "fault latency (us, log scale)"
		set logscale y
		set grid ytics
		set xtics rotate by -40 left noenhanced
		set boxwidth 0.5
		set xrange [-1:$n]
		set bmargin 8
		plot "$sbox" using 0:3:2:6:5:xtic(1) with candlesticks whiskerbars 0.5 lw 1.5 lc rgb "#3060a0" title "p1/p25/p75/p99", \
		     "" using 0:4:4:4:4 with candlesticks lw 2.5 lc rgb "#c03020" title "median"
	EOF
	echo "plot: $OUT/swap-latency-box.png"
fi

csv=$OUT/swap-compare-summary.csv
if [ -s "$csv" ] && [ "$(wc -l <"$csv")" -gt 1 ]; then
	# Rows: pass; columns: pages/s per system ("-" when that system did not run).
	awk -F, 'NR > 1 { v[$2 "," $1] = $10; if (!seen[$2]++) passes[++n] = $2; sys[$1] = 1 }
		END { printf "pass fluidmem zram swapfile\n"
			for (i = 1; i <= n; i++) { p = passes[i]; printf "%s", p
				split("fluidmem zram swapfile", s, " ")
				for (j = 1; j <= 3; j++) printf " %s", ((p "," s[j]) in v && v[p "," s[j]] != "") ? v[p "," s[j]] : "-"
				printf "\n" } }' "$csv" >"$D/swap-throughput.dat"
	gnuplot <<-EOF
		set terminal pngcairo size 800,500 font "sans,10"
		set output "$OUT/swap-throughput.png"
		set title "throughput over a region 4x the budget: fluidmem vs kernel swap"
		set ylabel "pages/s (4 KiB)"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set datafile missing "-"
		set grid ytics
		set key top right
		set yrange [0:*]
		plot "$D/swap-throughput.dat" using 2:xtic(1) title columnheader(2) lc rgb "#3060a0", \
		     "" using 3 title columnheader(3) lc rgb "#40a040", \
		     "" using 4 title columnheader(4) lc rgb "#c08020"
	EOF
	echo "plot: $OUT/swap-throughput.png"
else
	echo "plot: no $csv, no swap-throughput.png"
fi
