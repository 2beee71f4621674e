package half

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"
)

// value16 is the exact value of float16 bits h in float64, from the
// definition of binary16 (every float16 is exact in float64). Exponent 31
// is taken as one more binade, so 0x7c00 is 2^16: the value a rounding
// with unbounded exponent gives before it is called an overflow.
func value16(h uint16) float64 {
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	var v float64
	if e == 0 {
		v = math.Ldexp(m, -24)
	} else {
		v = math.Ldexp(1024+m, e-25)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// positives are the values of float16 bits 0..0x7c00 (0x7c00 as 2^16), in
// increasing order.
var positives = func() []float64 {
	p := make([]float64, 0x7c01)
	for h := range p {
		p[h] = value16(uint16(h))
	}
	return p
}()

// reference rounds finite x to float16 by exact arithmetic: find the two
// float16s around |x|, take the nearer, the even one on a tie. overflow is
// true when that is 2^16, i.e. ±Inf.
func reference(x float32) (h uint16, overflow bool) {
	a := math.Abs(float64(x))
	var sign uint16
	if math.Signbit(float64(x)) {
		sign = 0x8000
	}
	if a >= positives[0x7c00] {
		return sign | 0x7c00, true
	}
	// lo: the largest float16 ≤ a.
	lo := sort.Search(len(positives), func(i int) bool { return positives[i] > a }) - 1
	r := lo
	if a != positives[lo] {
		below, above := a-positives[lo], positives[lo+1]-a // exact: both fit in 53 bits
		if above < below || (above == below && lo&1 == 1) {
			r = lo + 1
		}
	}
	return sign | uint16(r), r == 0x7c00
}

func check(t *testing.T, x float32) {
	t.Helper()
	want, overflow := reference(x)
	got, ok := FromFloat32(x)
	if got != want || ok == overflow {
		t.Errorf("FromFloat32(%g = %#08x) = %#04x, ok %v; want %#04x, ok %v", x, math.Float32bits(x), got, ok, want, !overflow)
	}
}

// TestNumpyTable checks FromFloat32 against numpy's astype(np.float16) on
// the inputs of testdata/float16_rne.txt (made by
// scripts/float16_rne_table.py): ties, near-ties, subnormals, the overflow
// boundary, random values. Where numpy gives ±Inf for a finite input,
// FromFloat32 must give the same bits and ok false.
func TestNumpyTable(t *testing.T) {
	f, err := os.Open("testdata/float16_rne.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, ties := 0, 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "#") {
			continue
		}
		var xb uint32
		var wb uint16
		if _, err := fmt.Sscanf(text, "%x %x", &xb, &wb); err != nil {
			t.Fatalf("line %d %q: %v", line, text, err)
		}
		n++
		x := math.Float32frombits(xb)
		got, ok := FromFloat32(x)
		isNaN := x != x
		switch {
		case isNaN:
			// numpy's payload handling is not ours to copy; a NaN of the
			// same sign, reported.
			if ok || got&0x7c00 != 0x7c00 || got&0x3ff == 0 || got&0x8000 != wb&0x8000 {
				t.Errorf("line %d: FromFloat32(NaN %#08x) = %#04x, ok %v; want a NaN, not ok", line, xb, got, ok)
			}
		case got != wb:
			t.Errorf("line %d: FromFloat32(%g = %#08x) = %#04x, numpy %#04x", line, x, xb, got, wb)
		case ok != (wb&0x7c00 != 0x7c00):
			t.Errorf("line %d: FromFloat32(%g = %#08x) ok %v, numpy gives %#04x", line, x, xb, ok, wb)
		}
		if !isNaN && !math.IsInf(float64(x), 0) {
			if h, _ := reference(x); h != wb {
				t.Errorf("line %d: the float64 reference gives %#04x for %#08x, numpy %#04x", line, h, xb, wb)
			}
			if float16.New(x).Uint16() != wb {
				ties++ // where arrow's truncation is wrong: the table tests something
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 300 || ties < 100 {
		t.Fatalf("%d table lines, %d where truncation differs: the table is not the one made by the script", n, ties)
	}
}

// TestMidpoints rounds every midpoint between neighbouring float16s (both
// signs, the gap from 65504 to 2^16 included), and the float32s one ulp
// either side, against the exact reference.
func TestMidpoints(t *testing.T) {
	for h := 0; h < 0x7c00; h++ {
		m := float32((positives[h] + positives[h+1]) / 2) // 12 significant bits: exact
		if float64(m) != (positives[h]+positives[h+1])/2 {
			t.Fatalf("midpoint above %#04x not exact in float32", h)
		}
		for _, x := range []float32{m, math.Nextafter32(m, 0), math.Nextafter32(m, math.MaxFloat32)} {
			check(t, x)
			check(t, -x)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// A few cases spelled out, so that the reference is checked as well.
	for _, c := range []struct {
		x    float32
		want uint16
		ok   bool
	}{
		{1 + 1.0/2048, 0x3c00, true},                     // tie, even below
		{1 + 3.0/2048, 0x3c02, true},                     // tie, even above
		{2 - 1.0/4096, 0x4000, true},                     // tie at the top of a binade: next exponent
		{0x1p-25, 0x0000, true},                          // half the smallest subnormal: even is 0
		{math.Nextafter32(0x1p-25, 1), 0x0001, true},     // just above it
		{3 * 0x1p-25, 0x0002, true},                      // tie between subnormals 1 and 2
		{0x1p-14 - 0x1p-25, 0x0400, true},                // tie: largest subnormal → smallest normal
		{float32(math.Copysign(0, -1)), 0x8000, true},    // -0 kept
		{65504, 0x7bff, true},                            // largest float16
		{math.Nextafter32(65520, 0), 0x7bff, true},       // 65519.996
		{65520, 0x7c00, false},                           // tie to 2^16: overflow
		{-70000, 0xfc00, false},                          // overflow, negative
		{float32(math.Inf(1)), 0x7c00, false},            // infinity in, not ok
		{math.Float32frombits(0x00000001), 0, true},      // float32 subnormal → 0
		{math.Float32frombits(0x80400000), 0x8000, true}, // → -0
	} {
		h, ok := FromFloat32(c.x)
		if h != c.want || ok != c.ok {
			t.Errorf("FromFloat32(%g) = %#04x, %v; want %#04x, %v", c.x, h, ok, c.want, c.ok)
		}
		if w, over := reference(c.x); !math.IsInf(float64(c.x), 0) && (w != c.want || over == c.ok) {
			t.Errorf("reference(%g) = %#04x, %v; want %#04x", c.x, w, over, c.want)
		}
	}
	if h, ok := FromFloat32(float32(math.NaN())); ok || h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("FromFloat32(NaN) = %#04x, %v; want a NaN, not ok", h, ok)
	}
}

// TestToFloat32 decodes all 65536 patterns: finite ones and infinities
// exactly (against the definition), NaNs as NaNs of their sign; and every
// finite float16 survives FromFloat32(ToFloat32(h)).
func TestToFloat32(t *testing.T) {
	arrowWrong := 0
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := ToFloat32(h)
		switch e := h >> 10 & 0x1f; {
		case e == 0x1f && h&0x3ff != 0:
			if got == got || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("ToFloat32(%#04x) = %v, want a NaN of the same sign", h, got)
			}
			continue
		case e == 0x1f:
			if !math.IsInf(float64(got), 0) || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("ToFloat32(%#04x) = %v, want ±Inf", h, got)
			}
			continue
		}
		if want := value16(h); float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
		if back, ok := FromFloat32(got); back != h || !ok {
			t.Fatalf("FromFloat32(ToFloat32(%#04x)) = %#04x, %v", h, back, ok)
		}
		if float16.FromBits(h).Float32() != got {
			arrowWrong++
		}
	}
	// arrow-go's Num.Float32 puts float16 subnormals at float32 subnormal
	// scale: all 2·1023 of them come out wrong, which is why the store
	// reads through ToFloat32.
	t.Logf("arrow-go float16.Num.Float32 differs on %d patterns", arrowWrong)
}

// FuzzFloat16 compares FromFloat32 on any float32 bit pattern with the
// exact reference.
func FuzzFloat16(f *testing.F) {
	for _, b := range []uint32{0, 0x80000000, 0x33000000, 0x33000001, 0x387fffff, 0x38800000, 0x3c001000, 0x3f7ff000, 0x477fefff, 0x477ff000, 0x7f800000, 0x7fc00000} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b uint32) {
		x := math.Float32frombits(b)
		if x != x {
			if h, ok := FromFloat32(x); ok || h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
				t.Fatalf("FromFloat32(NaN %#08x) = %#04x, %v", b, h, ok)
			}
			return
		}
		check(t, x)
	})
}
