#!/usr/bin/env bash
# genome.sh - genome assembly, the paper's use case: a random reference genome, paired
# reads simulated from it with ART (art_illumina), assembled with Velvet (velveth +
# velvetg) and SOAPdenovo2 (soapdenovo2-63mer all) in each run mode. The contigs must
# be byte-identical across modes; under the budget with no swap the assemblers must be
# OOM-killed (they complete only with more memory than the budget).
#
# Usage: bench/apps/genome.sh [--quick|--bench] [--budget SIZE] [--modes LIST] [--keep]
#   --quick: 200 kbp genome, 20x coverage, 32M budget (velveth peaks ~145 MiB,
#            SOAPdenovo2 ~580 MiB), seconds per mode
#   --bench: 2 Mbp genome, 30x coverage, 96M budget (velveth ~320 MiB, velvetg ~275 MiB,
#            SOAPdenovo2 ~2.7 GiB), a few minutes per mode
# Modes default to "plain noswap swap fluidmem fluidmem-mc". Every tool runs
# single-threaded (OMP_NUM_THREADS=1, SOAPdenovo2 -p 1) so its output is deterministic.
# Prints one RESULT line per mode and tool; exits 1 if contigs differ, a mode that
# must complete did not, or noswap was not killed.
. "$(dirname "$0")/common.sh"

if [ "$VARIANT" = quick ]; then
	GENOME_BP=${GENOME_BP:-200000} COVERAGE=${COVERAGE:-20} BUDGET=${BUDGET:-32M}
else
	GENOME_BP=${GENOME_BP:-2000000} COVERAGE=${COVERAGE:-30} BUDGET=${BUDGET:-96M}
fi
MODES=${MODES:-plain noswap swap fluidmem fluidmem-mc}
TOOLS=${GENOME_TOOLS:-velvet soapdenovo2}
export OMP_NUM_THREADS=1

for t in art_illumina velveth velvetg soapdenovo2-63mer; do
	command -v "$t" >/dev/null || { echo "skipped: $t not installed (apt-get install art-nextgen-simulation-tools velvet soapdenovo2)"; exit 77; }
done

# The data, made once: a seeded random genome and ART reads with a fixed seed.
D=$WORK/data
mkdir -p "$D"
python3 - "$GENOME_BP" "$D/ref.fa" <<'EOF'
import random, sys
n, out = int(sys.argv[1]), sys.argv[2]
r = random.Random(20231)
s = "".join(r.choice("ACGT") for _ in range(n))
with open(out, "w") as f:
    f.write(">ref random %d bp seed 20231\n" % n)
    f.write("\n".join(s[i:i + 70] for i in range(0, n, 70)) + "\n")
EOF
art_illumina -ss HS25 -i "$D/ref.fa" -p -l 150 -f "$COVERAGE" -m 300 -s 20 -o "$D/reads" -rs 7 -na -q >"$D/art.log" 2>&1 ||
	{ cat "$D/art.log"; echo "genome: art_illumina failed" >&2; exit 1; }
cat >"$D/soap.cfg" <<EOF
max_rd_len=150
[LIB]
avg_ins=300
reverse_seq=0
asm_flags=3
rank=1
q1=$D/reads1.fq
q2=$D/reads2.fq
EOF
note "genome: ${GENOME_BP} bp reference, ${COVERAGE}x paired 2x150 reads ($(du -sh "$D" | cut -f1) of FASTQ), budget $BUDGET, modes: $MODES"

# step MODE NAME CMD...: one tool in one mode; sets STEP_RC and adds to the mode's totals.
step() {
	local mode=$1 name=$2
	shift 2
	mode_start "$mode" "$name" || { STEP_RC=125; return; }
	STEP_RC=0
	"${PREFIX[@]}" "$@" >"$WORK/$name.log" 2>&1 || STEP_RC=$?
	mode_end "$mode" "$name"
	STEP_LINE="$name=${RUN_SECS}s budget=$BUDGET exit=$STEP_RC $(mode_extra)"
	[ "$STEP_RC" = 0 ] || tail -n 5 "$WORK/$name.log" | sed 's/^/#   /'
}

declare -A REF
bad=0
for mode in $MODES; do
	if ! mode_ready "$mode"; then
		result genome "$mode" skipped "reason=\"$MODE_SKIP\""
		continue
	fi
	for tool in $TOOLS; do
		out=$WORK/$mode-$tool
		rm -rf "$out"
		mkdir -p "$out"
		if [ "$tool" = velvet ]; then
			step "$mode" "$mode-velveth" velveth "$out" 31 -fastq -shortPaired -separate "$D/reads1.fq" "$D/reads2.fq"
			line1=$STEP_LINE rc=$STEP_RC t1=$RUN_SECS oom=$RUN_OOM
			if [ "$rc" = 0 ]; then
				step "$mode" "$mode-velvetg" velvetg "$out" -exp_cov auto -cov_cutoff auto -ins_length 300
				line2=$STEP_LINE rc=$STEP_RC oom=$((oom + RUN_OOM))
				t1=$(awk -v a="$t1" -v b="$RUN_SECS" 'BEGIN {printf "%.2f", a + b}')
			fi
			contigs=$out/contigs.fa
		else
			step "$mode" "$mode-soap" soapdenovo2-63mer all -s "$D/soap.cfg" -K 31 -o "$out/out" -p 1
			line1=$STEP_LINE line2="" rc=$STEP_RC t1=$RUN_SECS oom=$RUN_OOM
			contigs=$out/out.contig
		fi
		if [ "$rc" != 0 ] || [ ! -s "$contigs" ]; then
			if [ "$mode" = noswap ] && [ "$oom" -gt 0 ]; then
				result genome-$tool "$mode" oom-killed "expected=yes $line1${line2:+ | $line2}"
			elif [ "$mode" = swap ] && [ "$oom" -gt 0 ]; then
				result genome-$tool "$mode" oom-killed "$line1${line2:+ | $line2}"
			else
				result genome-$tool "$mode" failed "$line1${line2:+ | $line2}"
				bad=1
			fi
			continue
		fi
		sum=$(md5sum <"$contigs" | cut -c1-32)
		ncontigs=$(grep -c '>' "$contigs")
		if [ "$mode" = noswap ]; then
			# Completing here means the budget was not tight: the point is not shown.
			result genome-$tool "$mode" not-killed "time=${t1}s contigs=$ncontigs md5=$sum $line1${line2:+ | $line2}"
			bad=1
			continue
		fi
		identical=yes
		if [ -z "${REF[$tool]:-}" ]; then
			REF[$tool]=$sum
		elif [ "$sum" != "${REF[$tool]}" ]; then
			identical=no
			bad=1
			cp "$contigs" "$WORK/../genome-$mode-$tool-contigs.differ" 2>/dev/null
		fi
		result genome-$tool "$mode" ok "time=${t1}s contigs=$ncontigs md5=$sum identical=$identical $line1${line2:+ | $line2}"
	done
done
for tool in $TOOLS; do
	RESULTS_SAVE=("${RESULTS[@]}")
	mapfile -t RESULTS < <(printf '%s\n' "${RESULTS_SAVE[@]}" | grep "^RESULT genome-$tool ")
	summary "genome-$tool"
	RESULTS=("${RESULTS_SAVE[@]}")
done
exit $bad
