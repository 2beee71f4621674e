//go:build !cgo || purego

package dataset

// Without cgo the Go passes are the only ones.
const haveCResample = false

func hpassC(dst, src []uint8, srcStride, rows, c int, ax axis, ow int) {
	hpassGo(dst, src, srcStride, rows, c, ax, ow)
}

func vpassC(out, tmp []uint8, stride int, ay axis, y0, oh int, acc []int32) {
	vpassGo(out, tmp, stride, ay, y0, oh, acc)
}
