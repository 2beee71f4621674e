//go:build cgo && !purego

package student

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import "gonum.org/v1/netlib/blas/netlib"

func init() {
	sgemmImpl = netlib.Implementation{}
	BLAS = "openblas"
	// One OpenBLAS thread per call: sgemm splits big products across
	// goroutines itself, and the attention calls many small products from
	// several goroutines at once. OpenBLAS's own pool spins (sched_yield)
	// between calls and oversubscribes the cores when called concurrently.
	C.openblas_set_num_threads(1)
}
