package student

import (
	"runtime"
	"sync"

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

// parallelFlops is the size of a product (2·m·n·k) above which sgemm
// splits it across goroutines: below it the split costs more than it saves.
const parallelFlops = 1 << 21

// sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// op(A) m×k, op(B) k×n, C m×n. Big products are split by rows of C into
// one band per CPU, each a single-threaded BLAS call.
func sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	p := runtime.GOMAXPROCS(0)
	if p == 1 || 2*m*n*k < parallelFlops || m < 2*p {
		sgemmImpl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var wg sync.WaitGroup
	band := (m + p - 1) / p
	for i0 := 0; i0 < m; i0 += band {
		rows := min(band, m-i0)
		aOff := i0 * lda // rows of A
		if tA == blas.Trans {
			aOff = i0 // columns of the stored k×m matrix
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sgemmImpl.Sgemm(tA, tB, rows, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[i0*ldc:], ldc)
		}()
	}
	wg.Wait()
}
