/* fuzz-size.c - fm_parse_size (src/common/size.c), which reads sizes from
 * the command line, the environment and the configuration file.
 *
 * Invariants beyond "no crash":
 * - the result is -EINVAL or 0, and *out is written only on success;
 * - an accepted size is the number written times its suffix, truncated: an
 *   independent parse in long double (64-bit mantissa) must agree within
 *   2^-50 relative, so a value that wrapped or saturated shows;
 * - a size that fits 64 bits with the same grammar is accepted (away from
 *   the 2^64 boundary, where double and long double may round apart);
 * - fm_format_size's output parses back to within 5% of the value (but see
 *   the known rounding at the very top, below).
 * sources: src/common/size.c
 * libs: -lm */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "size.h"

/* The grammar of size.h, written again: a strtod number, an optional K/M/G/T
 * and then an optional B or iB, or a bare B. Returns the multiplier, or 0 when
 * the text is not a size; *num gets the number. */
static long double reference(const char *s, long double *num)
{
	char *end;
	if (!*s || *s == '-')
		return 0;
	*num = strtold(s, &end);
	if (end == s)
		return 0;
	long double mul = 1;
	const char *units = "kmgt";
	const char *u = *end ? strchr(units, *end | 0x20) : NULL;
	if (u) {
		mul = powl(1024.0L, (long double)(u - units + 1));
		end++;
		if (strcasecmp(end, "b") == 0)
			end++;
		else if (strcasecmp(end, "ib") == 0)
			end += 2;
	} else if (*end == 'b' || *end == 'B') {
		end++;
	}
	return *end ? 0 : mul;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256];
	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = 0;

	const uint64_t canary = 0x5a5a5a5a5a5a5a5aull;
	uint64_t out = canary;
	int rc = fm_parse_size(s, &out);
	CHECK(rc == 0 || rc == -EINVAL, "'%s' returned %d", s, rc);
	if (rc)
		CHECK(out == canary, "'%s' rejected but *out written", s);

	long double num = 0, mul = reference(s, &num);
	long double want = num * mul;
	const long double two64 = 18446744073709551616.0L;
	bool fits = mul != 0 && isfinite(num) && num >= 0 && want < two64;
	bool near_edge = fabsl(want - two64) < two64 / 0x1p40L;
	if (rc == 0) {
		CHECK(fits, "'%s' accepted as %llu but it is not a size that fits 64 bits", s,
		      (unsigned long long)out);
		long double got = (long double)out;
		long double slack = want / 0x1p50L + 1;
		CHECK(got <= want + slack && got >= want - slack,
		      "'%s' parsed as %llu, expected about %.3Lf", s, (unsigned long long)out, want);
	} else if (!near_edge && !(want > 0 && want < 1e-300L)) {
		CHECK(!fits, "'%s' rejected but it is %.3Lf bytes", s, want);
	}

	if (rc == 0) {
		char f[64];
		uint64_t back = 0;
		fm_format_size(out, f, sizeof(f));
		/* Known: one decimal rounds the last 0.05T below 2^64 up to
		 * "16777216.0T", which is 2^64 and so not a size (docs/fuzzing.md). */
		if (out >= 18446744018000000000ull) /* about 2^64 - 0.05 * 2^40 */
			return 0;
		CHECK(fm_parse_size(f, &back) == 0, "format of %llu is '%s', which does not parse",
		      (unsigned long long)out, f);
		long double d = fabsl((long double)back - (long double)out);
		CHECK(d <= (long double)out / 20, "%llu formats as '%s', which parses as %llu",
		      (unsigned long long)out, f, (unsigned long long)back);
	}
	return 0;
}
