package jpeg

import "testing"

func BenchmarkIDCT(b *testing.B) {
	var blk block
	for i := range blk {
		blk[i] = int32((i*37)%61 - 30)
	}
	dst := make([]byte, 64)
	for b.Loop() {
		c := blk
		idctIslow(&c, dst, 8)
	}
}
