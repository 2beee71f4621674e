package show

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// npyHeader is the header of a NumPy .npy file (format 1.0) of little-endian float32 in C
// order with the given shape; the values follow it (writeFloats).
func npyHeader(shape ...int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// The magic (6 bytes), version (2), length (2) and the header ended by a newline fill a
	// multiple of 64 bytes, so the values are aligned as numpy.save aligns them.
	h += strings.Repeat(" ", (64-(10+len(h)+1)%64)%64) + "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
	binary.LittleEndian.PutUint16(out[8:], uint16(len(h)))
	return append(out, h...)
}

// writeFloats writes v as little-endian float32.
func writeFloats(w io.Writer, v []float32) error {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	_, err := w.Write(buf)
	return err
}
