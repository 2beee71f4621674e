//go:build !cgo || purego

package student

// Without cgo the Go kernels of kernels.go are the only ones.
const haveCKernels = false

func setCKernelISA(avx2 bool) string { return cKernelISA }

func geluForwardC(out, inp []float32)           { geluForwardGo(out, inp) }
func geluForwardGradC(out, grad, inp []float32) { geluForwardGradGo(out, grad, inp) }
func geluBackwardC(dinp, inp, dout []float32)   { geluBackwardGo(dinp, inp, dout) }
func softmaxRowsC(a []float32, T int)           { softmaxRowsGo(a, T) }

func layernormForwardC(out, mean, rstd, inp, weight, bias []float32, C int, eps float32) {
	layernormForwardGo(out, mean, rstd, inp, weight, bias, C, eps)
}
func layernormBackwardC(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, C int) {
	layernormBackwardGo(dinp, dweight, dbias, dout, inp, weight, mean, rstd, C)
}
func colSumC(sum, a []float32)                     { colSumGo(sum, a) }
func softmaxBackwardRowsC(a, d []float32, T int)   { softmaxBackwardRowsGo(a, d, T) }
func residualC(out, x, f, mask []float32, per int) { residualGo(out, x, f, mask, per) }
func mulC(out, a, b []float32)                     { mulGo(out, a, b) }
