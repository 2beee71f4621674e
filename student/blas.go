package student

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// sgemmImpl does every matrix product of the model. blas_cgo.go replaces it
// with OpenBLAS unless built with -tags purego or without cgo.
var sgemmImpl blas.Float32Level3 = gonum.Implementation{}

// BLAS names the implementation doing the matrix products ("openblas" or
// "gonum").
var BLAS = "gonum"

const (
	noT = blas.NoTrans
	tr  = blas.Trans
)

// sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// op(A) m×k, op(B) k×n, C m×n.
func sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	sgemmImpl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
