package dataset

import "testing"

// TestRNGKeysUnchanged: the one RNG draws, for every key, what the two generators it replaced
// drew (dataset's view stream and traindata's epoch stream, copied here as they were), so
// stored views and seeded runs are drawn again exactly.
func TestRNGKeysUnchanged(t *testing.T) {
	oldView := func(seed uint64, index, view int) uint64 {
		k := mix64(seed + golden)
		k = mix64(k ^ (uint64(index) + golden))
		k = mix64(k + golden ^ uint64(view))
		return k
	}
	oldMix := func(a, b uint64) uint64 { return mix64(mix64(a+golden) ^ (b + golden)) }
	oldTrain := func(seed, epoch, image uint64) uint64 { return mix64(oldMix(seed, epoch) ^ (image + golden)) }
	r := &RNG{state: 12345}
	for range 2000 {
		seed, a, b := r.Uint64(), r.Uint64()>>40, r.Uint64()>>40
		if got, want := viewRNG(seed, int(a), int(b%64)).state, oldView(seed, int(a), int(b%64)); got != want {
			t.Fatalf("view key (%d, %d, %d): state %x, was %x", seed, a, b%64, got, want)
		}
		if got, want := NewRNG(seed, a, b).state, oldTrain(seed, a, b); got != want {
			t.Fatalf("key (%d, %d, %d): state %x, was %x", seed, a, b, got, want)
		}
		if MixKey(seed, a) != oldMix(seed, a) {
			t.Fatalf("MixKey(%d, %d) changed", seed, a)
		}
	}
	// The stream itself: splitmix64's first outputs from state 0 (the published sequence).
	z := &RNG{}
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := z.Uint64(); got != want {
			t.Fatalf("output %d: %x, want %x", i, got, want)
		}
	}
}
