//go:build cgo && !purego

package student

// #cgo LDFLAGS: -lopenblas
import "C"

import "gonum.org/v1/netlib/blas/netlib"

func init() {
	sgemmImpl = netlib.Implementation{}
	BLAS = "openblas"
}
