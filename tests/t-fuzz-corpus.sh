# Every fuzz target replays its seed corpus (fuzz/corpus/T, crashes found
# included) clean under gcc ASan + UBSan, without libFuzzer.
. "$(dirname "$0")/lib.sh"
command -v gcc >/dev/null || skip "gcc not installed"
cd "$FM_ROOT"
echo 'int main(void){return 0;}' >"$T/probe.c"
gcc -fsanitize=address,undefined -o "$T/probe" "$T/probe.c" 2>/dev/null || skip "gcc has no ASan/UBSan runtime"
make -s -f fuzz/fuzz.mk FUZZ_DIR="$FM_ROOT/build-fuzz" replays || fail "building the corpus replays"
n=0
for src in fuzz/fuzz-*.c; do
	t=$(basename "$src" .c)
	t=${t#fuzz-}
	[ -d "fuzz/corpus/$t" ] && [ -n "$(ls -A "fuzz/corpus/$t")" ] || fail "fuzz-$t has no seed corpus in fuzz/corpus/$t"
	"build-fuzz/replay/fuzz-$t" "fuzz/corpus/$t" || fail "fuzz-$t fails on its corpus"
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "no fuzz targets"
note "$n targets replayed"
