package student

import "math"

// teacherProbs turns teacher logits (B, K) into softmax(logits/τ), the dense target of the
// soft loss, as traindata computes it from a store (store.Dense) for a real run.
func teacherProbs(logits []float32, K int, tau float64) []float32 {
	out := make([]float32, len(logits))
	lp := make([]float64, K)
	for b := 0; b < len(logits)/K; b++ {
		logSoftmax(lp, logits[b*K:(b+1)*K], tau)
		for k, v := range lp {
			out[b*K+k] = float32(math.Exp(v))
		}
	}
	return out
}

// param returns the parameter of m with timm's name, if m has it.
func param(m *Model, name string) (Param, bool) {
	i, ok := m.index[name]
	if !ok {
		return Param{}, false
	}
	return m.Params()[i], true
}
