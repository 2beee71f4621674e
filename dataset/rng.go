package dataset

import "math/bits"

// RNG is deitkd's one keyed random stream: splitmix64 started from a state made of key words,
// counter-based, so the draws of one key (an image's view, an image in an epoch) are made
// without making any other's. Views, traindata's epoch order and its choice of stored views
// all draw from it; stores and runs are reproducible from their seeds because the keys and
// the stream never change.
type RNG struct{ state uint64 }

// golden is 2^64/φ, splitmix64's increment.
const golden = 0x9e3779b97f4a7c15

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// MixKey folds b into a, two rounds of the finaliser: distinct pairs give unrelated values.
func MixKey(a, b uint64) uint64 { return mix64(mix64(a+golden) ^ (b + golden)) }

// NewRNG is the stream keyed by (seed, a, b): MixKey(seed, a) with b folded in by one more round.
// traindata keys it by (seed, epoch, image).
func NewRNG(seed, a, b uint64) *RNG { return &RNG{state: mix64(MixKey(seed, a) ^ (b + golden))} }

// viewRNG is the stream of view view of image index, keyed by (seed, index, view) as
// NewRNG but with the last word folded in after the increment, not into it: the key label
// stores were made with, kept so that their views are drawn again exactly.
func viewRNG(seed uint64, index, view int) *RNG {
	return &RNG{state: mix64((MixKey(seed, uint64(index)) + golden) ^ uint64(view))}
}

// Uint64 is the next 64 random bits.
func (r *RNG) Uint64() uint64 {
	r.state += golden
	return mix64(r.state)
}

// Float64 is uniform in [0, 1) with 53 random bits.
func (r *RNG) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Uniform is uniform in [a, b).
func (r *RNG) Uniform(a, b float64) float64 { return a + (b-a)*r.Float64() }

// Intn is uniform in [0, n) (Lemire's multiply-shift; the bias for n < 2^32 is below 2^-32).
func (r *RNG) Intn(n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}
